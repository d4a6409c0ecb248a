#pragma once

// Xero Accounting JSON -> canonical entities (shared/vendors/xero.md). Pure: no I/O, no clock.
// Bodies are parsed with parse_exact, so amounts reach mappings::parse_decimal as Xero wrote them.
//
// Decisions the fact sheet leaves to us:
//   - Invoices: only Type ACCREC (sales invoices) map; ACCPAY (bills) and anything else are
//     skipped by the connector (is_sales_invoice), never stored as canonical invoices.
//   - Payments: only those applied to an ACCREC invoice (PaymentType ACCRECPAYMENT, or an
//     Invoice.Type of ACCREC) map; Status DELETED maps as voided.
//   - Status: DRAFT/SUBMITTED -> draft, AUTHORISED -> open (paid when AmountDue is 0 and Total
//     > 0), PAID -> paid, VOIDED -> voided, DELETED -> deleted.
//   - Dates: `Date`/`DueDate` are civil dates, read from `DateString`/`DueDateString`
//     ("2019-03-14T00:00:00"), a plain "YYYY-MM-DD", or `/Date(ms±hhmm)/` at a whole local day
//     (anything else is an error, never a guess). `UpdatedDateUTC` is an instant.
//   - Money: Total and AmountDue in CurrencyCode's minor units (home_currency when absent).
//     Line amounts are stated tax-inclusive: LineAmountTypes "Exclusive" adds the line's
//     TaxAmount to LineAmount; "Inclusive" and "NoTax" take LineAmount as it is.
//   - Client flags: Xero contacts have no payment-plan/retainer fields; a ContactGroup named
//     like the tag ("Payment plan", "payment-plan", "Retainer", "SMS consent") sets it.
//   - Client code: `ContactNumber` (the firm's code for the contact, trimmed) is client_code;
//     billsync never writes it.
//   - Payment link: `OnlineInvoiceUrl` when the object carries it (the connector adds it from
//     GET /Invoices/{id}/OnlineInvoice).

#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "mappings/entity.hpp"
#include "mappings/exact_json.hpp"
#include "mappings/model.hpp"
#include "mappings/money.hpp"

namespace billsync::mappings::xero {

using mappings::parse_exact;

struct mapping_options {
    std::string system = "xero";        // connector name
    std::string tenant_id;              // source_ref::account
    std::string home_currency = "USD";  // when CurrencyCode is absent
    rounding money_rounding = rounding::reject;
    std::string payment_plan_tag = "payment-plan";
    std::string retainer_tag = "retainer";
    std::string sms_consent_tag = "sms-consent";
    std::string default_calling_code = "1";
    id_resolver resolve;  // empty: default_canonical_id
};

template <typename T>
struct mapped {
    std::optional<T> value;
    std::string error;  // set when value is empty; names the field

    explicit operator bool() const noexcept { return value.has_value(); }
};

// Whether an Invoices[] element feeds billsync (Type ACCREC).
bool is_sales_invoice(const nlohmann::json& inv);
// Whether a Payments[] element is a receivable payment (see above).
bool is_sales_payment(const nlohmann::json& p);

mapped<invoice> map_invoice(const nlohmann::json& j, const mapping_options& o);
mapped<client> map_contact(const nlohmann::json& j, const mapping_options& o);
mapped<payment> map_payment(const nlohmann::json& j, const mapping_options& o);

// Items[] element -> ledger_item: ItemID is the vendor id, Code (trimmed, required) what an
// engagement's `item` and a line's ItemCode name, Name, SalesDetails.UnitPrice in home_currency
// (Xero prices items in the base currency) when IsSold; an item not sold maps inactive with no
// price. A price with more decimals than the currency (Xero keeps up to 4: "99.995") keeps its
// text in unit_price_text and leaves unit_price empty, unless money_rounding is half_even.
mapped<ledger_item> map_item(const nlohmann::json& j, const mapping_options& o);

// "/Date(1552521600000+0000)/" -> the instant (the milliseconds are UTC; the offset only names
// the zone). nullopt for any other shape.
std::optional<instant> parse_ms_date(std::string_view text) noexcept;
// A date-only field: "YYYY-MM-DD", "YYYY-MM-DDT00:00:00" or "/Date(ms±hhmm)/" whose local time
// (ms shifted by the offset) is exactly midnight. nullopt otherwise.
std::optional<civil_date> parse_xero_date(std::string_view text) noexcept;
// Xero's If-Modified-Since form: "2020-02-06T12:17:43" (UTC, whole seconds).
std::string format_modified_since(instant t);

// An amount (integer, kept number text or string) in minor units of `currency`.
std::optional<money> parse_amount(const nlohmann::json& v,
                                  std::string_view currency,
                                  rounding mode = rounding::reject);

// The array of a response envelope: {"Invoices": [...]} -> the array; nullptr when absent.
const nlohmann::json* rows_of(const nlohmann::json& doc, std::string_view collection);

// What an error body says: the first ValidationErrors[].Message, else Message, else Detail.
std::string error_message(std::string_view body);

}  // namespace billsync::mappings::xero
