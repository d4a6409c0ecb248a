#include "util/clock.hpp"

#include <date/date.h>

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

namespace {
bool digits(std::string_view s, std::size_t pos, std::size_t n, int& out) {
    if (pos + n > s.size()) {
        return false;
    }
    int v = 0;
    for (std::size_t i = pos; i < pos + n; ++i) {
        if (s[i] < '0' || s[i] > '9') {
            return false;
        }
        v = v * 10 + (s[i] - '0');
    }
    out = v;
    return true;
}
}  // namespace

bool parse_rfc3339(std::string_view text, instant& out) {
    // YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM)
    int y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0;
    if (text.size() < 20 || !digits(text, 0, 4, y) || text[4] != '-' || !digits(text, 5, 2, mo) ||
        text[7] != '-' || !digits(text, 8, 2, d) || (text[10] != 'T' && text[10] != 't') ||
        !digits(text, 11, 2, h) || text[13] != ':' || !digits(text, 14, 2, mi) || text[16] != ':' ||
        !digits(text, 17, 2, sec)) {
        return false;
    }
    const date::year_month_day ymd{
        date::year{y}, date::month{static_cast<unsigned>(mo)}, date::day{static_cast<unsigned>(d)}};
    if (!ymd.ok() || h > 23 || mi > 59 || sec > 59) {
        return false;
    }
    std::size_t pos = 19;
    std::int64_t micros = 0;
    if (pos < text.size() && text[pos] == '.') {
        ++pos;
        std::int64_t scale = 100'000;
        const std::size_t first = pos;
        while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
            micros += (text[pos] - '0') * scale;
            scale /= 10;
            ++pos;
        }
        if (pos == first) {
            return false;
        }
    }
    std::chrono::minutes offset{0};
    if (pos < text.size() && (text[pos] == 'Z' || text[pos] == 'z')) {
        ++pos;
    } else if (pos < text.size() && (text[pos] == '+' || text[pos] == '-')) {
        int oh = 0, om = 0;
        if (!digits(text, pos + 1, 2, oh) || pos + 3 >= text.size() || text[pos + 3] != ':' ||
            !digits(text, pos + 4, 2, om) || oh > 23 || om > 59) {
            return false;
        }
        offset = std::chrono::hours(oh) + std::chrono::minutes(om);
        if (text[pos] == '-') {
            offset = -offset;
        }
        pos += 6;
    } else {
        return false;
    }
    if (pos != text.size()) {
        return false;
    }
    out = instant{date::sys_days{ymd}.time_since_epoch() + std::chrono::hours(h) +
                  std::chrono::minutes(mi) + std::chrono::seconds(sec) + duration(micros) - offset};
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
