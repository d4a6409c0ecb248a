#pragma once

// The canonical, vendor-neutral entities the workflows see: client, invoice, payment; their JSON
// form for storage; and the change derivation between two versions of one entity.
//
// Money is integer minor units plus an ISO currency code; due and issue dates are civil dates;
// instants are UTC. Canonical ids come from the identity map; vendor ids live in `source`.

#include <chrono>
#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mappings/money.hpp"

namespace billsync::mappings {

using civil_date = std::chrono::year_month_day;
using instant = std::chrono::sys_time<std::chrono::microseconds>;  // same as util::instant

// Where a canonical entity came from: the connector, the vendor account (QBO realm, Xero
// tenant), the vendor's id and its version (QBO SyncToken) and last-update time.
struct source_ref {
    std::string system;   // connector name, "qbo"
    std::string account;  // "1185883450"; empty where the vendor has one account
    std::string id;       // the vendor's id, "130"
    std::string version;  // opaque, "3"
    std::optional<instant> updated;

    friend bool operator==(const source_ref&, const source_ref&) = default;
};

// ---- clients ---------------------------------------------------------------------------------

struct contacts {
    std::string billing_email;
    std::string mobile;      // E.164 ("+14155550123"), or empty
    std::string mobile_raw;  // as the vendor gave it, kept when it did not normalise
    bool sms_consent = false;

    friend bool operator==(const contacts&, const contacts&) = default;
};

struct client {
    std::string id;  // canonical
    std::string display_name;
    contacts contact;
    std::vector<std::string> tags;  // sorted, unique
    bool payment_plan = false;      // excluded from follow-up
    bool retainer = false;          // softer follow-up cadence
    bool active = true;
    bool deleted = false;
    std::string currency;  // ISO code, empty when unknown
    source_ref source;

    friend bool operator==(const client&, const client&) = default;
};

// Normalises a phone number to E.164: '+', a country code and at most 15 digits in all.
// Accepts spaces, dots, dashes and parentheses; "+" or "00" starts an international number;
// otherwise default_calling_code ("1") is prepended, after dropping one national trunk '0' (or,
// for "1", a leading '1' on an 11-digit number). nullopt when it cannot be a valid number
// (letters, extensions, too short or long, no country code known).
std::optional<std::string> normalize_e164(std::string_view text,
                                          std::string_view default_calling_code = "");

// ---- invoices --------------------------------------------------------------------------------

enum class invoice_status : std::uint8_t { draft, open, paid, voided };
enum class delivery_status : std::uint8_t { not_sent, sent, delivered, failed };
enum class line_kind : std::uint8_t { item, discount, description, other };

struct line_item {
    line_kind kind = line_kind::item;
    std::string description;
    std::string quantity;    // exact decimal text, normalised ("1", "1.5", "-2"); empty if none
    std::string unit_price;  // exact decimal text; empty if none
    money amount;            // as the vendor states it (a discount is positive)
    std::string item_ref;    // the vendor's item/service id
    std::string item_name;

    friend bool operator==(const line_item&, const line_item&) = default;
};

struct invoice {
    std::string id;  // canonical
    std::string number;
    std::string client_id;   // canonical
    std::string client_ref;  // the client's vendor id, for resolving client_id
    std::optional<civil_date> issue_date;
    std::optional<civil_date> due_date;
    std::string currency;
    money total;
    money balance;
    invoice_status status = invoice_status::open;
    bool deleted = false;
    std::string po_number;
    std::vector<line_item> lines;
    delivery_status delivery = delivery_status::not_sent;
    std::string billing_email;
    std::string payment_link;  // online payment link, empty when none
    source_ref source;

    friend bool operator==(const invoice&, const invoice&) = default;
};

// ---- payments --------------------------------------------------------------------------------

struct payment_application {
    std::string invoice_id;   // canonical
    std::string invoice_ref;  // the invoice's vendor id
    money amount;

    friend bool operator==(const payment_application&, const payment_application&) = default;
};

struct payment {
    std::string id;  // canonical
    std::string client_id;
    std::string client_ref;
    money amount;
    money unapplied;
    std::optional<civil_date> date;
    std::string reference;  // cheque or transfer reference
    std::vector<payment_application> applied;
    bool voided = false;
    bool deleted = false;
    source_ref source;

