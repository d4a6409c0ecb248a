#include "daemon/workflows/report_settings.hpp"

#include <algorithm>
#include <array>
#include <set>

#include "mappings/email_address.hpp"
#include "mappings/money.hpp"

namespace billsync::config {

namespace wr = workflows::weekly_report;

namespace {

constexpr std::array<std::string_view, 7> day_names{
    "sun", "mon", "tue", "wed", "thu", "fri", "sat"};

int weekday(reader& r, std::string_view key, int fallback) {
    const auto d = r.get_enum(key, {"sun", "mon", "tue", "wed", "thu", "fri", "sat"});
    if (!d) {
        return fallback;
    }
    return static_cast<int>(std::find(day_names.begin(), day_names.end(), *d) - day_names.begin());
}

}  // namespace

std::optional<wr::settings> parse_report(reader& r) {
    const auto errors_before = r.diags().error_count();
    wr::settings s;
    if (!r.exists()) {
        return s;
    }
    s.enabled = r.get_bool("enabled").value_or(true);
    s.time_zone = r.get_time_zone("time_zone").value_or("");
    if (auto c = r.get_string("currency")) {
        const bool iso = c->size() == 3 && std::all_of(c->begin(), c->end(), [](char ch) {
                             return ch >= 'A' && ch <= 'Z';
                         });
        if (!iso) {
            r.error("currency", "'currency' must be an ISO 4217 code in capitals, e.g. \"USD\"");
        } else {
            s.currency = *c;
        }
    }
    s.week_end_day = weekday(r, "week_end_day", 0);
    s.send_day = weekday(r, "send_day", 1);
    s.send_hour = static_cast<int>(r.get_int("send_hour", 0, 23).value_or(8));
    if (auto to = r.get_string_array("to")) {
        std::set<std::string> seen;
        for (const auto& a : *to) {
            const auto bare = mappings::email::bare_address(a);
            if (!mappings::email::valid_address(bare)) {
                r.error("to", "'to': '" + a + "' is not an email address");
            } else if (!seen.insert(bare).second) {
                r.error("to", "'to': '" + bare + "' is listed twice");
            } else {
                s.to.push_back(bare);
            }
        }
    }
    s.email_connector = r.get_string("email_connector").value_or("");
    if (auto h = r.get_string("expected_hours")) {
        const auto centi = mappings::parse_decimal(*h, 2);
        if (!centi || *centi < 0 || *centi > 2400 || (*centi * 60) % 100 != 0) {
            r.error("expected_hours",
                    "'expected_hours' must be decimal text from 0 to 24 that is a whole number of "
                    "minutes, e.g. \"7.5\" (quoted, so it stays exact)");
        } else {
            s.expected_minutes = *centi * 60 / 100;
        }
    }
    if (auto subj = r.get_string("subject")) {
        if (subj->empty() || subj->find_first_of("\r\n") != std::string::npos) {
            r.error("subject", "'subject' must be one non-empty line");
        } else {
            s.subject = *subj;
        }
    }
    if (s.enabled && s.to.empty()) {
        r.warning("", "no recipients in 'to': weekly snapshots are kept but nothing is emailed");
    }
    if (r.diags().error_count() > errors_before) {
        return std::nullopt;
    }
    return s;
}

}  // namespace billsync::config
