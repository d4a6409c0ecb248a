#include "state/sim_time.hpp"

#include "state/keys.hpp"

namespace billsync::state {

namespace {

constexpr std::string_view simulated_now_key = "simulated_now";

}  // namespace

result<std::optional<util::instant>> get_simulated_time(const store& s) {
    using result_t = result<std::optional<util::instant>>;
    auto row = s.get(cf::meta, simulated_now_key);
    if (!row.ok()) {
        return result_t::failure(std::move(row.st));
    }
    if (!row.value) {
        return {};
    }
    if (row.value->size() != 8) {
        return result_t::failure(status::failure("corrupt simulated time in the state"));
    }
    return {status::success(), keys::to_instant(keys::read_be64(*row.value))};
}

void put_simulated_time(batch& b, util::instant t) {
    b.put(cf::meta, simulated_now_key, keys::be64(keys::from_instant(t)));
}

}  // namespace billsync::state
