#pragma once

// Pieces every polling connector shares around its sync cursor (a vendor-specific struct with
// `static std::optional<Cursor> decode(std::string_view)`), whatever the vendor.

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "state/tables.hpp"

namespace billsync::connectors {

// The stored cursor: `error` set when it cannot be read or decoded (the poll fails and says so);
// otherwise `value` holds it, or is empty when none was stored yet (first connect).
template <class Cursor>
struct loaded_cursor {
    std::optional<Cursor> value;
    std::string error;
};

template <class Cursor>
loaded_cursor<Cursor> load_cursor(const state::store& s, std::string_view key) {
    loaded_cursor<Cursor> out;
    auto stored = state::get_cursor(s, key);
    if (!stored.ok()) {
        out.error = "cannot read the sync cursor: " + stored.st.message;
    } else if (stored.value) {
        out.value = Cursor::decode(*stored.value);
        if (!out.value) {
            out.error = "the sync cursor is unreadable; delete it to run a full backfill";
        }
    }
    return out;
}

// How long a connector waits before polling again after `failures` failed polls in a row:
// 1 min, 2, 4, … up to 32 min, never beyond its regular interval.
inline std::chrono::seconds poll_backoff(std::uint32_t failures, std::chrono::seconds interval) {
    const auto backoff = std::chrono::seconds(30LL << std::min<std::uint32_t>(failures, 6));
    return std::min(backoff, interval);
}

}  // namespace billsync::connectors
