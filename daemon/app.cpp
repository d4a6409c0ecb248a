#include "daemon/app.hpp"

#include <fmt/format.h>
#include <spdlog/logger.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <csignal>
#include <fstream>
#include <nlohmann/json.hpp>
#include <ostream>

#include "daemon/app_config.hpp"
#include "daemon/sd_notify.hpp"
#include "daemon/status.hpp"
#include "http/router.hpp"
#include "http/server.hpp"
#include "state/store.hpp"
#include "util/clock.hpp"
#include "util/log.hpp"
#include "util/metrics.hpp"
#include "util/redact.hpp"
#include "util/version.hpp"

namespace billsync::daemon {

namespace {

constexpr int exit_config = 78;      // EX_CONFIG
constexpr int exit_cant_create = 73;  // EX_CANTCREAT
constexpr int exit_software = 70;    // EX_SOFTWARE

http::limits to_http_limits(const config::http_limits& l) {
    http::limits out;
    out.max_body_bytes = l.max_body_bytes;
    out.max_header_bytes = l.max_header_bytes;
    out.read_timeout = l.read_timeout;
    out.idle_timeout = l.idle_timeout;
    out.max_connections = l.max_connections;
    return out;
}

util::log_output to_log_output(config::log_format f) {
    switch (f) {
        case config::log_format::text: return util::log_output::text;
        case config::log_format::json: return util::log_output::json;
        case config::log_format::journald: return util::log_output::journald;
        case config::log_format::automatic: break;
    }
    return util::detect_log_output();
}

spdlog::level::level_enum to_level(const std::string& text) {
    auto level = spdlog::level::info;
    util::parse_log_level(text, level);
    return level;
}

}  // namespace

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
    http::router webhook_routes;
    http::router status_routes;
    std::unique_ptr<http::server> webhook;
    std::unique_ptr<http::server> status;
    std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
    bool stopping = false;
    net::steady_timer watchdog{ioc};

    explicit impl(app_options o) : opts(std::move(o)) {}

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
            for (const auto& c : cfg->connectors) {
                s.connectors.push_back({c.name, c.kind, c.enabled, c.enabled ? "idle" : "disabled"});
            }
        }
        return s;
    }

    void write_ports_file() {
        if (opts.ports_file.empty()) {
            return;
        }
        nlohmann::json j{{"webhook_port", webhook->port()},
                         {"status_port", status->port()},
                         {"pid", ::getpid()}};
        const auto tmp = opts.ports_file.string() + ".tmp";
        {
            std::ofstream out(tmp, std::ios::trunc);
            out << j.dump() << '\n';
        }
        std::filesystem::rename(tmp, opts.ports_file);
    }

    net::awaitable<void> shutdown() {
        if (stopping) {
            co_return;
        }
        stopping = true;
        sd_notify("STOPPING=1");
        const auto grace = cfg->daemon().shutdown_grace;
        log->info("Stopping grace_ms={}", grace.count());
        watchdog.cancel();
        co_await webhook->shutdown(grace);
        co_await status->shutdown(std::chrono::milliseconds(1000));
        log->info("Stopped");
        ioc.stop();
    }

    void reload() {
        sd_notify_reloading();
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
                    log->error("Configuration rejected, keeping the running one: {}", d.to_string());
                }
            }
            sd_notify("READY=1");
            return;
        }
        const auto& old_d = cfg->daemon();
        const auto& new_d = next->daemon();
        if (new_d.data_dir != old_d.data_dir ||
            new_d.webhook.address.text() != old_d.webhook.address.text() ||
            new_d.status.address.text() != old_d.status.address.text() ||
            new_d.clock != old_d.clock) {
            log->warn(
                "Changes to data_dir, listener addresses or the clock take effect after a restart");
        }
        logs->set_level(to_level(new_d.log_level));
        webhook->set_limits(to_http_limits(new_d.webhook.limits));
        status->set_limits(to_http_limits(new_d.status.limits));
        cfg = std::make_shared<const app_config>(std::move(*next));
        config_loaded_at = clock->now();
        ++reloads;
        last_reload_error.clear();
        log->info("Configuration reloaded connectors={}", cfg->connectors.size());
        sd_notify("READY=1");
    }

    net::awaitable<void> signal_loop() {
        net::signal_set signals(ioc, SIGTERM, SIGINT, SIGHUP);
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
        while (!stopping) {
            sd_notify("WATCHDOG=1");
            watchdog.expires_after(interval);
            auto [ec] = co_await watchdog.async_wait(as_tuple_awaitable);
            if (ec) {
                co_return;
            }
        }
    }

    int run(std::ostream& err) {
        config::diagnostics diags;
        auto loaded = load_app_config(opts.config_path, diags);
        if (!loaded) {
            err << diags.render();
            return exit_config;
        }
        const auto& d = loaded->daemon();
        logs = std::make_unique<util::log_hub>(to_log_output(d.log_fmt), to_level(d.log_level));
        log = logs->get("daemon");
        for (const auto& item : diags.items()) {
            log->warn("Configuration warning: {}", item.to_string());
        }
        if (d.clock == config::clock_mode::simulated) {
            clock = std::make_unique<util::manual_clock>(d.clock_start);
        } else {
            clock = std::make_unique<util::system_clock>();
        }
        cfg = std::make_shared<const app_config>(std::move(*loaded));
        config_loaded_at = clock->now();

        std::error_code fs_ec;
        std::filesystem::create_directories(d.data_dir, fs_ec);
        auto opened = state::store::open(d.data_dir / "state");
        if (!opened.ok()) {
            log->critical(
                "Cannot open state dir={} error=\"{}\"", d.data_dir.string(), opened.st.message);
            return exit_cant_create;
        }
        store = std::move(opened.value);

        install_status_routes(status_routes, *this, metrics, d.status_token);
        webhook_routes.add_prefix(
            "POST", "/webhooks/", "/webhooks/:connector", [](http::request) -> net::awaitable<http::response> {
                co_return http::response::error(404, "unknown_connector", "no such connector");
            });

        webhook = std::make_unique<http::server>(ioc.get_executor(),
                                                 "webhook",
                                                 to_http_limits(d.webhook.limits),
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

        net::co_spawn(ioc, signal_loop(), net::detached);
        if (auto interval = sd_watchdog_interval()) {
            net::co_spawn(ioc, watchdog_loop(*interval), net::detached);
        }
        log->info("Started version={} webhook_port={} status_port={} data_dir={} clock={}",
                  util::version(),
                  webhook->port(),
                  status->port(),
                  d.data_dir.string(),
                  clock->simulated() ? "simulated" : "system");
        sd_notify("READY=1");
        try {
            ioc.run();
        } catch (const std::exception& e) {
            log->critical("Event loop failed error=\"{}\"", e.what());
            return exit_software;
        }
        logs->flush();
        return 0;
    }
};

app::app(app_options options) : impl_(std::make_unique<impl>(std::move(options))) {}

app::~app() = default;

int app::run(std::ostream& err) { return impl_->run(err); }

}  // namespace billsync::daemon
