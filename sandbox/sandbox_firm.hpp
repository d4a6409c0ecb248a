#pragma once

// The sandbox firm shared by `billsync sandbox` and its chaos runs (sandbox/chaos.cpp): a simulated
// clock for the simulators, the generated clients and invoices in the simulated QuickBooks company,
// and the connector sections that point billsync at the simulators. Included by those two files
// only (it pulls in the simulators).

#include <fmt/format.h>

#include <array>
#include <cctype>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "http/client.hpp"
#include "mappings/model.hpp"
#include "mappings/money.hpp"
#include "sim/harvest_simulator.hpp"
#include "sim/karbon_simulator.hpp"
#include "sim/qbo_simulator.hpp"
#include "sim/xero_simulator.hpp"
#include "util/clock.hpp"

namespace billsync::sandbox::detail {

using json = nlohmann::json;

inline constexpr const char* realm = "9130350000000001";
inline constexpr const char* verifier = "sandbox-qbo-verifier";
inline constexpr const char* firm_number = "+15005550006";

// Business time, shared by the simulators; the daemon's simulated clock is moved to match.
class sandbox_clock {
public:
    explicit sandbox_clock(util::instant start) : now_(start) {}
    util::instant now() const {
        std::lock_guard lock(mutex_);
        return now_;
    }
    void set(util::instant t) {
        std::lock_guard lock(mutex_);
        now_ = t;
    }

private:
    mutable std::mutex mutex_;
    util::instant now_;
};

struct firm_client {
    std::string qbo_id;
    std::string name;
    std::string email;
    std::string mobile;  // empty: none on file
};

struct firm_invoice {
    std::string qbo_id;
    std::size_t client = 0;
    std::int64_t cents = 0;
    std::int64_t paid = 0;
    util::instant due{};
};

inline std::string amount_text(std::int64_t cents) {
    return fmt::format("{}.{:02}", cents / 100, cents % 100);
}

inline std::string date_text(util::instant t) {
    const auto day = std::chrono::floor<std::chrono::days>(t);
    return mappings::format_civil_date(std::chrono::year_month_day{day});
}

// The generated firm: a few dozen clients with invoices due over the last six weeks and the next
// three, some partly paid, one client on a payment plan, two on retainers.
class firm {
public:
    firm(simulators::qbo_simulator& qbo, util::instant today) : qbo_(qbo) {
        static constexpr std::array<std::string_view, 32> names = {
            "Acme Dental",       "Birch Law",         "Cedar Farms",      "Dogwood Bakery",
            "Elm Street Clinic", "Fir & Pine Realty", "Granite Builders", "Harbor Marine",
            "Iris Florist",      "Juniper Yoga",      "Kestrel Aviation", "Linden Pharmacy",
            "Maple Auto",        "Nettle Tea Co",     "Oak Ridge Vets",   "Poplar Printing",
            "Quince Catering",   "Redwood Roofing",   "Spruce Salon",     "Tamarack Tours",
            "Umber Design",      "Violet Boutique",   "Willow Daycare",   "Xeric Gardens",
            "Yarrow Wellness",   "Zinnia Events",     "Aspen Plumbing",   "Beech Brewing",
            "Cypress Dental",    "Dahlia Studio",     "Ember Coffee",     "Fern Logistics",
        };
        std::mt19937 rng(20260105);
        for (std::size_t i = 0; i < names.size(); ++i) {
            firm_client c;
            c.name = std::string(names[i]);
            std::string slug;
            for (const char ch : c.name) {
                if (std::isalnum(static_cast<unsigned char>(ch)) != 0) {
                    slug += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
                }
            }
            c.email = "ap@" + slug + ".example";
            std::string notes;
            if (i % 3 != 2) {
                c.mobile = fmt::format("+1415555{:04}", 100 + i);
                notes += "#sms-consent ";
            }
            if (i == 6) {
                notes += "#payment-plan ";
            }
            if (i == 3 || i == 11) {
                notes += "#retainer ";
            }
            json fields{{"DisplayName", c.name}, {"PrimaryEmailAddr", {{"Address", c.email}}}};
            if (!c.mobile.empty()) {
                fields["Mobile"] = {{"FreeFormNumber", c.mobile}};
            }
            if (!notes.empty()) {
                fields["Notes"] = notes;
            }
            c.qbo_id = qbo_.add_customer(realm, fields).value("Id", "");
            clients_.push_back(std::move(c));
        }
        // The firm's service items, with their list prices (what [invoicing] check_item_prices
        // compares draft lines with).
        qbo_.add_item(realm,
                      json{{"Name", "Tax preparation"}, {"UnitPrice", json::parse("2400.00")}});
        qbo_.add_item(realm, json{{"Name", "Bookkeeping"}, {"UnitPrice", json::parse("1500.00")}});
        qbo_.add_item(realm, json{{"Name", "Advisory hour"}, {"UnitPrice", json::parse("180.00")}});
        std::uniform_int_distribution<int> due_offset(-40, 20);
        std::uniform_int_distribution<int> amount(15, 480);
        for (std::size_t i = 0; i < clients_.size(); ++i) {
            const int count = i % 4 == 0 ? 2 : 1;
            for (int k = 0; k < count; ++k) {
                firm_invoice inv;
                inv.client = i;
                inv.cents = static_cast<std::int64_t>(amount(rng)) * 1000;
                const auto due = today + std::chrono::days(due_offset(rng));
                inv.due = due;
                inv.qbo_id =
                    qbo_.add_invoice(realm, invoice_fields(clients_[i], inv, due)).value("Id", "");
                invoices_.push_back(inv);
            }
        }
        // A few clients paid part already.
        for (std::size_t i = 1; i < invoices_.size(); i += 7) {
            pay(i, invoices_[i].cents / 4);
        }
    }

