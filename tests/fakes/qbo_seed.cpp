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

std::string seed_qbo_grant(const std::filesystem::path& data_dir,
                           simulators::qbo_simulator& qbo,
                           const std::string& realm,
                           util::instant now,
                           std::optional<connectors::sealing_key> key) {
    std::error_code ec;
    std::filesystem::create_directories(data_dir, ec);
    std::filesystem::permissions(data_dir, std::filesystem::perms::owner_all, ec);
    auto st = state::store::open(data_dir / "state");
    if (!st.ok()) {
        return st.st.message;
    }
    connectors::token_store tokens(*st.value, std::move(key));
    const auto grant = qbo.oauth().issue_grant();
    connectors::oauth2::credential c;
    c.id = "qbo/" + realm;
    c.vendor = "qbo";
    c.account = realm;
    c.access_token = grant.access_token;
    c.access_expires_at = now + grant.expires_in;
    c.refresh_token = grant.refresh_token;
    c.connected_at = now;
    c.refreshed_at = now;
    const auto s = connectors::oauth2::store_credential(tokens, c);
    return s.ok ? std::string() : s.message;
}

}  // namespace billsync::testing
