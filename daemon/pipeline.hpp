#pragma once

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "connectors/runtime/connector.hpp"
#include "state/dead_letters.hpp"
#include "state/inbox.hpp"
#include "state/outbox.hpp"
#include "state/tables.hpp"
#include "state/timers.hpp"
#include "util/clock.hpp"
#include "workflows/engine.hpp"

namespace spdlog {
class logger;
}
namespace billsync::util {
class metrics_registry;
class counter;
}  // namespace billsync::util

namespace billsync::daemon {

struct pipeline_deps {
    state::store& store;
    state::inbox& inbox;
    state::outbox& outbox;
    state::timers& timers;
    state::dead_letters& dead_letters;
    state::change_log& changes;
    state::audit_log& audit;
    const workflows::engine& engine;
    std::map<std::string, connectors::connector*, std::less<>> connectors;
    util::clock& clock;
    util::manual_clock* manual_clock;  // set in simulated mode only
    std::shared_ptr<spdlog::logger> log;
    util::metrics_registry& metrics;
};

struct pipeline_options {
    std::uint32_t max_event_attempts = 5;  // then the event becomes a dead letter
    state::retry_policy action_retry;      // outbox attempts, backoff base and cap
    std::size_t events_per_round = 256;    // per connector, so one busy source cannot starve others
    std::size_t actions_per_round = 64;
    std::chrono::milliseconds idle_poll{1000};  // re-check for due work when nothing woke us
    std::chrono::seconds reconcile_every{60};   // retry undecided reconciliations
};

// The engine behind the webhook listener: drains each connector's inbox in order, hands events to
// the connector's mapper and the workflows, commits every step as one write batch, fires durable
// timers and performs outbox actions, reconciling those whose outcome a crash left unknown.
//
// Everything runs as one coroutine on its own executor (a thread apart from the listeners), so
// steps never interleave: a round fires due timers, processes inbox events, then performs ready
// actions, and repeats until nothing is left before waiting for a kick or the next due time.
class pipeline {
public:
    pipeline(net::any_io_executor executor, pipeline_deps deps, pipeline_options options = {});
    ~pipeline();
    pipeline(const pipeline&) = delete;
    pipeline& operator=(const pipeline&) = delete;

    void start();
    // New work (a stored delivery) or time moved: run a round soon. Thread-safe.
    void kick();
    // Ends the loop after the step in progress; resumes the caller on its own executor.
    net::awaitable<void> stop();
    // Simulated clock only: moves time forward by `by`, stopping at every due timer in order, and
    // completes once everything that became due has run and been committed. Any executor.
    net::awaitable<util::instant> advance(std::chrono::seconds by);

    // Counts for /status and /metrics; thread-safe.
    struct outbox_depth {
        std::uint64_t pending = 0;
        std::uint64_t unknown = 0;
        std::optional<util::instant> oldest;
    };
    std::map<std::string, outbox_depth> outbox_depths() const;

private:
    struct impl;
    std::shared_ptr<impl> impl_;
};

}  // namespace billsync::daemon