    void pay(std::size_t index, std::int64_t cents) {
        auto& inv = invoices_[index];
        const auto& c = clients_[inv.client];
        const auto amount = json::parse(amount_text(cents));
        qbo_.add_payment(
            realm,
            json{{"CustomerRef", {{"value", c.qbo_id}}},
                 {"TotalAmt", amount},
                 {"Line",
                  json::array(
                      {{{"Amount", amount},
                        {"LinkedTxn",
                         json::array({{{"TxnId", inv.qbo_id}, {"TxnType", "Invoice"}}})}}})}});
        inv.paid += cents;
    }

    const std::vector<firm_client>& clients() const { return clients_; }
    const std::vector<firm_invoice>& invoices() const { return invoices_; }
    const firm_client& client_of(std::size_t index) const {
        return clients_[invoices_[index].client];
    }
    // The first invoice from `start` that is unpaid, already overdue on `today`, not on a
    // payment plan, and (when asked) of a client with a mobile number.
    std::size_t pick(std::size_t start, bool need_mobile, util::instant today) const {
        for (std::size_t i = start; i < invoices_.size(); ++i) {
            const auto& c = clients_[invoices_[i].client];
            if (invoices_[i].client != 6 && invoices_[i].paid == 0 && invoices_[i].due < today &&
                (!need_mobile || !c.mobile.empty())) {
                return i;
            }
        }
        return 0;
    }

private:
    static json invoice_fields(const firm_client& c, const firm_invoice& inv, util::instant due) {
        const auto amount = json::parse(amount_text(inv.cents));
        return json{
            {"CustomerRef", {{"value", c.qbo_id}}},
            {"DueDate", date_text(due)},
            {"TxnDate", date_text(due - std::chrono::days(30))},
            {"BillEmail", {{"Address", c.email}}},
            {"Line",
             json::array(
                 {{{"Amount", amount},
                   {"Description", "Bookkeeping and tax preparation"},
                   {"DetailType", "SalesItemLineDetail"},
                   {"SalesItemLineDetail",
                    {{"ItemRef", {{"value", "1"}}}, {"Qty", 1}, {"UnitPrice", amount}}}}})}};
    }

