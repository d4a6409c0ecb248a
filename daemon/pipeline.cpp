#include "daemon/pipeline.hpp"

#include <spdlog/logger.h>

#include <atomic>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <exception>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <stdexcept>

#include "state/apply.hpp"
#include "state/sim_time.hpp"
#include "util/metrics.hpp"
#include "workflows/send_window.hpp"

namespace billsync::daemon {

namespace {

// An inbox event that failed waits a little before its next attempt: 1 s, 2 s, 4 s, ... (business
// time), while other connectors' events go on.
std::chrono::seconds event_backoff(std::uint32_t attempts) {
    return std::chrono::seconds(1LL << std::min<std::uint32_t>(attempts, 10));
}

// What an exception escaping a connector or a rule says, for the item's error.
std::string what_of(const std::exception_ptr& e) {
    try {
        std::rethrow_exception(e);
    } catch (const std::exception& ex) {
        return ex.what();
    } catch (...) {
        return "unknown exception";
    }
}

std::int64_t ticks(std::chrono::steady_clock::time_point t) {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

}  // namespace

struct pipeline::impl : std::enable_shared_from_this<impl> {
    struct advance_request {
        std::chrono::seconds by;
        std::function<void(util::instant)> done;
    };

    // A connector's lane: its vendor calls (resolve, perform, reconcile, refresh, poll) run on a
    // strand of its own, at most `cap` at once (the vendor's concurrent-request cap), so a slow or
    // stalled vendor holds up only its own work. The bookkeeping below is touched on the core
    // strand only. A reload may swap its connector (replace): a job reads `c` once, when it
    // starts, and keeps using that one.
    struct lane {
        lane(std::string n, connectors::connector* conn, const net::any_io_executor& ex)
            : name(std::move(n)), c(conn), strand(net::make_strand(ex)), cap(cap_of(conn)) {}
        static std::size_t cap_of(const connectors::connector* conn) {
            return conn == nullptr ? 1 : std::max<std::size_t>(1, conn->max_concurrency());
        }
        std::string name;
        connectors::connector* c;  // nullptr: no connector of this name is configured now
        net::strand<net::any_io_executor> strand;
        std::size_t cap;
        std::size_t busy = 0;                                    // slots taken by running jobs
        std::deque<std::shared_ptr<net::steady_timer>> waiting;  // refreshes waiting for a slot
        // Its connector is being replaced: nothing new starts; `idle` (when set) is cancelled
        // once the last running job has ended.
        bool paused = false;
        std::shared_ptr<net::steady_timer> idle;
        bool draining = false;     // its inbox job runs: one at a time keeps events in order
        bool polling = false;      // one poll at a time: the next one reads the cursor just stored
        bool reconciling = false;  // one reconciliation pass at a time
        util::instant poll_not_before{};  // after a poll that threw
        std::set<std::string> suspects;   // in flight, perform threw: outcome unknown
        std::set<std::string> serial;     // serial keys of the actions running now
    };

    // The core strand: every state read-modify-write and every commit runs here, one batch at a
    // time (single writer); lane jobs are coroutines on it that await their vendor calls on the
    // lane's strand.
    net::strand<net::any_io_executor> strand;
    pipeline_deps d;
    pipeline_options opt;
    net::steady_timer wake;
    std::map<std::string, std::unique_ptr<lane>, std::less<>> lanes;
    std::size_t jobs = 0;  // lane jobs running
    bool woken = false;    // a kick or a job's end since the loop last waited
    std::atomic<std::int64_t> last_beat{0};
    std::atomic<bool> beating{false};
    bool kicked = false;
    bool stopping = false;
    bool running = false;
    std::deque<advance_request> advances;
    std::map<std::string, util::instant, std::less<>> not_before;  // per connector, after failure
    std::map<std::string, std::uint32_t, std::less<>>
        resolve_failures;  // consecutive, per connector
    // When unknown outcomes were last asked about, in real time and on the daemon's clock: a
    // simulated clock moved ahead (the sandbox, tests) is as good a reason to ask again as real
    // time passing, or an undecided send would wait for a real minute however far time moved.
    std::chrono::steady_clock::time_point last_reconcile{};
    util::instant last_reconcile_at{};
    std::mt19937_64 rng{std::random_device{}()};
    std::function<void()> on_stopped;
    std::set<std::string, std::less<>> waiting_logged;  // connectors named by waiting actions

    // Actions whose outcome is unknown, per connector: whether a reconciliation is worth a pass.
    // (/status and /metrics read the outbox's own exact counts.)
    mutable std::mutex depth_mutex;
    std::map<std::string, std::uint64_t, std::less<>> unknown;

    util::counter& events_processed;
    util::counter& events_failed;
    util::counter& events_dead;
    util::counter& timers_fired;
    util::counter& timers_dead;
    util::counter& polls_committed;

    // Retention: the pass in progress, and the figures (read by other threads).
    util::instant next_prune_at{};
    util::instant pass_started_at{};
    mutable std::mutex retention_mutex;
    retention_figures retention_done;

    impl(net::any_io_executor ex, pipeline_deps deps, pipeline_options o)
        : strand(net::make_strand(ex)),
          d(std::move(deps)),
          opt(o),
          wake(strand),
          events_processed(d.metrics.get_counter("billsync_events_processed_total",
                                                 "Inbox events processed into state.")),
          events_failed(d.metrics.get_counter("billsync_event_failures_total",
                                              "Failed attempts to process an inbox event.")),
          events_dead(d.metrics.get_counter("billsync_events_dead_lettered_total",
                                            "Inbox events moved to the dead letters.")),
          timers_fired(
              d.metrics.get_counter("billsync_timers_fired_total", "Durable timers fired.")),
          timers_dead(d.metrics.get_counter("billsync_timers_dead_lettered_total",
                                            "Timers moved to the dead letters.")),
          polls_committed(d.metrics.get_counter("billsync_polls_committed_total",
                                                "Connector polls whose results were stored.")) {
        for (const auto& [name, c] : d.connectors) {
            lanes.emplace(name, std::make_unique<lane>(name, c, ex));
        }
    }

    // ---- lanes --------------------------------------------------------------------------------

    // The lane that may start work for connector `name` now: nullptr when none is configured or
    // its connector is being replaced.
    lane* lane_of(std::string_view name) const {
        auto it = lanes.find(name);
        return it == lanes.end() || it->second->c == nullptr || it->second->paused
                   ? nullptr
                   : it->second.get();
    }

    void beat() { last_beat.store(ticks(std::chrono::steady_clock::now())); }

    // Wakes the loop (a kick, a job's end). Core strand.
    void signal() {
        woken = true;
        wake.cancel();
    }

    // Waits until signalled or `at_most` passed; true when signalled. Core strand.
    net::awaitable<bool> wait_for_signal(std::chrono::milliseconds at_most) {
        if (!woken) {
            wake.expires_after(at_most);
            co_await wake.async_wait(as_tuple_awaitable);
        }
        const bool signalled = woken;
        woken = false;
        beat();
        co_return signalled;
    }

