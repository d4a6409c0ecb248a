#include "daemon/preview.hpp"

#include <date/date.h>
#include <date/tz.h>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <functional>
#include <iomanip>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <ostream>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "daemon/app_config.hpp"
#include "daemon/tools.hpp"
#include "daemon/workflows/builtin.hpp"
#include "mappings/change.hpp"
#include "mappings/model.hpp"
#include "state/keys.hpp"
#include "state/outbox.hpp"
#include "state/sim_time.hpp"
#include "state/store.hpp"
#include "state/tables.hpp"
#include "state/timers.hpp"
#include "util/json_scan.hpp"
#include "util/temp_dir.hpp"
#include "workflows/context.hpp"
#include "workflows/engine.hpp"
#include "workflows/followup/followup_rule.hpp"
#include "workflows/send_window.hpp"
#include "workflows/templates.hpp"
#include "workflows/weekly_report/settings.hpp"

namespace billsync::daemon {

namespace {

using json = nlohmann::json;
namespace fu = workflows::followup;

constexpr std::string_view stored_invoice_note =
    "Runs the follow-up workflow on a copy of the state; nothing is sent. Before a touch the "
    "daemon re-reads the invoice from its ledger; this preview uses the stored invoice.";

// Steps after which a simulation that keeps rescheduling is given up as a bug.
constexpr std::size_t max_steps = 200'000;

// A fresh private directory (mode 0700, unpredictable name) under the system temp dir, removed
// with everything in it on every way out: the checkpoint in it holds tokens and client data.
class scratch_dir {
public:
    scratch_dir() {
        if (auto made = util::make_private_temp_dir("billsync-preview-", ec_)) {
            path_ = std::move(*made);
        }
    }
    ~scratch_dir() {
        if (path_.empty()) {
            return;
        }
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }
    scratch_dir(const scratch_dir&) = delete;
    scratch_dir& operator=(const scratch_dir&) = delete;

