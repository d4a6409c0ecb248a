#include "daemon/pipeline.hpp"

#include <spdlog/logger.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <nlohmann/json.hpp>
#include <random>

#include "util/metrics.hpp"

namespace billsync::daemon {

namespace {

// An inbox event that failed waits a little before its next attempt: 1 s, 2 s, 4 s, ... (business
// time), while other connectors' events go on.
std::chrono::seconds event_backoff(std::uint32_t attempts) {
    return std::chrono::seconds(1LL << std::min<std::uint32_t>(attempts, 10));
}

}  // namespace

struct pipeline::impl : std::enable_shared_from_this<impl> {
    struct advance_request {
        std::chrono::seconds by;
        std::function<void(util::instant)> done;
    };

    net::strand<net::any_io_executor> strand;
    pipeline_deps d;
    pipeline_options opt;
    net::steady_timer wake;
    bool kicked = false;
    bool stopping = false;
    bool running = false;
    std::deque<advance_request> advances;
    std::map<std::string, util::instant, std::less<>> not_before;  // per connector, after failure
    std::map<std::string, std::uint32_t, std::less<>>
        resolve_failures;  // consecutive, per connector
    std::chrono::steady_clock::time_point last_reconcile{};
    std::mt19937_64 rng{std::random_device{}()};
    std::function<void()> on_stopped;

    mutable std::mutex depth_mutex;
    // connector -> pending action id -> when we learnt of it
    std::map<std::string, std::map<std::string, util::instant>, std::less<>> pending;
    std::map<std::string, std::uint64_t, std::less<>> unknown;

