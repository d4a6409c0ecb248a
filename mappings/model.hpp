#pragma once

// The canonical, vendor-neutral entities the workflows see, their JSON form for storage, and the
// change derivation between two versions of one entity:
//   ledger:     client, invoice, payment, ledger_item
//   messaging:  suppression, message_status (sms_message / email_message), inbound_message
//   practice:   staff, work_item, time_entry, engagement (shapes for the practice-management,
//               time and invoicing connectors; no connector of this build fills them yet)
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
    // The firm's own code for the client ("SMI001"), typed into its practice system and ledger:
    // trimmed, compared case-insensitively (client_code_key), empty when unknown.
    std::string client_code;
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

// A vendor's client-code field as the canonical client keeps it: leading and trailing
// whitespace removed (" SMI001 " -> "SMI001"; blank -> "").
std::string trim_client_code(std::string_view text);
// The form two client codes are compared in: trimmed and lower-cased ("SMI001" == "smi001").
std::string client_code_key(std::string_view code);

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

// ---- ledger items -----------------------------------------------------------------------------

// A product or service the ledger sells (QBO Item, Xero Item): what an engagement's `item` names
// and what an invoice line's item_ref points at. Entity "ledger_item".
struct ledger_item {
    std::string id;    // canonical
    std::string code;  // the key an engagement's `item` names: QBO Item Id, Xero ItemCode
    std::string name;
    // The sales unit price, when the item has one that is a whole number of minor units of its
    // currency (the ledger's home or base currency).
    std::optional<money> unit_price;
    // The sales price as the vendor states it (exact decimal text, "150", "99.995"); empty when
    // the item has none. Set while unit_price is empty when the price has more decimals than the
    // currency: no invoice line can equal it.
    std::string unit_price_text;
    bool active = true;
    bool deleted = false;
    source_ref source;

    friend bool operator==(const ledger_item&, const ledger_item&) = default;
};

// ---- messaging ------------------------------------------------------------------------------

enum class channel : std::uint8_t { sms, email };

// An address that must not be messaged (opted out), or may be again (opted back in). One row per
// channel and address: id "sms:+14155550123", "email:ann@client.test".
struct suppression {
    channel via = channel::sms;
    std::string address;  // E.164, or a bare lower-cased mail address
    bool opted_out = true;
    std::string reason;  // "STOP", "21610", "bounce", …
    std::string at;      // RFC 3339, when the vendor saw it

    std::string id() const;
    friend bool operator==(const suppression&, const suppression&) = default;
};

// What became of one message billsync sent (entity "sms_message" / "email_message", keyed by the
// delivery id the workflow gave the send). `progress` orders delivery states so a late callback
// never moves a message backwards: 1 accepted/queued, 2 sending/deferred, 3 sent/delivered to the
// next hop, 4 final (delivered, undelivered, failed, bounced, dropped); 0 is an engagement event
// (opened, clicked, read) that is recorded beside the status without moving it.
struct message_status {
    channel via = channel::sms;
    std::string delivery_id;
    std::string status;  // the vendor's word: "queued", "delivered", "bounce", "open", …
    std::uint8_t progress = 0;
    bool failed = false;      // the message did not reach its recipient
    std::string provider_id;  // the vendor's id of the message or event (SID, sg_event_id)
    std::string reason;       // the vendor's error code or reason, empty when none
    std::string address;      // the recipient, when the vendor says

    friend bool operator==(const message_status&, const message_status&) = default;
};

// A message a client sent to the firm (entity "sms_inbound" / "email_inbound").
struct inbound_message {
    channel via = channel::sms;
    std::string id;    // the vendor's message id (SID, Message-ID, or "sha256:…")
    std::string from;  // E.164, or a bare lower-cased address
    std::vector<std::string> to;
    std::string subject;  // email only
    std::string text;
    std::string
        keyword;  // SMS: "stop", "start", "help" when the body is one (mappings/sms_keywords)
    std::string in_reply_to, references;  // email threading headers, as received
    // Email: the receiving side checked the sender (SPF and DKIM for the From domain passed, e.g.
    // SendGrid Inbound Parse's `SPF` and `dkim` fields), so `from` may be trusted. SMS: unused.
    bool sender_verified = false;

    friend bool operator==(const inbound_message&, const inbound_message&) = default;
};

// ---- practice ---------------------------------------------------------------------------------
// The shapes the practice-management and time connectors map into. Durations are whole minutes,
// rates money per hour; every id is canonical (the identity map links the vendors' ids).

