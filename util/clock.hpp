#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>

namespace billsync::util {

// Business time. Instants are UTC with microsecond resolution.
using duration = std::chrono::microseconds;
using instant = std::chrono::sys_time<duration>;

// The injected source of business time. Production uses system_clock; tests and the sandbox use
// manual_clock, which only moves when told to.
class clock {
public:
    virtual ~clock() = default;
    virtual instant now() const noexcept = 0;
    virtual bool simulated() const noexcept = 0;
};

class system_clock final : public clock {
public:
    instant now() const noexcept override;
    bool simulated() const noexcept override { return false; }
};

class manual_clock final : public clock {
public:
    explicit manual_clock(instant start) noexcept;
    instant now() const noexcept override;
    bool simulated() const noexcept override { return true; }
    // Moves time forward; a negative step is ignored (business time never goes back).
    instant advance(duration step) noexcept;
    void set(instant t) noexcept;

private:
    std::atomic<std::int64_t> micros_;
};

// RFC 3339 with a 'Z' or numeric offset, e.g. "2026-01-05T09:00:00Z". Returns false on error.
bool parse_rfc3339(std::string_view text, instant& out);
std::string format_rfc3339(instant t);

}  // namespace billsync::util