    // Simulated clock: whether lane work sleeps in the connector runtime (a retry's backoff, a
    // rate-limit pause), which waiting for work to end may skip.
    bool sleeping_work() const { return d.waits != nullptr && d.waits->sleepers() > 0; }
    // Simulated clock: every running job sleeps, so nothing but a skip can happen next (no
    // vendor call is under way whose answer the skip would overtake).
    bool all_jobs_sleep() const {
        return d.waits != nullptr && jobs > 0 && d.waits->sleepers() >= jobs;
    }
    // When every job sleeps, skips to the earliest wake at once, once what is already queued has
    // run and the caller still waits. True when it skipped.
    template <typename StillWaiting>
    net::awaitable<bool> skip_if_all_jobs_sleep(StillWaiting still_waiting) {
        if (!all_jobs_sleep()) {
            co_return false;
        }
        co_await net::post(strand, use_awaitable);
        if (!still_waiting() || !all_jobs_sleep()) {
            co_return false;
        }
        d.waits->skip_to_next_wake();
        co_return true;
    }

    // Waits for a lane job's end. When work sleeps and nothing happens for skip_after, the
    // earliest sleep is skipped (simulated clock): a backoff of seconds costs no real seconds.
    // When every job sleeps the skip comes at once, after what is already queued has run.
    net::awaitable<void> wait_for_jobs() {
        if (!sleeping_work()) {
            co_await wait_for_signal(opt.idle_poll);
            co_return;
        }
        const bool skipped = co_await skip_if_all_jobs_sleep([this] { return !woken; });
        if (skipped) {
            co_return;
        }
        const bool signalled = co_await wait_for_signal(opt.skip_after);
        if (!signalled) {
            d.waits->skip_to_next_wake();
        }
    }

    bool try_take(lane& l) {
        if (l.busy >= l.cap) {
            return false;
        }
        ++l.busy;
        return true;
    }

    net::awaitable<void> take(lane* l) {
        while (l->busy >= l->cap) {
            auto t = std::make_shared<net::steady_timer>(strand);
            t->expires_at(net::steady_timer::time_point::max());
            l->waiting.push_back(t);
            co_await t->async_wait(as_tuple_awaitable);
        }
        ++l->busy;
    }

    void give_back(lane& l) {
        --l.busy;
        if (!l.waiting.empty()) {
            l.waiting.front()->cancel();
            l.waiting.pop_front();
        }
        if (l.busy == 0 && l.idle) {
            l.idle->cancel();
        }
    }

    // Swaps the connector behind lane `name` (nullptr: none is configured any more; its queued
    // work waits for one). The lane starts nothing new, its running jobs end (an inbox job or a
    // reconciliation stops after its current item), waited for at most `drain`, then `next`
    // takes over. Returns whether the lane drained: false, jobs of the old connector still run
    // (they keep their pointer) and it must outlive them. Core strand.
    net::awaitable<bool> replace(std::string name,
                                 connectors::connector* next,
                                 std::chrono::milliseconds drain) {
        auto it = lanes.find(name);
        if (it == lanes.end()) {
            if (next != nullptr) {
                lanes.emplace(name,
                              std::make_unique<lane>(name, next, strand.get_inner_executor()));
                waiting_logged.erase(name);
                signal();
            }
            co_return true;
        }
        lane* l = it->second.get();
        l->paused = true;
        const auto deadline = std::chrono::steady_clock::now() + drain;
        while (l->busy > 0 && std::chrono::steady_clock::now() < deadline) {
            auto idle = std::make_shared<net::steady_timer>(strand);
            idle->expires_at(deadline);
            l->idle = idle;
            co_await idle->async_wait(as_tuple_awaitable);
            l->idle.reset();
            beat();
        }
        const bool drained = l->busy == 0;
        l->c = next;
        l->cap = lane::cap_of(next);
        l->paused = false;
        l->poll_not_before = {};
        not_before.erase(name);
        resolve_failures.erase(name);
        waiting_logged.erase(name);
        // Waiters for a slot re-check against the new cap.
        for (auto& w : l->waiting) {
            w->cancel();
        }
        l->waiting.clear();
        last_reconcile = {};
        last_reconcile_at = {};
        signal();
        co_return drained;
    }

    // Runs `job` on the core strand; `done` (then the loop's wake-up) runs when it ends, however
    // it ends. The job holds a slot of its lane, taken by the caller.
    void spawn(net::awaitable<void> job, std::function<void()> done) {
        ++jobs;
        auto self = shared_from_this();
        net::co_spawn(strand,
                      std::move(job),
                      net::bind_executor(strand, [self, done](const std::exception_ptr& e) {
                          if (e) {
                              self->d.log->error("Pipeline job failed error=\"{}\"", what_of(e));
                          }
                          done();
                          --self->jobs;
                          self->signal();
                      }));
    }

    // A job of which a lane runs one at a time (`flag` says it runs), holding one of its slots.
    void spawn_exclusive(lane* l, bool lane::* flag, net::awaitable<void> job) {
        l->*flag = true;
        spawn(std::move(job), [this, l, flag] {
            l->*flag = false;
            give_back(*l);
        });
    }

    util::counter& action_counter(const std::string& connector, std::string_view outcome) {
        return d.metrics.get_counter("billsync_actions_total",
                                     "Outbox action attempts by connector and outcome.",
                                     {{"connector", connector}, {"outcome", std::string(outcome)}});
    }

    void load_depths() {
        auto unk = d.outbox.unknown(1u << 20);
        std::lock_guard lock(depth_mutex);
        for (const auto& a : unk.value) {
            ++unknown[a.connector];
        }
    }

    // Moves an event to the dead letters. Returns false when that failed (the queue pauses).
    bool dead_letter_event(const state::inbox_event& e,
                           const std::string& error,
                           util::instant now) {
        state::batch dl(d.store);
        d.dead_letters.from_inbox(dl, e, error, now);
        if (auto st = d.store.write(dl, true); !st.ok) {
            d.log->error("Cannot dead-letter an event connector={} seq={} error=\"{}\"",
                         e.connector,
                         e.seq,
                         st.message);
            not_before[e.connector] = now + event_backoff(e.attempts);
            return false;
        }
        events_dead.inc();
        d.log->error("Event moved to dead letters connector={} seq={} attempts={} error=\"{}\"",
                     e.connector,
                     e.seq,
                     e.attempts,
                     error);
        return true;
    }

