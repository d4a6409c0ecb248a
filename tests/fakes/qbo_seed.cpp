#include "tests/fakes/qbo_seed.hpp"

#include <thread>

#include "connectors/runtime/oauth2.hpp"
#include "state/store.hpp"

namespace billsync::testing {

bool eventually(const std::function<bool()>& probe, std::chrono::seconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
        if (probe()) {
            return true;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return probe();
}

util::instant parse_time(std::string_view rfc3339) {
    util::instant t{};
    util::parse_rfc3339(rfc3339, t);
    return t;
}

}  // namespace billsync::testing
