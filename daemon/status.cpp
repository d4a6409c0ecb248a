#include "daemon/status.hpp"

#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <utility>

#include "util/metrics.hpp"
#include "util/version.hpp"

namespace billsync::daemon {

namespace {

net::awaitable<http::response> healthz() {
    co_return http::response::json(200, R"({"status":"ok"})");
}

bool is_ready(const status_snapshot& s) {
    return s.config_loaded && s.state_open && s.state_writable && !s.stopping && s.pipeline_alive;
}

net::awaitable<http::response> readyz(const status_source* source) {
    const auto s = source->snapshot();
    nlohmann::json j{{"config_loaded", s.config_loaded},
                     {"state_open", s.state_open},
                     {"state_writable", s.state_writable},
                     {"stopping", s.stopping},
                     {"pipeline_alive", s.pipeline_alive}};
    j["status"] = is_ready(s) ? "ready" : "not_ready";
    co_return http::response::json(is_ready(s) ? 200 : 503, j.dump());
}

net::awaitable<http::response> status(const status_source* source) {
    co_return http::response::json(200, render_status_json(source->snapshot()));
}

net::awaitable<http::response> prometheus(util::metrics_registry* metrics) {
    auto r = http::response::text(200, metrics->render());
    r.content_type = "text/plain; version=0.0.4; charset=utf-8";
    co_return r;
}

}  // namespace

std::string render_status_json(const status_snapshot& s) {
    nlohmann::json j;
    j["version"] = std::string(util::version());
    j["commit"] = std::string(util::git_commit());
    j["uptime_s"] = s.uptime.count();
    j["now"] = util::format_rfc3339(s.now);
    j["clock"] = s.clock_simulated ? "simulated" : "system";
    j["ready"] = is_ready(s);
    j["config"] = {{"file", s.config_file},
                   {"loaded_at", util::format_rfc3339(s.config_loaded_at)},
                   {"reloads", s.reloads},
                   {"reload_failures", s.reload_failures},
                   {"last_reload_error",
                    s.last_reload_error.empty() ? nlohmann::json(nullptr)
                                                : nlohmann::json(s.last_reload_error)}};
    j["state"] = {{"open", s.state_open}, {"writable", s.state_writable}, {"data_dir", s.data_dir}};
    auto& conns = j["connectors"] = nlohmann::json::array();
    for (const auto& c : s.connectors) {
        nlohmann::json entry{
            {"name", c.name}, {"kind", c.kind}, {"enabled", c.enabled}, {"state", c.state}};
        entry["last_webhook"] = c.last_webhook
                                    ? nlohmann::json(util::format_rfc3339(*c.last_webhook))
                                    : nlohmann::json(nullptr);
        if (!c.detail_json.empty()) {
            auto detail = nlohmann::json::parse(c.detail_json, nullptr, false);
            if (!detail.is_discarded()) {
                if (detail.contains("credential") && detail["credential"] == "reconnect_needed") {
                    entry["state"] = "reconnect_needed";
                }
                entry["detail"] = std::move(detail);
            }
        }
        conns.push_back(std::move(entry));
    }
    auto& queues = j["queues"] = nlohmann::json::object();
    for (const auto& [queue, per] : s.queues) {
        auto& q = queues[queue] = nlohmann::json::object();
        std::uint64_t total = 0;
        auto& by = q["by_connector"] = nlohmann::json::object();
        for (const auto& [connector, depth] : per) {
            total += depth.count;
            nlohmann::json entry{{"count", depth.count}};
            entry["oldest_age_s"] = depth.oldest_age ? nlohmann::json(depth.oldest_age->count())
                                                     : nlohmann::json(nullptr);
            by[connector] = std::move(entry);
        }
        q["count"] = total;
    }
    j["retention"] = {
        {"pruned", s.retention.pruned},
        {"passes", s.retention.passes},
        {"last_pass_at",
         s.retention.last_pass_at ? nlohmann::json(util::format_rfc3339(*s.retention.last_pass_at))
                                  : nlohmann::json(nullptr)},
        {"last_error",
         s.retention.last_error.empty() ? nlohmann::json(nullptr)
                                        : nlohmann::json(s.retention.last_error)}};
    return j.dump(2);
}

void install_status_routes(http::router& routes,
                           const status_source& source,
                           util::metrics_registry& metrics,
                           std::shared_ptr<const access_policy> policy,
                           http::handler clock_advance) {
    metrics
        .get_gauge("billsync_build_info",
                   "Build information; the value is always 1.",
                   {{"version", std::string(util::version())},
                    {"commit", std::string(util::git_commit())}})
        .set(1);
    // Series of queues that emptied since the last render go back to 0 rather than keep their
    // last value: a snapshot lists only queues with something in them.
    auto seen = std::make_shared<std::set<std::pair<std::string, std::string>>>();
    metrics.add_collector([&source, seen](util::metrics_registry& m) {
        const auto s = source.snapshot();
        auto gone = *seen;
        for (const auto& [queue, per] : s.queues) {
            for (const auto& [connector, depth] : per) {
                gone.erase({queue, connector});
                seen->insert({queue, connector});
            }
        }
        for (const auto& [queue, connector] : gone) {
            const util::metric_labels labels{{"queue", queue}, {"connector", connector}};
            m.get_gauge("billsync_queue_depth", "Items waiting per queue and connector.", labels)
                .set(0);
            m.get_gauge("billsync_queue_oldest_age_seconds",
                        "Age of the oldest item per queue and connector.",
                        labels)
                .set(0);
        }
        m.get_gauge("billsync_uptime_seconds", "Seconds since the daemon started.")
            .set(s.uptime.count());
        m.get_gauge("billsync_ready", "1 when the daemon is ready to accept work.")
            .set(is_ready(s) ? 1 : 0);
        m.get_counter("billsync_config_reloads_total", "Successful configuration reloads.");
        for (const auto& [queue, per] : s.queues) {
            for (const auto& [connector, depth] : per) {
                m.get_gauge("billsync_queue_depth",
                            "Items waiting per queue and connector.",
                            {{"queue", queue}, {"connector", connector}})
                    .set(static_cast<std::int64_t>(depth.count));
                m.get_gauge("billsync_queue_oldest_age_seconds",
                            "Age of the oldest item per queue and connector.",
                            {{"queue", queue}, {"connector", connector}})
                    .set(depth.oldest_age ? depth.oldest_age->count() : 0);
            }
        }
    });

    auto guarded = [&policy](http::handler inner) { return guard_read(policy, std::move(inner)); };
    const status_source* src = &source;
    util::metrics_registry* reg = &metrics;
    routes.add("GET", "/healthz", [](http::request) { return healthz(); });
    routes.add("GET", "/readyz", [src](http::request) { return readyz(src); });
    routes.add("GET", "/status", guarded([src](http::request) { return status(src); }));
    routes.add("GET", "/metrics", guarded([reg](http::request) { return prometheus(reg); }));
    if (clock_advance) {
        routes.add("POST", "/clock/advance", guard_write(policy, std::move(clock_advance)));
    }
}

}  // namespace billsync::daemon
