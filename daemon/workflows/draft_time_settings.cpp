#include "daemon/workflows/draft_time_settings.hpp"

#include <algorithm>
#include <array>
#include <set>

#include "daemon/workflows/followup_settings.hpp"
#include "mappings/money.hpp"

namespace billsync::config {

namespace dt = workflows::draft_time;

std::optional<dt::settings> parse_draft_time(reader& r) {
    const auto errors_before = r.diags().error_count();
    dt::settings s;
    if (!r.exists()) {
        return s;
    }
    s.enabled = r.get_bool("enabled").value_or(true);
    s.connector =
        r.get_string("connector", s.enabled ? required : requirement::optional).value_or("");
    if (auto st = r.get_string_array("completing_statuses")) {
        if (st->empty()) {
            r.error("completing_statuses", "'completing_statuses' must name at least one status");
        }
        s.completing_statuses = std::move(*st);
    }
    if (auto h = r.get_int("review_after_h", 1, 24 * 90)) {
        s.review_after = std::chrono::hours(*h);
    }
    s.time_zone = r.get_time_zone("time_zone").value_or("");
    s.email_connector = r.get_string("email_connector").value_or("");
    s.review_email = r.get_bool("review_email").value_or(false);
    if (auto day = r.get_enum("review_day", {"sun", "mon", "tue", "wed", "thu", "fri", "sat"})) {
        static constexpr std::array<std::string_view, 7> names{
            "sun", "mon", "tue", "wed", "thu", "fri", "sat"};
        s.review_day =
            static_cast<unsigned>(std::find(names.begin(), names.end(), *day) - names.begin());
    }
    if (auto hour = r.get_int("review_hour", 0, 23)) {
        s.review_hour = static_cast<int>(*hour);
    }
    s.reconcile = r.get_bool("reconcile").value_or(true);
    if (auto hour = r.get_int("reconcile_hour", 0, 23)) {
        s.reconcile_hour = static_cast<int>(*hour);
    }
    if (auto m = r.sub("missing_time"); m.exists()) {
        auto& mt = s.missing;
        mt.enabled = m.get_bool("enabled").value_or(true);
        if (auto h = m.get_string("expected_hours", required)) {
            const auto centi = mappings::parse_decimal(*h, 2);
            if (!centi || *centi <= 0 || *centi > 2400 || (*centi * 60) % 100 != 0) {
                m.error("expected_hours",
                        "'expected_hours' must be decimal text above 0 and at most 24 that is a "
                        "whole number of minutes, e.g. \"6.5\" (quoted, so it stays exact)");
            } else {
                mt.expected_minutes = *centi * 60 / 100;
                mt.expected_hours = *h;
            }
        }
        if (auto hour = m.get_int("check_hour", 0, 23)) {
            mt.check_hour = static_cast<int>(*hour);
        }
        read_weekdays(m, "working_days", mt.days);
        read_holidays(m, mt.holidays);
        if (auto staff = m.get_string_array("staff")) {
            for (auto& e : *staff) {
                if (e.find('@') == std::string::npos) {
                    m.error("staff", "'staff': '" + e + "' is not an email address");
                }
                std::transform(e.begin(), e.end(), e.begin(), [](unsigned char c) {
                    return static_cast<char>(std::tolower(c));
                });
                mt.staff.push_back(std::move(e));
            }
        }
        mt.remind = m.get_bool("remind").value_or(false);
    }
    std::set<std::string> seen;
    for (auto t : r.sub("work_types").subtables()) {
        dt::work_type_mapping m;
        m.work_type = t.name();
        std::string folded = m.work_type;
        std::transform(folded.begin(), folded.end(), folded.begin(), [](unsigned char c) {
            return static_cast<char>(std::tolower(c));
        });
        if (!seen.insert(folded).second) {
            t.error("",
                    "work type '" + m.work_type +
                        "' is mapped twice (work types compare case-insensitively)");
        }
        if (m.work_type.find_first_not_of(' ') == std::string::npos) {
            t.warning("", "an empty work type key matches no work item");
        }
        m.project = t.get_string("project", required).value_or("");
        m.task = t.get_string("task", required).value_or("");
        if (auto h = t.get_string("hours", required)) {
            // Hundredths of an hour, exactly; a draft is a whole number of minutes.
            const auto centi = mappings::parse_decimal(*h, 2);
            if (!centi || *centi <= 0 || *centi > 2400 || (*centi * 60) % 100 != 0) {
                t.error("hours",
                        "'hours' must be decimal text above 0 and at most 24 that is a whole "
                        "number of minutes, e.g. \"3.5\" (quoted, so it stays exact)");
            } else {
                m.minutes = *centi * 60 / 100;
                m.hours = *h;
            }
        }
        m.billable = t.get_bool("billable").value_or(true);
        if (auto st = t.get_string_array("stages")) {
            m.stages = std::move(*st);
        }
        s.work_types.push_back(std::move(m));
    }
    if (s.enabled && s.work_types.empty()) {
        r.warning("",
                  "no [draft_time.work_types.\"<work type>\"] table: no work item can be drafted");
    }
    if (r.diags().error_count() > errors_before) {
        return std::nullopt;
    }
    return s;
}

}  // namespace billsync::config
