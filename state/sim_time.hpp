#pragma once

// The simulated clock's current time ([daemon.clock] mode = "simulated"), kept in the state so
// that business time never goes back across a restart:
//
//   meta: "simulated_now" -> be64(biased instant)
//
// The daemon writes it (synced) before it moves its clock, so nothing in the state ever happened
// later than the stored time.

#include <optional>

#include "state/store.hpp"
#include "util/clock.hpp"

namespace billsync::state {

// nullopt: the state has never run on a simulated clock.
result<std::optional<util::instant>> get_simulated_time(const store& s);
void put_simulated_time(batch& b, util::instant t);

}  // namespace billsync::state