    // Change records for the log and the workflows' decisions on them, into b. Empty: fine.
    std::string apply_changes(const std::vector<mappings::change>& changes,
                              workflows::context& ctx) {
        for (const auto& ch : changes) {
            d.changes.append(ctx.b, ch.encode());
            state::status st;
            try {
                st = d.engine.on_change(ch, ctx);
            } catch (...) {
                st = state::status::failure("threw: " + what_of(std::current_exception()));
            }
            if (!st.ok) {
                return "workflow failed: " + st.message;
            }
        }
        return {};
    }

    // The connector's mapping; an exception fails the event like an error would.
    static state::result<std::vector<mappings::change>> process_safely(connectors::connector& c,
                                                                       const state::inbox_event& e,
                                                                       const state::store& s,
                                                                       state::batch& b) {
        try {
            return c.process(e, s, b);
        } catch (...) {
            return state::result<std::vector<mappings::change>>::failure(
                state::status::failure("connector threw: " + what_of(std::current_exception())));
        }
    }

    // One event: the connector's mapping (of `mapped`, the event as resolved), the workflows'
    // decisions, the change records and the event's removal, in one batch. Returns false when
    // the connector's queue should pause.
    bool process_event(connectors::connector& c,
                       state::inbox_event& e,
                       const state::inbox_event& mapped) {
        const auto now = d.clock.now();
        state::batch b(d.store);
        std::string error;
        workflows::context ctx{b, d.outbox, d.timers, d.audit, now};
        ctx.store = &d.store;
        auto res = process_safely(c, mapped, d.store, b);
        if (!res.ok()) {
            error = res.st.message;
        } else {
            error = apply_changes(res.value, ctx);
        }
        if (error.empty()) {
            d.inbox.remove(e, b);
            // Not synced: until this batch is durable the event is still in the (durable) inbox,
            // so a crash replays the whole step; the next synced write makes it durable.
            if (auto st = d.store.write(b, false); !st.ok) {
                error = "state write failed: " + st.message;
            } else {
                events_processed.inc();
                return true;
            }
        }
        return fail_event(e, error, now);
    }

    // A failed attempt at an event: counted, retried after a backoff, dead-lettered after the
    // last attempt. Returns false when the connector's queue should pause.
    bool fail_event(state::inbox_event& e, const std::string& error, util::instant now) {
        events_failed.inc();
        if (auto st = d.inbox.record_failure(e, error); !st.ok) {
            d.log->error("Cannot record a processing failure connector={} seq={} error=\"{}\"",
                         e.connector,
                         e.seq,
                         st.message);
            not_before[e.connector] = now + event_backoff(e.attempts);
            return false;
        }
        if (e.attempts >= opt.max_event_attempts) {
            return dead_letter_event(e, error, now);
        }
        d.log->warn("Event processing failed connector={} seq={} attempt={} error=\"{}\"",
                    e.connector,
                    e.seq,
                    e.attempts,
                    error);
        not_before[e.connector] = now + event_backoff(e.attempts);
        return false;
    }

    // Resolving (fetch after notify) failed for now: the queue waits, the event keeps its place
    // and its attempts (an outage of the vendor is not the event's fault).
    void pause_queue(const std::string& name, const connectors::resolve_outcome& r) {
        const auto failures = ++resolve_failures[name];
        auto wait = event_backoff(std::min<std::uint32_t>(failures, 8));
        if (r.retry_after && *r.retry_after > wait) {
            wait = *r.retry_after;
        }
        not_before[name] = d.clock.now() + wait;
        d.log->warn(
            "Cannot resolve events yet connector={} failures={} retry_in_s={} detail=\"{}\"",
            name,
            failures,
            wait.count(),
            r.detail);
    }

    // Starts an inbox job for every connector whose queue has events and whose lane has room.
    bool start_inbox_jobs() {
        bool did = false;
        const auto now = d.clock.now();
        for (const auto& name : d.inbox.connectors()) {
            if (stopping) {
                break;
            }
            if (auto nb = not_before.find(name); nb != not_before.end()) {
                if (nb->second > now) {
                    continue;
                }
                not_before.erase(nb);
            }
            auto* l = lane_of(name);
            if (l == nullptr || l->draining) {
                continue;  // kept until a connector of that name is configured again
            }
            auto events = d.inbox.peek(name, opt.events_per_round);
            if (!events.ok()) {
                d.log->error(
                    "Cannot read the inbox connector={} error=\"{}\"", name, events.st.message);
                continue;
            }
            if (events.value.empty() || !try_take(*l)) {
                continue;
            }
            spawn_exclusive(l, &lane::draining, drain_inbox(l, std::move(events.value)));
            did = true;
        }
        return did;
    }

    // One connector's events, in order: resolved on its lane, mapped and committed on the core.
    // A failure pauses this queue only.
    net::awaitable<void> drain_inbox(lane* l, std::vector<state::inbox_event> events) {
        auto* c = l->c;
        if (c == nullptr) {
            co_return;
        }
        for (auto& e : events) {
            if (stopping || l->paused) {
                break;  // the rest stay in the inbox, in order
            }
            connectors::resolve_outcome r;
            std::exception_ptr thrown;
            try {
                r = co_await net::co_spawn(l->strand, c->resolve(e), use_awaitable);
            } catch (...) {
                thrown = std::current_exception();
            }
            if (thrown) {
                fail_event(e, "resolve threw: " + what_of(thrown), d.clock.now());
                break;
            }
            if (r.k == connectors::resolve_outcome::kind::retry) {
                pause_queue(l->name, r);
                break;
            }
            resolve_failures.erase(l->name);
            bool go_on = false;
            if (r.k == connectors::resolve_outcome::kind::permanent) {
                go_on = dead_letter_event(e, "cannot resolve: " + r.detail, d.clock.now());
            } else if (r.body) {
                auto mapped = e;
                mapped.body = *r.body;
                go_on = process_event(*c, e, mapped);
            } else {
                go_on = process_event(*c, e, e);
            }
            if (!go_on) {
                break;
            }
        }
    }

    // Connectors that poll: each due poll runs on its lane; its events and cursors are committed
    // in one batch.
    bool start_polls() {
        bool did = false;
        for (const auto& [name, l] : lanes) {
            if (stopping) {
                break;
            }
            if (l->c == nullptr || l->paused) {
                continue;
            }
            const auto when = l->c->next_poll();
            const auto now = d.clock.now();
            if (l->polling || !when || *when > now || l->poll_not_before > now || !try_take(*l)) {
                continue;
            }
            spawn_exclusive(l.get(), &lane::polling, poll_job(l.get()));
            did = true;
        }
        return did;
    }