    const std::filesystem::path& path() const noexcept { return path_; }
    const std::error_code& error() const noexcept { return ec_; }

private:
    std::filesystem::path path_;
    std::error_code ec_;
};

// One line of the preview: a message or task the workflow would create, or a skipped touch.
struct item {
    util::instant at{};
    std::string channel;  // "email", "sms", "task", "skip", or another action kind
    std::string invoice;
    std::string invoice_number;
    std::string client;
    std::string to;
    std::uint32_t touch = 0;
    std::uint32_t reminder = 0;     // a courtesy reminder before (or on) the due date
    std::uint32_t installment = 0;  // a payment-plan installment's reminder or missed notice
    std::string client_class;
    std::optional<mappings::money> balance;
    std::string text;  // email subject, SMS body, task title, or why a touch was skipped
    std::string action;
    std::string connector;
    std::size_t seq = 0;  // the order it was decided in, among items at the same instant
};

std::string text_of(const json& j, std::string_view key) {
    auto it = j.find(key);
    return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::uint32_t touch_of(const json& j) {
    auto it = j.find("touch");
    return it != j.end() && it->is_number_unsigned() ? it->get<std::uint32_t>() : 0u;
}

std::string one_line(std::string text, std::size_t max) {
    std::replace(text.begin(), text.end(), '\n', ' ');
    std::replace(text.begin(), text.end(), '\r', ' ');
    if (text.size() > max) {
        text.resize(max - 3);
        text += "...";
    }
    return text;
}

// Runs the engine on the copy, one committed step at a time, and records what each step did.
class simulation {
public:
    simulation(state::store& s,
               state::outbox& ob,
               state::timers& t,
               state::audit_log& a,
               const workflows::engine& e)
        : store_(s), outbox_(ob), timers_(t), audit_(a), engine_(e) {}

    // Re-observes every known invoice at `now`, in steps of observe_batch invoices. A closed
    // invoice (paid, void) whose follow-up never started or has finished is left out: observing
    // it again decides nothing, and at a large firm such invoices are most of the history.
    state::status observe_all(util::instant now) {
        std::vector<std::pair<std::string, std::string>> invoices;
        auto st =
            state::for_each_entity(store_, "invoice", [&](std::string_view id, std::string_view v) {
                if (!settled(id, v)) {
                    invoices.emplace_back(std::string(id), std::string(v));
                }
                return true;
            });
        if (!st.ok) {
            return st;
        }
        for (std::size_t i = 0; i < invoices.size(); i += observe_batch) {
            const auto end = std::min(invoices.size(), i + observe_batch);
            auto decide = [&](workflows::context& ctx) {
                for (auto k = i; k < end; ++k) {
                    if (auto s =
                            engine_.on_change(observed(invoices[k].first, invoices[k].second), ctx);
                        !s.ok) {
                        return s;
                    }
                }
                return state::status::success();
            };
            if (st = step(now, decide); !st.ok) {
                return st;
            }
        }
        return state::status::success();
    }

    // Fires every timer due before `end`, in order, each in its own step at max(due, now).
    state::status run_until(util::instant start, util::instant end) {
        auto now = start;
        for (;;) {
            auto next = timers_.next_due();
            if (!next.ok()) {
                return next.st;
            }
            if (!next.value || *next.value >= end) {
                return state::status::success();
            }
            now = std::max(now, *next.value);
            auto due = timers_.due(now, 256);
            if (!due.ok()) {
                return due.st;
            }
            for (const auto& t : due.value) {
                auto fire = [&](workflows::context& ctx) {
                    if (auto st = timers_.fire(ctx.b, t); !st.ok) {
                        return st;
                    }
                    return engine_.on_timer(t, ctx);
                };
                if (auto st = step(now, fire); !st.ok) {
                    return st;
                }
            }
            if (steps_ > max_steps) {
                return state::status::failure(
                    fmt::format("the simulation did not settle after {} steps", steps_));
            }
        }
    }

    // In the order they would happen: a message decided outside its sending window goes out when
    // the window opens.
    std::vector<item> items() const {
        auto out = items_;
        std::sort(out.begin(), out.end(), [](const item& a, const item& b) {
            return std::tie(a.at, a.seq) < std::tie(b.at, b.seq);
        });
        return out;
    }
    json take_decisions() noexcept { return std::move(decisions_); }

private:
    static constexpr std::size_t observe_batch = 64;

    // An "updated" change of a stored invoice, as the connector that keeps it would send it.
    static mappings::change observed(const std::string& id, std::string_view row) {
        mappings::change c;
        c.entity_type = "invoice";
        c.entity_id = id;
        c.what = mappings::change::op::updated;
        util::json_scan::members(row, [&c](std::string_view key, std::string_view v) {
            if (key == "source") {
                util::json_scan::members(v, [&c](std::string_view k, std::string_view x) {
                    if (k == "system") {
                        const auto j = json::parse(x, nullptr, false);
                        c.source = j.is_string() ? j.get<std::string>() : std::string();
                    }
                });
            }
        });
        c.fields_json = "{\"entity\":" + std::string(row) + "}";
        return c;
    }

    // A closed invoice (not open, or deleted) with no follow-up, or a finished one.
    bool settled(std::string_view id, std::string_view row) const {
        bool open = false, deleted = false;
        util::json_scan::members(row, [&](std::string_view key, std::string_view v) {
            if (key == "status") {
                open = v == "\"open\"" || v == "\"draft\"";
            } else if (key == "deleted") {
                deleted = v == "true";
            }
        });
        if (open && !deleted) {
            return false;
        }
        auto f = state::get_entity(store_, "followup", id);
        if (!f.ok()) {
            return false;
        }
        fu::sequence_state s;
        return !f.value || (fu::decode(*f.value, s) &&
                            (s.current == fu::phase::completed ||
                             s.current == fu::phase::cancelled || s.current == fu::phase::stopped));
    }

    // The audit lines written at exactly `at` with a seq in [first, last), in seq order: what
    // one step wrote at its instant. Read by key range, so a step costs what it wrote, not what
    // earlier steps at the same instant wrote (the re-observation steps all share one instant).
    std::vector<std::string> audit_written(util::instant at,
                                           std::uint64_t first,
                                           std::uint64_t last) const {
        std::vector<std::string> out;
        if (first >= last) {
            return out;
        }
        std::string from;
        state::keys::append_instant(from, at);
        std::string to = from;
        state::keys::append_be64(from, first);
        state::keys::append_be64(to, last);
        store_.for_each_range(
            state::cf::audit, from, to, [&](std::string_view key, std::string_view value) {
                if (key.size() == 16) {
                    out.emplace_back(value);
                }
                return true;
            });
        return out;
    }

    state::status step(util::instant now,
                       const std::function<state::status(workflows::context&)>& decide) {
        ++steps_;
        const auto first = audit_.next_seq();
        state::batch b(store_);
        workflows::context ctx{b, outbox_, timers_, audit_, now};
        ctx.store = &store_;
        if (auto st = decide(ctx); !st.ok) {
            return st;
        }
        if (auto st = store_.write(b, false); !st.ok) {
            return st;
        }
        for (const auto& [id, connector] : ctx.enqueued) {
            record_action(now, id);
        }
        for (const auto& line : audit_written(now, first, audit_.next_seq())) {
            record_audit(now, line);
        }
        return state::status::success();
    }

    // The invoice's number, client and balance (read once per invoice: the simulation writes
    // rules' rows, never an invoice or a client) and the sequence's client class, as stored now.
    void describe(item& it) {
        auto [known, added] = invoices_.try_emplace(it.invoice);
        if (added) {
            known->second = read_invoice_facts(it.invoice);
        }
        const auto& found = known->second;
        if (found) {
            it.invoice_number = found->number;
            it.balance = found->balance;
            if (it.client.empty()) {
                it.client = found->client;
            }
        } else {
            return;
        }
        fu::sequence_state s;
        if (auto f = state::get_entity(store_, "followup", it.invoice);
            f.ok() && f.value && fu::decode(*f.value, s)) {
            it.client_class = std::string(fu::to_string(s.client_class));
        }
    }

    struct invoice_facts {
        std::string number;
        mappings::money balance;
        std::string client;
    };

    std::optional<invoice_facts> read_invoice_facts(const std::string& invoice) const {
        auto row = state::get_entity(store_, "invoice", invoice);
        if (!row.ok() || !row.value) {
            return std::nullopt;
        }
        std::string error;
        auto inv = mappings::invoice_from_json(json::parse(*row.value, nullptr, false), error);
        if (!inv) {
            return std::nullopt;
        }
        invoice_facts f{inv->number, inv->balance, {}};
        if (auto c = state::get_entity(store_, "client", inv->client_id); c.ok() && c.value) {
            auto cl = mappings::client_from_json(json::parse(*c.value, nullptr, false), error);
            if (cl) {
                f.client = cl->display_name;
            }
        }
        return f;
    }

    void record_action(util::instant now, const std::string& id) {
        auto a = outbox_.get(id);
        if (!a.ok() || !a.value) {
            return;
        }
        const auto p = json::parse(a.value->payload, nullptr, false);
        item it;
        it.at = now;
        it.action = id;
        it.connector = a.value->connector;
        it.channel = a.value->kind == "email.send" ? "email"
                     : a.value->kind == "sms.send" ? "sms"
                                                   : a.value->kind;
        if (p.is_object()) {
            it.invoice = text_of(p, "invoice");
            it.to = text_of(p, "to");
            it.client = text_of(p, "to_name");
            it.touch = touch_of(p);
            if (const auto r = p.find("reminder"); r != p.end() && r->is_number_unsigned()) {
                it.reminder = r->get<std::uint32_t>();
            }
            if (const auto i = p.find("installment"); i != p.end() && i->is_number_unsigned()) {
                it.installment = i->get<std::uint32_t>();
            }
            it.text = it.channel == "sms" ? text_of(p, "body") : text_of(p, "subject");
            if (it.text.empty()) {
                it.text = text_of(p, "memo");  // invoice.create: a late fee, an invoice draft
            }
        }
        if (id.ends_with("/coordinator")) {
            it.client = "Billing coordinator";
        }
        // The outbox holds a client-facing message decided outside its window until it opens.
        if (const auto g = workflows::gate(*a.value, now);
            g.k == workflows::send_gate::kind::later) {
            it.at = g.at;
        }
        if (!it.invoice.empty()) {
            describe(it);
        }
        it.seq = items_.size();
        items_.push_back(std::move(it));
    }

    // [late_fees]: an assessed fee (with its arithmetic and whether it waits for approval) and a
    // skipped period, on the invoice's line; the fee invoice itself is an invoice.create action.
    void record_late_fee(util::instant now, json j) {
        const auto decision = text_of(j, "decision");
        if (decision != "fee_assessed" && decision != "fee_skipped") {
            return;
        }
        item it;
        it.at = now;
        it.invoice = text_of(j, "invoice");
        it.channel = decision == "fee_skipped" ? "skip" : "late_fee";
        const auto period = j.value("period", 0);
        it.text =
            decision == "fee_skipped"
                ? fmt::format("late fee for period {} not charged: {}", period, text_of(j, "why"))
                : fmt::format("late fee for period {}: {}{}",
                              period,
                              text_of(j, "arithmetic"),
                              text_of(j, "approval") == "coordinator"
                                  ? " (waits for a coordinator's approval)"
                                  : "");
        describe(it);
        it.seq = items_.size();
        items_.push_back(std::move(it));
        if (!j.contains("at")) {
            j["at"] = util::format_rfc3339(now);
        }
        decisions_.push_back(std::move(j));
    }

    void record_audit(util::instant now, const std::string& line) {
        auto j = json::parse(line, nullptr, false);
        if (j.is_object() && text_of(j, "rule") == "late_fees") {
            record_late_fee(now, j);
            return;
        }
        if (!j.is_object() || text_of(j, "rule") != "followup") {
            return;
        }
        const auto decision = text_of(j, "decision");
        // A touch that went out by some channels only names the others in its cause.
        const auto cause = text_of(j, "cause");
        constexpr std::string_view partial = "; not sent: ";
        if (const auto at = cause.find(partial); decision == "touch" && at != std::string::npos) {
            item it;
            it.at = now;
            it.channel = "skip";
            it.invoice = text_of(j, "invoice");
            it.touch = touch_of(j);
            it.text =
                fmt::format("touch {} not sent by {}", it.touch, cause.substr(at + partial.size()));
            describe(it);
            it.seq = items_.size();
            items_.push_back(std::move(it));
        }
        if (decision == "task_created" || decision == "skip") {
            item it;
            it.at = now;
            it.channel = decision == "skip" ? "skip" : "task";
            it.invoice = text_of(j, "invoice");
            it.touch = touch_of(j);
            if (decision == "skip") {
                it.text = cause;
            } else {
                it.action = text_of(j, "task");
                it.text = text_of(j, "title");
                it.to = "Billing coordinator";
                auto task = state::get_entity(store_, "task", it.action);
                if (task.ok() && task.value) {
                    it.touch = touch_of(json::parse(*task.value, nullptr, false));
                }
            }
            describe(it);
            if (it.channel == "task") {
                it.client = "Billing coordinator";
            }
            it.seq = items_.size();
            items_.push_back(std::move(it));
        }
        if (!j.contains("at")) {
            j["at"] = util::format_rfc3339(now);
        }
        decisions_.push_back(std::move(j));
    }

    state::store& store_;
    state::outbox& outbox_;
    state::timers& timers_;
    state::audit_log& audit_;
    const workflows::engine& engine_;
    std::vector<item> items_;
    json decisions_ = json::array();
    std::size_t steps_ = 0;
    std::unordered_map<std::string, std::optional<invoice_facts>> invoices_;
};

date::local_days local_day(const date::time_zone& tz, util::instant t) {
    return date::floor<date::days>(tz.to_local(t));
}

std::string hh_mm(const date::time_zone& tz, util::instant t) {
    return date::format("%H:%M", date::floor<std::chrono::minutes>(tz.to_local(t)));
}

std::string to_text(const item& it) {
    if (it.channel == "skip") {
        return fmt::format("    --     skip   invoice {}: {}",
                           it.invoice_number.empty() ? it.invoice : it.invoice_number,
                           it.text);
    }
    std::string who = it.client;
    if (it.channel == "email" && !it.to.empty()) {
        who += who.empty() ? it.to : " <" + it.to + ">";
    } else if (it.channel == "sms" && !it.to.empty()) {
        who += (who.empty() ? "" : " ") + it.to;
    }
    std::string line = fmt::format("{:<6} {:<30}", it.channel, who);
    if (!it.invoice.empty()) {
        line +=
            fmt::format("  invoice {}", it.invoice_number.empty() ? it.invoice : it.invoice_number);
    }
    if (it.reminder > 0) {
        line += fmt::format("  reminder {}", it.reminder);
    }
    if (it.installment > 0) {
        line += fmt::format("  installment {}", it.installment);
    }
    if (it.touch > 0) {
        line += fmt::format("  touch {}", it.touch);
        if (!it.client_class.empty()) {
            line += fmt::format(" ({})", it.client_class);
        }
    }
    if (it.balance) {
        line += "  balance " + workflows::format_money(*it.balance);
    }
    if (!it.text.empty()) {
        line += fmt::format("  \"{}\"", one_line(it.text, 80));
    }
    return line;
}

json to_json(const date::time_zone& tz, const item& it) {
    json j{{"at", util::format_rfc3339(it.at)},
           {"local_time", hh_mm(tz, it.at)},
           {"channel", it.channel},
           {"invoice", it.invoice},
           {"invoice_number", it.invoice_number},
           {"client", it.client},
           {"to", it.to},
           {"touch", it.touch},
           {"reminder", it.reminder},
           {"installment", it.installment},
           {"class", it.client_class},
           {"text", it.text},
           {"action", it.action},
           {"connector", it.connector}};
    j["balance"] = it.balance
                       ? json{{"minor", it.balance->minor}, {"currency", it.balance->currency}}
                       : json(nullptr);
    return j;
}

struct totals {
    std::size_t emails = 0;
    std::size_t sms = 0;
    std::size_t tasks = 0;
    std::size_t skipped = 0;
    std::size_t other = 0;
};

totals count(const std::vector<item>& items) {
    totals t;
    for (const auto& it : items) {
        auto& n = it.channel == "email"  ? t.emails
                  : it.channel == "sms"  ? t.sms
                  : it.channel == "task" ? t.tasks
                  : it.channel == "skip" ? t.skipped
                                         : t.other;
        ++n;
    }
    return t;
}

void print(std::ostream& out,
           const date::time_zone& tz,
           util::instant start,
           util::instant end,
           int days,
           const std::vector<item>& items) {
    const auto first = local_day(tz, start);
    out << fmt::format("Follow-up preview: {} day{} from {} to {} ({})\n",
                       days,
                       days == 1 ? "" : "s",
                       util::format_rfc3339(start),
                       util::format_rfc3339(end),
                       tz.name());
    out << stored_invoice_note << "\n";
    std::map<date::local_days, std::vector<const item*>> by_day;
    for (const auto& it : items) {
        by_day[local_day(tz, it.at)].push_back(&it);
    }
    for (int d = 0; d < days; ++d) {
        const auto day = first + date::days(d);
        out << date::format("%a %F", day) << "\n";
        auto found = by_day.find(day);
        if (found == by_day.end()) {
            out << "    (nothing)\n";
            continue;
        }
        for (const auto* it : found->second) {
            if (it->channel == "skip") {
                out << to_text(*it) << "\n";
            } else {
                out << "    " << hh_mm(tz, it->at) << "  " << to_text(*it) << "\n";
            }
        }
    }
    const auto t = count(items);
    out << fmt::format("{} email{}, {} SMS, {} task{}, {} skipped",
                       t.emails,
                       t.emails == 1 ? "" : "s",
                       t.sms,
                       t.tasks,
                       t.tasks == 1 ? "" : "s",
                       t.skipped);
    if (t.other > 0) {
        out << fmt::format(", {} other action{}", t.other, t.other == 1 ? "" : "s");
    }
    out << "\n";
}

json as_json(const date::time_zone& tz,
             util::instant start,
             util::instant end,
             int days,
             const std::vector<item>& items,
             json decisions) {
    const auto first = local_day(tz, start);
    std::map<date::local_days, std::vector<const item*>> by_day;
    for (const auto& it : items) {
        by_day[local_day(tz, it.at)].push_back(&it);
    }
    json schedule = json::array();
    for (int d = 0; d < days; ++d) {
        const auto day = first + date::days(d);
        json list = json::array();
        if (const auto found = by_day.find(day); found != by_day.end()) {
            for (const auto* it : found->second) {
                list.push_back(to_json(tz, *it));
            }
        }
        schedule.push_back({{"date", date::format("%F", day)},
                            {"weekday", date::format("%a", day)},
                            {"items", std::move(list)}});
    }
    const auto t = count(items);
    return {{"from", util::format_rfc3339(start)},
            {"to", util::format_rfc3339(end)},
            {"days", days},
            {"time_zone", tz.name()},
            {"note", stored_invoice_note},
            {"schedule", std::move(schedule)},
            {"decisions", std::move(decisions)},
            {"summary",
             {{"emails", t.emails},
              {"sms", t.sms},
              {"tasks", t.tasks},
              {"skipped", t.skipped},
              {"other", t.other}}}};
}

}  // namespace

int cmd_preview(const std::string& config_file, int days, std::ostream& out, std::ostream& err) {
    preview_options o;
    o.days = days;
    return cmd_preview(config_file, o, out, err);
}

int cmd_preview(const std::string& config_file,
                const preview_options& options,
                std::ostream& out,
                std::ostream& err) {
    if (options.days < 1 || options.days > 366) {
        err << fmt::format("--days must be between 1 and 366, not {}\n", options.days);
        return exit_usage;
    }
    util::instant start{};
    if (!options.from.empty() && !util::parse_rfc3339(options.from, start)) {
        err << fmt::format("--from: '{}' is not an RFC 3339 instant (2026-01-12T09:00:00Z)\n",
                           options.from);
        return exit_usage;
    }
    auto cfg = load_quietly(config_file, err);
    if (!cfg) {
        return exit_config;
    }
    // The weekly report's snapshots and emails run as in the daemon, but the preview shows only
    // an email's subject and recipient: the report's figures are never computed here.
    if (const auto it = cfg->workflow_settings.find("weekly_report");
        it != cfg->workflow_settings.end()) {
        if (auto* p = std::any_cast<workflows::weekly_report::settings>(&it->second)) {
            p->compute_figures = false;
        }
    }
    // Nothing is contacted: every enabled connector counts as available, as in the daemon.
    // Every enabled rule runs, as in the daemon; the report is the follow-up workflow's.
    auto built = make_rules(*cfg, rule_deps_for(*cfg, enabled_connectors(*cfg), nullptr));
    workflows::engine engine(std::move(built.rules));
    const auto* rule = dynamic_cast<const fu::followup_rule*>(engine.find("followup"));
    if (rule == nullptr) {
        std::string error;
        for (const auto& [name, why] : built.failed) {
            if (name == "followup") {
                error = why;
            }
        }
        err << (error.empty() ? fmt::format("the follow-up workflow is off in {} ([followup] is "
                                            "absent or enabled = false); nothing would be sent\n",
                                            config_file)
                              : fmt::format("the follow-up workflow cannot run: {}\n", error));
        return exit_config;
    }
    const auto& tz = rule->plan().zone();

    // The copy: a checkpoint taken through a read-only instance, so the real data dir is only
    // read (this works next to a running daemon too).
    scratch_dir scratch;
    if (scratch.error()) {
        err << fmt::format("cannot create a private temp dir: {}\n", scratch.error().message());
        return exit_unavailable;
    }
    const auto copy_dir = scratch.path() / "state";
    {
        auto real = open_state_read_only(*cfg, err);
        if (!real) {
            return exit_unavailable;
        }
        if (options.from.empty() && cfg->daemon().clock == config::clock_mode::simulated) {
            // The state's current business time: a running sandbox may be weeks past `start`.
            auto stored = state::get_simulated_time(*real);
            if (!stored.ok()) {
                err << stored.st.message << "\n";
                return exit_unavailable;
            }
            start = stored.value.value_or(cfg->daemon().clock_start);
        } else if (options.from.empty()) {
            start = util::system_clock().now();
        }
        if (auto st = real->checkpoint(copy_dir); !st.ok) {
            err << st.message << "\n";
            return exit_unavailable;
        }
    }
    // The copy lives for this command: no compactions, no write-ahead log, and room to keep a
    // large firm's working set (its open invoices, their clients and sequences) in memory.
    state::open_options rw;
    rw.create_if_missing = false;
    rw.scratch = true;
    rw.block_cache_size = 256u << 20;
    rw.memtable_budget = 128u << 20;
    rw.write_buffer_size = 64u << 20;
    auto copy = state::store::open(copy_dir, rw);
    if (!copy.ok()) {
        err << fmt::format("cannot open the copy of the state: {}\n", copy.st.message);
        return exit_unavailable;
    }
    auto& s = *copy.value;
    auto ob = state::outbox::open(s);
    auto audit = state::audit_log::open(s);
    if (!ob.ok() || !audit.ok()) {
        err << fmt::format("cannot open the copy of the state: {}\n",
                           !ob.ok() ? ob.st.message : audit.st.message);
        return exit_unavailable;
    }
    const auto end =
        tz.to_sys(local_day(tz, start) + date::days(options.days), date::choose::earliest);
    state::timers timers(s);
    simulation sim(s, *ob.value, timers, *audit.value, engine);
    auto st = sim.observe_all(start);
    if (st.ok) {
        st = sim.run_until(start, end);
    }
    if (!st.ok) {
        err << fmt::format("the preview failed: {}\n", st.message);
        return exit_unavailable;
    }
    if (options.json) {
        // Streamed: a large firm's preview is tens of megabytes of JSON.
        out << std::setw(2)
            << as_json(tz, start, end, options.days, sim.items(), sim.take_decisions()) << "\n";
    } else {
        print(out, tz, start, end, options.days, sim.items());
    }
    return exit_ok;
}

}  // namespace billsync::daemon
