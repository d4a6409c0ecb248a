#include "daemon/app.hpp"

#include <fmt/format.h>
#include <spdlog/logger.h>
#include <spdlog/sinks/base_sink.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <csignal>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <ostream>
#include <random>
#include <set>
#include <thread>

#include "connectors/builtin.hpp"
#include "connectors/runtime/connector.hpp"
#include "connectors/runtime/runtime_deps.hpp"
#include "connectors/runtime/token_store.hpp"
#include "daemon/access.hpp"
#include "daemon/app_config.hpp"
#include "daemon/connector_changes.hpp"
#include "daemon/dashboard.hpp"
#include "daemon/identities.hpp"
#include "daemon/intake.hpp"
#include "daemon/pipeline.hpp"
#include "daemon/platform/heap.hpp"
#include "daemon/platform/platform.hpp"
#include "daemon/report.hpp"
#include "daemon/status.hpp"
#include "daemon/tools.hpp"
#include "daemon/workflows/builtin.hpp"
#include "daemon/workflows/operator.hpp"
#include "http/router.hpp"
#include "http/server.hpp"
#include "mappings/change.hpp"
#include "mappings/model.hpp"
#include "state/dead_letters.hpp"
#include "state/group_commit.hpp"
#include "state/inbox.hpp"
#include "state/outbox.hpp"
#include "state/retention.hpp"
#include "state/sim_time.hpp"
#include "state/store.hpp"
#include "state/tables.hpp"
#include "state/timers.hpp"
#include "util/clock.hpp"
#include "util/log.hpp"
#include "util/metrics.hpp"
#include "util/redact.hpp"
#include "util/version.hpp"
#include "workflows/followup/followup_rule.hpp"
#include "workflows/followup/views.hpp"
#include "workflows/weekly_report/report.hpp"

namespace billsync::daemon {

namespace {

constexpr int exit_cant_create = 73;  // EX_CANTCREAT
constexpr int exit_software = 70;     // EX_SOFTWARE
constexpr int exit_tempfail = 75;     // EX_TEMPFAIL: restart me

// Whether the data dir has room again: a 2 MiB file can be written, synced and removed.
bool disk_has_room(const std::filesystem::path& dir) {
    const auto probe = dir / ".billsync-space-probe";
    bool ok = false;
    {
        std::ofstream out(probe, std::ios::binary | std::ios::trunc);
        const std::string chunk(64 * 1024, '\0');
        for (int i = 0; i < 32 && out; ++i) {
            out.write(chunk.data(), static_cast<std::streamsize>(chunk.size()));
        }
        out.flush();
        ok = static_cast<bool>(out);
    }
    std::error_code ec;
    std::filesystem::remove(probe, ec);
    return ok;
}

http::limits to_http_limits(const config::http_limits& l) {
    http::limits out;
    out.max_body_bytes = l.max_body_bytes;
    out.max_header_bytes = l.max_header_bytes;
    out.read_timeout = l.read_timeout;
    out.idle_timeout = l.idle_timeout;
    out.max_connections = l.max_connections;
    out.max_connections_per_ip = l.max_connections_per_ip;
    out.max_buffered_body_bytes = l.max_buffered_body_bytes;
    return out;
}

// The webhook listener's limits: the webhook routes of a connector whose vendor sends small
// bodies get that kind's cap (connector_kind::webhook_max_body), so an unauthenticated client
// cannot make the daemon buffer max_body per connection there; other paths get max_body.
http::limits webhook_limits(const config::http_limits& l,
                            const std::vector<connectors::connector_settings>& sections) {
    auto out = to_http_limits(l);
    std::map<std::string, std::size_t, std::less<>> caps;
    for (const auto& s : sections) {
        const auto* k = connectors::builtin_kinds().find(s.kind);
        if (s.enabled && k != nullptr && k->webhook_max_body) {
            caps.emplace(s.name, *k->webhook_max_body);
        }
    }
    if (caps.empty()) {
        return out;
    }
    out.body_limit = [caps = std::move(caps), fallback = l.max_body_bytes](
                         std::string_view /*method*/, std::string_view target) {
        constexpr std::string_view prefix = "/webhooks/";
        if (!target.starts_with(prefix)) {
            return fallback;
        }
        auto name = target.substr(prefix.size());
        name = name.substr(0, name.find_first_of("/?"));
        const auto it = caps.find(name);
        return it == caps.end() ? fallback : it->second;
    };
    return out;
}

// Log lines to the platform's system log (journald on Linux, the Event Log on Windows), after
// the hub's redaction: "[logger] message" at the message's severity.
class system_log_sink final : public spdlog::sinks::base_sink<std::mutex> {
public:
    explicit system_log_sink(platform::lifecycle& life) : life_(life) {}

protected:
    void sink_it_(const spdlog::details::log_msg& msg) override {
        auto severity = platform::log_severity::info;
        switch (msg.level) {
            case spdlog::level::trace:
            case spdlog::level::debug:
                severity = platform::log_severity::debug;
                break;
            case spdlog::level::warn:
                severity = platform::log_severity::warning;
                break;
            case spdlog::level::err:
                severity = platform::log_severity::error;
                break;
            case spdlog::level::critical:
                severity = platform::log_severity::critical;
                break;
            default:
                break;
        }
        life_.system_log(
            severity,
            fmt::format("[{}] {}",
                        std::string_view(msg.logger_name.data(), msg.logger_name.size()),
                        std::string_view(msg.payload.data(), msg.payload.size())));
    }
    void flush_() override {}

private:
    platform::lifecycle& life_;
};

util::log_output to_log_output(config::log_format f) {
    switch (f) {
        case config::log_format::text:
            return util::log_output::text;
        case config::log_format::json:
            return util::log_output::json;
        case config::log_format::journald:
            return util::log_output::journald;
        case config::log_format::automatic:
            break;
    }
    return util::detect_log_output();
}

spdlog::level::level_enum to_level(const std::string& text) {
    auto level = spdlog::level::info;
    util::parse_log_level(text, level);
    return level;
}

std::chrono::seconds days(std::int64_t n) { return std::chrono::days(n); }

state::retention_policy to_policy(const config::retention_settings& r) {
    state::retention_policy p;
    p.dedup = days(r.dedup_days);
    p.audit = days(r.audit_days);
    p.changes = days(r.changes_days);
    p.outbox = days(r.outbox_days);
    p.outbox_seen = days(r.outbox_seen_days);
    p.expiring = connectors::connector_expiring_rows(days(r.connector_events_days));
    return p;
}

std::optional<std::chrono::seconds> age(util::instant now, std::optional<util::instant> then) {
    if (!then) {
        return std::nullopt;
    }
    return std::max(std::chrono::seconds(0), std::chrono::floor<std::chrono::seconds>(now - *then));
}

}  // namespace

// Runs one dead-letter operation on the pipeline's thread, so it never races the pipeline.
net::awaitable<http::response> deadletter_op(state::dead_letters* dl,
                                             std::string verb,
                                             std::string id) {
    auto found = dl->get(id);
    if (!found.ok()) {
        co_return http::response::error(503, "unavailable", found.st.message);
    }
    if (!found.value) {
        co_return http::response::error(404, "not_found", "no such dead letter");
    }
    const auto st = verb == "retry" ? dl->retry(id) : dl->drop(id);
    if (!st.ok) {
        co_return http::response::error(503, "unavailable", st.message);
    }
    co_return http::response::json(200, nlohmann::json{{"id", id}, {"done", verb}}.dump());
}

struct app::impl : status_source {
    app_options opts;
    net::io_context ioc{1};
    std::unique_ptr<util::log_hub> logs;
    std::shared_ptr<spdlog::logger> log;
    util::metrics_registry metrics;
    std::unique_ptr<util::clock> clock;
    std::shared_ptr<const app_config> cfg;
    util::instant config_loaded_at{};
    std::uint64_t reloads = 0;
    std::uint64_t reload_failures = 0;
    std::string last_reload_error;
    std::unique_ptr<state::store> store;
    std::unique_ptr<state::group_commit> committer;
    std::unique_ptr<state::inbox> inbox;
    std::unique_ptr<state::outbox> outbox;
    std::unique_ptr<state::timers> timers;
    std::unique_ptr<state::dead_letters> dead_letters;
    std::unique_ptr<state::change_log> changes;
    std::unique_ptr<state::audit_log> audit;
    std::unique_ptr<state::pruner> pruner;
    std::atomic<bool> state_writable{true};
    std::unique_ptr<connectors::token_store> tokens;
    // Simulated clock only: the connector runtime's time, whose waits an advance skips.
    std::unique_ptr<connectors::skipping_time> waits;
    std::unique_ptr<connectors::rate_limiter> limiter;
    std::map<std::string, std::unique_ptr<connectors::connector>, std::less<>> connectors;
    // The settings each running connector was built from (settings_fingerprint), for reloads.
    std::map<std::string, std::string, std::less<>> running_settings;
    // Built by a reload, serving webhooks already, waiting for their lane to drain (ioc thread).
    std::map<std::string, std::unique_ptr<connectors::connector>, std::less<>> incoming;
    std::size_t swaps_in_progress = 0;
    bool reload_again = false;  // a SIGHUP came while connectors were being swapped
    // Replaced connectors whose vendor calls outlived the drain: kept until the pipeline stops.
    std::vector<std::unique_ptr<connectors::connector>> retired;
    std::unique_ptr<workflows::engine> engine;
    // The pipeline runs on its own thread, away from the listeners.
    net::io_context work_ioc{1};
    std::optional<net::executor_work_guard<net::io_context::executor_type>> work_guard;
    std::thread work_thread;
    std::unique_ptr<pipeline> pipe;
    std::unique_ptr<intake> webhooks;
    http::router webhook_routes;
    http::router status_routes;
    std::unique_ptr<http::server> webhook;
    std::unique_ptr<http::server> status;
    std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
    bool stopping = false;
    bool resuming = false;  // resume_loop runs (ioc thread only)
    int exit_code = 0;      // run()'s result when a loop asked to stop
    net::steady_timer watchdog{ioc};
    net::steady_timer heap_timer{ioc};
    std::shared_ptr<access_policy> status_policy;  // the status listener's guards read it
    // The dashboard's weekly figures and when they were computed (pipeline thread only). They
    // are computed on their own thread, never on a page's request path: a large firm's week
    // takes seconds.
    nlohmann::json weekly_cache;
    util::instant weekly_cache_at{};
    bool weekly_refreshing = false;
    net::io_context report_ioc{1};
    std::optional<net::executor_work_guard<net::io_context::executor_type>> report_guard;
    std::thread report_thread;
    std::filesystem::path data_dir_at_start;