    net::awaitable<void> poll_job(lane* l) {
        const auto& name = l->name;
        connectors::poll_outcome out;
        try {
            auto* c = l->c;
            if (c == nullptr) {
                co_return;
            }
            out = co_await net::co_spawn(l->strand, c->poll(d.store), use_awaitable);
        } catch (...) {
            out = {};
            out.error = "poll threw: " + what_of(std::current_exception());
            // The connector could not reschedule itself: wait before the next try.
            l->poll_not_before = d.clock.now() + std::chrono::seconds(30);
        }
        if (!out.error.empty()) {
            d.log->warn("Poll failed connector={} error=\"{}\"", name, out.error);
            co_return;
        }
        if (out.events.empty() && out.cursors.empty()) {
            co_return;
        }
        const auto now = d.clock.now();
        state::batch b(d.store);
        for (auto& ev : out.events) {
            state::inbox_event ie;
            ie.connector = name;
            ie.kind = ev.kind;
            ie.received_at = now;
            ie.body = std::move(ev.body);
            d.inbox.requeue(b, std::move(ie));
        }
        for (const auto& [key, value] : out.cursors) {
            state::put_cursor(b, key, value);
        }
        if (auto st = d.store.write(b, true); !st.ok) {
            d.log->error(
                "Cannot store a poll's results connector={} error=\"{}\"", name, st.message);
            co_return;
        }
        polls_committed.inc();
    }

    // A timer whose decision depends on entities (a follow-up touch: its invoice; a payment
    // plan's installment: the client's open invoices) re-reads them from their source of truth
    // first. nullopt when that failed: the timer waits, so a touch never goes out on stale
    // figures. A source that does not answer within refresh_wait (a stalled vendor) does not hold
    // the timer: it is decided on the stored copy, and the audit says so.
    struct refreshed {
        struct fresh_event {
            connectors::connector* c = nullptr;
            state::inbox_event event;
        };
        std::vector<fresh_event> events;
        bool stored_copy = false;  // a source did not answer in time
    };

    // The re-reads for one round's due timers, started together, each on its source's lane.
    struct refresh_round {
        struct item {
            lane* l = nullptr;  // nullptr: nothing to re-read
            std::string type;
            std::string id;
            mappings::source_ref ref;
            bool answered = false;
            connectors::resolve_outcome r;
        };
        explicit refresh_round(const net::strand<net::any_io_executor>& s) : done(s) {}
        std::vector<item> items;
        std::vector<std::pair<std::size_t, std::size_t>> of_timer;  // [begin, end) in items
        std::size_t pending = 0;
        net::steady_timer done;  // cancelled when the last answer is in
    };

    // The re-reads a timer needs: one per entity its rule names that has a source.
    std::vector<refresh_round::item> refresh_targets(const state::timer& t) const {
        std::vector<refresh_round::item> items;
        for (const auto& target : d.engine.before_timer(t.name, d.store)) {
            auto row = state::get_entity(d.store, target.type, target.id);
            if (!row.ok() || !row.value) {
                continue;
            }
            const auto j = nlohmann::json::parse(*row.value, nullptr, false);
            if (!j.is_object() || !j.contains("source") || !j["source"].is_object()) {
                continue;
            }
            refresh_round::item out;
            out.ref.system = j["source"].value("system", "");
            out.ref.account = j["source"].value("account", "");
            out.ref.id = j["source"].value("id", "");
            out.type = target.type;
            out.id = target.id;
            out.l = lane_of(out.ref.system);
            if (out.l != nullptr) {
                items.push_back(std::move(out));
            }
        }
        return items;
    }

    net::awaitable<void> refresh_job(std::shared_ptr<refresh_round> rr, std::size_t i) {
        auto& it = rr->items[i];
        co_await take(it.l);
        try {
            auto* c = it.l->c;
            if (c == nullptr) {
                throw std::runtime_error("the connector is no longer configured");
            }
            it.r = co_await net::co_spawn(it.l->strand, c->refresh(it.type, it.ref), use_awaitable);
        } catch (...) {
            it.r = {};
            it.r.k = connectors::resolve_outcome::kind::retry;
            it.r.detail = "refresh threw: " + what_of(std::current_exception());
        }
        give_back(*it.l);
        it.answered = true;
        if (--rr->pending == 0) {
            rr->done.cancel();
        }
    }

    std::shared_ptr<refresh_round> refreshing;  // the round refresh_all waits for, if any

    // Simulated clock: a wait began in the connector runtime. The loop may be waiting for work to
    // end without knowing of it (idle_poll, real time): it looks again, and skips it.
    void sleep_began() {
        signal();
        if (refreshing) {
            refreshing->done.cancel();
        }
    }

    // Starts every re-read and waits for them, at most refresh_wait.
    net::awaitable<std::shared_ptr<refresh_round>> refresh_all(
        const std::vector<state::timer>& due) {
        auto rr = std::make_shared<refresh_round>(strand);
        for (const auto& t : due) {
            const auto begin = rr->items.size();
            for (auto& it : refresh_targets(t)) {
                rr->items.push_back(std::move(it));
            }
            rr->of_timer.emplace_back(begin, rr->items.size());
        }
        rr->pending = rr->items.size();
        for (std::size_t i = 0; i < rr->items.size(); ++i) {
            spawn(refresh_job(rr, i), [] {});
        }
        refreshing = rr;
        struct forget {
            std::shared_ptr<refresh_round>& r;
            ~forget() { r.reset(); }
        } forget_round{refreshing};
        // The deadline is real time: skipped waits bring answers sooner, never a timeout.
        const auto deadline = std::chrono::steady_clock::now() + opt.refresh_wait;
        for (auto now = std::chrono::steady_clock::now(); rr->pending > 0 && now < deadline;
             now = std::chrono::steady_clock::now()) {
            const bool skipped = co_await skip_if_all_jobs_sleep([&rr] { return rr->pending > 0; });
            if (skipped) {
                continue;
            }
            const bool skipping = sleeping_work();
            rr->done.expires_after(std::min<std::chrono::steady_clock::duration>(
                deadline - now, skipping ? opt.skip_after : opt.idle_poll));
            auto [ec] = co_await rr->done.async_wait(as_tuple_awaitable);
            beat();
            if (skipping && !ec && rr->pending > 0) {
                d.waits->skip_to_next_wake();
            }
        }
        co_return rr;
    }

    std::optional<refreshed> refreshed_for(const refresh_round& rr,
                                           std::size_t i,
                                           const state::timer& t) {
        refreshed out;
        const auto [begin, end] = rr.of_timer[i];
        for (auto k = begin; k < end; ++k) {
            const auto& it = rr.items[k];
            auto* c = it.l->c;
            if (c == nullptr) {
                // Its connector was removed meanwhile: decided on the stored copy.
                out.stored_copy = true;
                continue;
            }
            if (!it.answered) {
                d.log->warn(
                    "Source did not answer before its timer timer={} entity={}/{} waited_ms={}",
                    t.name,
                    it.type,
                    it.id,
                    opt.refresh_wait.count());
                out.stored_copy = true;
                continue;
            }
            const auto& r = it.r;
            if (r.k != connectors::resolve_outcome::kind::ready) {
                d.log->warn(
                    "Cannot re-read an entity before its timer timer={} entity={}/{} "
                    "detail=\"{}\"",
                    t.name,
                    it.type,
                    it.id,
                    r.detail);
                return std::nullopt;
            }
            if (r.body) {
                state::inbox_event e;
                e.connector = it.ref.system;
                e.kind = c->refresh_kind();
                e.body = *r.body;
                e.received_at = d.clock.now();
                out.events.push_back({c, std::move(e)});
            }
        }
        return out;
    }

