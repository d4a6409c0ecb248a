#pragma once

// Harvest API v2 JSON -> canonical entities (shared/vendors/harvest.md). Pure: no I/O, no clock.
// Bodies are parsed with parse_exact, so hours and rates reach the decimal parsers as the vendor
// wrote them, never through a double.
//
//   time entry -> time_entry (minutes from the decimal hours, locked = is_locked, is_closed or
//                 is_billed, billed = is_billed, external_reference.id kept)
//   user       -> staff
//   client     -> client
//   project    -> an identity link (project -> engagement id) and the client it belongs to;
//                 tasks and task assignments have no canonical entity (a time entry carries its
//                 task's name as `service`)

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "mappings/entity.hpp"
#include "mappings/model.hpp"

namespace billsync::mappings::harvest {

// Resolves a vendor reference to a canonical id (the identity map). Without one, canonical ids
// are mappings::default_canonical_id: "<system>:<account>:<type>:<id>".

struct mapping_options {
    std::string system = "harvest";  // connector name
    std::string account_id;          // Harvest-Account-Id: source_ref::account
    std::string currency = "USD";    // the account's currency, for rates without one
    id_resolver resolve;             // empty: mappings::default_canonical_id
};

template <typename T>
struct mapped {
    std::optional<T> value;
    std::string error;  // set when value is empty; names the field

    explicit operator bool() const noexcept { return value.has_value(); }
};

// A project as billsync needs it: its canonical engagement id and its client.
struct project_link {
    source_ref source;
    std::string engagement_id;  // canonical
    std::string client_id;      // canonical; empty when the project has no client
    std::string name;
    bool active = true;
};

mapped<time_entry> map_time_entry(const nlohmann::json& j, const mapping_options& o);
mapped<staff> map_user(const nlohmann::json& j, const mapping_options& o);
mapped<client> map_client(const nlohmann::json& j, const mapping_options& o);
mapped<project_link> map_project(const nlohmann::json& j, const mapping_options& o);

// A time entry that vanished (Harvest keeps no tombstones): deleted, only its ids filled.
time_entry deleted_time_entry(std::string_view id, const mapping_options& o);

// Whole minutes of a decimal hours text ("1.5" -> 90, "0.25" -> 15), rounded half to even when
// the hours are not a whole number of minutes ("0.01" -> 1). nullopt for text that is not a
// non-negative decimal.
std::optional<std::int64_t> minutes_of_hours(std::string_view hours);
// The decimal hours text of whole minutes (90 -> "1.5", 20 -> "0.333333"): what billsync sends
// as `hours`; six decimals, trailing zeros dropped.
std::string hours_of_minutes(std::int64_t minutes);

// The integer id of a Harvest object field ({"id": 123} or 123) as text; empty when absent.
std::string id_text(const nlohmann::json& v);

}  // namespace billsync::mappings::harvest
