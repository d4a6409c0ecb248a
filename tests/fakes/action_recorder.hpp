#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace billsync::testing {

// A loopback stand-in for a vendor that receives billsync's outbox actions (the generic
// connector's action_url). POST records the request under its Idempotency-Key and answers 200
// (or a scripted failure); GET ?idempotency_key=K answers 200 when K was recorded, else 404 —
// the lookup billsync uses to reconcile an action whose outcome a crash left unknown.
// Runs on its own thread, so it outlives daemons that are killed and restarted.
class action_recorder {
public:
    action_recorder();
    ~action_recorder();
    action_recorder(const action_recorder&) = delete;
    action_recorder& operator=(const action_recorder&) = delete;

    std::uint16_t port() const;
    std::string url() const;  // http://127.0.0.1:<port>/actions

    // The next n POSTs fail with `status` (and Retry-After when retry_after_s >= 0), unrecorded.
    void fail_next(int n, unsigned status, int retry_after_s = -1);

    // Each POST is answered only after this delay (widens the window a crash can hit).
    void set_delay(std::chrono::milliseconds d);

    // Times each idempotency key was received (recorded POSTs only).
    std::map<std::string, int> counts() const;
    std::string body_of(const std::string& key) const;
    std::uint64_t posts() const;             // every POST, failed ones included
    std::vector<std::string> order() const;  // recorded keys in arrival order
    bool wait_for_keys(std::size_t n, std::chrono::milliseconds timeout);

    struct impl;

private:
    std::unique_ptr<impl> impl_;
};

}  // namespace billsync::testing