    net::awaitable<bool> fire_timers() {
        const auto now = d.clock.now();
        auto due = d.timers.due(now, 256);
        if (!due.ok()) {
            d.log->error("Cannot read timers error=\"{}\"", due.st.message);
            co_return false;
        }
        const auto rr = co_await refresh_all(due.value);
        for (std::size_t i = 0; i < due.value.size(); ++i) {
            const auto& t = due.value[i];
            if (stopping) {
                break;
            }
            auto fresh = refreshed_for(*rr, i, t);
            state::batch b(d.store);
            workflows::context ctx{b, d.outbox, d.timers, d.audit, now};
            ctx.store = &d.store;
            state::status st;
            if (!fresh) {
                // Try again shortly; the audit says why the touch did not go out now.
                st = d.timers.schedule(b, t.name, now + std::chrono::minutes(15), t.payload);
                nlohmann::json line{{"rule", d.engine.timer_owner(t.name)},
                                    {"decision", "defer"},
                                    {"timer", t.name},
                                    {"cause",
                                     "cannot re-read the entity from its source of truth; "
                                     "retrying in 15 minutes"}};
                d.audit.append(b, now, line.dump());
            } else {
                if (fresh->stored_copy) {
                    nlohmann::json line{{"decision", "stored_copy"},
                                        {"timer", t.name},
                                        {"cause",
                                         "the source of truth did not answer in time; decided "
                                         "on the stored copy"}};
                    d.audit.append(b, now, line.dump());
                }
                st = d.timers.fire(b, t);
                for (const auto& f : fresh->events) {
                    if (!st.ok) {
                        break;
                    }
                    auto res = process_safely(*f.c, f.event, d.store, b);
                    if (!res.ok()) {
                        st = res.st;
                    } else if (auto error = apply_changes(res.value, ctx); !error.empty()) {
                        st = state::status::failure(error);
                    }
                }
                if (st.ok) {
                    try {
                        st = d.engine.on_timer(t, ctx);
                    } catch (...) {
                        st = state::status::failure("workflow threw: " +
                                                    what_of(std::current_exception()));
                    }
                }
            }
            if (st.ok) {
                st = d.store.write(b, false);
            }
            if (!st.ok) {
                // This timer's batch is dropped; the other due timers still fire.
                if (!timer_failed(t, st.message, now)) {
                    co_return false;
                }
                continue;
            }
            timers_fired.inc();
        }
        co_return !due.value.empty();
    }

    // A timer that failed to fire is counted and retried after a backoff, like an inbox event;
    // after max_event_attempts it becomes a dead letter. Returns false when even that could not
    // be stored (the state is failing: stop this round).
    bool timer_failed(const state::timer& t, const std::string& error, util::instant now) {
        state::batch b(d.store);
        auto attempts = d.timers.record_failure(b, t.name);
        state::status st = attempts.st;
        const bool dead = attempts.ok() && attempts.value >= opt.max_event_attempts;
        if (attempts.ok()) {
            st = dead
                     ? d.dead_letters.from_timer(b, d.timers, t, error, attempts.value, now)
                     : d.timers.schedule(b, t.name, now + event_backoff(attempts.value), t.payload);
        }
        if (st.ok) {
            st = d.store.write(b, true);
        }
        if (!st.ok) {
            d.log->error("Cannot record a timer failure timer={} error=\"{}\" cause=\"{}\"",
                         t.name,
                         st.message,
                         error);
            return false;
        }
        if (dead) {
            timers_dead.inc();
            d.log->error("Timer moved to dead letters timer={} attempts={} error=\"{}\"",
                         t.name,
                         attempts.value,
                         error);
        } else {
            d.log->warn(
                "Timer failed timer={} attempt={} error=\"{}\"", t.name, attempts.value, error);
        }
        return true;
    }

    // An action's canonical effects, recorded with its outcome: the entities it found out go
    // through the shared apply step, and every resulting change reaches the workflows. A failure
    // here is logged: the side effect has happened and its outcome must still be recorded.
    void effects_into(state::batch& b,
                      const state::action& a,
                      std::vector<mappings::change> effects,
                      std::vector<mappings::entity> writes,
                      util::instant now) {
        for (auto& e : writes) {
            auto applied = state::apply(d.store, b, a.connector, std::move(e));
            if (!applied.ok()) {
                d.log->error("Cannot record an action's finding action={} error=\"{}\"",
                             a.id,
                             applied.st.message);
            } else if (applied.value) {
                effects.push_back(std::move(*applied.value));
            }
        }
        if (effects.empty()) {
            return;
        }
        workflows::context ctx{b, d.outbox, d.timers, d.audit, now};
        ctx.store = &d.store;
        if (auto error = apply_changes(effects, ctx); !error.empty()) {
            d.log->error("Cannot apply an action's effects action={} error=\"{}\"", a.id, error);
        }
    }

    void commit_or_log(state::batch& b, const state::action& a) {
        if (auto st = d.store.write(b, false); !st.ok) {
            // The action stays in flight; after a restart it is reconciled, never re-sent blindly.
            d.log->error(
                "Cannot record an action's outcome action={} error=\"{}\"", a.id, st.message);
        }
    }

    // Starts ready actions on their lanes, up to each lane's cap; an action whose lane is full
    // waits for the next round, while other lanes go on.
    bool start_actions() {
        const auto now = d.clock.now();
        auto ready =
            d.outbox.ready(now, opt.actions_per_round * std::max<std::size_t>(1, lanes.size()));
        if (!ready.ok()) {
            d.log->error("Cannot read the outbox error=\"{}\"", ready.st.message);
            return false;
        }
        bool did = false;
        std::size_t started = 0;
        for (auto& a : ready.value) {
            if (stopping || started >= opt.actions_per_round) {
                break;
            }
            auto* l = lane_of(a.connector);
            if (l == nullptr) {
                if (auto it = lanes.find(a.connector); it != lanes.end() && it->second->paused) {
                    continue;  // its connector is being rebuilt: the new one performs it
                }
                // Kept, not dead-lettered: a connector removed from the file (or not yet added)
                // performs it once it is configured again.
                wait_for_connector(a, now);
                did = true;
                continue;
            }
            if (held_back(a, now)) {
                did = true;
                continue;
            }
            // One writer per vendor object: an action on an object another action of the lane is
            // modifying waits for the next round.
            auto key = l->c->serial_key(a);
            if (!key.empty() && l->serial.contains(key)) {
                continue;
            }
            if (!try_take(*l)) {
                continue;
            }
            // Durable before the side effect starts: a crash from here on leaves it "unknown".
            if (auto st = d.outbox.mark_in_flight(a.id, d.clock.now()); !st.ok) {
                d.log->error(
                    "Cannot mark an action in flight action={} error=\"{}\"", a.id, st.message);
                give_back(*l);
                return did;
            }
            if (!key.empty()) {
                l->serial.insert(key);
            }
            spawn(perform_job(l, l->c, std::move(a)), [this, l, key = std::move(key)] {
                if (!key.empty()) {
                    l->serial.erase(key);
                }
                give_back(*l);
            });
            ++started;
            did = true;
        }
        return did;
    }