    friend bool operator==(const payment&, const payment&) = default;
};

// ---- names and text forms --------------------------------------------------------------------

std::string_view to_string(invoice_status s) noexcept;
std::string_view to_string(delivery_status s) noexcept;
std::string_view to_string(line_kind k) noexcept;
std::optional<invoice_status> invoice_status_from(std::string_view s) noexcept;
std::optional<delivery_status> delivery_status_from(std::string_view s) noexcept;
std::optional<line_kind> line_kind_from(std::string_view s) noexcept;

// "2026-01-31" (exactly that shape, a real calendar day).
std::optional<civil_date> parse_civil_date(std::string_view text) noexcept;
std::string format_civil_date(civil_date d);

// RFC 3339 and the variants vendors send: "2015-10-05T14:42:19-0700", "…-07:00", "…Z",
// fractions up to nanoseconds (truncated to microseconds). A time zone is required.
std::optional<instant> parse_timestamp(std::string_view text) noexcept;
std::string format_timestamp(instant t);  // "2015-10-05T21:42:19.000000Z"

// ---- storage form (JSON) ---------------------------------------------------------------------
// Money as {"minor": 12345, "currency": "USD"}, dates as "YYYY-MM-DD", instants as RFC 3339.
// The decoders return nullopt and set `error` when a field is missing or of the wrong shape.

nlohmann::json to_json(const client& c);
nlohmann::json to_json(const invoice& i);
nlohmann::json to_json(const payment& p);
std::optional<client> client_from_json(const nlohmann::json& j, std::string& error);
std::optional<invoice> invoice_from_json(const nlohmann::json& j, std::string& error);
std::optional<payment> payment_from_json(const nlohmann::json& j, std::string& error);

// ---- change derivation -----------------------------------------------------------------------

enum class invoice_change_kind : std::uint8_t {
    created,
    deleted,
    voided,             // status became void (balance changes are folded in, not repeated)
    reopened,           // paid or void became open again
    status_changed,     // any other status move (e.g. draft -> open)
    amount_changed,     // the total moved
    balance_to_zero,    // fully paid (the status moving to paid is folded in)
    partial_payment,    // balance dropped but is still above zero
    balance_increased,  // balance rose (payment removed, lines added)
    due_date_later,
    due_date_earlier,
    delivery_changed,  // not_sent -> sent -> delivered, or failed
};

std::string_view to_string(invoice_change_kind k) noexcept;

struct invoice_change {
    invoice_change_kind kind = invoice_change_kind::created;
    // Present where the kind concerns them; a created/deleted change carries the after/before
    // state of all three.
    std::optional<money> balance_before, balance_after;
    std::optional<money> total_before, total_after;
    std::optional<civil_date> due_before, due_after;
    std::optional<invoice_status> status_before, status_after;
    std::optional<delivery_status> delivery_before, delivery_after;

    friend bool operator==(const invoice_change&, const invoice_change&) = default;
};

// What changed from `before` (nullptr: never seen) to `after`, in this order: created | deleted
// alone; else status (voided, reopened, status_changed), amount_changed, balance
// (balance_to_zero, partial_payment, balance_increased), due date, delivery. A void folds in its
// balance and total going to zero. Identical versions give no changes.
std::vector<invoice_change> diff(const invoice* before, const invoice& after);

enum class client_change_kind : std::uint8_t {
    created,
    deleted,
    name_changed,
    contact_changed,  // billing email, mobile or SMS consent
    payment_plan_changed,
    retainer_changed,
    active_changed,
};

std::string_view to_string(client_change_kind k) noexcept;

struct client_change {
    client_change_kind kind = client_change_kind::created;
    std::string field;          // "billing_email", "mobile", "sms_consent", "display_name", ...
    std::string before, after;  // the value as text ("true"/"false" for flags)

    friend bool operator==(const client_change&, const client_change&) = default;
};

// created | deleted alone; else one change per field that moved, in the order of the kinds.
std::vector<client_change> diff(const client* before, const client& after);

nlohmann::json to_json(const invoice_change& c);
nlohmann::json to_json(const client_change& c);

}  // namespace billsync::mappings
