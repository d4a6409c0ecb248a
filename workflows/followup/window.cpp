#include "workflows/followup/window.hpp"

namespace billsync::workflows::followup {

namespace {

util::instant to_instant(const date::time_zone& tz, date::local_time<util::duration> local) {
    return tz.to_sys(local, date::choose::earliest);
}

bool day_allowed(const sending_window& w, date::sys_days day) {
    const auto wd = date::weekday(day);
    return w.days[wd.c_encoding()] && !w.holidays.contains(day);
}

}  // namespace

date::sys_days local_date(const date::time_zone& tz, util::instant t) {
    const auto local = tz.to_local(t);
    return date::sys_days(date::floor<date::days>(local).time_since_epoch());
}

util::instant start_of_day(const date::time_zone& tz, date::sys_days day) {
    return to_instant(tz, date::local_time<util::duration>(day.time_since_epoch()));
}

bool in_window(const sending_window& w, const date::time_zone& tz, util::instant t) {
    const auto local = tz.to_local(t);
    const auto day = date::floor<date::days>(local);
    const date::sys_days civil(day.time_since_epoch());
    if (!day_allowed(w, civil)) {
        return false;
    }
    const auto time_of_day = local - day;
    return time_of_day >= w.start && time_of_day < w.end;
}

util::instant next_opening(const sending_window& w, const date::time_zone& tz, util::instant t) {
    const auto local = tz.to_local(t);
    const auto day = date::floor<date::days>(local);
    date::sys_days civil(day.time_since_epoch());
    const auto time_of_day = local - day;
    if (day_allowed(w, civil)) {
        if (time_of_day < w.start) {
            const auto open = to_instant(tz, day + w.start);
            return open < t ? t : open;
        }
        if (time_of_day < w.end) {
            return t;
        }
    }
    // Holidays may fill a long stretch; a window open on some weekday opens within a year plus
    // the holidays in it.
    const auto limit = 366 + w.holidays.size() + 7;
    for (std::size_t i = 0; i < limit; ++i) {
        civil += date::days(1);
        if (day_allowed(w, civil)) {
            const auto open = to_instant(
                tz, date::local_time<util::duration>(civil.time_since_epoch()) + w.start);
            return open < t ? t : open;
        }
    }
    return t;
}

}  // namespace billsync::workflows::followup
