#pragma once

// The draft-time workflow's `time_entry.create` payload -> the body of QBO's
// POST /v3/company/{realmId}/timeactivity (shared/vendors/qbo.md, "TimeActivity"). Pure: no I/O,
// no clock.
//
//   NameOf "Employee", EmployeeRef.value  <- user_ref (the QBO Employee Id)
//   CustomerRef.value                     <- client_ref (its last '/' segment: the Customer Id)
//   ItemRef.value                         <- the service Item that `task` names (resolved by
//                                            the connector: an Id, or an Item's Name)
//   Hours / Minutes                       <- hours (exact decimal text, whole minutes)
//   TxnDate                               <- spent_date
//   BillableStatus                        <- billable ? "Billable" : "NotBillable"
//   HourlyRate                            <- the Item's UnitPrice (billable only; QBO requires it)
//   Description                           <- notes, then "[billsync-ref:<key>]"
//
// The key in Description is how billsync recognises its own TimeActivity later (QBO has no
// external-reference field): reconcile finds it there after a lost answer, and polling maps it
// back to time_entry.external_reference. `project` has no counterpart (QBO projects are not
// mapped) and is ignored.

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "mappings/model.hpp"

namespace billsync::mappings::qbo {

// Description's limit (the fact sheet: up to 4000 characters).
constexpr std::size_t max_description = 4000;

struct time_draft {
    std::string key;           // the action id
    std::string employee_ref;  // QBO Employee Id
    std::string customer_ref;  // QBO Customer Id
    std::string task;          // the service Item: an Id or a Name
    civil_date date{};
    std::int64_t minutes = 0;
    std::string notes;
    bool billable = true;
};

struct parsed_time_draft {
    std::optional<time_draft> value;
    std::string error;  // set when value is empty; names the field
    explicit operator bool() const noexcept { return value.has_value(); }
};

// Reads and checks a time_entry.create payload; its "key" must equal action_id. Refused: a
// missing key, user_ref, client_ref or task, a bad date, hours that are not a positive decimal
// of whole minutes (at most 24 h).
parsed_time_draft parse_time_draft(std::string_view payload, std::string_view action_id);

// The service Item a draft books to, as read from QBO.
struct service_item {
    std::string id;
    std::string name;
    std::optional<std::string> unit_price;  // exact decimal text; nullopt: the Item has none
};

// "[billsync-ref:<key>]": the marker Description carries.
std::string time_ref_marker(std::string_view key);
// The key of the last marker in a Description; empty when there is none.
std::string key_in_description(std::string_view description);

// The TimeActivity with HourlyRate as decimal text (for inspection and tests). Throws nothing;
// a billable draft whose item has no rate gets no HourlyRate (the connector refuses it first).
nlohmann::json time_activity_json(const time_draft& d, const service_item& item);
// The request body: the same with HourlyRate as a JSON number, digit for digit.
std::string time_activity_body(const time_draft& d, const service_item& item);

}  // namespace billsync::mappings::qbo
