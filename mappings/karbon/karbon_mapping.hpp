#pragma once

// Karbon API v3 JSON -> canonical entities (shared/vendors/karbon.md). Pure: no I/O, no clock.
//
//   WorkItem      -> work_item (and the assignee as staff: assignee_of)
//   Contact       -> client
//   Organization  -> client (both: `UserDefinedIdentifier`, the firm's client code, trimmed, is
//                    client_code; billsync never writes it)
//   Invoice       -> invoice, and each of its Payments[] as a payment applied to it (read-only
//                    facts: billsync never writes a Karbon invoice)
//
// A work item references its client the way a QBO invoice references its customer: the client's
// canonical id is resolved from the identity key ("client", ClientKey), so the identity map can
// link the same client from another system later. Contacts and organizations share the type
// "client" (their perma keys are unique across both).
//
// Invoice amounts: a single GET's JSON numbers must reach the mapping as exact decimal text
// (mappings::parse_exact); `UnitPrice` is a string. Every amount is parsed into integer
// minor units of CurrencyCode with mappings::parse_decimal (totals exactly, a unit price rounded
// half to even); a value that is not a decimal is a mapping error naming the field.
//
// Dates: Karbon sends calendar dates as timestamps ("2026-01-15T00:00:00Z"). A date at midnight
// UTC (or a bare "YYYY-MM-DD") is that calendar day; any other instant is the civil date it falls
// on in the firm's time zone (mapping_options::time_zone).

#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mappings/entity.hpp"
#include "mappings/model.hpp"

namespace billsync::mappings::karbon {

// The identity-map types this mapping uses.
inline constexpr std::string_view client_type = "client";
inline constexpr std::string_view work_item_type = "work_item";
inline constexpr std::string_view staff_type = "staff";
inline constexpr std::string_view invoice_type = "invoice";
inline constexpr std::string_view payment_type = "payment";

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

// An invoice as a single GET shows it, and the payments it lists (PaymentType
// "ManualPaymentReversed" is a voided payment). InvoiceStatus: Draft -> draft; Approved,
// AwaitingPayment, Exported -> open (paid when nothing is due of a positive total); Paid -> paid;
// Voided -> voided; another word is a mapping error.
struct invoice_facts {
    invoice inv;
    std::vector<payment> payments;
};
mapped<invoice_facts> map_invoice(const nlohmann::json& j, const mapping_options& o);

// A record whose read answered 404 (a confirmed delete): only the key is known.
work_item deleted_work_item(std::string key, const mapping_options& o);
client deleted_client(std::string key, const mapping_options& o);
invoice deleted_invoice(std::string key, const mapping_options& o);

}  // namespace billsync::mappings::karbon
