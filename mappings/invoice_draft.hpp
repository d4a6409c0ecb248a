#pragma once

// The vendor-neutral invoice of an `invoice.create` outbox action, as the invoicing workflow
// queues it on the engagement's ledger connector (QBO or Xero). Pure: no I/O, no clock.
//
// Payload: {"key", "client_ref", "currency", "issue_date", "due_date"?, "po_number"?, "memo"?,
//           "lines": [{"description", "quantity"?, "unit_amount_minor"?, "amount_minor",
//                      "item_ref"?, "account_code"?, "tax_code"?}]}
// Amounts are integers in the currency's minor units (mappings/money.hpp); `amount_minor` is the
// authoritative line total. Quantities are exact decimal text. Nothing passes through a double.

#include <cstdint>
#include <initializer_list>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mappings/model.hpp"

namespace billsync::mappings {

struct invoice_draft_line {
    std::string description = {};
    std::string quantity = "1";  // normalised decimal text ("1.5", "2")
    std::optional<std::int64_t> unit_amount_minor = {};
    std::int64_t amount_minor = 0;
    std::string item_ref = {};
    std::string account_code = {};
    std::string tax_code = {};
};

struct invoice_draft {
    std::string key;  // the action id: billsync's idempotency key
    std::string client_ref;
    std::string currency;
    civil_date issue_date{};
    std::optional<civil_date> due_date;
    std::string po_number;
    std::string memo;
    std::vector<invoice_draft_line> lines;

    std::int64_t total_minor() const noexcept;
};

struct parsed_invoice_draft {
    std::optional<invoice_draft> value;
    std::string error;  // set when value is empty; names the field

    explicit operator bool() const noexcept { return value.has_value(); }
};

// Validates a payload: key, client_ref, a three-letter currency, civil dates (a due date not
// before the issue date), at least one line, integer amounts that are not negative, quantities
// as positive decimal text (or integers). Never throws.
parsed_invoice_draft parse_invoice_draft(const nlohmann::json& payload);
parsed_invoice_draft parse_invoice_draft(std::string_view payload);

// What one line is sent as. Rule: quantity x unit amount must equal amount_minor exactly, with a
// quantity of at most `max_quantity_decimals` decimals and a unit amount in whole minor units;
// otherwise the line goes as quantity 1 at unit amount = amount_minor (collapsed), and the
// description keeps the original quantity ("... (1.333 x 150.00)").
struct line_pricing {
    std::string quantity;  // decimal text
    std::int64_t unit_minor = 0;
    std::string description;
    bool collapsed = false;
};

line_pricing price_line(const invoice_draft_line& l,
                        int currency_digits,
                        int max_quantity_decimals);

// A short, stable marker for billsync's key that fits any vendor text field: "billsync:" and 20
// hex digits of SHA-256(key).
std::string key_marker(std::string_view key);

// Serialises j like dump(), except that string values under the given object keys that hold a
// plain decimal ("225.00", "-1.5", "3") are written as JSON numbers, digit for digit.
std::string dump_exact(const nlohmann::json& j,
                       std::initializer_list<std::string_view> numeric_keys);

}  // namespace billsync::mappings
