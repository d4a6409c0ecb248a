#include "daemon/chaos_invariants.hpp"

#include <date/tz.h>
#include <fmt/format.h>

#include <array>
#include <fstream>

namespace billsync::daemon {

namespace {

constexpr std::array<std::string_view, 8> names = {
    "acknowledged_webhooks_reflected",
    "touch_once_per_channel",
    "touch_inside_sending_window",
    "no_touch_after_payment_in_full",
    "created_exactly_once",
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

std::optional<chaos_violation> reflected(const chaos_record& r) {
    // The ledger is the truth at the end (faults off, polls run): every invoice with a balance
    // has an open follow-up with that balance, every settled one has none.
    std::map<std::string, std::int64_t> open;
    for (const auto& s : r.active_sequences) {
        open[s.invoice] = s.balance_minor;
    }
    for (const auto& inv : r.invoices) {
        const auto it = open.find(inv.id);
        if (inv.balance_minor == 0 && it != open.end()) {
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
        return chaos_violation{std::string(names[2]), "unknown time zone " + r.time_zone};
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
                std::string(names[2]),
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
        if (m.at > it->second + payment_grace) {
            return chaos_violation{std::string(names[3]),
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

std::optional<chaos_violation> created_once(const chaos_record& r) {
    for (const auto& [key, n] : r.created_objects) {
        if (n > 1) {
            return chaos_violation{std::string(names[4]),
                                   fmt::format("{} exists {} times at its vendor", key, n)};
        }
    }
    for (const auto& key : r.created_expected) {
        if (!r.created_objects.contains(key)) {
            return chaos_violation{
                std::string(names[4]),
                fmt::format("billsync says it created {}, the vendor has no such object", key)};
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
                        std::string(names[5]),
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
                std::string(names[7]),
                fmt::format(
                    "{} dead letter(s) for {}, which had only transient faults", n, connector)};
        }
    }
    return std::nullopt;
}

}  // namespace

std::vector<std::string_view> invariant_names() { return {names.begin(), names.end()}; }

std::optional<chaos_violation> check_invariants(const chaos_record& r) {
    if (auto v = reflected(r)) {
        return v;
    }
    if (auto v = once_per_channel(r)) {
        return v;
    }
    if (auto v = in_window(r)) {
        return v;
    }
    if (auto v = after_payment(r)) {
        return v;
    }
    if (auto v = created_once(r)) {
        return v;
    }
    if (auto v = no_secret(r)) {
        return v;
    }
    if (!r.ready_at_end) {
        return chaos_violation{std::string(names[6]), "GET /readyz did not answer 200"};
    }
    return dead_letters(r);
}

}  // namespace billsync::daemon