    simulators::qbo_simulator& qbo_;
    std::vector<firm_client> clients_;
    std::vector<firm_invoice> invoices_;
};

inline std::string connectors_toml(const std::string& qbo_base,
                                   const std::string& sendgrid_base,
                                   const std::string& sendgrid_key,
                                   const std::string& twilio_base,
                                   std::uint16_t smtp_port,
                                   const simulators::karbon_options& karbon,
                                   const std::string& karbon_base,
                                   std::uint16_t webhook_port) {
    return fmt::format(
        R"(
# ---- generated by `billsync sandbox`: the simulators it started on loopback ----

[connectors.qbo]
kind = "qbo"
base_url = "{0}"
token_url = "{0}/oauth2/token"
client_id = "sim-client-id"
client_secret = "sim-client-secret"
webhook_verifier_token = "{1}"
realm_id = "{2}"
poll_interval_s = 3600

[connectors.sendgrid]
kind = "sendgrid"
base_url = "{3}"
api_key = "SG.simulated-key"
from_email = "billing@smithlee.example"
from_name = "Smith & Lee CPA"
event_webhook_public_key = "{4}"
inbound_secret = "sandbox-inbound-secret"

[connectors.twilio]
kind = "twilio"
base_url = "{5}"
account_sid = "AC00000000000000000000000000000001"
auth_token = "sim-twilio-auth-token"
from = "{6}"
public_url = "http://127.0.0.1:{7}"

[connectors.smtp]
kind = "smtp"
host = "127.0.0.1"
port = {8}
tls = "none"
from_email = "billing@smithlee.example"

[connectors.karbon]
kind = "karbon"
base_url = "{10}"
bearer_token = "{9}"
access_key = "{11}"
webhook_signing_key = "sandbox-karbon-signing-key"
public_url = "http://127.0.0.1:{7}"
stages = "Return Filed, Delivered"
task_assignee_email = "coordinator@smithlee.example"

[followup]
firm_name = "Smith & Lee CPA"
firm_phone = "+1 555 0100"
email_connector = "sendgrid"
sms_connector = "twilio"
reply_to = "billing@smithlee.example"
coordinator_email = "coordinator@smithlee.example"

# Invoices from engagements (docs/invoicing.md): the book is engagements.toml next to this file.
[invoicing]
ledger = "qbo"
engagements = "engagements.toml"
email_connector = "sendgrid"

[invoicing.approval]
auto_approve_below = "500.00"
approvers = ["partner@smithlee.example"]
escalate_to = ["managing.partner@smithlee.example"]
sla_business_days = 2
)",
        qbo_base,
        verifier,
        realm,
        sendgrid_base,
        sendgrid_key,
        twilio_base,
        firm_number,
        webhook_port,
        smtp_port,
        karbon.bearer_token,
        karbon_base,
        karbon.access_key);
}

// The firm's time in Harvest and the draft-time workflow, for the sandbox and the chaos firm:
// `[connectors.harvest]` with the simulator's Personal Access Token, `[draft_time]` with the two
// work types the firm's Karbon jobs use, and (missing_time) the daily missing-time check.
inline std::string harvest_toml(const std::string& base_url,
                                const simulators::harvest_options& o,
                                bool missing_time) {
    return fmt::format(
               R"(
# The firm's time, in Harvest (the Harvest simulator): a Personal Access Token; Harvest has no
# webhooks, so billsync polls it (hourly, in simulated time).
[connectors.harvest]
kind = "harvest"
base_url = "{0}/v2"
account_id = "{1}"
access_token = "{2}"
contact = "it@smithlee.example"
poll_interval_s = 3600

# Draft time entries (docs/configuration.md [draft_time]): a completed Karbon work item drafts a
# time entry in Harvest for its assignee; untouched drafts join the review list on Friday at 09:00.
[draft_time]
connector = "harvest"

[draft_time.work_types."Monthly Bookkeeping"]
project = "Monthly Bookkeeping"
task = "Bookkeeping"
hours = "2.5"

[draft_time.work_types."Payroll"]
project = "Payroll"
task = "Payroll Processing"
hours = "1.5"
)",
               base_url,
               o.account_id,
               o.access_token) +
           (missing_time ? R"(
# Each working day at 08:00: staff who recorded less than 6 hours on the previous working day.
[draft_time.missing_time]
expected_hours = "6"
)"
                         : "");
}

// The firm's other company, booked in Xero: a few clients of its own, each with one ACCREC
// invoice. One pays before touch 1 is due, one gets the three touches with its online-invoice
// link, one is on auto-pay and is paid on its due date.
inline constexpr const char* xero_tenant = "5a4d0b0c-0000-4000-8000-00000000e2e0";
inline constexpr const char* xero_webhook_key = "sandbox-xero-webhook-key";

struct xero_client {
    std::string name;
    std::string email;
    std::string mobile;  // empty: none
    std::string group;   // Xero contact group ("SMS consent", "Autopay"); empty: none
    std::string code;    // ContactNumber, the firm's client code; empty: none
    std::string number;  // the invoice
    std::int64_t cents = 0;
    std::string due;  // YYYY-MM-DD
    std::string contact_id;
    std::string invoice_id;
};

