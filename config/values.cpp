#include "config/values.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <boost/url/parse.hpp>
#include <cctype>
#include <limits>

namespace billsync::config {

namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// Reads a run of digits at text[i...]; false when there is none or it overflows.
bool read_number(std::string_view text, std::size_t& i, std::uint64_t& out) {
    const std::size_t start = i;
    std::uint64_t value = 0;
    while (i < text.size() && is_digit(text[i])) {
        const auto digit = static_cast<std::uint64_t>(text[i] - '0');
        if (value > (std::numeric_limits<std::uint64_t>::max() - digit) / 10) {
            return false;
        }
        value = value * 10 + digit;
        ++i;
    }
    out = value;
    return i > start;
}

char lower(char c) { return static_cast<char>(std::tolower(static_cast<unsigned char>(c))); }

}  // namespace

std::optional<std::chrono::milliseconds> parse_duration(std::string_view text) {
    struct unit {
        std::string_view name;
        std::uint64_t ms;
    };
    // Ordered from largest to smallest; "ms" before "m" so the longer suffix wins.
    static constexpr unit units[] = {
        {"d", 86'400'000}, {"h", 3'600'000}, {"ms", 1}, {"m", 60'000}, {"s", 1'000}};
    static constexpr int rank[] = {0, 1, 4, 2, 3};  // position of each unit in size order

    if (text.empty()) {
        return std::nullopt;
    }
    constexpr auto limit = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
    std::uint64_t total = 0;
    int last_rank = -1;
    std::size_t i = 0;
    while (i < text.size()) {
        std::uint64_t n = 0;
        if (!read_number(text, i, n)) {
            return std::nullopt;
        }
        const std::string_view rest = text.substr(i);
        int found = -1;
        for (int u = 0; u < 5; ++u) {
            const auto name = units[u].name;
            if (rest.starts_with(name) &&
                (rest.size() == name.size() || is_digit(rest[name.size()]))) {
                found = u;
                break;
            }
        }
        if (found < 0 || rank[found] <= last_rank) {
            return std::nullopt;
        }
        last_rank = rank[found];
        const std::uint64_t factor = units[found].ms;
        if (n > limit / factor || total > limit - n * factor) {
            return std::nullopt;
        }
        total += n * factor;
        i += units[found].name.size();
    }
    return std::chrono::milliseconds(static_cast<std::int64_t>(total));
}

std::optional<std::uint64_t> parse_size(std::string_view text) {
    struct unit {
        std::string_view name;
        std::uint64_t factor;
    };
    static constexpr unit units[] = {{"", 1},
                                     {"B", 1},
                                     {"KB", 1000},
                                     {"kB", 1000},
                                     {"MB", 1000 * 1000},
                                     {"GB", 1000 * 1000 * 1000},
                                     {"KiB", 1024},
                                     {"MiB", 1024 * 1024},
                                     {"GiB", 1024 * 1024 * 1024}};
    std::size_t i = 0;
    std::uint64_t n = 0;
    if (!read_number(text, i, n)) {
        return std::nullopt;
    }
    std::string_view suffix = text.substr(i);
    if (suffix.starts_with(' ') && suffix.size() > 1) {
        suffix.remove_prefix(1);  // "64 KiB" reads as well as "64KiB"
    }
    for (const auto& u : units) {
        if (suffix == u.name) {
            if (n > std::numeric_limits<std::uint64_t>::max() / u.factor) {
                return std::nullopt;
            }
            return n * u.factor;
        }
    }
    return std::nullopt;
}

std::optional<endpoint> parse_endpoint(std::string_view text) {
    std::string host;
    std::string_view port_text;
    if (text.starts_with('[')) {
        const auto close = text.find(']');
        if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
            return std::nullopt;
        }
        host = std::string(text.substr(1, close - 1));
        port_text = text.substr(close + 2);
        in6_addr addr{};
        if (inet_pton(AF_INET6, host.c_str(), &addr) != 1) {
            return std::nullopt;
        }
    } else {
        const auto colon = text.rfind(':');
        if (colon == std::string_view::npos) {
            return std::nullopt;
        }
        host = std::string(text.substr(0, colon));
        port_text = text.substr(colon + 1);
        in_addr addr{};
        if (host != "localhost" && inet_pton(AF_INET, host.c_str(), &addr) != 1) {
            return std::nullopt;
        }
    }
    std::size_t i = 0;
    std::uint64_t port = 0;
    if (port_text.size() > 5 || !read_number(port_text, i, port) || i != port_text.size() ||
        port > 65535) {
        return std::nullopt;
    }
    return endpoint{std::move(host), static_cast<std::uint16_t>(port)};
}

bool is_http_url(std::string_view text) {
    const auto parsed = boost::urls::parse_absolute_uri(text);
    if (!parsed) {
        return false;
    }
    const auto scheme = parsed->scheme_id();
    if (scheme != boost::urls::scheme::http && scheme != boost::urls::scheme::https) {
        return false;
    }
    return parsed->has_authority() && !parsed->encoded_host().empty();
}

std::size_t edit_distance(std::string_view a, std::string_view b) {
    const std::size_t n = a.size();
    const std::size_t m = b.size();
    std::vector<std::vector<std::size_t>> d(n + 1, std::vector<std::size_t>(m + 1, 0));
    for (std::size_t i = 0; i <= n; ++i) {
        d[i][0] = i;
    }
    for (std::size_t j = 0; j <= m; ++j) {
        d[0][j] = j;
    }
    for (std::size_t i = 1; i <= n; ++i) {
        for (std::size_t j = 1; j <= m; ++j) {
            const std::size_t cost = lower(a[i - 1]) == lower(b[j - 1]) ? 0 : 1;
            d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
            if (i > 1 && j > 1 && lower(a[i - 1]) == lower(b[j - 2]) &&
                lower(a[i - 2]) == lower(b[j - 1])) {
                d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
            }
        }
    }
    return d[n][m];
}

std::optional<std::string_view> closest_match(std::string_view word,
                                              const std::vector<std::string_view>& candidates) {
    std::optional<std::string_view> best;
    std::size_t best_distance = std::numeric_limits<std::size_t>::max();
    for (const auto candidate : candidates) {
        const std::size_t distance = edit_distance(word, candidate);
        const std::size_t longer = std::max(word.size(), candidate.size());
        const bool near = distance == 1 || (distance == 2 && longer >= 4) || distance * 3 <= longer;
        if (near && distance < word.size() && distance < best_distance) {
            best = candidate;
            best_distance = distance;
        }
    }
    return best;
}

}  // namespace billsync::config
