#include "sandbox/sandbox.hpp"

#include <fmt/format.h>
#include <sys/stat.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <ostream>
#include <random>
#include <set>
#include <thread>

#include "connectors/runtime/oauth2.hpp"
#include "connectors/runtime/token_store.hpp"
#include "connectors/xero/xero_kind.hpp"
#include "daemon/access.hpp"
#include "daemon/app.hpp"
#include "http/client.hpp"
#include "mappings/model.hpp"
#include "mappings/money.hpp"
#include "sandbox/sandbox_firm.hpp"
#include "sim/harvest_simulator.hpp"
#include "sim/karbon_simulator.hpp"
#include "sim/qbo_grant.hpp"
#include "sim/qbo_simulator.hpp"
#include "sim/sendgrid_simulator.hpp"
#include "sim/sim_server.hpp"
#include "sim/smtp_sink.hpp"
#include "sim/twilio_simulator.hpp"
#include "sim/xero_grant.hpp"
#include "sim/xero_simulator.hpp"
#include "state/store.hpp"

namespace billsync::sandbox {

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

using namespace detail;
constexpr std::uint16_t webhook_port = 18080;
constexpr std::uint16_t status_port = 18081;

http::simple_response status_get(const std::string& target) {
    return http::fetch("127.0.0.1", status_port, "GET", target);
}

// A change over the status listener, as an operator makes it: with the daemon's status token.
http::simple_response status_post(const std::string& token,
                                  const std::string& target,
                                  const std::string& body,
                                  std::chrono::seconds timeout = std::chrono::seconds(30)) {
    return http::fetch("127.0.0.1",
                       status_port,
                       "POST",
                       target,
                       {{"Content-Type", "application/json"}, {"Authorization", "Bearer " + token}},
                       body,
                       timeout);
}

// The invoice drafts as the daemon shows them (GET /workflows/invoicing/drafts).
std::vector<json> invoicing_drafts() {
    const auto j = json::parse(status_get("/workflows/invoicing/drafts").body, nullptr, false);
    std::vector<json> out;
    if (j.is_object() && j.contains("drafts") && j["drafts"].is_array()) {
        for (const auto& d : j["drafts"]) {
            out.push_back(d);
        }
    }
    return out;
}

std::string weekday_date(util::instant t) {
    static constexpr std::array<std::string_view, 7> days = {
        "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    const auto day = std::chrono::floor<std::chrono::days>(t);
    const std::chrono::weekday wd{day};
    return fmt::format("{} {}", days.at(wd.c_encoding()), date_text(t));
}

// Prints what happened since the last call, from the simulators' point of view (what clients
// received) and the daemon's (tasks, sequences).
class timeline {
public:
    timeline(std::ostream& out,
             simulators::sendgrid_simulator& mail,
             simulators::twilio_simulator& sms)
        : out_(out), mail_(mail), sms_(sms) {}

    // Messages to these addresses and numbers, and tasks naming these invoice numbers, are about
    // the firm's Xero entity: their lines say so ("[Xero] ").
    void xero_clients(std::set<std::string> addresses, std::vector<std::string> invoice_numbers) {
        xero_addresses_ = std::move(addresses);
        xero_numbers_ = std::move(invoice_numbers);
    }

    // Draft time entries are shown with the client and staff names Harvest holds for them.
    void time_system(const simulators::harvest_simulator* harvest) { harvest_ = harvest; }

    void day(util::instant t,
             const std::vector<std::string>& events,
             const std::vector<std::string>& practice = {},
             const std::vector<std::string>& operators = {},
             const std::vector<std::string>& xero = {},
             const std::vector<std::string>& time = {},
             const std::vector<std::string>& portal = {}) {
        out_ << weekday_date(t) << "\n";
        for (const auto& e : events) {
            out_ << "  client  " << e << "\n";
        }
        for (const auto& e : practice) {
            out_ << "  karbon  " << e << "\n";
        }
        for (const auto& e : xero) {
            out_ << "  xero    " << e << "\n";
        }
        for (const auto& e : time) {
            out_ << "  harvest " << e << "\n";
        }
        for (const auto& e : portal) {
            out_ << "  taxdome " << e << "\n";
        }
        for (const auto& e : operators) {
            out_ << "  people  " << e << "\n";
        }
        if (daemon_lines() == 0 && events.empty()) {
            out_ << "  (nothing due)\n";
        }
        out_.flush();
    }

    // Later the same business day: what people did then (whole lines, with their kind), and
    // what the daemon did since the last call. Lines come in time order: a day that has such a
    // moment is run up to it first (day()), then on (later()).
    void later(const std::vector<std::string>& lines) {
        for (const auto& l : lines) {
            out_ << l << "\n";
        }
        (void)daemon_lines();
        out_.flush();
    }

private:
    // What the daemon did since the last call: draft-time lines, emails, texts, invoice drafts'
    // states and tasks. Returns the number of lines printed.
    std::size_t daemon_lines() {
        std::size_t n = draft_time_lines();
        const auto mails = mail_.messages();
        for (std::size_t i = mails_seen_; i < mails.size(); ++i, ++n) {
            if (!xero_addresses_.contains(mails[i].to) && !names_xero_invoice(mails[i].subject)) {
                out_ << fmt::format("  email   {:<34} {}\n", mails[i].to, mails[i].subject);
                continue;
            }
            // The Xero entity's emails carry the invoice's online-invoice link.
            const auto link = pay_online_link(mails[i].body);
            out_ << fmt::format("  email   {:<34} [Xero] {}{}\n",
                                mails[i].to,
                                mails[i].subject,
                                link.empty() ? "" : " | pay online: " + link);
        }
        mails_seen_ = mails.size();
        const auto texts = sms_.messages();
        for (std::size_t i = texts_seen_; i < texts.size(); ++i) {
            const auto& m = texts[i];
            if (m.value("direction", "") != "outbound-api") {
                continue;
            }
            ++n;
            auto body = m.value("body", "");
            if (body.size() > 70) {
                body = body.substr(0, 67) + "...";
            }
            const auto to = m.value("to", "");
            out_ << fmt::format(
                "  sms     {:<34} {}{}\n", to, xero_addresses_.contains(to) ? "[Xero] " : "", body);
        }
        texts_seen_ = texts.size();
        // Invoice drafts: each state a draft reaches, once.
        const auto drafts =
            json::parse(status_get("/workflows/invoicing/drafts").body, nullptr, false);
        if (drafts.is_object() && drafts.contains("drafts")) {
            for (const auto& d : drafts["drafts"]) {
                const auto id = d.value("id", "");
                const auto state = d.value("state", "");
                if (!drafts_seen_.insert(id + "/" + state).second) {
                    continue;
                }
                ++n;
                std::string what = state;
                if (state == "blocked" && d.contains("exceptions") && !d["exceptions"].empty()) {
                    what = "blocked:";
                    for (const auto& x : d["exceptions"]) {
                        what += " [" + x.value("type", "") + "] " + x.value("cause", "");
                    }
                } else if (state == "created") {
                    what = "created in QuickBooks as " + d.value("invoice", "");
                } else if (state == "pending_approval" && d.contains("flags") &&
                           d["flags"].is_array() && !d["flags"].empty()) {
                    what += ", needs a person:";
                    for (const auto& flag : d["flags"]) {
                        what += " " + (flag.is_string() ? flag.get<std::string>() : flag.dump());
                    }
                }
                out_ << fmt::format(
                    "  billing draft {} {} {} {} ({}): {}\n",
                    id,
                    d.value("model", ""),
                    mappings::format_decimal(d.value("total_minor", std::int64_t{0}), 2),
                    d.value("currency", ""),
                    d.value("period", ""),
                    what);
            }
        }
        const auto tasks = json::parse(status_get("/tasks").body, nullptr, false);
        if (tasks.is_array()) {
            for (const auto& task : tasks) {
                const auto key = task.value("key", "");
                if (tasks_seen_.insert(key).second) {
                    ++n;
                    const auto title = task.value("title", "");
                    out_ << fmt::format(
                        "  task    {}{}\n", names_xero_invoice(title) ? "[Xero] " : "", title);
                }
            }
        }
        return n;
    }

    // The draft-time workflow as the daemon shows it: each draft's states once (GET
    // /workflows/draft_time/list), the review list (…/review) and each day's missing-time check
    // (…/missing). Returns the number of lines printed.
    std::size_t draft_time_lines() {
        std::size_t n = 0;
        const auto list =
            json::parse(status_get("/workflows/draft_time/list").body, nullptr, false);
        if (list.is_object() && list.contains("drafts") && list["drafts"].is_array()) {
            for (const auto& d : list["drafts"]) {
                const auto state = d.value("state", "");
                const auto title = d.value("title", "");
                if (state == "in_review" ||
                    !drafts_seen_.insert("time/" + d.value("work_item", "") + "/" + state).second) {
                    continue;  // the review list has lines of its own
                }
                std::string what;
                if (state == "created") {
                    const auto entry = harvest_entry(d.value("entry_id", ""));
                    what = fmt::format("draft created in Harvest: {} <{}>, {}, {}, {} h: \"{}\"",
                                       entry_field(entry, "user"),
                                       d.value("staff_email", ""),
                                       entry_field(entry, "client"),
                                       d.value("spent_date", ""),
                                       hours_text(d.value("minutes", std::int64_t{0})),
                                       title);
                } else if (state == "edited") {
                    what = fmt::format(
                        "draft \"{}\" edited by staff in Harvest, billsync leaves it", title);
                } else if (state == "approved") {
                    what = fmt::format(
                        "draft \"{}\" approved in Harvest as drafted (locked), billsync leaves it",
                        title);
                } else if (state == "waiting") {
                    what = fmt::format("draft for \"{}\" waits: [{}] {}",
                                       title,
                                       d.value("exception", ""),
                                       d.value("cause", ""));
                } else if (state == "deleted") {
                    what = fmt::format("draft \"{}\" deleted by staff in Harvest", title);
                } else {
                    continue;  // queued: shown once Harvest has it
                }
                ++n;
                out_ << "  time    " << what << "\n";
            }
        }
        const auto review =
            json::parse(status_get("/workflows/draft_time/review").body, nullptr, false);
        if (review.is_object() && review.contains("review") && review["review"].is_array()) {
            for (const auto& d : review["review"]) {
                if (!drafts_seen_.insert("time/" + d.value("work_item", "") + "/in_review")
                         .second) {
                    continue;
                }
                ++n;
                // The review day (the draft's review moment), in the firm's time zone's date.
                util::instant due{};
                const bool dated = util::parse_rfc3339(d.value("review_due", ""), due);
                out_ << fmt::format(
                    "  time    review list{}: \"{}\" ({}, {}, {} h) untouched since billsync "
                    "drafted it\n",
                    dated ? ", " + weekday_date(due) : std::string(),
                    d.value("title", ""),
                    d.value("staff_email", ""),
                    d.value("spent_date", ""),
                    hours_text(d.value("minutes", std::int64_t{0})));
            }
        }
        const auto missing =
            json::parse(status_get("/workflows/draft_time/missing").body, nullptr, false);
        if (missing.is_object() && missing.contains("days") && missing["days"].is_array()) {
            // Newest first: printed oldest first.
            for (auto it = missing["days"].rbegin(); it != missing["days"].rend(); ++it) {
                const auto date = it->value("date", "");
                if (!missing_seen_.insert(date).second || !it->contains("short")) {
                    continue;
                }
                for (const auto& p : (*it)["short"]) {
                    ++n;
                    out_ << fmt::format(
                        "  time    missing time for {}: {} <{}> recorded {} h of {} h\n",
                        date,
                        p.value("name", ""),
                        p.value("email", ""),
                        hours_text(p.value("minutes", std::int64_t{0})),
                        hours_text(missing.value("expected_minutes", std::int64_t{0})));
                }
            }
        }
        return n;
    }

    // Minutes as decimal hours, as Harvest shows them: "6", "2.50" (to the hundredth, down).
    static std::string hours_text(std::int64_t minutes) {
        const auto hundredths = minutes * 100 / 60;
        return hundredths % 100 == 0 ? std::to_string(hundredths / 100)
                                     : mappings::format_decimal(hundredths, 2);
    }

    json harvest_entry(const std::string& id) const {
        if (harvest_ == nullptr) {
            return json::object();
        }
        for (auto& e : harvest_->time_entries()) {
            if (std::to_string(e.value("id", std::int64_t{0})) == id) {
                return e;
            }
        }
        return json::object();
    }

    static std::string entry_field(const json& entry, const char* field) {
        return entry.contains(field) && entry[field].is_object() ? entry[field].value("name", "")
                                                                 : std::string("?");
    }

    // A subject or title about one of the Xero entity's invoices ("... Invoice INV-0002").
    bool names_xero_invoice(const std::string& text) const {
        return std::any_of(
            xero_numbers_.begin(), xero_numbers_.end(), [&text](const std::string& number) {
                return text.find("nvoice " + number) != std::string::npos;
            });
    }

    // The link after "Pay online: " in a sent email (the SendGrid request's text content).
    static std::string pay_online_link(const std::string& request) {
        const auto j = json::parse(request, nullptr, false);
        if (!j.is_object() || !j.contains("content") || !j["content"].is_array()) {
            return {};
        }
        constexpr std::string_view marker = "Pay online: ";
        for (const auto& c : j["content"]) {
            const auto text = c.value("value", "");
            if (const auto at = text.find(marker); at != std::string::npos) {
                const auto from = at + marker.size();
                return text.substr(from, text.find_first_of(" \r\n<", from) - from);
            }
        }
        return {};
    }

    std::ostream& out_;
    simulators::sendgrid_simulator& mail_;
    simulators::twilio_simulator& sms_;
    std::size_t mails_seen_ = 0;
    std::size_t texts_seen_ = 0;
    std::set<std::string> tasks_seen_;
    std::set<std::string> drafts_seen_;
    std::set<std::string> missing_seen_;
    const simulators::harvest_simulator* harvest_ = nullptr;
    std::set<std::string> xero_addresses_;
    std::vector<std::string> xero_numbers_;
};

// One Zapier relay of a new TaxDome account to the sandbox daemon.
http::simple_response relay_taxdome_account(const std::string& id,
                                            const std::string& name,
                                            const std::string& email) {
    return post_taxdome_relay(webhook_port, taxdome_relay_body(id, name, email));
}

// What the identity map (GET /identities) made of a client, in plain words; nullopt while it
// is not processed yet. `member` is its canonical id, or ":" + its vendor id (the id's end).
std::optional<std::string> identity_outcome_now(const std::string& member) {
    const auto is_self = [&](const json& m) {
        const auto id = m.value("client", "");
        return member.starts_with(':') ? id.ends_with(member) : id == member;
    };
    const auto j = json::parse(status_get("/identities").body, nullptr, false);
    if (!j.is_object()) {
        return "the identity map could not be read";
    }
    for (const auto& p : j.value("parties", json::array())) {
        const auto& members = p.value("members", json::array());
        const auto self = std::find_if(members.begin(), members.end(), is_self);
        if (self == members.end()) {
            continue;
        }
        std::string others;
        // How the link was made: the client's own join, or (the party's first client) the join
        // of the one that came after it.
        auto how = self->value("how", json()).is_string() ? self->value("how", "") : "";
        for (const auto& m : members) {
            if (is_self(m)) {
                continue;
            }
            others += (others.empty() ? "" : ", ") + m.value("client", "");
            if (how.empty() && m.value("how", json()).is_string()) {
                how = m.value("how", "");
            }
        }
        const auto code = self->value("client_code", json());
        return fmt::format("joined the identity map: one client with {} ({})",
                           others,
                           how == "email"         ? "its billing email matches"
                           : how == "domain_name" ? "its email domain and name match"
                           : how == "client_code" && code.is_string()
                               ? "by client_code: both carry " + code.get<std::string>()
                               : how);
    }
    for (const auto& e : j.value("exceptions", json::array())) {
        if (is_self(e)) {
            return fmt::format("became an identity exception [{}]: {}",
                               e.value("kind", ""),
                               e.value("reason", ""));
        }
    }
    return std::nullopt;  // not processed yet, or standing alone (no party, no exception)
}

std::string identity_outcome(const std::string& member) {
    // A relay or a sync is processed beside the simulated day's timers: give the pipeline a
    // moment (a client standing alone appears in neither list, so it costs the whole wait).
    for (int i = 0; i < 100; ++i) {
        if (auto o = identity_outcome_now(member)) {
            return *o;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return "matched no existing client: it stands alone";
}

// The firm's time, kept in Harvest: three staff, each recording their day on a client's
// project, and a few practice jobs in Karbon whose completion drafts a time entry
// ([draft_time]). The clients are the QuickBooks firm's: each Karbon organization carries the
// customer's billing email (linked by the identity map); Harvest clients have no email, so the
// coordinator links each one to its Karbon organization.
struct harvest_staff {
    std::string first;
    std::string last;
    std::string email;
    std::string karbon_key;    // the Karbon user (a work item's assignee)
    std::int64_t id = 0;       // the Harvest user
    std::int64_t project = 0;  // where their day's time goes
    std::int64_t task = 0;
    std::string name() const { return first + " " + last; }
};

struct practice_job {
    std::string work_type;
    std::string period;       // in the title
    std::size_t staff = 0;    // who does it
    int day = 0;              // the run's day it completes
    unsigned deliveries = 1;  // Karbon's webhooks for the completion (2: delivered twice)
    std::size_t client = 0;   // the firm's client
    std::string org_key;      // its Karbon organization
    std::int64_t harvest_client = 0;
    std::string work_item_key;
    std::string title;
};

struct harvest_firm {
    std::vector<harvest_staff> staff;
    std::vector<practice_job> jobs;
    std::size_t idle_staff = 0;  // records nothing on idle_day
    int idle_day = 0;
    int edit_day = 0;  // staff adjust the first job's draft
};

harvest_firm seed_time(simulators::harvest_simulator& harvest,
                       simulators::karbon_simulator& karbon,
                       const firm& f,
                       const std::set<std::size_t>& busy_clients) {
    harvest_firm h;
    h.staff = {{"Dana", "Whitfield", "dana.whitfield@smithlee.example", "STAFF-DANA", 0, 0, 0},
               {"Mei", "Chen", "mei.chen@smithlee.example", "STAFF-MEI", 0, 0, 0},
               {"Raj", "Patel", "raj.patel@smithlee.example", "STAFF-RAJ", 0, 0, 0}};
    // Completed on Tuesday and Wednesday of the first week (both drafts are due for review on
    // Friday; Dana adjusts hers on Thursday), and on Monday of the second week, its webhook
    // delivered twice (one draft all the same).
    const auto job =
        [](std::string type, std::string period, std::size_t who, int day, unsigned hooks) {
            practice_job j;
            j.work_type = std::move(type);
            j.period = std::move(period);
            j.staff = who;
            j.day = day;
            j.deliveries = hooks;
            return j;
        };
    h.jobs = {job("Monthly Bookkeeping", "December 2025 bookkeeping", 0, 2, 1),
              job("Monthly Bookkeeping", "December 2025 bookkeeping", 1, 3, 1),
              job("Payroll", "Payroll 2026-01-09", 2, 8, 2)};
    h.idle_staff = 2;
    h.idle_day = 3;
    h.edit_day = 4;
    for (auto& s : h.staff) {
        s.id = harvest.add_user(s.first, s.last, s.email);
    }
    // The previous working day (Friday 2026-01-02) is on record: Monday's missing-time check covers
    // it.
    const auto bookkeeping = harvest.add_task("Bookkeeping");
    const auto payroll = harvest.add_task("Payroll Processing");
    std::size_t next = 1;
    for (auto& j : h.jobs) {
        // Clients the follow-up and invoicing script does not use.
        while (busy_clients.contains(next)) {
            ++next;
        }
        j.client = next++;
        const auto& c = f.clients()[j.client];
        j.harvest_client = harvest.add_client(c.name);
        const bool is_payroll = j.work_type == "Payroll";
        const auto project = harvest.add_project(j.harvest_client, j.work_type);
        const auto task = is_payroll ? payroll : bookkeeping;
        harvest.assign_task(project, task);
        auto& s = h.staff[j.staff];
        s.project = project;
        s.task = task;
        harvest.add_time_entry(s.id, project, task, "2026-01-02", "6.5", "Client work");
        j.org_key = karbon.add_organization({{"FullName", c.name}, {"EmailAddress", c.email}})
                        .value("OrganizationKey", "");
        j.title = j.period + " - " + c.name;
        j.work_item_key = karbon
                              .add_work_item({{"Title", j.title},
                                              {"ClientKey", j.org_key},
                                              {"ClientType", "Organization"},
                                              {"WorkType", j.work_type},
                                              {"PrimaryStatus", "In Progress"},
                                              {"StartDate", "2026-01-05T00:00:00Z"},
                                              {"DueDate", "2026-01-16T00:00:00Z"},
                                              {"AssigneeKey", s.karbon_key},
                                              {"AssigneeName", s.name()},
                                              {"AssigneeEmailAddress", s.email}})
                              .value("WorkItemKey", "");
    }
    return h;
}

// The Harvest entry billsync drafted for a job (its notes name the work item's title); 0: none.
std::int64_t drafted_entry(const simulators::harvest_simulator& harvest, const practice_job& j) {
    for (const auto& e : harvest.time_entries()) {
        const auto notes =
            e.value("notes", json()).is_string() ? e["notes"].get<std::string>() : "";
        if (notes.starts_with(j.title + " (") &&
            notes.find("drafted by billsync") != std::string::npos) {
            return e.value("id", std::int64_t{0});
        }
    }
    return 0;
}

}  // namespace

int run_sandbox(const sandbox_options& options, std::ostream& err) {
    const fs::path dir = fs::absolute(options.dir);
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) {
        err << fmt::format("billsync sandbox: cannot create {}: {}\n", dir.string(), ec.message());
        return 73;
    }
    // The simulators live in memory: every run starts from a new firm and empty state.
    fs::remove_all(dir / "data", ec);
    fs::remove(dir / "ports.json", ec);  // written anew once the listeners are bound
    fs::create_directories(dir / "data", ec);
    ::chmod((dir / "data").c_str(), 0700);  // tokens are stored unsealed here

    util::instant start{};
    util::parse_rfc3339("2026-01-05T08:00:00Z", start);  // as packaging/sandbox.toml says
    sandbox_clock clock(start);
    auto now_fn = [&clock] { return clock.now(); };

    simulators::qbo_sim_options qo;
    qo.realms = {realm};
    qo.verifier_token = verifier;
    qo.now = now_fn;
    simulators::qbo_simulator qbo(qo);
    simulators::sendgrid_simulator mail;
    simulators::twilio_options to;
    to.numbers = {firm_number};
    to.now = now_fn;
    simulators::twilio_simulator sms(to);
    simulators::sim_server qbo_server;
    simulators::sim_server mail_server;
    simulators::sim_server sms_server;
    // Karbon: the firm's practice management (work items moving through its stages).
    simulators::karbon_options ko;
    ko.now = now_fn;
    // A simulated day passes in a second or less: the vendors' rate-limit windows, counted in real
    // time, would stall it (billsync's own budgets count simulated time). Its waits after a 429
    // pass at once on the simulated clock, so a refused call comes back within milliseconds and
    // every try counts in the window: a 100 ms window (scale 600) empties between bursts, a 1 s
    // one could stay full for as long as the retries kept coming.
    ko.scale = 600;
    simulators::karbon_simulator karbon(ko);
    simulators::sim_server karbon_server;
    karbon.add_routes(karbon_server.routes());
    karbon.configure(karbon_server);
    simulators::smtp_sink smtp;
    // Xero: the firm's other company (its own clients and invoices, a second ledger).
    simulators::xero_sim_options xo;
    xo.tenants = {xero_tenant};
    xo.webhook_key = xero_webhook_key;
    xo.now = now_fn;
    xo.oauth.tenants = {{xero_tenant, "Smith & Lee Advisory Ltd"}};
    simulators::xero_simulator xero(xo);
    simulators::sim_server xero_server;
    xero.add_routes(xero_server.routes());
    xero.configure(xero_server);
    // Harvest: the firm's time (staff record their days; billsync drafts entries for finished
    // work).
    simulators::harvest_options ho;
    ho.now = now_fn;
    ho.scale = 600;  // as Karbon's
    simulators::harvest_simulator harvest(ho);
    simulators::sim_server harvest_server;
    harvest.add_routes(harvest_server.routes());
    harvest.configure(harvest_server);
    qbo.add_routes(qbo_server.routes());
    qbo.configure(qbo_server);
    mail.add_routes(mail_server.routes());
    sms.add_routes(sms_server.routes());
    sms.configure(sms_server);
    for (auto* s :
         {&qbo_server, &mail_server, &sms_server, &karbon_server, &xero_server, &harvest_server}) {
        if (auto e = s->start(); !e.empty()) {
            err << "billsync sandbox: a simulator did not start: " << e << "\n";
            return 70;
        }
    }
    if (auto e = smtp.start(); !e.empty()) {
        err << "billsync sandbox: the SMTP sink did not start: " << e << "\n";
        return 70;
    }

    firm f(qbo, start);
    qbo.take_deliveries();  // history: billsync reads it in its first sync
    if (auto e = simulators::seed_qbo_grant(dir / "data", qbo, realm, start); !e.empty()) {
        err << "billsync sandbox: cannot store the simulated QBO grant: " << e << "\n";
        return 73;
    }
    auto xero_clients = seed_xero_entity(xero);
    xero.take_deliveries();  // history: the first poll (a backfill) reads it
    const std::string xero_scope(connectors::xero::oauth2_rules().scope);
    if (auto e = simulators::seed_xero_grant(dir / "data", xero, xero_tenant, xero_scope, start);
        !e.empty()) {
        err << "billsync sandbox: cannot store the simulated Xero grant: " << e << "\n";
        return 73;
    }

    // The practice side: the client of a partly paid invoice has a 1040 return in Karbon, billed
    // under a fixed-fee engagement (50 % at "Return Filed").
    const auto partial = f.pick(2, false, start);
    const auto acme = karbon.add_organization({{"FullName", f.client_of(partial).name}});
    const auto return_1040 =
        karbon.add_work_item({{"Title", "2025 Form 1040 - " + f.client_of(partial).name},
                              {"ClientKey", acme["OrganizationKey"]},
                              {"ClientType", "Organization"},
                              {"WorkType", "Tax Return"},
                              {"PrimaryStatus", "In Progress"},
                              {"StartDate", "2026-01-05T00:00:00Z"},
                              {"DueDate", "2026-04-15T00:00:00Z"}});
    const std::string return_key = return_1040["WorkItemKey"];
    const std::string org_key = acme["OrganizationKey"];
    // The practice's other work, and its time in Harvest, for clients the script below leaves
    // alone.
    const auto disputer = f.pick(partial + 1, true, start);
    const auto payer = f.pick(disputer + 1, false, start);
    const auto stopper = f.pick(payer + 1, true, start);
    auto timesheets = seed_time(harvest,
                                karbon,
                                f,
                                {f.invoices()[partial].client,
                                 f.invoices()[disputer].client,
                                 f.invoices()[payer].client,
                                 f.invoices()[stopper].client});
    // The Xero entity's Kauri Cafe is, in Karbon, its owner's hospitality group: another name,
    // another email. Only the firm's client code ties them (Xero ContactNumber, Karbon
    // UserDefinedIdentifier): the identity map links them by it.
    const auto& kauri = xero_clients[0];
    const auto kauri_org = karbon.add_organization({{"FullName", "Kauri Hospitality Group"},
                                                    {"EmailAddress", "office@kaurigroup.example"},
                                                    {"UserDefinedIdentifier", kauri.code}});
    const std::string kauri_org_key = kauri_org.value("OrganizationKey", "");
    // Time billed from Harvest: Dana's bookkeeping client on a retainer, Raj's payroll client on
    // weekly time and materials.
    const auto& retainer_job = timesheets.jobs[0];
    const auto& payroll_job = timesheets.jobs[2];
    {
        std::ofstream book(dir / "engagements.toml", std::ios::trunc);
        book << fmt::format(R"(# The sandbox firm's engagement book (docs/invoicing.md).

[engagement."{0}-1040-2025"]
client = "karbon:{1}"
work_type = "Tax Return"
model = "fixed_fee"
fee = "2400.00"
partner = "partner@smithlee.example"
terms_days = 30
po_required = true

[engagement."{0}-1040-2025".milestones]
"Return Filed" = "50%"
"Delivered" = "remainder"

# {2}: a monthly retainer. January's approved Harvest time runs past the included hours, so
# the February draft carries an overage line above the tolerance and waits for the partner.
[engagement."books-retainer"]
client = "karbon:{3}"
work_type = "Monthly Bookkeeping"
model = "retainer"
retainer = "1500.00"
included_hours = "120"
overage_rate = "95.00"
tolerance = "300.00"
partner = "partner@smithlee.example"

# {4}: payroll billed weekly from approved Harvest time.
[engagement."payroll-weekly"]
client = "karbon:{5}"
work_type = "Payroll"
model = "time_and_materials"
schedule = "weekly"
partner = "partner@smithlee.example"

[engagement."payroll-weekly".rates]
default = "60.00"
service = {{ "Payroll Processing" = "55.00" }}
)",
                            "acme",
                            org_key,
                            f.clients()[retainer_job.client].name,
                            retainer_job.org_key,
                            f.clients()[payroll_job.client].name,
                            payroll_job.org_key);
        if (!book) {
            err << "billsync sandbox: cannot write the engagement book\n";
            return 73;
        }
    }

    const auto config_path = dir / "billsync.toml";
    {
        std::ofstream out(config_path, std::ios::trunc);
        out << sandbox_config_text()
            << connectors_toml(qbo_server.base_url(),
                               mail_server.base_url(),
                               mail.public_key_base64(),
                               sms_server.base_url(),
                               smtp.port(),
                               ko,
                               karbon_server.base_url(),
                               webhook_port)
            << xero_connector_toml(xero_server.base_url())
            << harvest_toml(harvest_server.base_url(), ho, true) << taxdome_connector_toml();
        if (!out) {
            err << fmt::format("billsync sandbox: cannot write {}\n", config_path.string());
            return 73;
        }
    }
    err << fmt::format(
        "billsync sandbox: {} clients, {} invoices in a simulated QuickBooks company, {} in a "
        "simulated Xero organisation, {} staff in a simulated Harvest account; config {}\n"
        "billsync sandbox: dashboard http://127.0.0.1:{}/  status /status  followups /followups"
        "  tasks /tasks  metrics /metrics\n",
        f.clients().size(),
        f.invoices().size(),
        xero_clients.size(),
        timesheets.staff.size(),
        config_path.string(),
        status_port);

    std::atomic<int> rc{-1};
    std::thread daemon_thread([&] {
        daemon::app a({config_path, dir / "ports.json"});
        rc = a.run(err);
    });
    // Wait for the listeners (the daemon writes its ports file once they are bound).
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (rc.load() < 0 && !fs::exists(dir / "ports.json") &&
           std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    if (rc.load() >= 0 || !fs::exists(dir / "ports.json")) {
        daemon_thread.join();
        err << "billsync sandbox: the daemon did not start\n";
        return rc.load() > 0 ? rc.load() : 70;
    }

    // Operators' changes carry the status token the daemon wrote into its data dir.
    std::string token_error;
    const auto token = daemon::read_status_token(dir / "data", token_error);
    if (token.empty()) {
        err << "billsync sandbox: " << token_error << "\n";
    }
    const std::string hook = fmt::format("http://127.0.0.1:{}/webhooks/", webhook_port);
    sms.set_callback_base(fmt::format("http://127.0.0.1:{}", webhook_port));
    timeline tl(std::cout, mail, sms);
    tl.time_system(&harvest);
    {
        std::set<std::string> addresses;
        std::vector<std::string> numbers;
        for (const auto& c : xero_clients) {
            addresses.insert(c.email);
            if (!c.mobile.empty()) {
                addresses.insert(c.mobile);
            }
            numbers.push_back(c.number);
        }
        tl.xero_clients(std::move(addresses), std::move(numbers));
    }
    std::cout << "Timeline (one simulated day per " << options.seconds_per_day
              << " s; firm time America/New_York)\n";

    // Scripted client behaviour, by day of the run.
    // The partner approves every draft waiting for approval (of one engagement, or all).
    const auto partner_approves = [&](const std::string& engagement,
                                      const std::string& what,
                                      std::vector<std::string>& lines) {
        for (const auto& draft : invoicing_drafts()) {
            if (draft.value("state", "") != "pending_approval" ||
                (!engagement.empty() && draft.value("engagement", "") != engagement)) {
                continue;
            }
            const auto id = draft.value("id", "");
            const auto r = status_post(token,
                                       "/approvals/" + id + "/approve",
                                       json{{"by", "partner@smithlee.example"}}.dump());
            lines.push_back(fmt::format(
                "partner approved {} {} ({})", what, id, r.status == 200 ? "done" : r.body));
        }
    };
    for (int d = 1; d <= options.days && rc.load() < 0; ++d) {
        std::vector<std::string> events;
        std::vector<std::string> practice;
        std::vector<std::string> operators;
        std::vector<std::string> ledger2;                     // the Xero entity
        std::vector<std::string> hours;                       // Harvest: what staff do there
        std::vector<std::string> portal;                      // TaxDome, through Zapier
        const auto today = start + std::chrono::days(d - 1);  // 03:00 in New York
        if (d == 2) {
            // Harvest clients carry no email: the coordinator confirms each name match.
            for (const auto& j : timesheets.jobs) {
                const auto linked =
                    status_post(token,
                                "/identities/link",
                                json{{"a", "harvest:" + std::to_string(j.harvest_client)},
                                     {"b", "karbon:" + j.org_key}}
                                    .dump());
                operators.push_back(
                    fmt::format("coordinator linked Harvest client {} to Karbon {} ({})",
                                f.clients()[j.client].name,
                                j.org_key,
                                linked.status == 200 ? "done" : "refused: " + linked.body));
            }
        }
        for (const auto& j : timesheets.jobs) {
            if (j.day != d) {
                continue;
            }
            karbon.update_work_item(j.work_item_key,
                                    {{"PrimaryStatus", "Completed"},
                                     {"CompletedDate", date_text(today) + "T00:00:00Z"}});
            for (unsigned k = 0; k < j.deliveries; ++k) {
                karbon.notify("Work", "Work", j.work_item_key, "Updated");
            }
            practice.push_back(
                fmt::format("\"{}\" completed by {}{}",
                            j.title,
                            timesheets.staff[j.staff].name(),
                            j.deliveries > 1 ? " (Karbon delivered its webhook twice)" : ""));
        }
        if (d == timesheets.edit_day) {
            const auto& j = timesheets.jobs.front();
            if (const auto id = drafted_entry(harvest, j); id != 0) {
                harvest.edit_time_entry(
                    id, {{"hours", 3.0}, {"rounded_hours", 3.0}, {"hours_without_timer", 3.0}});
                hours.push_back(fmt::format("{} changed billsync's draft for \"{}\" to 3 hours",
                                            timesheets.staff[j.staff].name(),
                                            j.title));
            }
        }
        // The partner approves each weekly payroll invoice the day after it is drafted.
        partner_approves("payroll-weekly", "payroll draft", operators);
        // Staff record their working day's time (billsync's drafts come on top).
        if (const std::chrono::weekday wd{std::chrono::floor<std::chrono::days>(today)};
            wd != std::chrono::Saturday && wd != std::chrono::Sunday) {
            for (std::size_t i = 0; i < timesheets.staff.size(); ++i) {
                const auto& s = timesheets.staff[i];
                if (d == timesheets.idle_day && i == timesheets.idle_staff) {
                    hours.push_back(
                        fmt::format("{} recorded no time for {}", s.name(), date_text(today)));
                    continue;
                }
                harvest.add_time_entry(
                    s.id, s.project, s.task, date_text(today), "6.5", "Client work");
            }
        }
        if (d == 1) {
            // Xero checks the webhook URL before it sends events (Intent to Receive).
            const auto answers = xero.intent_to_receive(hook + "xero", 1);
            ledger2.push_back(fmt::format(
                "Intent to Receive: billsync answered {} to a signed delivery and {} to a wrongly "
                "signed one",
                answers.empty() ? 0 : answers.front().status,
                answers.size() < 2 ? 0 : answers.back().status));
        }
        if (d == 3) {
            // Kauri Cafe pays the day its invoice is due, before touch 1; Xero sends no payment
            // event, billsync finds it by polling.
            const auto& c = xero_clients[0];
            xero_pay(xero, c, c.due);
            events.push_back(fmt::format("{} paid Xero invoice {} ({}) before touch 1 was due",
                                         c.name,
                                         c.number,
                                         amount_text(c.cents)));
        }
        if (d == 9) {
            const auto& c = xero_clients[2];
            xero_pay(xero, c, c.due);
            events.push_back(fmt::format("{} was charged by auto-pay for Xero invoice {} ({})",
                                         c.name,
                                         c.number,
                                         amount_text(c.cents)));
        }
        if (d == 3) {
            f.pay(partial, f.invoices()[partial].cents / 2);
            events.push_back(
                fmt::format("{} paid half of their invoice", f.client_of(partial).name));
        }
        if (d == 5) {
            const auto& c = f.client_of(disputer);
            sms.send_inbound(hook + "twilio/sms",
                             c.mobile,
                             firm_number,
                             "I dispute this invoice, the hours look wrong");
            events.push_back(fmt::format("{} replied by SMS: \"I dispute this invoice\"", c.name));
        }
        if (d == 2) {
            karbon.update_work_item(return_key, {{"SecondaryStatus", "Return Filed"}});
            karbon.notify("Work", "Work", return_key, "Updated");
            practice.push_back(fmt::format("\"{}\" moved to Return Filed",
                                           return_1040["Title"].get<std::string>()));
        }
        if (d == 3) {
            // The billing coordinator links the Karbon organization to its QuickBooks customer
            // and re-checks the blocked draft.
            const auto linked = status_post(
                token,
                "/identities/link",
                json{{"a", "karbon:" + org_key}, {"b", "qbo:" + f.client_of(partial).qbo_id}}
                    .dump());
            operators.push_back(
                fmt::format("coordinator linked Karbon {} to QuickBooks customer {} ({})",
                            org_key,
                            f.client_of(partial).qbo_id,
                            linked.status == 200 ? "done" : "refused"));
            for (const auto& draft : invoicing_drafts()) {
                if (draft.value("state", "") == "blocked") {
                    const auto id = draft.value("id", "");
                    status_post(
                        token,
                        "/exceptions/" + id + "/resolve",
                        json{{"by", "coordinator@smithlee.example"}, {"po", "PO-2025-118"}}.dump());
                    operators.push_back("coordinator: billsync exceptions resolve " + id +
                                        " --po PO-2025-118");
                }
            }
        }
        if (d == 4) {
            partner_approves("", "draft", operators);
        }
        if (d == 9) {
            // Delivered: the remainder is drafted; nobody decides, so it is escalated.
            karbon.update_work_item(return_key, {{"SecondaryStatus", "Delivered"}});
            karbon.notify("Work", "Work", return_key, "Updated");
            practice.push_back(
                fmt::format("\"{}\" moved to Delivered", return_1040["Title"].get<std::string>()));
        }
        if (d == 6) {
            // Ten failed deliveries (billsync unreachable): Karbon cancels the subscription.
            karbon.set_delivery_base("http://127.0.0.1:1");
            for (int i = 0; i < 10; ++i) {
                karbon.notify("Work", "Work", return_key, "Updated");
            }
            karbon.set_delivery_base("");
            practice.push_back(
                "Karbon cancelled the Work webhook subscription after 10 "
                "failed deliveries");
        }
        if (d == 7 && karbon.subscriptions().contains("Work")) {
            practice.push_back("billsync re-created the Work webhook subscription");
        }
        if (d == 8) {
            f.pay(payer, f.invoices()[payer].cents);
            events.push_back(fmt::format("{} paid in full", f.client_of(payer).name));
        }
        if (d == 12) {
            const auto& c = f.client_of(stopper);
            sms.send_inbound(hook + "twilio/sms", c.mobile, firm_number, "STOP");
            events.push_back(fmt::format("{} texted STOP", c.name));
        }
        if (d == 4) {
            // A new TaxDome account for a client the firm already bills in QuickBooks (the same
            // email); Zapier relays it.
            const auto& c = f.client_of(payer);
            const auto r = relay_taxdome_account(std::string(taxdome_account), c.name, c.email);
            portal.push_back(fmt::format("Zapier relayed new account {} \"{}\" <{}> ({})",
                                         taxdome_account,
                                         c.name,
                                         c.email,
                                         r.status != 200 ? "refused: " + std::to_string(r.status)
                                         : r.body.find("dead_lettered") != std::string::npos
                                             ? std::string("dead-lettered")
                                             : std::string("accepted")));
        }
        qbo.deliver(hook + "qbo");
        xero.deliver(hook + "xero");
        // Time passes: every due timer fires in order, then webhooks from the day land.
        const auto run_until = [&](util::instant until) {
            const auto seconds =
                std::chrono::duration_cast<std::chrono::seconds>(until - clock.now()).count();
            clock.set(until);
            status_post(token,
                        "/clock/advance",
                        json{{"seconds", seconds}}.dump(),
                        std::chrono::seconds(120));
            sms.flush_status_callbacks();
            const auto events_json = mail.events_for_messages("delivered");
            mail.deliver_events(hook + "sendgrid/events", events_json);
        };
        // Friday evening (18:00 in New York), after the review list: the manager approves the
        // week's timesheets in Harvest (approved time locks); billsync sees it at its next poll.
        // The day runs up to then, its lines are printed, then the approval and the rest of it.
        const bool friday = std::chrono::weekday{std::chrono::floor<std::chrono::days>(today)} ==
                            std::chrono::Friday;
        const auto target = start + std::chrono::days(d);
        run_until(friday ? today + std::chrono::hours(15) : target);
        // The business day that passed (from 03:00 to 03:00 in New York).
        if (d == 1) {
            // The first sync read both ledgers' clients and Karbon's organizations.
            practice.push_back(fmt::format("organization \"{}\" (client code {}) {}",
                                           kauri_org.value("FullName", ""),
                                           kauri.code,
                                           identity_outcome(":" + kauri_org_key)));
        }
        if (d == 4) {
            portal.push_back(
                fmt::format("account {} {}",
                            taxdome_account,
                            identity_outcome("taxdome:client:" + std::string(taxdome_account))));
        }
        tl.day(today, events, practice, operators, ledger2, hours, portal);
        if (friday) {
            const auto day = date_text(today);
            std::size_t locked = 0;
            for (const auto& e : harvest.time_entries()) {
                if (!e.value("is_locked", false) && e.value("spent_date", "") <= day) {
                    harvest.set_flags(e.value("id", std::int64_t{0}), true, false, false);
                    ++locked;
                }
            }
            run_until(target);
            tl.later({fmt::format(
                "  harvest the manager approved the week's timesheets ({} entries locked)",
                locked)});
        }
        std::this_thread::sleep_for(
            std::chrono::milliseconds(static_cast<std::int64_t>(options.seconds_per_day * 1000)));
    }
    if (rc.load() < 0) {
        // What Harvest holds for each completed work item: one draft each, however often Karbon
        // told billsync.
        std::cout << "\nHarvest entries drafted by billsync, per completed work item:\n";
        for (const auto& j : timesheets.jobs) {
            if (j.day > options.days) {
                continue;
            }
            std::size_t n = 0;
            for (const auto& e : harvest.time_entries()) {
                const auto& ext = e["external_reference"];
                const auto notes = e["notes"].is_string() ? e["notes"].get<std::string>() : "";
                n += ext.is_object() && notes.starts_with(j.title + " (") ? 1 : 0;
            }
            std::cout << fmt::format("  \"{}\": {}\n", j.title, n);
        }
        std::cout << fmt::format(
            "\nThe run is over. Inspect it:\n"
            "  curl 127.0.0.1:{0}/followups   curl 127.0.0.1:{0}/tasks   curl "
            "127.0.0.1:{0}/status\n"
            "  billsync followup list --config {1}\n"
            "  billsync workflow draft_time list --config {1}\n"
            "{2}",
            status_port,
            config_path.string(),
            options.exit_after_run ? "" : "Ctrl-C stops the sandbox.\n");
        std::cout.flush();
        if (options.exit_after_run) {
            std::raise(SIGTERM);
        }
    }
    daemon_thread.join();
    smtp.stop();
    for (auto* s :
         {&qbo_server, &mail_server, &sms_server, &karbon_server, &xero_server, &harvest_server}) {
        s->stop();
    }
    return rc.load();
}

}  // namespace billsync::sandbox
