#include "util/assert.hpp"

#include <spdlog/spdlog.h>

#include <atomic>
#include <cstdlib>

namespace billsync::util {

namespace {
std::atomic<std::uint64_t> bug_count{0};
}

std::uint64_t bugs_reported() noexcept { return bug_count.load(std::memory_order_relaxed); }

void report_bug(std::string_view what, std::source_location where) {
    bug_count.fetch_add(1, std::memory_order_relaxed);
    spdlog::critical(
        "Invariant broken what=\"{}\" at={}:{}", what, where.file_name(), where.line());
#ifndef NDEBUG
    std::abort();
#endif
}

}  // namespace billsync::util
