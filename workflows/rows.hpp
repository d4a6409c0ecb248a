#pragma once

// Small pieces the rules share: reading fields of their JSON rows, reading a row through the
// step's batch, their audit lines, short operator-facing ids, the firm's calendar, tag matching
// and the outcome of an action they queued.

#include <date/tz.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "state/outbox.hpp"
#include "state/store.hpp"
#include "util/clock.hpp"
#include "workflows/context.hpp"

namespace billsync::workflows {

// The string at key ("" when absent, not a string, or j is not an object).
std::string text_of(const nlohmann::json& j, std::string_view key);
// The integer at key (0 when absent, not an integer, or j is not an object).
std::int64_t int_of(const nlohmann::json& j, std::string_view key);

// Entity row type/id as a JSON object, read through `b` when given (the step's own writes
// first); nullopt when absent or not an object.
state::result<std::optional<nlohmann::json>> read_row(const state::store& s,
                                                      state::batch* b,
                                                      std::string_view type,
                                                      std::string_view id);

// An audit line {"rule", "decision", ...extra} in the step's batch.
void audit(context& ctx, std::string_view rule, std::string_view decision, nlohmann::json extra);

// prefix + the first 10 hex digits of SHA-256(text): short enough to type, stable across replays.
std::string short_id(std::string_view prefix, std::string_view text);

// The zone by IANA name; UTC when the name is empty or unknown.
const date::time_zone* zone_of(const std::string& name);
// The civil day of t in tz.
date::local_days local_day(const date::time_zone* tz, util::instant t);
// The instant of `hour`:00 local on `day` (the earlier one when the hour repeats).
util::instant at_local(const date::time_zone* tz, date::local_days day, int hour);

// Whether two tags are the same as the ledger mappings normalise them: case ignored, and spaces,
// '-' and '_' ignored (some ledgers' contact groups drop them).
bool same_tag(std::string_view a, std::string_view b);

// The outbox action with this id; nullopt when unknown or unreadable.
std::optional<state::action> queued_action(const state::store& s, std::string_view id);

}  // namespace billsync::workflows
