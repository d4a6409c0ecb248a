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
#include "connectors/runtime/timing.hpp"
#include "state/dead_letters.hpp"
#include "state/inbox.hpp"
#include "state/outbox.hpp"
#include "state/retention.hpp"
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
    // Retention (optional): passes start every pipeline_options::prune_every of business time and
    // go on one bounded step per round, between the other work.
    state::pruner* pruner = nullptr;
    // Simulated clock (optional): the connector runtime's waits (retry backoffs, rate-limit
    // pauses). While an advance waits for work to end and nothing has happened for
    // pipeline_options::skip_after, the earliest wait is skipped instead of waited out.
    connectors::skipping_time* waits = nullptr;
};

struct pipeline_options {
    std::uint32_t max_event_attempts = 5;  // then the event becomes a dead letter
    state::retry_policy action_retry;      // outbox attempts, backoff base and cap
    std::size_t events_per_round = 256;    // per connector, so one busy source cannot starve others
    std::size_t actions_per_round = 64;
    std::chrono::milliseconds idle_poll{1000};  // re-check for due work when nothing woke us
    std::chrono::seconds reconcile_every{60};   // retry undecided reconciliations
    // How long a timer waits for its entity's re-read (a follow-up touch: its invoice) before it
    // is decided on the stored copy: a stalled source of truth does not hold back due work.
    std::chrono::milliseconds refresh_wait{10'000};
    // No sign of life from the loop for this long: the pipeline counts as stalled (not ready,
    // no watchdog pets).
    std::chrono::milliseconds stall_after{20'000};
    std::chrono::milliseconds prune_every{3'600'000};  // business time between retention passes
    // An action whose connector is not configured is kept and looked at again after this much
    // business time (its connector may be added back by a reload).
    std::chrono::seconds connector_wait{300};
    // With pipeline_deps::waits: how long (real time) nothing may happen before a wait is skipped.
    std::chrono::milliseconds skip_after{2};
};

// Rows removed by retention since the start, for /status and /metrics.
struct retention_figures {
    std::map<std::string, std::uint64_t> pruned;  // table label -> rows (compacted for outbox)
    std::uint64_t passes = 0;                     // passes completed
    std::optional<util::instant> last_pass_at;    // when the last completed pass started
    std::string last_error;
};

// The engine behind the webhook listener: drains each connector's inbox in order, hands events to
// the connector's mapper and the workflows, commits every step as one write batch, fires durable
// timers and performs outbox actions, reconciling those whose outcome a crash left unknown.
//
// A conductor coroutine on a core strand (on an executor apart from the listeners) owns every
// state read-modify-write and commit, one write batch at a time. Each connector has a lane: its
// vendor calls (resolve, perform, reconcile, refresh, poll) run on a strand of its own, at most
// connector::max_concurrency() at once, so a slow or stalled vendor delays only its own work. A
// round fires due timers (their re-reads run on the lanes, waited for at most refresh_wait), then
// starts what each lane has room for: one inbox job per connector (its events stay in order),
// due polls, ready actions and reconciliations. An exception from a connector or a rule fails
// that item only (retried, then dead-lettered); the loop beats a heartbeat for /readyz and the
// systemd watchdog.
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
    // A reload changed connector `name`: `next` replaces the running one (nullptr: it was removed;
    // its queued actions and events stay and wait for a connector of that name; a new name gets
    // a lane of its own). The lane starts nothing new, its running vendor calls finish (an inbox
    // job or a reconciliation stops after its current item), waited for at most `drain`; then
    // `next` polls, performs and maps. `done(drained)` runs on the pipeline's executor: false when
    // calls of the old connector were still running after `drain` (it must outlive them). The
    // caller keeps `next` alive while the pipeline lives. Thread-safe.
    void replace(std::string name,
                 connectors::connector* next,
                 std::chrono::milliseconds drain,
                 std::function<void(bool drained)> done);
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
    retention_figures retention() const;

    // The loop runs and showed a sign of life within stall_after of `now`. Thread-safe.
    bool alive(std::chrono::steady_clock::time_point now = std::chrono::steady_clock::now()) const;

private:
    struct impl;
    std::shared_ptr<impl> impl_;
};

}  // namespace billsync::daemon
