#pragma once

#include <cstdint>
#include <source_location>
#include <string_view>

namespace billsync::util {
// Reports a broken invariant: logs and counts in release builds, aborts in debug builds.
void report_bug(std::string_view what,
                std::source_location where = std::source_location::current());
// How many broken invariants were reported (exported as a metric).
std::uint64_t bugs_reported() noexcept;
}  // namespace billsync::util

#ifdef NDEBUG
#define BILLSYNC_ASSERT(cond) ((void)0)
#else
#include <cassert>
#define BILLSYNC_ASSERT(cond) assert(cond)
#endif

// A check that stays in release builds: on failure it logs and counts (release) or aborts (debug).
#define BILLSYNC_BUG(cond, what)                \
    do {                                        \
        if (!(cond)) [[unlikely]] {             \
            ::billsync::util::report_bug(what); \
        }                                       \
    } while (false)
