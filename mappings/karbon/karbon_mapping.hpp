#pragma once

// Karbon API v3 JSON -> canonical entities (shared/vendors/karbon.md). Pure: no I/O, no clock.
//
//   WorkItem      -> work_item (and the assignee as staff: assignee_of)
//   Contact       -> client
//   Organization  -> client
//
// A work item references its client the way a QBO invoice references its customer: the client's
// canonical id is resolved from the identity key ("client", ClientKey), so the identity map can
// link the same client from another system later. Contacts and organizations share the type
// "client" (their perma keys are unique across both).
//
// Dates: Karbon sends calendar dates as timestamps ("2026-01-15T00:00:00Z"). A date at midnight
// UTC (or a bare "YYYY-MM-DD") is that calendar day; any other instant is the civil date it falls
// on in the firm's time zone (mapping_options::time_zone).

#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "mappings/entity.hpp"
#include "mappings/model.hpp"

namespace billsync::mappings::karbon {

// The identity-map types this mapping uses.
inline constexpr std::string_view client_type = "client";
inline constexpr std::string_view work_item_type = "work_item";
inline constexpr std::string_view staff_type = "staff";

struct mapping_options {
    std::string system = "karbon";  // connector name
    std::string time_zone = "UTC";  // IANA name: the firm's zone, for instants -> dates
    std::string default_calling_code = "1";
    id_resolver resolve;  // empty: default_canonical_id
};

template <typename T>
struct mapped {
    std::optional<T> value;
    std::string error;  // set when value is empty; names the field

    explicit operator bool() const noexcept { return value.has_value(); }
};

// The canonical primary status of either spelling ("Ready To Start" / "ReadyToStart"):
// "planned", "ready_to_start", "in_progress", "waiting", "completed"; nullopt for another word.
std::optional<std::string> primary_status(std::string_view karbon_status);
// The spaced spelling Karbon's $filter matches ("ReadyToStart" -> "Ready To Start").
std::optional<std::string> filter_spelling(std::string_view karbon_status);

// A Karbon date field: "2026-01-15", "2026-01-15T00:00:00Z", "2026-01-15T18:30:00-05:00".
std::optional<civil_date> civil_date_of(std::string_view text, std::string_view time_zone);

mapped<work_item> map_work_item(const nlohmann::json& j, const mapping_options& o);
// The work item's assignee (AssigneeKey, AssigneeName, AssigneeEmailAddress); nullopt when the
// item names none.
std::optional<staff> assignee_of(const nlohmann::json& work_item, const mapping_options& o);
mapped<client> map_contact(const nlohmann::json& j, const mapping_options& o);
mapped<client> map_organization(const nlohmann::json& j, const mapping_options& o);

// A record whose read answered 404 (a confirmed delete): only the key is known.
work_item deleted_work_item(std::string key, const mapping_options& o);
client deleted_client(std::string key, const mapping_options& o);

}  // namespace billsync::mappings::karbon