    util::counter& events_processed;
    util::counter& events_failed;
    util::counter& events_dead;
    util::counter& timers_fired;
    util::counter& timers_dead;
    util::counter& polls_committed;

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
                                                "Connector polls whose results were stored.")) {}

    util::counter& action_counter(const std::string& connector, std::string_view outcome) {
        return d.metrics.get_counter("billsync_actions_total",
                                     "Outbox action attempts by connector and outcome.",
                                     {{"connector", connector}, {"outcome", std::string(outcome)}});
    }

    void load_depths() {
        auto ready = d.outbox.ready(util::instant::max() - std::chrono::hours(24), 1u << 20);
        auto unk = d.outbox.unknown(1u << 20);
        std::lock_guard lock(depth_mutex);
        for (const auto& a : ready.value) {
            pending[a.connector][a.id] = a.next_attempt_at;
        }
        for (const auto& a : unk.value) {
            ++unknown[a.connector];
        }
    }

    void note_enqueued(const std::vector<std::pair<std::string, std::string>>& added) {
        if (added.empty()) {
            return;
        }
        const auto now = d.clock.now();
        std::lock_guard lock(depth_mutex);
        for (const auto& [id, connector] : added) {
            pending[connector].emplace(id, now);
        }
    }

    void note_finished(const std::string& connector, const std::string& id) {
        std::lock_guard lock(depth_mutex);
        if (auto it = pending.find(connector); it != pending.end()) {
            it->second.erase(id);
        }
    }

    connectors::connector* find(std::string_view name) const {
        auto it = d.connectors.find(name);
        return it == d.connectors.end() ? nullptr : it->second;
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

    // Channel outcomes the operator watches: opt-outs, and messages that did not arrive.
    void count_change(const mappings::change& c) {
        const bool message = c.entity_type == "sms_message" || c.entity_type == "email_message";
        if (c.entity_type != "suppression" && !message) {
            return;
        }
        const auto f = nlohmann::json::parse(c.fields_json, nullptr, false);
        if (!f.is_object()) {
            return;
        }
        if (c.entity_type == "suppression") {
            if (f.value("opted_out", false)) {
                d.metrics
                    .get_counter("billsync_opt_outs_total",
                                 "Addresses and numbers added to the suppression list.",
                                 {{"channel", f.value("channel", std::string("unknown"))}})
                    .inc();
            }
            return;
        }
        const auto status = f.value("status", std::string());
        if (status == "undelivered" || status == "failed" || status == "bounce" ||
            status == "dropped") {
            d.metrics
                .get_counter("billsync_delivery_failures_total",
                             "Messages the provider reported as not delivered.",
                             {{"channel", c.entity_type == "sms_message" ? "sms" : "email"},
                              {"status", status}})
                .inc();
        }
    }

    // Change records for the log and the workflows' decisions on them, into b. Empty: fine.
    std::string apply_changes(const std::vector<mappings::change>& changes,
                              workflows::context& ctx) {
        for (const auto& ch : changes) {
            count_change(ch);
            d.changes.append(ctx.b, ch.encode());
            if (auto st = d.engine.on_change(ch, ctx); !st.ok) {
                return "workflow failed: " + st.message;
            }
        }
        return {};
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
        auto res = c.process(mapped, d.store, b);
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
                note_enqueued(ctx.enqueued);
                events_processed.inc();
                return true;
            }
        }
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

    net::awaitable<bool> process_inbox() {
        bool did = false;
        const auto now = d.clock.now();
        for (const auto& name : d.inbox.connectors()) {
            if (auto nb = not_before.find(name); nb != not_before.end()) {
                if (nb->second > now) {
                    continue;
                }
                not_before.erase(nb);
            }
            auto* c = find(name);
            if (c == nullptr) {
                continue;  // kept until a connector of that name is configured again
            }
            auto events = d.inbox.peek(name, opt.events_per_round);
            if (!events.ok()) {
                d.log->error(
                    "Cannot read the inbox connector={} error=\"{}\"", name, events.st.message);
                continue;
            }
            for (auto& e : events.value) {
                if (stopping) {
                    break;
                }
                const auto r = co_await c->resolve(e);
                if (r.k == connectors::resolve_outcome::kind::retry) {
                    pause_queue(name, r);
                    break;
                }
                resolve_failures.erase(name);
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
                did = true;
            }
        }
        co_return did;
    }

    // Connectors that poll: run the due polls and commit each one's events with its cursors.
    net::awaitable<bool> run_polls() {
        bool did = false;
        for (const auto& [name, c] : d.connectors) {
            if (stopping) {
                break;
            }
            const auto when = c->next_poll();
            if (!when || *when > d.clock.now()) {
                continue;
            }
            auto out = co_await c->poll(d.store);
            if (!out.error.empty()) {
                d.log->warn("Poll failed connector={} error=\"{}\"", name, out.error);
                continue;
            }
            if (out.events.empty() && out.cursors.empty()) {
                continue;
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
                continue;
            }
            polls_committed.inc();
            did = did || !out.events.empty() || out.more;
        }
        co_return did;
    }

    // A timer whose decision depends on an entity (a follow-up touch: its invoice) re-reads it from
    // its source of truth first. nullopt when that failed: the timer waits, so a touch never goes
    // out on stale figures.
    struct refreshed {
        connectors::connector* c = nullptr;
        std::optional<state::inbox_event> event;
    };

    net::awaitable<std::optional<refreshed>> refresh_for(const state::timer& t) {
        refreshed out;
        const auto target = d.engine.before_timer(t.name);
        if (!target) {
            co_return out;
        }
        auto row = state::get_entity(d.store, target->type, target->id);
        if (!row.ok() || !row.value) {
            co_return out;
        }
        const auto j = nlohmann::json::parse(*row.value, nullptr, false);
        if (!j.is_object() || !j.contains("source") || !j["source"].is_object()) {
            co_return out;
        }
        mappings::source_ref ref;
        ref.system = j["source"].value("system", "");
        ref.account = j["source"].value("account", "");
        ref.id = j["source"].value("id", "");
        out.c = find(ref.system);
        if (out.c == nullptr) {
            co_return out;
        }
        const auto r = co_await out.c->refresh(target->type, ref);
        if (r.k != connectors::resolve_outcome::kind::ready) {
            d.log->warn(
                "Cannot re-read an entity before its timer timer={} entity={}/{} detail=\"{}\"",
                t.name,
                target->type,
                target->id,
                r.detail);
            co_return std::nullopt;
        }
        if (r.body) {
            state::inbox_event e;
            e.connector = ref.system;
            e.kind = out.c->refresh_kind();
            e.body = *r.body;
            e.received_at = d.clock.now();
            out.event = std::move(e);
        }
        co_return out;
    }

    net::awaitable<bool> fire_timers() {
        const auto now = d.clock.now();
        auto due = d.timers.due(now, 256);
        if (!due.ok()) {
            d.log->error("Cannot read timers error=\"{}\"", due.st.message);
            co_return false;
        }
        for (const auto& t : due.value) {
            if (stopping) {
                break;
            }
            auto fresh = co_await refresh_for(t);
            state::batch b(d.store);
            workflows::context ctx{b, d.outbox, d.timers, d.audit, now};
            ctx.store = &d.store;
            state::status st;
            if (!fresh) {
                // Try again shortly; the audit says why the touch did not go out now.
                st = d.timers.schedule(b, t.name, now + std::chrono::minutes(15), t.payload);
                nlohmann::json line{{"rule", "followup"},
                                    {"decision", "defer"},
                                    {"timer", t.name},
                                    {"cause",
                                     "cannot re-read the entity from its source of truth; "
                                     "retrying in 15 minutes"}};
                d.audit.append(b, now, line.dump());
            } else {
                st = d.timers.fire(b, t);
                if (st.ok && fresh->event) {
                    auto res = fresh->c->process(*fresh->event, d.store, b);
                    if (!res.ok()) {
                        st = res.st;
                    } else if (auto error = apply_changes(res.value, ctx); !error.empty()) {
                        st = state::status::failure(error);
                    }
                }
                if (st.ok) {
                    st = d.engine.on_timer(t, ctx);
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
            note_enqueued(ctx.enqueued);
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

    // An action's canonical effects, recorded with its outcome. A workflow failure here is logged:
    // the side effect has happened and its outcome must still be recorded.
    void effects_into(state::batch& b,
                      const state::action& a,
                      const std::vector<mappings::change>& effects,
                      util::instant now) {
        if (effects.empty()) {
            return;
        }
        workflows::context ctx{b, d.outbox, d.timers, d.audit, now};
        ctx.store = &d.store;
        for (const auto& e : effects) {
            // An action can establish a suppression (a number found opted out): the list is
            // state every workflow reads, so the row is written with the outcome.
            if (e.entity_type == "suppression") {
                state::put_entity(b, "suppression", e.entity_id, e.fields_json);
            }
        }
        if (auto error = apply_changes(effects, ctx); !error.empty()) {
            d.log->error("Cannot apply an action's effects action={} error=\"{}\"", a.id, error);
        }
        note_enqueued(ctx.enqueued);
    }

    // Follow-up deliveries by channel, touch and outcome (acknowledgements count as touch 0).
    void count_delivery(const state::action& a, std::string_view outcome) {
        if (a.kind != "email.send" && a.kind != "sms.send") {
            return;
        }
        const auto p = nlohmann::json::parse(a.payload, nullptr, false);
        if (!p.is_object() || !p.contains("invoice")) {
            return;
        }
        d.metrics
            .get_counter("billsync_followup_deliveries_total",
                         "Follow-up messages by channel, touch and outcome.",
                         {{"channel", a.kind == "sms.send" ? "sms" : "email"},
                          {"touch", std::to_string(p.value("touch", 0))},
                          {"outcome", std::string(outcome)}})
            .inc();
    }

    void commit_or_log(state::batch& b, const state::action& a) {
        if (auto st = d.store.write(b, false); !st.ok) {
            // The action stays in flight; after a restart it is reconciled, never re-sent blindly.
            d.log->error(
                "Cannot record an action's outcome action={} error=\"{}\"", a.id, st.message);
        }
    }

    net::awaitable<bool> run_outbox() {
        const auto now = d.clock.now();
        auto ready = d.outbox.ready(now, opt.actions_per_round);
        if (!ready.ok()) {
            d.log->error("Cannot read the outbox error=\"{}\"", ready.st.message);
            co_return false;
        }
        for (auto& a : ready.value) {
            if (stopping) {
                break;
            }
            auto* c = find(a.connector);
            if (c == nullptr) {
                state::batch b(d.store);
                d.outbox.to_dead_letter(
                    b, a.id, "no connector named '" + a.connector + "' is configured", now);
                commit_or_log(b, a);
                note_finished(a.connector, a.id);
                continue;
            }
            // Durable before the side effect starts: a crash from here on leaves it "unknown".
            if (auto st = d.outbox.mark_in_flight(a.id, d.clock.now()); !st.ok) {
                d.log->error(
                    "Cannot mark an action in flight action={} error=\"{}\"", a.id, st.message);
                co_return false;
            }
            const auto outcome = co_await c->perform(a);
            const auto done_at = d.clock.now();
            state::batch b(d.store);
            nlohmann::json line{{"action", a.id}, {"connector", a.connector}, {"kind", a.kind}};
            switch (outcome.k) {
                case connectors::action_outcome::kind::done:
                    d.outbox.complete(b, a.id, outcome.detail);
                    effects_into(b, a, outcome.effects, done_at);
                    count_delivery(a, "sent");
                    line["decision"] = "action_done";
                    action_counter(a.connector, "done").inc();
                    note_finished(a.connector, a.id);
                    break;
                case connectors::action_outcome::kind::retry: {
                    std::optional<state::backoff_duration> wait;
                    if (outcome.retry_after) {
                        wait = std::chrono::duration_cast<state::backoff_duration>(
                            *outcome.retry_after);
                    }
                    std::uniform_real_distribution<double> u(0.0, 1.0);
                    auto dead = d.outbox.fail(
                        b, a.id, outcome.detail, done_at, opt.action_retry, u(rng), wait);
                    line["decision"] = dead.ok() && dead.value ? "action_dead" : "action_retry";
                    action_counter(a.connector, dead.value ? "dead" : "retry").inc();
                    if (dead.value) {
                        note_finished(a.connector, a.id);
                    }
                    break;
                }
                case connectors::action_outcome::kind::permanent:
                    d.outbox.to_dead_letter(b, a.id, outcome.detail, done_at);
                    effects_into(b, a, outcome.effects, done_at);
                    count_delivery(a, "failed");
                    line["decision"] = "action_dead";
                    action_counter(a.connector, "dead").inc();
                    note_finished(a.connector, a.id);
                    break;
            }
            line["detail"] = outcome.detail;
            d.audit.append(b, done_at, line.dump());
            commit_or_log(b, a);
        }
        co_return !ready.value.empty();
    }

    // Actions that were in flight when the process stopped: ask the vendor what happened.
    net::awaitable<void> reconcile_unknown() {
        last_reconcile = std::chrono::steady_clock::now();
        auto unk = d.outbox.unknown(1000);
        if (!unk.ok()) {
            co_return;
        }
        for (auto& a : unk.value) {
            auto* c = find(a.connector);
            if (c == nullptr) {
                continue;
            }
            const auto r = co_await c->reconcile(a);
            const auto now = d.clock.now();
            state::batch b(d.store);
            nlohmann::json line{{"action", a.id}, {"connector", a.connector}};
            if (r.k == connectors::reconcile_outcome::kind::happened) {
                d.outbox.complete(b, a.id, r.detail.empty() ? "reconciled: happened" : r.detail);
                effects_into(b, a, r.effects, now);
                line["decision"] = "reconciled_happened";
                action_counter(a.connector, "reconciled_done").inc();
            } else if (r.k == connectors::reconcile_outcome::kind::absent) {
                d.outbox.retry_later(b, a.id, now, "reconciled: did not happen");
                line["decision"] = "reconciled_absent";
                action_counter(a.connector, "reconciled_absent").inc();
            } else {
                d.log->warn("Reconciliation undecided action={} detail=\"{}\"", a.id, r.detail);
                continue;
            }
            d.audit.append(b, now, line.dump());
            commit_or_log(b, a);
            std::lock_guard lock(depth_mutex);
            if (auto& n = unknown[a.connector]; n > 0) {
                --n;
            }
            if (r.k == connectors::reconcile_outcome::kind::happened) {
                continue;
            }
            pending[a.connector].emplace(a.id, now);
        }
    }

    net::awaitable<bool> round() {
        bool did = co_await fire_timers();
        const bool polled = co_await run_polls();
        const bool processed = co_await process_inbox();
        did = did || polled || processed;
        const bool acted = co_await run_outbox();
        did = did || acted;
        if (std::chrono::steady_clock::now() - last_reconcile > opt.reconcile_every) {
            bool any_unknown = false;
            {
                std::lock_guard lock(depth_mutex);
                for (const auto& [c, n] : unknown) {
                    any_unknown = any_unknown || n > 0;
                }
            }
            if (any_unknown) {
                co_await reconcile_unknown();
            }
            last_reconcile = std::chrono::steady_clock::now();
        }
        co_return did;
    }

    // co_await stays a statement of its own: GCC 12 miscompiles it inside && and || operands.
    net::awaitable<void> until_quiet() {
        while (!stopping) {
            const bool did = co_await round();
            if (!did) {
                break;
            }
        }
    }

    net::awaitable<void> run_advances() {
        while (!advances.empty() && !stopping) {
            auto req = std::move(advances.front());
            advances.pop_front();
            const auto target = d.clock.now() + req.by;
            for (;;) {
                auto next = d.timers.next_due();
                if (!next.ok() || !next.value || *next.value > target) {
                    break;
                }
                if (*next.value > d.clock.now()) {
                    d.manual_clock->set(*next.value);
                }
                co_await until_quiet();
            }
            d.manual_clock->set(target);
            co_await until_quiet();
            req.done(d.clock.now());
        }
    }

    net::awaitable<void> loop() {
        auto self = shared_from_this();
        load_depths();
        co_await reconcile_unknown();
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
            wake.expires_after(opt.idle_poll);
            co_await wake.async_wait(as_tuple_awaitable);
        }
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
    impl_->running = true;
    net::co_spawn(impl_->strand, impl_->loop(), [self = impl_](std::exception_ptr e) {
        if (e) {
            try {
                std::rethrow_exception(e);
            } catch (const std::exception& ex) {
                self->d.log->critical("Pipeline stopped by an error error=\"{}\"", ex.what());
            }
        }
    });
}

void pipeline::kick() {
    net::post(impl_->strand, [self = impl_] {
        self->kicked = true;
        self->wake.cancel();
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
            self->wake.cancel();
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
            self->wake.cancel();
        });
    };
    co_return co_await net::async_initiate<decltype(use_awaitable), void(util::instant)>(
        std::move(initiate), use_awaitable);
}

std::map<std::string, pipeline::outbox_depth> pipeline::outbox_depths() const {
    std::lock_guard lock(impl_->depth_mutex);
    std::map<std::string, outbox_depth> out;
    for (const auto& [connector, ids] : impl_->pending) {
        auto& o = out[connector];
        o.pending = ids.size();
        for (const auto& [id, at] : ids) {
            if (!o.oldest || at < *o.oldest) {
                o.oldest = at;
            }
        }
    }
    for (const auto& [connector, n] : impl_->unknown) {
        out[connector].unknown = n;
    }
    return out;
}

}  // namespace billsync::daemon
