#pragma once

// QuickBooks Online JSON -> canonical entities, and QBO Fault bodies -> error kinds. Pure: no
// I/O, no clock. Field names follow shared/vendors/qbo.md. Amounts never pass through double:
// bodies are parsed with parse_exact and every decimal goes through mappings::parse_decimal.

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mappings/entity.hpp"
#include "mappings/exact_json.hpp"
#include "mappings/model.hpp"
#include "mappings/money.hpp"

namespace billsync::mappings::qbo {

// Resolves a vendor reference to a canonical id (the identity map). The connector passes one
// backed by the xref table; without one, canonical ids are "<system>:<account>:<type>:<id>".

struct mapping_options {
    std::string system = "qbo";         // connector name
    std::string realm_id;               // source_ref::account
    std::string home_currency = "USD";  // when CurrencyRef is absent (single-currency companies)
    rounding money_rounding = rounding::reject;  // digits beyond the currency's: error or round
    // Invoice CustomField names (compared case-insensitively, ignoring spaces, '.', '#', '_' and
    // '-') that hold the PO number.
    std::vector<std::string> po_field_names = {"PO Number", "PO", "Purchase Order", "P.O. Number"};
    // Customer flags come from hashtags in Customer.Notes ("#payment-plan #retainer"), since QBO
    // has no such fields. Tags are lower-cased.
    std::string payment_plan_tag = "payment-plan";
    std::string retainer_tag = "retainer";
    std::string sms_consent_tag = "sms-consent";
    std::string default_calling_code = "1";  // for national phone numbers
    // The webhook said the entity was voided (operation Void); see map_invoice.
    bool void_hint = false;
    id_resolver resolve;  // empty: default_canonical_id
};

template <typename T>
struct mapped {
    std::optional<T> value;
    std::string error;  // set when value is empty; names the field

    explicit operator bool() const noexcept { return value.has_value(); }
};

// Each takes the entity object itself ({"Id": ...}) or a read response wrapping it
// ({"Invoice": {...}, "time": ...}). An entity CDC reports deleted ({"status": "Deleted"}) maps
// with deleted = true and only its ids filled.
//
// Invoice status: void when the invoice is marked voided (PrivateNote starting "Voided", which
// is how QBO shows a voided transaction, or options.void_hint from a Void event); paid when
// Balance is 0 and TotalAmt > 0; open otherwise (QBO has no draft invoices).
mapped<invoice> map_invoice(const nlohmann::json& j, const mapping_options& o);
mapped<client> map_customer(const nlohmann::json& j, const mapping_options& o);
// Applied amounts come from Line[].LinkedTxn[] with TxnType "Invoice". A voided payment (zero
// amounts, PrivateNote starting "Voided") maps with voided = true.
mapped<payment> map_payment(const nlohmann::json& j, const mapping_options& o);

// Employee -> staff: DisplayName (else GivenName FamilyName), PrimaryEmailAddr.Address (lower
// case), Active. The draft-time workflow finds staff by this email.
mapped<staff> map_employee(const nlohmann::json& j, const mapping_options& o);
// TimeActivity -> time_entry: TxnDate, EmployeeRef (NameOf Employee; a Vendor's time maps with
// staff "<vendor>" ids that match no staff), CustomerRef, ItemRef.name as the service,
// Hours/Minutes (else EndTime - StartTime) as minutes, BillableStatus (NotBillable: not
// billable; HasBeenBilled: billed, as an invoice links it), HourlyRate in the home currency,
// Description as notes without billsync's "[billsync-ref:<key>]" marker, whose key becomes
// external_reference. QBO has no approval state, so `locked` (approved) is every activity except
// billsync's own draft still untouched (marker present and SyncToken "0" or absent): a draft
// counts once someone saved it in QBO, and a billed activity is always locked.
mapped<time_entry> map_time_activity(const nlohmann::json& j, const mapping_options& o);

// Item -> ledger_item: Id is both the vendor id and the code an engagement's `item` names
// (QBO's ItemRef.value), Name, Active, UnitPrice in the home currency (Items have no currency).
// A UnitPrice with more decimals than the currency ("99.995"; QBO allows them) keeps its text in
// unit_price_text and leaves unit_price empty, unless money_rounding is half_even. Type (Service,
// NonInventory, ...) does not matter: any item can be a line's item. An Item CDC reports
// deleted maps with deleted = true.
mapped<ledger_item> map_item(const nlohmann::json& j, const mapping_options& o);

// The same from a raw body, parsed with parse_exact.
mapped<invoice> map_invoice(std::string_view body, const mapping_options& o);
mapped<client> map_customer(std::string_view body, const mapping_options& o);
mapped<payment> map_payment(std::string_view body, const mapping_options& o);

// The entity object in a read response ({"Invoice": {...}}) or the object itself when it is
// bare (has "Id"). nullptr otherwise.
const nlohmann::json* entity_object(const nlohmann::json& j, std::string_view entity_name);

// An amount field (number, kept number text or string) in minor units of `currency`.
std::optional<money> parse_amount(const nlohmann::json& v,
                                  std::string_view currency,
                                  rounding mode = rounding::reject);

// ---- faults ----------------------------------------------------------------------------------

struct fault_error {
    std::string code;  // kept as text: "003001" keeps its zeros
    std::string message;
    std::string detail;
    std::string element;
};

struct fault {
    std::string type;  // "ValidationFault", "SERVICE", ...
    std::vector<fault_error> errors;
    std::string time;
};

// What the daemon should do about a fault. Onto the shared conditions (STYLE.md §5):
// rate_limited -> rate_limited, auth -> auth_expired (refresh once, then auth_revoked),
// conflict -> conflict (re-read, re-apply), duplicate -> conflict resolved by looking the
// existing record up, not_found -> not_found, invalid_request -> invalid_payload,
// permanent -> permanent, retryable -> retryable.
enum class fault_kind : std::uint8_t {
    rate_limited,     // 003001 ThrottleExceeded, HTTP 429
    auth,             // 120, 3100, 3200, HTTP 401/403
    conflict,         // 5010 stale SyncToken
    duplicate,        // 6140 duplicate DocNumber, 6240 duplicate DisplayName
    not_found,        // 610
    invalid_request,  // 2xxx validation
    permanent,        // 500, other 5xxx/6xxx business rules (period closed, ...)
    retryable,        // HTTP 5xx without a known code, system faults
};

std::string_view to_string(fault_kind k) noexcept;

// Reads {"Fault": {"Error": [...], "type": ...}} (also the lower-case {"fault": {"error": ...}}
// QBO's gateway sends with 401s). nullopt when the body is not a fault.
std::optional<fault> parse_fault(std::string_view body);
std::optional<fault> parse_fault(const nlohmann::json& j);

// One error code's kind; nullopt for a code this table does not know.
std::optional<fault_kind> classify_code(std::string_view code) noexcept;
// The whole fault's kind: the most pressing of its errors' kinds (auth, then rate_limited,
// conflict, duplicate, not_found, invalid_request, permanent, retryable), falling back on the
// fault type and then on http_status (0: unknown).
fault_kind classify(const fault& f, unsigned http_status = 0) noexcept;

}  // namespace billsync::mappings::qbo