    // The service manager's view of the daemon: systemd, or the Windows SCM when a service host
    // runs it (app_options::lifecycle).
    std::unique_ptr<platform::lifecycle> own_life;
    platform::lifecycle* life = nullptr;

    explicit impl(app_options o) : opts(std::move(o)) {
        if (opts.lifecycle != nullptr) {
            life = opts.lifecycle;
        } else {
            own_life = platform::system_lifecycle();
            life = own_life.get();
        }
    }

    // status_source
    status_snapshot snapshot() const override {
        status_snapshot s;
        s.uptime = std::chrono::duration_cast<std::chrono::seconds>(
            std::chrono::steady_clock::now() - started);
        s.config_file = opts.config_path.string();
        s.config_loaded_at = config_loaded_at;
        s.reloads = reloads;
        s.reload_failures = reload_failures;
        s.last_reload_error = last_reload_error;
        s.state_open = store != nullptr;
        s.config_loaded = cfg != nullptr;
        s.stopping = stopping;
        s.now = clock->now();
        s.clock_simulated = clock->simulated();
        if (cfg) {
            s.data_dir = cfg->daemon().data_dir.string();
            const auto last_webhooks = webhooks
                                           ? webhooks->last_webhooks()
                                           : std::map<std::string, util::instant, std::less<>>();
            for (const auto& c : cfg->connectors) {
                std::string st = !c.enabled                    ? "disabled"
                                 : connectors.contains(c.name) ? "running"
                                                               : "unavailable";
                std::string detail;
                if (auto it = connectors.find(c.name); it != connectors.end()) {
                    detail = it->second->status_json();
                }
                s.connectors.push_back(
                    {c.name, c.kind, c.enabled, std::move(st), std::move(detail), std::nullopt});
                if (auto w = last_webhooks.find(c.name); w != last_webhooks.end()) {
                    s.connectors.back().last_webhook = w->second;
                }
            }
        }
        // Work queued for a connector the file no longer names (removed by a reload) waits for
        // it: listed as such rather than silently kept.
        std::set<std::string, std::less<>> queued;
        if (inbox) {
            for (const auto& st : inbox->stats()) {
                if (st.pending > 0) {
                    queued.insert(st.connector);
                }
            }
        }
        if (outbox) {
            for (const auto& st : outbox->stats()) {
                if (st.pending > 0 || st.unknown > 0) {
                    queued.insert(st.connector);
                }
            }
        }
        for (const auto& name : queued) {
            const bool named = cfg && std::any_of(cfg->connectors.begin(),
                                                  cfg->connectors.end(),
                                                  [&](const connectors::connector_settings& c) {
                                                      return c.name == name;
                                                  });
            if (!named) {
                s.connectors.push_back({name, "", false, "not_configured", "", std::nullopt});
            }
        }
        s.state_writable = state_writable.load();
        s.pipeline_alive = pipe != nullptr && pipe->alive();
        if (inbox) {
            auto& q = s.queues["inbox"];
            for (const auto& st : inbox->stats()) {
                q[st.connector] = {st.pending, age(s.now, st.oldest)};
            }
        }
        if (pipe) {
            auto& q = s.queues["outbox"];
            auto& u = s.queues["outbox_unknown"];
            for (const auto& [connector, depth] : pipe->outbox_depths()) {
                q[connector] = {depth.pending, age(s.now, depth.oldest)};
                if (depth.unknown > 0) {
                    u[connector] = {depth.unknown, std::nullopt};
                }
            }
        }
        if (pipe) {
            const auto r = pipe->retention();
            s.retention.pruned = r.pruned;
            s.retention.passes = r.passes;
            s.retention.last_pass_at = r.last_pass_at;
            s.retention.last_error = r.last_error;
        }
        if (timers) {
            // Timers are not per connector; the count is exact (kept by state::timers).
            s.queues["timers"][""] = {timers->count(), std::nullopt};
        }
        if (store) {
            auto& dl = s.queues["dead_letters"];
            if (dead_letters) {
                auto list = dead_letters->list(10'000);
                for (const auto& d : list.value) {
                    auto& entry = dl[d.connector];
                    ++entry.count;
                    const auto a = age(s.now, d.at);
                    if (!entry.oldest_age || (a && *a > *entry.oldest_age)) {
                        entry.oldest_age = a;
                    }
                }
            }
        }
        return s;
    }

    // The bound ports, for the CLI (data_dir/daemon.json) and for tests (--ports-file).
    void write_ports_file() {
        nlohmann::json j{{"webhook_port", webhook->port()},
                         {"status_port", status->port()},
                         {"pid", ::getpid()}};
        if (!cfg->daemon().status_token) {
            // Where clients find the token for changes (the path, never the token).
            j["status_token_file"] = (cfg->daemon().data_dir / status_token_file_name).string();
        }
        for (const auto& path : {opts.ports_file, cfg->daemon().data_dir / runtime_file_name}) {
            if (path.empty()) {
                continue;
            }
            const auto tmp = path.string() + ".tmp";
            {
                std::ofstream out(tmp, std::ios::trunc);
                out << j.dump() << '\n';
            }
            std::error_code ec;
            std::filesystem::rename(tmp, path, ec);
        }
    }

    net::awaitable<void> shutdown() {
        if (stopping) {
            co_return;
        }
        stopping = true;
        life->stopping();
        const auto grace = cfg->daemon().shutdown_grace;
        log->info("Stopping grace_ms={}", grace.count());
        watchdog.cancel();
        heap_timer.cancel();
        co_await webhook->shutdown(grace);
        co_await pipe->stop();
        co_await status->shutdown(std::chrono::milliseconds(1000));
        log->info("Stopped");
        ioc.stop();
    }

    // The workflows from the new configuration (their settings, the engagement book), swapped in
    // on the pipeline's thread between two steps, then started (a rule schedules the runs its new
    // settings call for). A workflow that cannot be built is logged and left out. `available`:
    // the connectors that run once the reload's swaps are done.
    void rebuild_rules(const app_config& next,
                       const std::set<std::string, std::less<>>& available) {
        auto built = make_rules(next, rule_deps_for(next, available, &metrics));
        for (const auto& [name, error] : built.failed) {
            log->error("Workflow disabled rule={}: {}", name, error);
        }
        auto rules =
            std::make_shared<std::vector<std::unique_ptr<workflows::rule>>>(std::move(built.rules));
        net::post(work_ioc, [this, rules] {
            *engine = workflows::engine(std::move(*rules));
            state::batch b(*store);
            workflows::context ctx{b, *outbox, *timers, *audit, clock->now()};
            ctx.store = store.get();
            auto st = engine->on_start(ctx);
            if (st.ok) {
                st = store->write(b, true);
            }
            if (!st.ok) {
                log->error("Cannot start the reloaded workflows error=\"{}\"", st.message);
            }
            for (const auto& r : engine->rules()) {
                log->info("Workflow on rule={} (reloaded)", r->name());
            }
        });
    }

    // A connector a reload swaps: its new instance (nullptr: removed).
    struct connector_swap {
        std::string name;
        std::unique_ptr<connectors::connector> next;
        std::string_view what;  // "rebuilt", "added", "removed"
    };

    // Builds the connectors `plan` changed or added. One that cannot be built leaves the running
    // one (or none, when it was added) in place: its section in `next` is set back to the running
    // settings, so the configuration reported is the one that runs, and the next reload tries
    // again. Returns the errors, each naming its connector (never a secret).
    std::vector<std::string> build_connectors(const connector_plan& plan,
                                              app_config& next,
                                              std::vector<connector_swap>& swaps) {
        std::vector<std::string> errors;
        const auto build = [&](const std::string& name, std::string_view what) {
            auto it = std::find_if(next.connectors.begin(),
                                   next.connectors.end(),
                                   [&](const auto& c) { return c.name == name; });
            std::unique_ptr<connectors::connector> built;
            std::string error;
            try {
                built = connectors::make_connector(*it, runtime_for(*it));
                if (!built) {
                    error = "this build cannot run kind '" + it->kind + "'";
                }
            } catch (const std::exception& e) {
                error = e.what();
            }
            if (built) {
                swaps.push_back({name, std::move(built), what});
                running_settings.insert_or_assign(name, settings_fingerprint(*it));
                return;
            }
            errors.push_back("connector '" + name + "' cannot be built from the new settings (" +
                             error + "); the running one is kept");
            log->error(
                "Connector rebuild failed, keeping the running one connector={} error=\"{}\"",
                name,
                error);
            if (what == "rebuilt") {
                for (const auto& old : cfg->connectors) {
                    if (old.name == name) {
                        *it = old;
                    }
                }
            }
        };
        for (const auto& name : plan.changed) {
            build(name, "rebuilt");
        }
        for (const auto& name : plan.added) {
            build(name, "added");
        }
        for (const auto& name : plan.removed) {
            swaps.push_back({name, nullptr, "removed"});
            running_settings.erase(name);
        }
        return errors;
    }

    // Hands each swap to the webhook routes at once (the new connector verifies from the next
    // delivery on, with its new secret) and to its pipeline lane, which drains first (bounded by
    // shutdown_grace); the running map follows when the lane has switched.
    void start_swaps(std::vector<connector_swap> swaps) {
        const auto grace = cfg->daemon().shutdown_grace;
        for (auto& sw : swaps) {
            auto* next = sw.next.get();
            webhooks->set_connector(sw.name, next);
            if (next != nullptr) {
                incoming.insert_or_assign(sw.name, std::move(sw.next));
            }
            ++swaps_in_progress;
            pipe->replace(
                sw.name, next, grace, [this, name = sw.name, what = sw.what](bool drained) {
                    net::post(ioc,
                              [this, name, what, drained] { finish_swap(name, what, drained); });
                });
        }
    }

    // The lane of `name` has switched (ioc thread).
    void finish_swap(const std::string& name, std::string_view what, bool drained) {
        if (auto old = connectors.find(name); old != connectors.end()) {
            if (!drained) {
                // Its calls still run on the pipeline's thread: it lives until the pipeline stops.
                retired.push_back(std::move(old->second));
            }
            connectors.erase(old);
        }
        if (auto in = incoming.find(name); in != incoming.end()) {
            connectors.insert_or_assign(name, std::move(in->second));
            incoming.erase(in);
        }
        if (what == "removed") {
            log->info("Connector removed connector={} drained={} (its queued work waits for it)",
                      name,
                      drained);
        } else {
            log->info("Connector {} connector={} drained={}", what, name, drained);
        }
        if (--swaps_in_progress == 0 && reload_again && !stopping) {
            reload_again = false;
            reload();
        }
    }

    void reload() {
        life->reloading();
        if (swaps_in_progress > 0) {
            // One set of connector swaps at a time: this reload runs when they are done.
            log->info("Reload waits for the connectors being rebuilt");
            reload_again = true;
            life->ready();
            return;
        }
        log->info("Reloading configuration file={}", opts.config_path.string());
        config::diagnostics diags;
        auto next = load_app_config(opts.config_path, diags);
        for (const auto& d : diags.items()) {
            if (d.sev == config::severity::warning) {
                log->warn("Configuration warning: {}", d.to_string());
            }
        }
        if (!next) {
            ++reload_failures;
            last_reload_error = diags.render();
            for (const auto& d : diags.items()) {
                if (d.sev == config::severity::error) {
                    log->error("Configuration rejected, keeping the running one: {}",
                               d.to_string());
                }
            }
            life->ready();
            return;
        }
        const auto& old_d = cfg->daemon();
        const auto& new_d = next->daemon();
        if (new_d.data_dir != old_d.data_dir ||
            new_d.webhook.address.text() != old_d.webhook.address.text() ||
            new_d.status.address.text() != old_d.status.address.text() ||
            new_d.clock != old_d.clock) {
            log->warn(
                "Changes to data_dir, listener addresses or the clock take effect after a restart "
                "(a reload does not rebind the listeners)");
        }
        if (!old_d.secrets_key && next->uses_oauth2() && !cfg->uses_oauth2()) {
            // As at the start: no OAuth2 tokens stored unsealed in a data_dir others can read.
            if (auto e = connectors::check_data_dir_private(old_d.data_dir); !e.empty()) {
                ++reload_failures;
                last_reload_error = "refusing to store unsealed OAuth2 tokens: " + e;
                log->error(
                    "Configuration rejected, keeping the running one: refusing to store unsealed "
                    "OAuth2 tokens: {} (set [daemon] secrets_key, or chmod 700 the data_dir)",
                    e);
                life->ready();
                return;
            }
        }
        logs->set_level(to_level(new_d.log_level));
        const auto plan = plan_connectors(running_settings, next->connectors);
        std::vector<connector_swap> swaps;
        const auto errors = build_connectors(plan, *next, swaps);
        // Credentials stored by `billsync connect` since the start are picked up now (a rebuilt
        // connector reads them as it is built).
        for (const auto& name : plan.unchanged) {
            if (auto it = connectors.find(name); it != connectors.end()) {
                net::post(work_ioc, [conn = it->second.get()] { conn->reload_credentials(); });
            }
        }
        std::set<std::string, std::less<>> available;
        for (const auto& [name, print] : running_settings) {
            available.insert(name);
        }
        start_swaps(std::move(swaps));
        rebuild_rules(*next, available);
        pipe->kick();
        webhook->set_limits(webhook_limits(new_d.webhook.limits, next->connectors));
        status->set_limits(to_http_limits(new_d.status.limits));
        std::string access_error;
        if (new_d.status_token.has_value() != old_d.status_token.has_value() ||
            (new_d.status_token && new_d.status_token->reveal() != old_d.status_token->reveal()) ||
            new_d.status_allowed_hosts != old_d.status_allowed_hosts) {
            access_error = apply_status_access(new_d);
            if (access_error.empty()) {
                log->info("Status listener access changed bearer_token={} allowed_hosts={}",
                          new_d.status_token ? "set" : "none (generated token for changes)",
                          new_d.status_allowed_hosts.size());
            } else {
                log->error("Status listener access unchanged: {}", access_error);
            }
        }
        cfg = std::make_shared<const app_config>(std::move(*next));
        config_loaded_at = clock->now();
        ++reloads;
        last_reload_error.clear();
        if (!errors.empty() || !access_error.empty()) {
            // Counted like a rejected reload; the rest of the file took effect.
            ++reload_failures;
            for (const auto& e : errors) {
                last_reload_error += e + "\n";
            }
            if (!access_error.empty()) {
                last_reload_error += "status listener access: " + access_error + "\n";
            }
        }
        log->info(
            "Configuration reloaded connectors={} unchanged={} rebuilt={} added={} removed={} "
            "failed={}",
            cfg->connectors.size(),
            plan.unchanged.size(),
            plan.changed.size(),
            plan.added.size(),
            plan.removed.size(),
            errors.size());
        life->ready();
    }

    // The signals are caught from run()'s start (the set is made there, before "Started" is
    // logged): one that arrives before this loop first waits is queued, not fatal.
    std::optional<net::signal_set> signal_set_;

    net::awaitable<void> signal_loop() {
        auto& signals = *signal_set_;
        for (;;) {
            auto [ec, signo] = co_await signals.async_wait(as_tuple_awaitable);
            if (ec) {
                co_return;
            }
            if (signo == SIGHUP) {
                reload();
                continue;
            }
            log->info("Received signal={}", signo == SIGTERM ? "SIGTERM" : "SIGINT");
            co_await shutdown();
            co_return;
        }
    }

    net::awaitable<void> watchdog_loop(std::chrono::microseconds interval) {
        bool petting = true;
        while (!stopping) {
            // Only a beating pipeline pets the watchdog: a stalled one gets us restarted.
            const bool alive = pipe->alive();
            if (alive != petting) {
                petting = alive;
                if (alive) {
                    log->info("Pipeline beats again: petting the watchdog");
                } else {
                    log->error("Pipeline stalled: not ready, the watchdog is no longer petted");
                }
            }
            if (life->watchdog_tick(alive) == platform::lifecycle::watchdog_verdict::give_up) {
                log->critical(
                    "Pipeline stalled past the watchdog limit: stopping so the service manager "
                    "restarts billsync");
                exit_code = exit_software;
                co_await shutdown();
                co_return;
            }
            watchdog.expires_after(interval);
            auto [ec] = co_await watchdog.async_wait(as_tuple_awaitable);
            if (ec) {
                co_return;
            }
        }
    }

    // Every few seconds the heap's free pages go back to the system, so the resident size comes
    // back down after a burst of deliveries (docs/operations.md, "Memory under sustained load").
    net::awaitable<void> heap_loop() {
        while (!stopping) {
            heap_timer.expires_after(std::chrono::seconds(5));
            auto [ec] = co_await heap_timer.async_wait(as_tuple_awaitable);
            if (ec || stopping) {
                co_return;
            }
            platform::release_free_heap();
        }
    }

    std::string open_tables() {
        committer = std::make_unique<state::group_commit>(*store);
        auto in = state::inbox::open(*store, *committer);
        if (!in.ok()) {
            return in.st.message;
        }
        inbox = std::move(in.value);
        auto out = state::outbox::open(*store);
        if (!out.ok()) {
            return out.st.message;
        }
        outbox = std::move(out.value);
        if (outbox->recovered_unknown() > 0) {
            log->warn("Actions in flight at the last stop will be reconciled count={}",
                      outbox->recovered_unknown());
        }
        timers = std::make_unique<state::timers>(*store);
        dead_letters = std::make_unique<state::dead_letters>(*store, *inbox, *outbox, timers.get());
        auto ch = state::change_log::open(*store);
        if (!ch.ok()) {
            return ch.st.message;
        }
        changes = std::move(ch.value);
        auto au = state::audit_log::open(*store);
        if (!au.ok()) {
            return au.st.message;
        }
        audit = std::move(au.value);
        return {};
    }

    // The status listener's bearer_token and allowed_hosts, at start and on every reload (the
    // guards read the policy per request, on this thread). Without a bearer_token, changes need
    // the generated token in the data dir. An error (that token cannot be made) changes nothing.
    std::string apply_status_access(const config::daemon_settings& d) {
        std::optional<std::string> read_token;
        std::string write_token;
        if (d.status_token) {
            read_token = d.status_token->reveal();
            write_token = *read_token;
        } else {
            std::string error;
            write_token = ensure_status_token(d.data_dir, error);
            if (write_token.empty()) {
                return error;
            }
        }
        status_policy->read_token = std::move(read_token);
        status_policy->write_token = std::move(write_token);
        status_policy->allowed_hosts = d.status_allowed_hosts;
        return {};
    }

    // The connector runtime's time (the limiter's windows and pauses, retry and refresh
    // backoffs). Under the simulated clock a vendor's window passes when either a real or a
    // simulated minute (hour, day) has passed: a simulated month of calls is not held to the
    // vendor's per-minute budget in real time, and many calls at one simulated moment are still
    // paced in real time. Its waits are skipped by an advance that has nothing else to wait for
    // (skipping_time), so a backoff or a 429's pause costs no real seconds.
    connectors::time_source runtime_time() {
        return waits ? waits->source() : connectors::real_time();
    }

    // The runtime pieces vendor connectors borrow; the limiter knows each vendor's limits.
    connectors::runtime_deps runtime_for(const connectors::connector_settings& s) {
        if (!limiter) {
            limiter = std::make_unique<connectors::rate_limiter>(runtime_time());
            connectors::builtin_kinds().register_limits(*limiter);
        }
        if (!tokens) {
            std::optional<connectors::sealing_key> key;
            if (const auto& k = cfg->daemon().secrets_key) {
                std::string error;
                key = connectors::parse_secrets_key(k->reveal(), error);  // checked by validate
            }
            tokens = std::make_unique<connectors::token_store>(*store, std::move(key));
            // Rows stored before secrets_key was set are sealed now; an unsealed row found
            // later is refused.
            if (auto sealed = tokens->reseal_plain(); !sealed.ok()) {
                log->error("Cannot seal stored tokens; unsealed ones will be refused error=\"{}\"",
                           sealed.st.message);
            } else if (sealed.value > 0) {
                log->info("Sealed stored tokens written before secrets_key was set count={}",
                          sealed.value);
            }
        }
        connectors::runtime_deps rt;
        rt.executor = work_ioc.get_executor();
        rt.clock = clock.get();
        rt.tokens = tokens.get();
        rt.limiter = limiter.get();
        rt.http.log = logs->get("http.client." + s.name);
        rt.metrics = &metrics;
        rt.log = logs->get("connector." + s.name);
        rt.time = runtime_time();
        return rt;
    }

    // The reply-token key when [daemon] secrets_key is not set: 32 random bytes made once and
    // kept in the state (meta), so tokens in emails already sent stay valid across restarts.
    std::string stored_reply_key() {
        constexpr std::string_view key_name = "daemon/reply_key";
        auto found = store->get(state::cf::meta, key_name);
        if (found.ok() && found.value && found.value->size() == 32) {
            return *found.value;
        }
        std::random_device rd;
        std::string key;
        while (key.size() < 32) {
            const auto v = rd();
            for (int i = 0; i < 4 && key.size() < 32; ++i) {
                key.push_back(static_cast<char>((v >> (8 * i)) & 0xffu));
            }
        }
        state::batch b(*store);
        b.put(state::cf::meta, key_name, key);
        if (auto st = store->write(b, true); !st.ok) {
            log->error(
                "Cannot store the reply-token key; reply tokens change at restart "
                "error=\"{}\"",
                st.message);
        }
        return key;
    }

    void make_connectors() {
        std::set<std::string, std::less<>> available;
        std::map<std::string, connectors::connector*, std::less<>> view;
        for (const auto& s : cfg->connectors) {
            if (!s.enabled) {
                continue;
            }
            auto c = connectors::make_connector(s, runtime_for(s));
            if (!c) {
                // validate refuses kinds this build cannot run; this is a runtime piece missing.
                log->error("Connector could not be built connector={} kind={}", s.name, s.kind);
                continue;
            }
            available.insert(s.name);
            view.emplace(s.name, c.get());
            connectors.emplace(s.name, std::move(c));
            running_settings.emplace(s.name, settings_fingerprint(s));
        }
        auto deps = rule_deps_for(*cfg, available, &metrics);
        if (deps.reply_key.empty()) {
            deps.reply_key = stored_reply_key();
        }
        auto built = make_rules(*cfg, deps);
        for (const auto& [name, error] : built.failed) {
            log->error("Workflow disabled rule={}: {}", name, error);
        }
        engine = std::make_unique<workflows::engine>(std::move(built.rules));
        for (const auto& r : engine->rules()) {
            log->info("Workflow on rule={}", r->name());
        }
        auto* manual = dynamic_cast<util::manual_clock*>(clock.get());
        pipeline_options popt;
        popt.refresh_wait = cfg->daemon().refresh_wait;
        const auto& retention = cfg->daemon().retention;
        popt.prune_every = retention.interval;
        pruner = std::make_unique<state::pruner>(
            *store, to_policy(retention), static_cast<std::size_t>(retention.chunk));
        pipe = std::make_unique<pipeline>(work_ioc.get_executor(),
                                          pipeline_deps{*store,
                                                        *inbox,
                                                        *outbox,
                                                        *timers,
                                                        *dead_letters,
                                                        *changes,
                                                        *audit,
                                                        *engine,
                                                        view,
                                                        *clock,
                                                        manual,
                                                        logs->get("pipeline"),
                                                        metrics,
                                                        pruner.get(),
                                                        waits.get()},
                                          popt);
        webhooks = std::make_unique<intake>(intake::deps{
            view,
            *store,
            *inbox,
            *committer,
            *clock,
            metrics,
            logs->get("webhooks"),
            [this] { pipe->kick(); },
            [this](bool ok) {
                if (state_writable.exchange(ok) != ok) {
                    if (ok) {
                        log->info("State is writable again");
                    } else {
                        log->error("State write failed: answering 503 and reporting not ready");
                        net::post(ioc, [this] { start_resuming(); });
                    }
                }
            }});
    }

    // After a failed state write (a full disk: RocksDB then refuses every write until resumed),
    // tries DB::Resume and a synced probe write with backoff (1 s doubling to 1 min) until both
    // succeed; then the state is writable and the daemon ready again, without a restart.
    void start_resuming() {
        if (resuming || stopping) {
            return;
        }
        resuming = true;
        net::co_spawn(ioc, resume_loop(), net::detached);
    }

    // One attempt, on the pipeline's thread (Resume may flush memtables: not on the listeners').
    net::awaitable<state::status> try_resume() {
        auto op = [this]() -> net::awaitable<state::status> {
            if (auto st = store->resume(); !st.ok) {
                co_return st;
            }
            state::batch b(*store);
            b.put(state::cf::meta, "daemon/resume_probe", util::format_rfc3339(clock->now()));
            co_return store->write(b, true);
        };
        co_return co_await net::co_spawn(work_ioc, std::move(op), use_awaitable);
    }

    net::awaitable<void> resume_loop() {
        std::chrono::milliseconds wait{1000};
        net::steady_timer timer(ioc);
        while (!stopping && !state_writable.load()) {
            timer.expires_after(wait);
            auto [ec] = co_await timer.async_wait(as_tuple_awaitable);
            if (ec || stopping) {
                break;
            }
            const auto st = co_await try_resume();
            if (st.ok) {
                state_writable = true;
                log->info("State is writable again (resumed after a write failure)");
                pipe->kick();
                break;
            }
            if (st.needs_reopen && disk_has_room(cfg->daemon().data_dir)) {
                // Only a reopen clears it: exit so the service manager restarts us (the unit
                // has Restart=on-failure); every acknowledged delivery is in the WAL.
                log->critical(
                    "State cannot resume in place after a failed write; exiting to be restarted "
                    "error=\"{}\"",
                    st.message);
                exit_code = exit_tempfail;
                co_await shutdown();
                break;
            }
            log->warn("State still not writable, retrying in {}s error=\"{}\"",
                      std::min<std::int64_t>(wait.count() * 2, 60'000) / 1000,
                      st.message);
            wait = std::min<std::chrono::milliseconds>(wait * 2, std::chrono::minutes(1));
        }
        resuming = false;
    }

    net::awaitable<http::response> deadletter_request(std::string verb, http::request req) {
        const auto j = nlohmann::json::parse(req.body, nullptr, false);
        if (j.is_discarded() || !j.is_object() || !j.contains("id") || !j["id"].is_string()) {
            co_return http::response::error(
                400, "bad_request", R"(expected {"id": "<dead letter id>"})");
        }
        auto op = deadletter_op(dead_letters.get(), verb, j["id"].get<std::string>());
        auto r = co_await net::co_spawn(work_ioc, std::move(op), use_awaitable);
        if (r.status == 200) {
            log->info("Dead letter {} id={}",
                      verb == "retry" ? "retried" : "dropped",
                      j["id"].get<std::string>());
            pipe->kick();
        }
        co_return r;
    }

    // A read of state for the status listener, on the pipeline's thread so it sees whole steps.
    net::awaitable<http::response> read_request(
        std::function<nlohmann::json(const state::store&)> fn) {
        auto op = [this, fn = std::move(fn)]() -> net::awaitable<http::response> {
            co_return http::response::json(200, fn(*store).dump(2));
        };
        co_return co_await net::co_spawn(work_ioc, std::move(op), use_awaitable);
    }

    // POST /workflows/<rule>/<verb>: the rule decides, in one batch on the pipeline's thread,
    // like any other step.
    net::awaitable<http::response> workflow_post(std::string rule,
                                                 std::string verb,
                                                 http::request req) {
        auto op = [this, rule, verb, body = req.body]() -> net::awaitable<http::response> {
            state::batch b(*store);
            workflows::context ctx{b, *outbox, *timers, *audit, clock->now()};
            ctx.store = store.get();
            const command_deps deps{*store, [this, &b] { return store->write(b, true); }};
            co_return workflow_command(*engine, rule, verb, body, ctx, deps);
        };
        auto r = co_await net::co_spawn(work_ioc, std::move(op), use_awaitable);
        if (r.status == 200) {
            log->info("Workflow command done rule={} verb={}", rule, verb);
            pipe->kick();
        }
        co_return r;
    }

    // POST /identities/<verb>: one batch on the pipeline's thread, audited.
    net::awaitable<http::response> identities_post(std::string verb, http::request req) {
        auto op = [this, verb, body = req.body]() -> net::awaitable<http::response> {
            state::batch b(*store);
            const auto now = clock->now();
            co_return identities_command(
                verb, body, *store, b, *audit, now, [this, &b, now](const auto& clients) {
                    // The workflows see each client again, now in its new party.
                    workflows::context ctx{b, *outbox, *timers, *audit, now};
                    ctx.store = store.get();
                    for (const auto& id : clients) {
                        auto row = state::get_entity(*store, b, "client", id);
                        if (!row.ok()) {
                            return row.st;
                        }
                        std::string error;
                        const auto j =
                            nlohmann::json::parse(row.value.value_or(""), nullptr, false);
                        auto c =
                            j.is_object() ? mappings::client_from_json(j, error) : std::nullopt;
                        if (!c) {
                            continue;
                        }
                        const auto ch = mappings::make_change(mappings::entity(std::move(*c)),
                                                              0,
                                                              mappings::change::op::updated,
                                                              "identities");
                        if (auto st = engine->on_change(ch, ctx); !st.ok) {
                            return st;
                        }
                    }
                    return store->write(b, true);
                });
        };
        auto r = co_await net::co_spawn(work_ioc, std::move(op), use_awaitable);
        if (r.status == 200) {
            log->info("Identity command done verb={}", verb);
            pipe->kick();
        }
        co_return r;
    }

    // The part of a /workflows/<rule>/<verb> path after the prefix, split at the first '/'.
    static std::pair<std::string, std::string> rule_and_verb(std::string_view rest) {
        const auto slash = rest.find('/');
        if (slash == std::string_view::npos) {
            return {std::string(rest), {}};
        }
        return {std::string(rest.substr(0, slash)), std::string(rest.substr(slash + 1))};
    }

    void install_workflow_routes(const std::shared_ptr<const access_policy>& policy) {
        constexpr std::string_view prefix = "/workflows/";
        status_routes.add("GET", "/workflows", guard_read(policy, [this](http::request) {
                              return read_request(
                                  [this](const state::store&) { return workflows_json(*engine); });
                          }));
        status_routes.add_prefix("GET",
                                 std::string(prefix),
                                 "/workflows/:rule",
                                 guard_read(policy, [this, prefix](http::request req) {
                                     return read_view(req.path.substr(prefix.size()));
                                 }));
        status_routes.add_prefix(
            "POST",
            std::string(prefix),
            "/workflows/:rule/:verb",
            guard_write(policy, [this, prefix](http::request req) {
                auto [rule, verb] = rule_and_verb(std::string_view(req.path).substr(prefix.size()));
                return workflow_post(std::move(rule), std::move(verb), std::move(req));
            }));
        // The identity map: exceptions and links, and the operator's decisions.
        status_routes.add(
            "GET", "/identities", guard_read(policy, [this](http::request) {
                return read_request([](const state::store& s) { return identities_json(s); });
            }));
        for (std::string verb : {"link", "unlink"}) {
            status_routes.add(
                "POST", "/identities/" + verb, guard_write(policy, [this, verb](http::request req) {
                    return identities_post(verb, std::move(req));
                }));
        }
        // The invoicing workflow's documented routes: approvals and exceptions.
        status_routes.add("GET", "/approvals", guard_read(policy, [this](http::request) {
                              return read_view("invoicing/approvals");
                          }));
        status_routes.add("GET", "/exceptions", guard_read(policy, [this](http::request) {
                              return read_view("invoicing/exceptions");
                          }));
        for (const std::string base : {"/approvals/", "/exceptions/"}) {
            const bool approvals = base == "/approvals/";
            status_routes.add_prefix(
                "GET",
                base,
                base + ":id",
                guard_read(policy, [this, base, approvals](http::request req) {
                    const auto id = req.path.substr(base.size());
                    return read_view((approvals ? "invoicing/show/" : "invoicing/exception/") + id);
                }));
            status_routes.add_prefix(
                "POST",
                base,
                base + ":id/:verb",
                guard_write(
                    policy,
                    [this, base, approvals](http::request req) -> net::awaitable<http::response> {
                        // POST /approvals/<id>/approve|reject|redraft, POST
                        // /exceptions/<id>/resolve: the rule's command with the id from the path
                        // and the rest from the body.
                        const std::string rest = req.path.substr(base.size());
                        const auto slash = rest.rfind('/');
                        const auto verb =
                            slash == std::string::npos ? std::string() : rest.substr(slash + 1);
                        const bool known =
                            approvals ? verb == "approve" || verb == "reject" || verb == "redraft"
                                      : verb == "resolve";
                        auto body = nlohmann::json::parse(
                            req.body.empty() ? std::string("{}") : req.body, nullptr, false);
                        if (!known || body.is_discarded() || !body.is_object()) {
                            co_return http::response::error(
                                known ? 400 : 404,
                                known ? "bad_request" : "not_found",
                                known ? "expected a JSON object body" : "no such route");
                        }
                        body["id"] = rest.substr(0, slash);
                        req.body = body.dump();
                        co_return co_await workflow_post("invoicing", verb, std::move(req));
                    }));
        }
        // The documented follow-up routes, served through the same path.
        status_routes.add("GET", "/followups", guard_read(policy, [this](http::request req) {
                              return followups_route(std::move(req));
                          }));
        status_routes.add("GET", "/tasks", guard_read(policy, [this](http::request) {
                              return read_view("followup/tasks");
                          }));
        status_routes.add("GET", "/reports/weekly", guard_read(policy, [this](http::request req) {
                              return weekly_report_route(std::move(req));
                          }));
        for (std::string verb : {"resume", "stop"}) {
            status_routes.add(
                "POST", "/followups/" + verb, guard_write(policy, [this, verb](http::request req) {
                    return workflow_post("followup", verb, std::move(req));
                }));
        }
    }

    // GET /: the dashboard page. The status snapshot is taken here like /status; the workflows'
    // views on the pipeline's thread, so they see whole steps.
    net::awaitable<http::response> dashboard() {
        dashboard_input in;
        in.status = nlohmann::json::parse(render_status_json(snapshot()));
        auto op = [this]() -> net::awaitable<dashboard_input> {
            dashboard_input views;
            const auto view = [this](std::string_view path) {
                auto r = workflow_view(*engine, path, *store);
                return r.status == 200 ? nlohmann::json::parse(r.body, nullptr, false)
                                       : nlohmann::json();
            };
            // The first rows and the counts by stage: the page shows no more, and a large
            // firm's full list (every sequence with its invoice and client) is slow to build.
            if (const auto* f = dynamic_cast<const workflows::followup::followup_rule*>(
                    engine->find("followup"))) {
                views.followups = workflows::followup::followups_page(
                    *store, f->plan().config(), dashboard_max_rows, "")["followups"];
                views.followup_stages = workflows::followup::followup_stages(*store);
            }
            views.approvals = view("invoicing/approvals");
            views.exceptions = view("invoicing/exceptions");
            views.identities = identities_json(*store, false);
            // The last finished week (its stored snapshot once the week has been closed, else
            // computed): what the last computation gave; one older than five minutes (or none)
            // starts the next in the background.
            refresh_weekly();
            views.weekly = weekly_cache;
            co_return views;
        };
        auto views = co_await net::co_spawn(work_ioc, std::move(op), use_awaitable);
        in.followups = std::move(views.followups);
        in.followup_stages = std::move(views.followup_stages);
        in.approvals = std::move(views.approvals);
        in.exceptions = std::move(views.exceptions);
        in.identities = std::move(views.identities);
        in.weekly = std::move(views.weekly);
        http::response r;
        r.status = 200;
        r.content_type = "text/html; charset=utf-8";
        r.body = render_dashboard(in);
        r.headers = {{"Cache-Control", "no-store"},
                     {"X-Content-Type-Options", "nosniff"},
                     {"X-Frame-Options", "DENY"},
                     {"Referrer-Policy", "no-referrer"},
                     {"Content-Security-Policy",
                      "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
                      "frame-ancestors 'none'; form-action 'none'; base-uri 'none'"}};
        co_return r;
    }

    // GET /reports/weekly[?week=YYYY-Www][&format=html], on the pipeline's thread.
    net::awaitable<http::response> weekly_report_route(http::request req) {
        auto op = [this, query = std::move(req.query)]() -> net::awaitable<http::response> {
            co_return report_response(*store, report_settings_of(*cfg), query, clock->now());
        };
        co_return co_await net::co_spawn(work_ioc, std::move(op), use_awaitable);
    }

    // Starts computing the dashboard's weekly figures on the report thread when they are
    // missing or older than five minutes, unless that runs already; the result is handed back
    // to the pipeline's thread. Pipeline thread only. Not at start: an idle daemon stays small.
    void refresh_weekly() {
        const auto now = clock->now();
        const bool stale = weekly_cache.is_null() ||
                           now - weekly_cache_at >= std::chrono::minutes(5) ||
                           now < weekly_cache_at;
        if (weekly_refreshing || !stale) {
            return;
        }
        weekly_refreshing = true;
        net::post(report_ioc, [this, settings = report_settings_of(*cfg), now] {
            auto figures = dashboard_weekly(
                workflows::weekly_report::weekly_report_json(*store, settings, now));
            net::post(work_ioc, [this, figures = std::move(figures), now]() mutable {
                weekly_cache = std::move(figures);
                weekly_cache_at = now;
                weekly_refreshing = false;
            });
        });
    }

    // GET /followups[?limit=N&after=INVOICE]: one page, on the pipeline's thread.
    net::awaitable<http::response> followups_route(http::request req) {
        auto op = [this, query = std::move(req.query)]() -> net::awaitable<http::response> {
            co_return followups_response(*engine, query, *store);
        };
        co_return co_await net::co_spawn(work_ioc, std::move(op), use_awaitable);
    }

    // GET /workflows/<rule>[/<path>], on the pipeline's thread so it sees whole steps.
    net::awaitable<http::response> read_view(std::string rule_and_path) {
        auto op = [this, rule_and_path]() -> net::awaitable<http::response> {
            co_return workflow_view(*engine, rule_and_path, *store);
        };
        co_return co_await net::co_spawn(work_ioc, std::move(op), use_awaitable);
    }

    net::awaitable<http::response> clock_advance(http::request req) {
        const auto j = nlohmann::json::parse(req.body, nullptr, false);
        if (j.is_discarded() || !j.is_object() || !j.contains("seconds") ||
            !j["seconds"].is_number_integer()) {
            co_return http::response::error(
                400, "bad_request", R"(expected a JSON object {"seconds": N} with an integer N)");
        }
        const auto seconds = j["seconds"].get<std::int64_t>();
        constexpr std::int64_t max_step = 10LL * 366 * 24 * 3600;
        if (seconds < 0 || seconds > max_step) {
            co_return http::response::error(
                400, "bad_request", "seconds must be between 0 and 10 years; time never goes back");
        }
        const auto now = co_await pipe->advance(std::chrono::seconds(seconds));
        nlohmann::json out{{"now", util::format_rfc3339(now)}};
        co_return http::response::json(200, out.dump());
    }

    int run(std::ostream& err) {
        config::diagnostics diags;
        auto loaded = load_app_config(opts.config_path, diags);
        if (!loaded) {
            err << diags.render();
            return exit_config;
        }
        cfg = std::make_shared<const app_config>(std::move(*loaded));
        const auto& d = cfg->daemon();
        const auto output = to_log_output(d.log_fmt);
        if (output == util::log_output::journald) {
            // The system log goes through the platform layer (journald here).
            logs = std::make_unique<util::log_hub>(
                util::log_output::external,
                to_level(d.log_level),
                std::vector<spdlog::sink_ptr>{std::make_shared<system_log_sink>(*life)});
        } else {
            logs = std::make_unique<util::log_hub>(output, to_level(d.log_level));
        }
        log = logs->get("daemon");
        for (const auto& item : diags.items()) {
            log->warn("Configuration warning: {}", item.to_string());
        }

        std::error_code fs_ec;
        if (!std::filesystem::exists(d.data_dir, fs_ec)) {
            // Made here: private from the start (tokens and the status token live in it).
            std::filesystem::create_directories(d.data_dir, fs_ec);
            ::chmod(d.data_dir.c_str(), 0700);
        }
        data_dir_at_start = d.data_dir;
        if (!d.secrets_key) {
            if (auto e = connectors::check_data_dir_private(d.data_dir);
                cfg->uses_oauth2() && !e.empty()) {
                log->critical(
                    "Refusing to store unsealed OAuth2 tokens: {} (set [daemon] "
                    "secrets_key, or chmod 700 the data_dir)",
                    e);
                return exit_cant_create;
            }
        }
        auto opened = state::store::open(d.data_dir / "state");
        if (!opened.ok()) {
            log->critical(
                "Cannot open state dir={} error=\"{}\"", d.data_dir.string(), opened.st.message);
            return exit_cant_create;
        }
        store = std::move(opened.value);
        if (d.clock == config::clock_mode::simulated) {
            // Business time never goes back: a state that ran before resumes at its stored time;
            // `start` applies to an empty state only.
            auto stored = state::get_simulated_time(*store);
            if (!stored.ok()) {
                log->critical("Cannot read the simulated time dir={} error=\"{}\"",
                              d.data_dir.string(),
                              stored.st.message);
                return exit_cant_create;
            }
            const auto now = stored.value.value_or(d.clock_start);
            if (stored.value) {
                log->info("Simulated clock resumes at the stored time now={} configured_start={}",
                          util::format_rfc3339(now),
                          util::format_rfc3339(d.clock_start));
            }
            clock = std::make_unique<util::manual_clock>(now);
            const util::clock* business = clock.get();
            waits = std::make_unique<connectors::skipping_time>([business, origin = now] {
                return std::chrono::duration_cast<connectors::steady_duration>(business->now() -
                                                                               origin);
            });
        } else {
            clock = std::make_unique<util::system_clock>();
        }
        config_loaded_at = clock->now();
        if (auto e = open_tables(); !e.empty()) {
            log->critical("Cannot open state dir={} error=\"{}\"", d.data_dir.string(), e);
            return exit_cant_create;
        }
        make_connectors();

        http::handler advance;
        if (clock->simulated()) {
            advance = [this](http::request req) { return clock_advance(std::move(req)); };
        }
        auto policy = std::make_shared<access_policy>();
        status_policy = policy;
        policy->listener_host = d.status.address.host;
        if (auto error = apply_status_access(d); !error.empty()) {
            log->critical("Cannot make the status token for changes over the status listener: {}",
                          error);
            return exit_cant_create;
        }
        install_status_routes(status_routes, *this, metrics, policy, std::move(advance));
        for (std::string verb : {"retry", "drop"}) {
            status_routes.add("POST",
                              "/deadletters/" + verb,
                              guard_write(policy, [this, verb](http::request req) {
                                  return deadletter_request(verb, std::move(req));
                              }));
        }
        install_workflow_routes(policy);
        status_routes.add("GET",
                          "/",
                          guard_read(
                              policy,
                              [this](http::request) { return dashboard(); },
                              /*browser=*/true));
        webhook_routes.add_prefix(
            "POST", "/webhooks/", "/webhooks/:connector", [this](http::request req) {
                return webhooks->handle(std::move(req));
            });

        webhook = std::make_unique<http::server>(ioc.get_executor(),
                                                 "webhook",
                                                 webhook_limits(d.webhook.limits, cfg->connectors),
                                                 webhook_routes.as_handler(),
                                                 logs->get("http.webhook"),
                                                 &metrics);
        status = std::make_unique<http::server>(ioc.get_executor(),
                                                "status",
                                                to_http_limits(d.status.limits),
                                                status_routes.as_handler(),
                                                logs->get("http.status"),
                                                &metrics);
        if (auto e = webhook->listen(d.webhook.address.host, d.webhook.address.port); !e.empty()) {
            log->critical("Webhook listener failed: {}", e);
            return exit_cant_create;
        }
        if (auto e = status->listen(d.status.address.host, d.status.address.port); !e.empty()) {
            log->critical("Status listener failed: {}", e);
            return exit_cant_create;
        }
        webhook->start();
        status->start();
        write_ports_file();

        work_guard.emplace(work_ioc.get_executor());
        work_thread = std::thread([this] { work_ioc.run(); });
        report_guard.emplace(report_ioc.get_executor());
        report_thread = std::thread([this] { report_ioc.run(); });
        pipe->start();
        signal_set_.emplace(ioc, SIGTERM, SIGINT, SIGHUP);
        net::co_spawn(ioc, signal_loop(), net::detached);
        net::co_spawn(ioc, heap_loop(), net::detached);
        if (auto interval = life->watchdog_interval()) {
            net::co_spawn(ioc, watchdog_loop(*interval), net::detached);
        }
        log->info("Started version={} webhook_port={} status_port={} data_dir={} clock={}",
                  util::version(),
                  webhook->port(),
                  status->port(),
                  d.data_dir.string(),
                  clock->simulated() ? "simulated" : "system");
        life->ready();
        int rc = 0;
        try {
            ioc.run();
        } catch (const std::exception& e) {
            log->critical("Event loop failed error=\"{}\"", e.what());
            rc = exit_software;
        }
        work_guard.reset();
        work_ioc.stop();
        work_thread.join();
        // A computation under way ends first (it reads the store); its answer is dropped.
        report_guard.reset();
        report_ioc.stop();
        report_thread.join();
        // Connectors own sockets and timers of work_ioc: they go before it does.
        webhooks.reset();
        pipe.reset();
        connectors.clear();
        incoming.clear();
        retired.clear();
        committer->stop();
        std::error_code ec;
        std::filesystem::remove(data_dir_at_start / runtime_file_name, ec);
        logs->flush();
        return rc != 0 ? rc : exit_code;
    }
};

app::app(app_options options) : impl_(std::make_unique<impl>(std::move(options))) {}

app::~app() = default;

int app::run(std::ostream& err) { return impl_->run(err); }

void app::request_stop() {
    auto* i = impl_.get();
    net::post(i->ioc, [i] { net::co_spawn(i->ioc, i->shutdown(), net::detached); });
}

void app::request_reload() {
    auto* i = impl_.get();
    net::post(i->ioc, [i] {
        if (!i->stopping) {
            i->reload();
        }
    });
}

}  // namespace billsync::daemon
