#include "util/clock.hpp"

#include <date/date.h>

#include <sstream>

namespace billsync::util {

instant system_clock::now() const noexcept {
    return std::chrono::time_point_cast<duration>(std::chrono::system_clock::now());
}

manual_clock::manual_clock(instant start) noexcept : micros_(start.time_since_epoch().count()) {}

instant manual_clock::now() const noexcept {
    return instant{duration{micros_.load(std::memory_order_acquire)}};
}

instant manual_clock::advance(duration step) noexcept {
    if (step.count() < 0) {
        return now();
    }
    const auto after = micros_.fetch_add(step.count(), std::memory_order_acq_rel) + step.count();
    return instant{duration{after}};
}

void manual_clock::set(instant t) noexcept {
    micros_.store(t.time_since_epoch().count(), std::memory_order_release);
}

bool parse_rfc3339(std::string_view text, instant& out) {
    // date::parse handles "%FT%T%Ez"; accept a trailing Z as +00:00.
    std::string s(text);
    if (s.size() < 20 || (s[10] != 'T' && s[10] != 't')) {
        return false;
    }
    if (s.back() == 'Z' || s.back() == 'z') {
        s.pop_back();
        s += "+00:00";
    }
    std::istringstream in(s);
    instant t;
    in >> date::parse("%FT%T%Ez", t);
    if (in.fail()) {
        return false;
    }
    in.peek();
    if (!in.eof()) {
        return false;
    }
    out = t;
    return true;
}

std::string format_rfc3339(instant t) {
    const auto secs = std::chrono::floor<std::chrono::seconds>(t);
    if (secs == t) {
        return date::format("%FT%TZ", secs);
    }
    return date::format("%FT%TZ", std::chrono::time_point_cast<std::chrono::milliseconds>(t));
}

}  // namespace billsync::util