    // An action of a connector that is not configured (removed by a reload, or named by a rule
    // before its connector was added) waits, pending, and is looked at again after
    // connector_wait; its last_error says why. The wait keeps the ready list for the others.
    void wait_for_connector(const state::action& a, util::instant now) {
        state::batch b(d.store);
        const auto why = "waiting: no connector named '" + a.connector + "' is configured";
        if (auto st = d.outbox.defer(b, a.id, now + opt.connector_wait, why); !st.ok) {
            d.log->error("Cannot defer an action action={} error=\"{}\"", a.id, st.message);
            return;
        }
        commit_or_log(b, a);
        if (waiting_logged.insert(a.connector).second) {
            d.log->warn("Actions wait for a connector that is not configured connector={}",
                        a.connector);
        }
    }

    // An action that carries a sending window or a deadline (a client-facing message) is
    // checked before every attempt, however late it comes (a retry, a wait for capacity, a
    // recovery after a crash): outside its window it is deferred to the next opening; past its
    // deadline, or when the rule that queued it finds the decision stale (re-checked against the
    // current state), it is dropped. Each is one audited batch. Returns whether it was held back.
    bool held_back(const state::action& a, util::instant now) {
        if (a.window.empty() && a.deadline == util::instant{}) {
            return false;
        }
        auto g = workflows::gate(a, now);
        state::batch b(d.store);
        workflows::context ctx{b, d.outbox, d.timers, d.audit, now};
        ctx.store = &d.store;
        if (g.k == workflows::send_gate::kind::now) {
            auto stale = d.engine.recheck(a, ctx);
            if (!stale) {
                return false;
            }
            g.k = workflows::send_gate::kind::stale;
            g.cause = "the decision no longer holds: " + *stale;
        }
        nlohmann::json line{
            {"action", a.id}, {"connector", a.connector}, {"kind", a.kind}, {"cause", g.cause}};
        state::status st;
        if (g.k == workflows::send_gate::kind::later) {
            st = d.outbox.defer(b, a.id, g.at, g.cause);
            line["decision"] = "action_deferred";
            line["until"] = util::format_rfc3339(g.at);
        } else {
            st = d.outbox.drop(b, a.id, g.cause);
            line["decision"] = "action_dropped";
        }
        if (!st.ok) {
            d.log->error("Cannot hold back an action action={} error=\"{}\"", a.id, st.message);
            return true;  // not performed now; the next round tries again
        }
        d.audit.append(b, now, line.dump());
        if (auto ws = d.store.write(b, false); !ws.ok) {
            d.log->error(
                "Cannot record a held-back action action={} error=\"{}\"", a.id, ws.message);
            return true;
        }
        if (g.k == workflows::send_gate::kind::later) {
            action_counter(a.connector, "deferred").inc();
            d.log->info("Action deferred to its sending window action={} until={}",
                        a.id,
                        util::format_rfc3339(g.at));
        } else {
            action_counter(a.connector, "dropped").inc();
            d.log->info("Action dropped action={} cause=\"{}\"", a.id, g.cause);
        }
        return true;
    }

    net::awaitable<void> perform_job(lane* l, connectors::connector* c, state::action a) {
        connectors::action_outcome outcome;
        try {
            outcome = co_await net::co_spawn(l->strand, c->perform(a), use_awaitable);
        } catch (...) {
            // The side effect may have happened: it stays in flight and is reconciled with the
            // vendor before anything is sent again, as after a crash.
            d.log->error("Action failed with an exception action={} error=\"{}\"",
                         a.id,
                         what_of(std::current_exception()));
            l->suspects.insert(a.id);
            {
                std::lock_guard lock(depth_mutex);
                ++unknown[a.connector];
            }
            last_reconcile = {};
            last_reconcile_at = {};
            co_return;
        }
        record_outcome(a, std::move(outcome));
    }

    void record_outcome(const state::action& a, connectors::action_outcome outcome) {
        const auto done_at = d.clock.now();
        state::batch b(d.store);
        nlohmann::json line{{"action", a.id}, {"connector", a.connector}, {"kind", a.kind}};
        switch (outcome.k) {
            case connectors::action_outcome::kind::done:
                d.outbox.complete(b, a.id, outcome.detail);
                effects_into(b, a, std::move(outcome.effects), std::move(outcome.writes), done_at);
                d.engine.on_action_done(a, workflows::action_result::done);
                line["decision"] = "action_done";
                action_counter(a.connector, "done").inc();
                break;
            case connectors::action_outcome::kind::retry: {
                std::optional<state::backoff_duration> wait;
                if (outcome.retry_after) {
                    wait =
                        std::chrono::duration_cast<state::backoff_duration>(*outcome.retry_after);
                }
                std::uniform_real_distribution<double> u(0.0, 1.0);
                auto dead =
                    d.outbox.fail(b, a.id, outcome.detail, done_at, opt.action_retry, u(rng), wait);
                line["decision"] = dead.ok() && dead.value ? "action_dead" : "action_retry";
                action_counter(a.connector, dead.value ? "dead" : "retry").inc();
                if (dead.ok() && dead.value) {
                    // Out of attempts: ended for good, as a permanent failure is.
                    d.engine.on_action_done(a, workflows::action_result::failed);
                }
                break;
            }
            case connectors::action_outcome::kind::permanent:
                d.outbox.to_dead_letter(b, a.id, outcome.detail, done_at);
                effects_into(b, a, std::move(outcome.effects), std::move(outcome.writes), done_at);
                d.engine.on_action_done(a, workflows::action_result::failed);
                line["decision"] = "action_dead";
                action_counter(a.connector, "dead").inc();
                break;
        }
        line["detail"] = outcome.detail;
        d.audit.append(b, done_at, line.dump());
        commit_or_log(b, a);
    }