inline std::vector<xero_client> seed_xero_entity(simulators::xero_simulator& xero) {
    std::vector<xero_client> out = {
        {"Kauri Cafe",
         "ap@kauricafe.example",
         "",
         "",
         "KAURI01",
         "INV-0001",
         85000,
         "2026-01-07",
         {},
         {}},
        {"Rimu Architects",
         "ap@rimuarchitects.example",
         "+14155550190",
         "SMS consent",
         "",
         "INV-0002",
         124000,
         "2025-12-24",
         {},
         {}},
        {"Totara Tech",
         "ap@totaratech.example",
         "",
         "Autopay",
         "",
         "INV-0003",
         39900,
         "2026-01-13",
         {},
         {}},
    };
    // The firm's service items in Xero, with their sales prices.
    xero.save_item(xero_tenant,
                   json{{"Code", "TAX-PREP"},
                        {"Name", "Tax preparation"},
                        {"SalesDetails", {{"UnitPrice", json::parse("2400.00")}}}});
    xero.save_item(xero_tenant,
                   json{{"Code", "ADVISORY"},
                        {"Name", "Advisory hour"},
                        {"SalesDetails", {{"UnitPrice", json::parse("180.00")}}}});
    for (auto& c : out) {
        json contact{{"Name", c.name}, {"EmailAddress", c.email}};
        if (!c.mobile.empty()) {
            contact["Phones"] = json::array({{{"PhoneType", "MOBILE"}, {"PhoneNumber", c.mobile}}});
        }
        if (!c.group.empty()) {
            contact["ContactGroups"] = json::array({{{"Name", c.group}}});
        }
        if (!c.code.empty()) {
            contact["ContactNumber"] = c.code;
        }
        c.contact_id = xero.add_contact(xero_tenant, contact).value("ContactID", "");
        c.invoice_id =
            xero.add_invoice(
                    xero_tenant,
                    json{{"Contact", {{"ContactID", c.contact_id}}},
                         {"InvoiceNumber", c.number},
                         {"Date", "2025-12-01"},
                         {"DueDate", c.due},
                         {"Reference", "Advisory services"},
                         {"LineItems",
                          json::array({{{"Description", "Advisory services"},
                                        {"Quantity", 1},
                                        {"LineAmount", json::parse(amount_text(c.cents))}}})}})
                .value("InvoiceID", "");
    }
    return out;
}

inline void xero_pay(simulators::xero_simulator& xero,
                     const xero_client& c,
                     const std::string& date) {
    xero.add_payment(xero_tenant,
                     json{{"Invoice", {{"InvoiceID", c.invoice_id}}},
                          {"Account", {{"Code", "090"}}},
                          {"Date", date},
                          {"Amount", json::parse(amount_text(c.cents))}});
}

// TaxDome: no API, only Zapier. A Zap relays each new account to /webhooks/taxdome with the
// bearer secret (connectors/taxdome/README.md); the sandbox posts one relay as such a Zap would.
inline constexpr std::string_view taxdome_secret = "sandbox-taxdome-relay-secret-4f1c9a7e2b6d8035";
inline constexpr std::string_view taxdome_account = "7351024";

inline std::string taxdome_connector_toml() {
    return fmt::format(R"(
# TaxDome, the firm's client portal: a Zap relays new accounts (connectors/taxdome/README.md).
[connectors.taxdome]
kind = "taxdome"
relay_secret = "{}"
)",
                       taxdome_secret);
}

// One Zapier relay of a new TaxDome account, as the Zap sends it (relayed_at is the Zap's own
// current UTC time, not the sandbox's simulated clock).
inline std::string taxdome_relay_body(const std::string& id,
                                      const std::string& name,
                                      const std::string& email) {
    const auto now = std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now());
    return json{{"event", "New Account"},
                {"id", id},
                {"name", name},
                {"emails", email},
                {"relayed_at", util::format_rfc3339(now)}}
        .dump();
}

inline http::simple_response post_taxdome_relay(std::uint16_t port, const std::string& body) {
    return http::fetch("127.0.0.1",
                       port,
                       "POST",
                       "/webhooks/taxdome",
                       {{"Content-Type", "application/json"},
                        {"Authorization", "Bearer " + std::string(taxdome_secret)}},
                       body);
}

inline std::string xero_connector_toml(const std::string& base_url, int poll_interval_s = 86400) {
    return fmt::format(
        R"(
# The firm's other company, booked in Xero (the Xero simulator): OAuth2 tenant, webhooks signed
# with the webhook key, payments found by polling.
[connectors.xero]
kind = "xero"
base_url = "{0}"
token_url = "{0}/oauth2/token"
connections_url = "{0}/connections"
client_id = "sim-client-id"
client_secret = "sim-client-secret"
webhook_key = "{1}"
tenant_id = "{2}"
# Payments also arrive as INVOICE webhooks; the poll finds what a lost one carried.
poll_interval_s = {3}
)",
        base_url,
        xero_webhook_key,
        xero_tenant,
        poll_interval_s);
}

}  // namespace billsync::sandbox::detail