struct staff {
    std::string id;
    std::string name;
    std::string email;
    std::string role;
    bool active = true;
    source_ref source;

    friend bool operator==(const staff&, const staff&) = default;
};

// Practice work (a Karbon work item, a TaxDome job): who, for whom, what, and where it stands.
struct work_item {
    std::string id;
    std::string client_id;
    std::string title;
    std::string work_type;    // "1040 Individual Return", the firm's service name
    std::string status;       // primary status: "planned", "in_progress", "waiting", "completed"
    std::string stage;        // the firm's secondary status ("Return Filed"), billing milestones
    std::string assignee_id;  // staff
    std::optional<civil_date> start_date, due_date, completed_date;
    bool deleted = false;
    source_ref source;

    friend bool operator==(const work_item&, const work_item&) = default;
};

struct time_entry {
    std::string id;
    std::string staff_id;
    std::string client_id;
    std::string engagement_id;  // project or work item the time was spent on
    std::string service;        // task / service name
    std::optional<civil_date> date;
    std::int64_t minutes = 0;
    bool billable = true;
    std::optional<money> hourly_rate;
    std::string notes;
    // Approved at the vendor (Harvest: locked or closed; QBO: see qbo_mapping.hpp): the time
    // counts as approved and billsync never edits it.
    bool locked = false;
    // Already invoiced at the vendor (Harvest is_billed, QBO HasBeenBilled): never billed again.
    bool billed = false;
    std::string external_reference;  // billsync's key on entries it drafted
    bool deleted = false;
    source_ref source;

    friend bool operator==(const time_entry&, const time_entry&) = default;
};

enum class billing_model : std::uint8_t { fixed_fee, retainer, time_and_materials, hybrid };

// Billing terms of one engagement (read from the engagement book, not from a vendor).
struct engagement {
    std::string id;
    std::string client_id;
    std::string work_type;
    billing_model model = billing_model::fixed_fee;
    std::string currency;
    std::optional<money> fee;  // fixed fee or monthly retainer amount
    std::string po_number;
    std::string ledger;  // connector that invoices it

    friend bool operator==(const engagement&, const engagement&) = default;
};

// ---- names and text forms --------------------------------------------------------------------

std::string_view to_string(invoice_status s) noexcept;
std::string_view to_string(delivery_status s) noexcept;
std::string_view to_string(line_kind k) noexcept;
std::optional<invoice_status> invoice_status_from(std::string_view s) noexcept;
std::optional<delivery_status> delivery_status_from(std::string_view s) noexcept;
std::optional<line_kind> line_kind_from(std::string_view s) noexcept;
std::string_view to_string(channel c) noexcept;
std::optional<channel> channel_from(std::string_view s) noexcept;

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
nlohmann::json to_json(const ledger_item& i);
std::optional<ledger_item> ledger_item_from_json(const nlohmann::json& j, std::string& error);
// Messaging entities as the workflows and the audit see them (flat objects).
nlohmann::json to_json(const suppression& s);
nlohmann::json to_json(const message_status& m);
nlohmann::json to_json(const inbound_message& m);
std::optional<suppression> suppression_from_json(const nlohmann::json& j, std::string& error);
nlohmann::json to_json(const staff& s);
std::optional<staff> staff_from_json(const nlohmann::json& j, std::string& error);
nlohmann::json to_json(const work_item& w);
nlohmann::json to_json(const time_entry& t);
std::optional<work_item> work_item_from_json(const nlohmann::json& j, std::string& error);
std::optional<time_entry> time_entry_from_json(const nlohmann::json& j, std::string& error);

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
    tags_changed,  // the ledger's tags or groups (auto-pay, no late fee, ...)
    currency_changed,
    code_changed,  // the firm's client code
};

std::string_view to_string(client_change_kind k) noexcept;

struct client_change {
    client_change_kind kind = client_change_kind::created;
    std::string
        field;  // "billing_email", "mobile", "sms_consent", "display_name", "client_code"...
    std::string before, after;  // the value as text ("true"/"false" for flags)

    friend bool operator==(const client_change&, const client_change&) = default;
};

// created | deleted alone; else one change per field that moved, in the order of the kinds.
std::vector<client_change> diff(const client* before, const client& after);

nlohmann::json to_json(const invoice_change& c);
nlohmann::json to_json(const client_change& c);

}  // namespace billsync::mappings