    // Actions whose outcome is unknown (in flight when the process stopped, or their perform
    // threw): each connector's lane asks its vendor what happened.
    bool start_reconciles(bool force) {
        const auto business_now = d.clock.now();
        if (!force && std::chrono::steady_clock::now() - last_reconcile <= opt.reconcile_every &&
            business_now - last_reconcile_at <= opt.reconcile_every) {
            return false;
        }
        last_reconcile = std::chrono::steady_clock::now();
        last_reconcile_at = business_now;
        bool any = false;
        {
            std::lock_guard lock(depth_mutex);
            for (const auto& [c, n] : unknown) {
                any = any || n > 0;
            }
        }
        if (!any && !force) {
            return false;
        }
        auto unk = d.outbox.unknown(1000);
        if (!unk.ok()) {
            return false;
        }
        std::map<std::string, std::vector<state::action>, std::less<>> by_lane;
        for (auto& a : unk.value) {
            by_lane[a.connector].push_back(std::move(a));
        }
        for (const auto& [name, l] : lanes) {
            for (const auto& id : l->suspects) {
                auto found = d.outbox.get(id);
                if (found.ok() && found.value) {
                    by_lane[name].push_back(std::move(*found.value));
                }
            }
        }
        bool did = false;
        for (auto& [name, items] : by_lane) {
            auto* l = lane_of(name);
            if (l == nullptr || l->reconciling || !try_take(*l)) {
                continue;
            }
            spawn_exclusive(l, &lane::reconciling, reconcile_job(l, std::move(items)));
            did = true;
        }
        return did;
    }

    net::awaitable<void> reconcile_job(lane* l, std::vector<state::action> items) {
        auto* c = l->c;
        if (c == nullptr) {
            co_return;
        }
        for (auto& a : items) {
            if (stopping || l->paused) {
                break;
            }
            connectors::reconcile_outcome r;
            try {
                r = co_await net::co_spawn(l->strand, c->reconcile(a), use_awaitable);
            } catch (...) {
                r = {};
                r.k = connectors::reconcile_outcome::kind::undecided;
                r.detail = "reconcile threw: " + what_of(std::current_exception());
            }
            const bool suspect = l->suspects.contains(a.id);
            const auto now = d.clock.now();
            state::batch b(d.store);
            nlohmann::json line{{"action", a.id}, {"connector", a.connector}};
            if (r.k == connectors::reconcile_outcome::kind::happened) {
                d.outbox.complete(b, a.id, r.detail.empty() ? "reconciled: happened" : r.detail);
                effects_into(b, a, std::move(r.effects), {}, now);
                d.engine.on_action_done(a, workflows::action_result::done);
                line["decision"] = "reconciled_happened";
                action_counter(a.connector, "reconciled_done").inc();
            } else if (r.k == connectors::reconcile_outcome::kind::absent) {
                bool dead = false;
                if (suspect) {
                    // Its perform threw: a failed attempt like any other, dead-lettered after
                    // the last one.
                    std::uniform_real_distribution<double> u(0.0, 1.0);
                    auto res = d.outbox.fail(
                        b, a.id, "perform threw; did not happen", now, opt.action_retry, u(rng));
                    dead = res.ok() && res.value;
                } else {
                    d.outbox.retry_later(b, a.id, now, "reconciled: did not happen");
                }
                line["decision"] = "reconciled_absent";
                action_counter(a.connector, "reconciled_absent").inc();
                if (dead) {
                    line["decision"] = "action_dead";
                    action_counter(a.connector, "dead").inc();
                    d.engine.on_action_done(a, workflows::action_result::failed);
                }
            } else {
                d.log->warn("Reconciliation undecided action={} detail=\"{}\"", a.id, r.detail);
                continue;
            }
            if (!r.detail.empty()) {
                // Why: what was found at the vendor, or why nobody can know (an email is then
                // recorded as sent and never resent).
                line["detail"] = r.detail;
            }
            d.audit.append(b, now, line.dump());
            commit_or_log(b, a);
            l->suspects.erase(a.id);
            std::lock_guard lock(depth_mutex);
            if (auto& n = unknown[a.connector]; n > 0) {
                --n;
            }
        }
    }

    // One pass of the conductor: fires due timers (their re-reads on the lanes), then starts what
    // each lane has room for. Returns whether it did or started anything.
    net::awaitable<bool> round() {
        bool did = false;
        try {
            did = co_await fire_timers();
        } catch (...) {
            d.log->error("Firing timers failed error=\"{}\"", what_of(std::current_exception()));
        }
        try {
            const bool polled = start_polls();
            const bool processed = start_inbox_jobs();
            const bool acted = start_actions();
            const bool reconciled = start_reconciles(false);
            did = did || polled || processed || acted || reconciled;
        } catch (...) {
            d.log->error("Starting work failed error=\"{}\"", what_of(std::current_exception()));
        }
        try {
            // A pass goes on in the next round at once (a simulated advance waits for it, as
            // for any due work); each step is bounded, so other work runs in between.
            if (prune_step()) {
                did = true;
            }
        } catch (...) {
            note_prune_error(what_of(std::current_exception()));
        }
        beat();
        co_return did;
    }

    // Starts a retention pass when one is due, then runs one bounded step of it. Returns whether
    // the pass has more to do (the loop then goes on without waiting).
    bool prune_step() {
        if (d.pruner == nullptr || stopping) {
            return false;
        }
        const auto now = d.clock.now();
        if (!d.pruner->in_pass()) {
            if (now < next_prune_at) {
                return false;
            }
            next_prune_at = now + opt.prune_every;
            auto begun = d.pruner->begin_pass(now);
            if (!begun.ok()) {
                note_prune_error(begun.st.message);
                return false;
            }
            pass_started_at = now;
        }
        auto step = d.pruner->step();
        if (!step.ok()) {
            note_prune_error(step.st.message);
            return false;
        }
        const bool more = d.pruner->in_pass();
        std::lock_guard lock(retention_mutex);
        for (const auto& [table, n] : step.value) {
            retention_done.pruned[table] += n;
            if (n > 0) {
                d.metrics
                    .get_counter("billsync_retention_pruned_total",
                                 "Rows removed by retention (outbox_compacted: actions reduced to "
                                 "a seen marker).",
                                 {{"table", table}})
                    .inc(n);
            }
        }
        if (!more) {
            ++retention_done.passes;
            retention_done.last_pass_at = pass_started_at;
            retention_done.last_error.clear();
        }
        return more;
    }

    void note_prune_error(const std::string& message) {
        d.log->warn("Retention pass failed, retried at the next one error=\"{}\"", message);
        std::lock_guard lock(retention_mutex);
        retention_done.last_error = message;
    }

    // Runs rounds until nothing is due and every lane job has ended.
    // co_await stays a statement of its own: GCC 12 miscompiles it inside && and || operands.
    net::awaitable<void> until_quiet() {
        while (!stopping) {
            const bool did = co_await round();
            if (did) {
                continue;
            }
            if (jobs == 0) {
                break;
            }
            co_await wait_for_jobs();
        }
    }

