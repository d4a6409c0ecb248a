#pragma once

// Column families and the key/value codec shared by every table in state/.
//
// Keys sort bytewise (RocksDB's default comparator), so numbers inside keys are fixed-width
// big-endian ("be64") and instants are stored biased (sign bit flipped) so that times before
// 1970 would still sort before later ones. A '\0' separates variable-length key parts; the part
// before a separator (connector names, entity types, systems) must not contain '\0'.
//
// Values use a small binary codec: a leading format byte, then fields in a fixed order, unsigned
// integers as LEB128 varints, instants as 8 biased big-endian bytes, strings as a varint length
// followed by the bytes. Decoders reject truncated or over-long input instead of guessing.

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include "util/clock.hpp"

namespace billsync::state {

enum class cf : std::uint8_t {
    meta,
    inbox,
    dedup,
    entities,
    xref,
    changes,
    outbox,
    timers,
    cursors,
    tokens,
    audit,
    dead_letters,
};

inline constexpr std::size_t cf_count = 12;

inline constexpr std::array<std::string_view, cf_count> cf_names{
    "meta",
    "inbox",
    "dedup",
    "entities",
    "xref",
    "changes",
    "outbox",
    "timers",
    "cursors",
    "tokens",
    "audit",
    "dead_letters",
};

constexpr std::string_view cf_name(cf family) noexcept {
    return cf_names[static_cast<std::size_t>(family)];
}

namespace keys {

inline void append_be64(std::string& out, std::uint64_t v) {
    for (int shift = 56; shift >= 0; shift -= 8) {
        out.push_back(static_cast<char>(static_cast<std::uint8_t>(v >> shift)));
    }
}

inline std::string be64(std::uint64_t v) {
    std::string out;
    out.reserve(8);
    append_be64(out, v);
    return out;
}

// Reads 8 big-endian bytes; the caller guarantees text.size() >= 8.
inline std::uint64_t read_be64(std::string_view text) noexcept {
    std::uint64_t v = 0;
    for (std::size_t i = 0; i < 8; ++i) {
        v = (v << 8) | static_cast<std::uint8_t>(text[i]);
    }
    return v;
}

inline constexpr std::uint64_t sign_bias = std::uint64_t{1} << 63;

inline std::uint64_t from_instant(util::instant t) noexcept {
    return static_cast<std::uint64_t>(t.time_since_epoch().count()) ^ sign_bias;
}

inline util::instant to_instant(std::uint64_t biased) noexcept {
    return util::instant{util::duration{static_cast<std::int64_t>(biased ^ sign_bias)}};
}

inline void append_instant(std::string& out, util::instant t) { append_be64(out, from_instant(t)); }

// "a\0b"
inline std::string join(std::string_view a, std::string_view b) {
    std::string out;
    out.reserve(a.size() + 1 + b.size());
    out.append(a);
    out.push_back('\0');
    out.append(b);
    return out;
}

// The smallest key greater than every key starting with prefix, or "" if there is none (an
// empty or all-0xff prefix).
inline std::string prefix_end(std::string_view prefix) {
    std::string out(prefix);
    while (!out.empty()) {
        auto last = static_cast<std::uint8_t>(out.back());
        if (last != 0xff) {
            out.back() = static_cast<char>(last + 1);
            return out;
        }
        out.pop_back();
    }
    return out;
}

}  // namespace keys

namespace codec {

class writer {
public:
    explicit writer(std::uint8_t format) { out_.push_back(static_cast<char>(format)); }

    writer& u64(std::uint64_t v) {
        while (v >= 0x80) {
            out_.push_back(static_cast<char>(static_cast<std::uint8_t>(v) | 0x80));
            v >>= 7;
        }
        out_.push_back(static_cast<char>(v));
        return *this;
    }
    writer& time(util::instant t) {
        keys::append_instant(out_, t);
        return *this;
    }
    writer& str(std::string_view s) {
        u64(s.size());
        out_.append(s);
        return *this;
    }

    std::string take() { return std::move(out_); }

private:
    std::string out_;
};

// Reads fields in order; after the first failure every read returns a default and ok() is false.
class reader {
public:
    reader(std::string_view in, std::uint8_t format) : in_(in) {
        ok_ = !in_.empty() && static_cast<std::uint8_t>(in_[0]) == format;
        if (ok_) {
            in_.remove_prefix(1);
        }
    }

    std::uint64_t u64() {
        std::uint64_t v = 0;
        for (int shift = 0; ok_; shift += 7) {
            if (in_.empty() || shift > 63) {
                ok_ = false;
                break;
            }
            auto byte = static_cast<std::uint8_t>(in_[0]);
            in_.remove_prefix(1);
            v |= static_cast<std::uint64_t>(byte & 0x7f) << shift;
            if ((byte & 0x80) == 0) {
                return v;
            }
        }
        return 0;
    }
    std::uint32_t u32() {
        std::uint64_t v = u64();
        if (v > 0xffffffffu) {
            ok_ = false;
            return 0;
        }
        return static_cast<std::uint32_t>(v);
    }
    util::instant time() {
        if (!ok_ || in_.size() < 8) {
            ok_ = false;
            return {};
        }
        auto t = keys::to_instant(keys::read_be64(in_));
        in_.remove_prefix(8);
        return t;
    }
    std::string str() {
        std::uint64_t n = u64();
        if (!ok_ || n > in_.size()) {
            ok_ = false;
            return {};
        }
        std::string s(in_.substr(0, static_cast<std::size_t>(n)));
        in_.remove_prefix(static_cast<std::size_t>(n));
        return s;
    }

    // True if every read succeeded and the whole input was consumed.
    bool done() const noexcept { return ok_ && in_.empty(); }

private:
    std::string_view in_;
    bool ok_ = false;
};

}  // namespace codec

}  // namespace billsync::state
