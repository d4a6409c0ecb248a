#include "sandbox/chaos_invariants.hpp"

#include <date/tz.h>
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <fstream>

#include "workflows/action_key.hpp"

namespace billsync::sandbox {

namespace {

constexpr std::array<std::string_view, 10> names = {
    "acknowledged_webhooks_reflected",
    "touch_once_per_channel",
    "touch_due_sent_or_skipped",
    "touch_inside_sending_window",
    "no_touch_after_payment_in_full",
    "created_exactly_once",
    "time_drafted_once",
    "no_secret_in_logs",
    "ready_at_end",
    "dead_letters_only_for_permanent_faults",
};

bool is_acknowledgement(const chaos_record& r, const chaos_message& m) {
    for (const auto& marker : r.acknowledgement_markers) {
        if (m.subject.find(marker) != std::string::npos) {
            return true;
        }
    }
    return false;
}

std::string when(util::instant t) { return util::format_rfc3339(t); }

// Whether the identity map has the relayed client in one party with the client it must join.
bool joined(const chaos_record& r, const std::string& client, const std::string& joins) {
    const auto party = r.party_of.find(client);
    return party != r.party_of.end() && party->second.contains(joins);
}

std::optional<chaos_violation> reflected(const chaos_record& r) {
    // The ledger is the truth at the end (faults off, polls run): every invoice with a balance
    // has an open follow-up with that balance, every settled one has none.
    // A sequence that never entered (phase "waiting") only loses its entry timer when the invoice
    // is paid, so a reopened invoice can still enter; one of a payment-plan client ("excluded")
    // stays excluded. Neither sends anything: not an open follow-up.
    std::map<std::string, std::int64_t> open;
    std::set<std::string> entered;
    for (const auto& s : r.active_sequences) {
        open[s.invoice] = s.balance_minor;
        if (s.phase != "waiting" && s.phase != "excluded") {
            entered.insert(s.invoice);
        }
    }
    // Per ledger ("qbo:<realm>", "xero:<tenant>"): an invoice that still owes and no follow-up
    // naming any of the ledger's invoices means the runner and the daemon name invoices apart.
    std::map<std::string, std::pair<bool, bool>> ledgers;  // ledger -> (owes, named)
    for (const auto& inv : r.invoices) {
        auto& [owes, named] = ledgers[inv.id.substr(0, inv.id.find(":invoice:"))];
        owes = owes || inv.balance_minor != 0;
        named = named || open.contains(inv.id);
    }
    for (const auto& [ledger, seen] : ledgers) {
        if (seen.first && !seen.second && !r.active_sequences.empty()) {
            return chaos_violation{
                std::string(names[0]),
                fmt::format("no follow-up the daemon shows names an invoice of ledger {} (the "
                            "runner and the daemon disagree on invoice ids)",
                            ledger)};
        }
    }
    for (const auto& [client, joins] : r.relayed_clients) {
        if (!joined(r, client, joins)) {
            return chaos_violation{
                std::string(names[0]),
                fmt::format(
                    "the relay of client {} was acknowledged, but the identity map {} "
                    "(it has the email of {})",
                    client,
                    r.party_of.contains(client) ? "joined it with others only" : "does not have it",
                    joins)};
        }
    }
    for (const auto& inv : r.invoices) {
        const auto it = open.find(inv.id);
        if (inv.balance_minor == 0 && entered.contains(inv.id)) {
            return chaos_violation{
                std::string(names[0]),
                fmt::format("invoice {} is paid in the ledger but its follow-up is still open "
                            "with balance {}",
                            inv.id,
                            it->second)};
        }
        if (inv.balance_minor != 0 && it != open.end() && it->second != inv.balance_minor) {
            return chaos_violation{
                std::string(names[0]),
                fmt::format("invoice {} has balance {} in the ledger, {} in billsync",
                            inv.id,
                            inv.balance_minor,
                            it->second)};
        }
    }
    return std::nullopt;
}

std::optional<chaos_violation> once_per_channel(const chaos_record& r) {
    std::map<std::pair<std::string, std::string>, int> seen;
    for (const auto& m : r.messages) {
        if (m.delivery_id.empty()) {
            continue;
        }
        if (++seen[{m.channel, m.delivery_id}] == 2) {
            return chaos_violation{std::string(names[1]),
                                   fmt::format("{} {} to {} was sent twice (\"{}\")",
                                               m.channel,
                                               m.delivery_id,
                                               m.to,
                                               m.subject.substr(0, 60))};
        }
    }
    return std::nullopt;
}

std::optional<chaos_violation> in_window(const chaos_record& r) {
    const date::time_zone* zone = nullptr;
    try {
        zone = date::locate_zone(r.time_zone);
    } catch (const std::exception&) {
        return chaos_violation{std::string(names[3]), "unknown time zone " + r.time_zone};
    }
    for (const auto& m : r.attempts) {
        if (!r.clients.contains(m.to) || is_acknowledgement(r, m)) {
            // The firm's own people (approvals, tasks) get no touches; an acknowledgement of a
            // payment answers the client at once, like a receipt.
            continue;
        }
        const auto local =
            date::make_zoned(zone, std::chrono::floor<std::chrono::seconds>(m.at)).get_local_time();
        const auto day = std::chrono::floor<date::days>(local);
        const auto minute = std::chrono::duration_cast<std::chrono::minutes>(local - day).count();
        const date::weekday wd{day};
        if (!r.window_days.contains(wd.c_encoding()) || minute < r.window_start_minute ||
            minute >= r.window_end_minute) {
            return chaos_violation{
                std::string(names[3]),
                fmt::format("{} to {} at {} ({} local) is outside the sending window: \"{}\"",
                            m.channel,
                            m.to,
                            when(m.at),
                            date::format("%a %F %R", local),
                            m.subject.substr(0, 60))};
        }
    }
    return std::nullopt;
}

std::optional<chaos_violation> after_payment(const chaos_record& r) {
    for (const auto& m : r.attempts) {
        const auto it = r.paid_in_full.find(m.to);
        if (it == r.paid_in_full.end() || is_acknowledgement(r, m)) {
            continue;
        }
        if (const auto again = r.owes_again.find(m.to);
            again != r.owes_again.end() && again->second > it->second && m.at >= again->second) {
            continue;  // invoiced again after paying: this touch may be the new invoice's
        }
        if (m.at > it->second + payment_grace) {
            return chaos_violation{std::string(names[4]),
                                   fmt::format("{} to {} at {}, paid in full at {}: \"{}\"",
                                               m.channel,
                                               m.to,
                                               when(m.at),
                                               when(it->second),
                                               m.subject.substr(0, 60))};
        }
    }
    return std::nullopt;
}

// A late fee is a charge to the client: none on an invoice paid in full before its period was
// assessed (the payment's webhook may be lost, but the rule re-reads the invoice first).
std::optional<chaos_violation> fee_after_payment(const chaos_record& r) {
    std::map<std::string, util::instant> paid;
    for (const auto& inv : r.invoices) {
        if (inv.paid_in_full_at) {
            paid[inv.id] = *inv.paid_in_full_at;
        }
    }
    for (const auto& f : r.fees) {
        const auto it = paid.find(f.invoice);
        if (it != paid.end() && f.assessed_at > it->second + payment_grace) {
            return chaos_violation{
                std::string(names[4]),
                fmt::format("late fee ({}) on invoice {} assessed at {}, paid in full at {}",
                            f.state,
                            f.invoice,
                            when(f.assessed_at),
                            when(it->second))};
        }
    }
    return std::nullopt;
}

std::optional<chaos_violation> created_once(const chaos_record& r) {
    for (const auto& [key, n] : r.created_objects) {
        if (n > 1) {
            return chaos_violation{std::string(names[5]),
                                   fmt::format("{} exists {} times at its vendor", key, n)};
        }
    }
    for (const auto& key : r.created_expected) {
        if (!r.created_objects.contains(key)) {
            return chaos_violation{
                std::string(names[5]),
                fmt::format("billsync says it created {}, the vendor has no such object", key)};
        }
    }
    return std::nullopt;
}

// ---- touch_due_sent_or_skipped ----------------------------------------------------------------

std::chrono::sys_days local_date(const date::time_zone* zone, util::instant t) {
    const auto local =
        date::make_zoned(zone, std::chrono::floor<std::chrono::seconds>(t)).get_local_time();
    return std::chrono::sys_days{std::chrono::floor<date::days>(local).time_since_epoch()};
}

// 00:00 local on `day`: when a touch of that day falls due.
util::instant local_midnight(const date::time_zone* zone, std::chrono::sys_days day) {
    const date::local_days local{day.time_since_epoch()};
    return date::make_zoned(zone, local, date::choose::earliest).get_sys_time();
}

// The first opening of the sending window on or after `day` (a touch due then goes out at it).
util::instant window_opening(const chaos_record& r,
                             const date::time_zone* zone,
                             std::chrono::sys_days day) {
    for (int i = 0; i < 14; ++i, day += date::days(1)) {
        if (!r.window_days.contains(date::weekday{day}.c_encoding())) {
            continue;
        }
        const date::local_seconds local{day.time_since_epoch() +
                                        std::chrono::minutes(r.window_start_minute)};
        return date::make_zoned(zone, local, date::choose::earliest).get_sys_time();
    }
    return util::instant::max();
}

// Whether `text` lists touch `n` before " not sent" ("touches 1, 2 not sent: ...").
bool lists_touch(const std::string& text, std::uint32_t n) {
    const auto end = text.find(" not sent");
    if (end == std::string::npos) {
        return false;
    }
    const auto head = text.substr(0, end);
    const auto want = std::to_string(n);
    std::size_t i = 0;
    while (i < head.size()) {
        if (std::isdigit(static_cast<unsigned char>(head[i])) == 0) {
            ++i;
            continue;
        }
        auto j = i;
        while (j < head.size() && std::isdigit(static_cast<unsigned char>(head[j])) != 0) {
            ++j;
        }
        if (head.substr(i, j - i) == want) {
            return true;
        }
        i = j;
    }
    return false;
}

// Every touch that fell due during the run, by the cadence and the invoice's due date (or the
// day a partial payment restarted its sequence), went out exactly once on each of its channels,
// or the daemon's audit says why not: the channel or touch skipped with its cause (no consent,
// opted out, no burst after a late entry), the sequence cancelled (paid, voided), paused
// (dispute), stopped, excluded (payment plan), completed or rescheduled no later than a day
// after the touch's window opened, or the touch's action dropped as stale, dead-lettered, or
// recorded as sent with an unknown outcome (a lost answer, or in flight at a kill: SendGrid cannot
// be asked, and billsync never resends an email: at most once). An overdue invoice that never
// entered needs a cause too, or to have been paid in full before billsync could see it overdue.
std::optional<chaos_violation> touches_due(const chaos_record& r, chaos_coverage* seen) {
    if (r.cadences.empty()) {
        return std::nullopt;
    }
    const date::time_zone* zone = nullptr;
    try {
        zone = date::locate_zone(r.time_zone);
    } catch (const std::exception&) {
        return chaos_violation{std::string(names[2]), "unknown time zone " + r.time_zone};
    }
    std::map<std::pair<std::string, std::string>, int> sent;  // (channel, delivery id) -> n
    for (const auto& m : r.messages) {
        if (!m.delivery_id.empty()) {
            ++sent[{m.channel, m.delivery_id}];
        }
    }
    std::map<std::string, std::vector<const chaos_audit_line*>> by_invoice;
    std::map<std::string, std::vector<const chaos_audit_line*>> by_action;
    for (const auto& l : r.audit) {
        if (!l.invoice.empty()) {
            by_invoice[l.invoice].push_back(&l);
        }
        if (!l.action.empty()) {
            by_action[l.action].push_back(&l);
        }
    }
    static const std::set<std::string> ends = {
        "cancel", "pause", "stop", "exclude", "complete", "reschedule"};
    for (const auto& inv : r.invoices) {
        const auto cadence = r.cadences.find(inv.retainer ? "retainer" : "standard");
        if (cadence == r.cadences.end() || cadence->second.empty()) {
            continue;
        }
        const auto& touches = cadence->second;
        const auto& lines = by_invoice[inv.id];
        struct cycle {
            std::uint64_t number = 0;
            util::instant start{};
            std::chrono::sys_days anchor{};
            bool entered = false;  // entry (late entry skips earlier touches); else a restart
        };
        std::vector<cycle> cycles;
        for (const auto* l : lines) {
            if (l->decision == "enter") {
                cycles.push_back({cycles.size() + 1, l->at, inv.due, true});
            } else if (l->decision == "restart") {
                cycles.push_back({cycles.size() + 1, l->at, local_date(zone, l->at), false});
            }
        }
        const auto due_at = [&](const cycle& c, std::size_t k) {
            return local_midnight(zone, c.anchor + date::days(touches[k - 1].day));
        };
        if (cycles.empty()) {
            const auto first = window_opening(r, zone, inv.due + date::days(touches[0].day));
            // Paid in full before billsync saw it overdue (the first sync may come after the
            // run's first payment): it owes nothing, and its sequence never entered.
            const bool paid_first =
                inv.balance_minor == 0 && inv.paid_in_full_at &&
                *inv.paid_in_full_at <= std::max(first, r.run_start) + date::days(1);
            const bool explained =
                paid_first || std::any_of(lines.begin(), lines.end(), [](const auto* l) {
                    return ends.contains(l->decision);
                });
            if (first <= r.touches_until && !explained) {
                return chaos_violation{
                    std::string(names[2]),
                    fmt::format("invoice {} (due {}) was overdue from {} but never entered its "
                                "follow-up, and the audit says nothing of why",
                                inv.id,
                                date::format("%F", inv.due),
                                when(first))};
            }
            continue;
        }
        for (std::size_t ci = 0; ci < cycles.size(); ++ci) {
            const auto& c = cycles[ci];
            const auto end = ci + 1 < cycles.size() ? cycles[ci + 1].start : util::instant::max();
            std::size_t first = 1;
            if (c.entered) {
                while (first < touches.size() && due_at(c, first + 1) <= c.start) {
                    ++first;
                }
            }
            for (std::size_t k = first; k <= touches.size(); ++k) {
                // A touch whose day passed before the cycle began (the one an invoice entered
                // late owes) falls due when the cycle begins.
                const auto opens = std::max(
                    window_opening(r, zone, c.anchor + date::days(touches[k - 1].day)), c.start);
                if (opens >= end) {
                    // A later cycle replaced this one before the touch could go out (a partial
                    // payment at night restarts the cadence before the window opens).
                    break;
                }
                if (opens > r.touches_until) {
                    break;
                }
                std::vector<std::string> channels;
                if (touches[k - 1].email && !inv.email.empty()) {
                    channels.emplace_back("email");
                }
                if (touches[k - 1].sms && !inv.mobile.empty()) {
                    channels.emplace_back("sms");
                }
                for (const auto& channel : channels) {
                    const auto key = workflows::action_key(
                        fmt::format("followup.t{}.{}", k, channel), inv.id, c.number);
                    const auto n = sent[{channel, key}];
                    if (seen != nullptr) {
                        ++seen->touches_due;
                    }
                    if (n == 1) {
                        if (seen != nullptr) {
                            ++seen->touches_sent;
                        }
                        continue;
                    }
                    if (n > 1) {
                        return chaos_violation{
                            std::string(names[2]),
                            fmt::format("{} {} was sent {} times", channel, key, n)};
                    }
                    const auto touch = static_cast<std::uint32_t>(k);
                    const bool skipped =
                        std::any_of(lines.begin(), lines.end(), [&](const auto* l) {
                            if (l->at < c.start || l->at >= end) {
                                return false;
                            }
                            if ((l->decision == "touch" || l->decision == "skip") &&
                                l->touch == touch &&
                                (l->text.find(channel + ": ") != std::string::npos ||
                                 l->text.find("no channel") != std::string::npos)) {
                                return true;  // the channel (or the touch) skipped, with why
                            }
                            if (l->decision == "skip" && l->touch < touch &&
                                lists_touch(l->text, touch)) {
                                return true;  // no burst: a later touch went instead
                            }
                            return ends.contains(l->decision) && l->at <= opens + date::days(1);
                        });
                    const auto& acted = by_action[key];
                    const bool action_explained =
                        std::any_of(acted.begin(), acted.end(), [](const auto* l) {
                            return l->decision == "action_dropped" ||
                                   l->decision == "action_dead" ||
                                   ((l->decision == "action_done" ||
                                     l->decision == "reconciled_happened") &&
                                    l->text.find("outcome unknown") != std::string::npos);
                        });
                    if (seen != nullptr && (skipped || action_explained)) {
                        ++seen->touches_skipped;
                    }
                    if (!skipped && !action_explained && seen == nullptr) {
                        return chaos_violation{
                            std::string(names[2]),
                            fmt::format("touch {} of invoice {} (cycle {}) by {} fell due at {} "
                                        "and was neither sent ({}) nor skipped with an audited "
                                        "cause",
                                        k,
                                        inv.id,
                                        c.number,
                                        channel,
                                        when(opens),
                                        key)};
                    }
                }
            }
        }
    }
    return std::nullopt;
}

// ---- time_drafted_once ------------------------------------------------------------------------

// Every work item completed during the run has exactly one time entry with billsync's external
// reference at the time system; one re-opened before it could be drafted has none; no entry
// names a work item that was not completed.
std::optional<chaos_violation> time_drafted(const chaos_record& r) {
    for (const auto& [item, n] : r.drafted_entries) {
        if (n > 1) {
            return chaos_violation{
                std::string(names[6]),
                fmt::format("work item {} has {} drafted time entries", item, n)};
        }
        if (n > 0 && !r.completed_work_items.contains(item)) {
            return chaos_violation{std::string(names[6]),
                                   fmt::format("work item {} has a drafted time entry but {}",
                                               item,
                                               r.withdrawn_work_items.contains(item)
                                                   ? "was re-opened before billsync could draft it"
                                                   : "was never completed")};
        }
    }
    for (const auto& item : r.completed_work_items) {
        const auto it = r.drafted_entries.find(item);
        if (it == r.drafted_entries.end() || it->second == 0) {
            return chaos_violation{
                std::string(names[6]),
                fmt::format("work item {} was completed, the time system has no entry drafted "
                            "for it",
                            item)};
        }
    }
    return std::nullopt;
}

std::optional<chaos_violation> no_secret(const chaos_record& r) {
    for (const auto& path : r.log_paths) {
        std::ifstream in(path);
        std::string line;
        std::size_t n = 0;
        while (std::getline(in, line)) {
            ++n;
            for (const auto& s : r.secrets) {
                if (s.size() >= 6 && line.find(s) != std::string::npos) {
                    return chaos_violation{
                        std::string(names[7]),
                        fmt::format("{}:{} holds a secret ({}…)", path, n, s.substr(0, 4))};
                }
            }
        }
    }
    return std::nullopt;
}

std::optional<chaos_violation> dead_letters(const chaos_record& r) {
    for (const auto& [connector, n] : r.dead_letters) {
        if (n > 0 && !r.permanent_fault_vendors.contains(connector)) {
            return chaos_violation{
                std::string(names[9]),
                fmt::format(
                    "{} dead letter(s) for {}, which had only transient faults", n, connector)};
        }
    }
    return std::nullopt;
}

}  // namespace

chaos_coverage coverage(const chaos_record& r) {
    chaos_coverage c;
    touches_due(r, &c);
    for (const auto& item : r.completed_work_items) {
        const auto it = r.drafted_entries.find(item);
        c.drafts += it != r.drafted_entries.end() && it->second == 1 ? 1 : 0;
    }
    for (const auto& key : r.created_expected) {
        const auto it = r.created_objects.find(key);
        if (it != r.created_objects.end() && it->second == 1) {
            ++c.created;
            c.fees += r.fee_invoices.contains(key) ? 1 : 0;
        }
    }
    for (const auto& [client, joins] : r.relayed_clients) {
        c.relays += joined(r, client, joins) ? 1 : 0;
    }
    return c;
}

std::vector<std::string_view> invariant_names() { return {names.begin(), names.end()}; }

std::optional<chaos_violation> check_invariants(const chaos_record& r) {
    if (auto v = reflected(r)) {
        return v;
    }
    if (auto v = once_per_channel(r)) {
        return v;
    }
    if (auto v = touches_due(r, nullptr)) {
        return v;
    }
    if (auto v = in_window(r)) {
        return v;
    }
    if (auto v = after_payment(r)) {
        return v;
    }
    if (auto v = fee_after_payment(r)) {
        return v;
    }
    if (auto v = created_once(r)) {
        return v;
    }
    if (auto v = time_drafted(r)) {
        return v;
    }
    if (auto v = no_secret(r)) {
        return v;
    }
    if (!r.ready_at_end) {
        return chaos_violation{std::string(names[8]), "GET /readyz did not answer 200"};
    }
    return dead_letters(r);
}

}  // namespace billsync::sandbox