    // Simulated clock: stores the new time (synced), then moves the clock there, so the state
    // never holds work done later than its stored time and a restart resumes from it. False (the
    // clock stays) when the time could not be stored.
    bool move_clock(util::instant to) {
        if (to == d.clock.now()) {
            return true;  // stored already: nothing to write
        }
        state::batch b(d.store);
        state::put_simulated_time(b, to);
        if (auto st = d.store.write(b, true); !st.ok) {
            d.log->error("Cannot store the simulated time, the clock stays now={} error=\"{}\"",
                         util::format_rfc3339(d.clock.now()),
                         st.message);
            return false;
        }
        d.manual_clock->set(to);
        return true;
    }

    net::awaitable<void> run_advances() {
        while (!advances.empty() && !stopping) {
            auto req = std::move(advances.front());
            advances.pop_front();
            const auto target = d.clock.now() + req.by;
            // Work already under way (a webhook's, a kick's) ends at the time it began in: the
            // clock never jumps under a vendor call in flight (a refresh whose answer was lost
            // would find the vendor's grace for its old token gone in a moment).
            co_await until_quiet();
            for (;;) {
                auto next = d.timers.next_due();
                if (!next.ok() || !next.value || *next.value > target) {
                    break;
                }
                if (*next.value > d.clock.now() && !move_clock(*next.value)) {
                    break;
                }
                co_await until_quiet();
                if (stopping) {
                    break;
                }
            }
            if (move_clock(target)) {
                co_await until_quiet();
            }
            req.done(d.clock.now());
        }
    }

    // The rules' start step (rule::on_start), in one batch; a failure is logged and retried at
    // the next start (the rules' timers are then missing until it succeeds).
    void start_rules() {
        const auto now = d.clock.now();
        state::batch b(d.store);
        workflows::context ctx{b, d.outbox, d.timers, d.audit, now};
        ctx.store = &d.store;
        auto st = d.engine.on_start(ctx);
        if (st.ok) {
            st = d.store.write(b, true);
        }
        if (!st.ok) {
            d.log->error("Cannot start the workflows error=\"{}\"", st.message);
        }
    }

    net::awaitable<void> loop() {
        auto self = shared_from_this();
        load_depths();
        start_rules();
        start_reconciles(true);
        while (!stopping) {
            kicked = false;
            const bool did = co_await round();
            if (!advances.empty()) {
                co_await run_advances();
                continue;
            }
            if (did || kicked || stopping) {
                continue;
            }
            co_await wait_for_signal(opt.idle_poll);
        }
        // Vendor calls in flight finish (their outcomes are recorded); nothing new starts.
        while (jobs > 0) {
            co_await wait_for_jobs();
        }
        beating = false;
        running = false;
        // Requests that arrive during shutdown are answered with the time as it stands.
        for (auto& r : advances) {
            r.done(d.clock.now());
        }
        advances.clear();
        if (on_stopped) {
            auto f = std::move(on_stopped);
            f();
        }
    }
};

pipeline::pipeline(net::any_io_executor executor, pipeline_deps deps, pipeline_options options)
    : impl_(std::make_shared<impl>(std::move(executor), std::move(deps), options)) {}

pipeline::~pipeline() = default;

void pipeline::start() {
    if (impl_->d.waits != nullptr) {
        impl_->d.waits->on_sleep([w = std::weak_ptr<impl>(impl_)] {
            if (auto self = w.lock()) {
                net::post(self->strand, [w] {
                    if (auto s = w.lock()) {
                        s->sleep_began();
                    }
                });
            }
        });
    }
    impl_->running = true;
    impl_->beat();
    impl_->beating = true;
    net::co_spawn(impl_->strand, impl_->loop(), [self = impl_](const std::exception_ptr& e) {
        if (e) {
            // Not ready from now on: /readyz turns 503 and the watchdog stops being petted.
            self->beating = false;
            self->d.log->critical("Pipeline stopped by an error error=\"{}\"", what_of(e));
        }
    });
}

void pipeline::kick() {
    net::post(impl_->strand, [self = impl_] {
        self->kicked = true;
        self->signal();
    });
}

bool pipeline::alive(std::chrono::steady_clock::time_point now) const {
    if (!impl_->beating.load()) {
        return false;
    }
    const auto last = std::chrono::steady_clock::time_point(
        std::chrono::duration_cast<std::chrono::steady_clock::duration>(
            std::chrono::nanoseconds(impl_->last_beat.load())));
    return now - last <= impl_->opt.stall_after;
}

void pipeline::replace(std::string name,
                       connectors::connector* next,
                       std::chrono::milliseconds drain,
                       std::function<void(bool)> done) {
    auto self = impl_;
    auto job = self->replace(std::move(name), next, drain);
    net::co_spawn(self->strand,
                  std::move(job),
                  [self, done = std::move(done)](const std::exception_ptr& e, bool drained) {
                      if (e) {
                          self->d.log->error("Replacing a connector failed error=\"{}\"",
                                             what_of(e));
                      }
                      done(!e && drained);
                  });
}

net::awaitable<void> pipeline::stop() {
    auto self = impl_;
    // Named, not built inside the co_await expression (GCC 12 double-frees such lambdas).
    auto initiate = [self](auto handler) {
        auto h = std::make_shared<decltype(handler)>(std::move(handler));
        net::post(self->strand, [self, h] {
            auto resume = [h] {
                auto ex = net::get_associated_executor(*h);
                net::post(ex, [h]() mutable { (*h)(); });
            };
            self->stopping = true;
            if (!self->running) {
                resume();
                return;
            }
            self->on_stopped = resume;
            self->signal();
        });
    };
    co_await net::async_initiate<decltype(use_awaitable), void()>(std::move(initiate),
                                                                  use_awaitable);
}

net::awaitable<util::instant> pipeline::advance(std::chrono::seconds by) {
    auto self = impl_;
    auto initiate = [self, by](auto handler) {
        auto h = std::make_shared<decltype(handler)>(std::move(handler));
        net::post(self->strand, [self, by, h] {
            auto done = [h](util::instant t) {
                auto ex = net::get_associated_executor(*h);
                net::post(ex, [h, t]() mutable { (*h)(t); });
            };
            if (self->d.manual_clock == nullptr || !self->running) {
                done(self->d.clock.now());
                return;
            }
            self->advances.push_back({by, std::move(done)});
            self->kicked = true;
            self->signal();
        });
    };
    co_return co_await net::async_initiate<decltype(use_awaitable), void(util::instant)>(
        std::move(initiate), use_awaitable);
}

retention_figures pipeline::retention() const {
    std::lock_guard lock(impl_->retention_mutex);
    return impl_->retention_done;
}

std::map<std::string, pipeline::outbox_depth> pipeline::outbox_depths() const {
    std::map<std::string, outbox_depth> out;
    for (const auto& st : impl_->d.outbox.stats()) {
        auto& o = out[st.connector];
        o.pending = st.pending;
        o.unknown = st.unknown;
        o.oldest = st.oldest_due;
    }
    return out;
}

}  // namespace billsync::daemon
