// bench_ratelimit: drain a backlog through the rate limiter and the HTTPS client against
// simulators enforcing Harvest's 100 requests per 15 s, QBO's 500 per minute with 10
// concurrent and Karbon's 120 per minute (its own simulator, with both auth headers), all with
// windows divided by --scale (default 10: 100 per 1.5 s, 500 per 6 s, 120 per 6 s). Karbon's
// ceiling is the lowest, so it drains 30 % of N (600 of the default 2,000: about 30 s); and the
// Xero simulator's 60 per minute and 5 concurrent per tenant (60 per 6 s; its own 429s carry
// Retry-After and X-Rate-Limit-Problem).
//
//   bench_ratelimit [--requests N] [--xero-requests N] [--scale X] [--workers W]
//
// Per vendor it reports the achieved pace as a fraction of the ceiling and the 429s drawn.
// fraction = ideal span / actual span, where the span runs from the first to the last request
// start and the ideal span is (ceil(N / limit) - 1) windows: a client at the ceiling sends one
// full window's worth at once, then one more per window. Ends with one JSON line:
//   {"bench":"ratelimit","vendors":{"harvest":{"fraction":…,"r429":…},"qbo":{…},
//    "karbon":{"fraction":…,"r429":…,"requests":…},
//    "xero":{"fraction":…,"r429":…,"peak_concurrency":…,"max_concurrent":5}}}

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>

#include "connectors/harvest/harvest_kind.hpp"
#include "connectors/karbon/karbon_kind.hpp"
#include "connectors/qbo/qbo_kind.hpp"
#include "connectors/runtime/https_client.hpp"
#include "connectors/runtime/rate_limit.hpp"
#include "connectors/xero/xero_kind.hpp"
#include "sim/karbon_simulator.hpp"
#include "sim/simulators.hpp"
#include "sim/xero_simulator.hpp"

namespace {

using namespace billsync;
using namespace billsync::connectors;
using steady = std::chrono::steady_clock;

struct vendor_run {
    std::string name;     // limiter vendor key
    std::string account;  // limiter account key
    std::string url;
    std::vector<http::header> headers;
    std::uint32_t limit = 0;  // requests per window
    double window_s = 0;      // scaled window
    int requests = 0;         // requests to drain
    int remaining = 0;        // requests not yet started
    int finished = 0;
    int r429 = 0;
    int failures = 0;
    std::string first_error;
    steady::time_point first_start{};
    steady::time_point last_start{};
};

struct bench_context {
    https_client* client;
    rate_limiter* limiter;
};

net::awaitable<void> worker(bench_context ctx, vendor_run* v) {
    while (v->remaining > 0) {
        --v->remaining;
        auto permit = co_await ctx.limiter->acquire(v->name, v->account);
        const auto now = steady::now();
        if (v->first_start == steady::time_point{}) {
            v->first_start = now;
        }
        v->last_start = std::max(v->last_start, now);
        http_request req;
        req.url = v->url;
        req.headers = v->headers;
        auto r = co_await ctx.client->send(std::move(req));
        if (!r.ok()) {
            ++v->failures;
            if (v->first_error.empty()) {
                v->first_error = r.error;
            }
        } else {
            ctx.limiter->observe(v->name, v->account, r.response);
            if (r.response.status == 429) {
                ++v->r429;
            }
        }
        ++v->finished;
    }
}

double fraction(const vendor_run& v) {
    const int requests = v.requests;
    const auto windows = std::ceil(static_cast<double>(requests) / v.limit) - 1;
    const double ideal = windows * v.window_s;
    const double actual = std::chrono::duration<double>(v.last_start - v.first_start).count();
    if (ideal <= 0 || actual <= 0) {
        return 1.0;
    }
    return ideal / actual;
}

int usage() {
    std::cerr << "usage: bench_ratelimit [--requests N] [--xero-requests N] [--scale X] "
                 "[--workers W]\n";
    return 2;
}

}  // namespace

int main(int argc, char** argv) {
    int requests = 2000;
    int xero_requests = 300;  // 60 per window: five windows
    double scale = 10.0;
    int workers = 20;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        if (i + 1 >= argc) {
            return usage();
        }
        const std::string value = argv[++i];
        try {
            if (arg == "--requests") {
                requests = std::stoi(value);
            } else if (arg == "--xero-requests") {
                xero_requests = std::stoi(value);
            } else if (arg == "--scale") {
                scale = std::stod(value);
            } else if (arg == "--workers") {
                workers = std::stoi(value);
            } else {
                return usage();
            }
        } catch (const std::exception&) {
            return usage();
        }
    }
    if (requests <= 0 || xero_requests <= 0 || scale <= 0 || workers <= 0) {
        return usage();
    }

    simulators::simulator_options sim_opts;
    sim_opts.scale = scale;
    simulators::harvest_limits harvest_sim(sim_opts);
    simulators::qbo_limits qbo_sim(sim_opts);
    simulators::sim_server harvest_server;
    simulators::sim_server qbo_server;
    harvest_sim.add_routes(harvest_server.routes());
    harvest_sim.configure(harvest_server);
    qbo_sim.add_routes(qbo_server.routes());
    qbo_sim.configure(qbo_server);
    simulators::karbon_options karbon_opts;
    karbon_opts.scale = scale;
    simulators::karbon_simulator karbon_sim(karbon_opts);
    simulators::sim_server karbon_server;
    karbon_sim.add_routes(karbon_server.routes());
    karbon_sim.configure(karbon_server);
    simulators::xero_sim_options xero_opts;
    xero_opts.scale = scale;
    simulators::xero_simulator xero_sim(xero_opts);
    simulators::sim_server xero_server;
    xero_sim.add_routes(xero_server.routes());
    xero_sim.configure(xero_server);
    const auto xero_tenant = xero_opts.tenants.front();
    const auto xero_grant = xero_sim.oauth().issue_grant();
    for (auto* s : {&harvest_server, &qbo_server, &karbon_server, &xero_server}) {
        if (auto err = s->start(); !err.empty()) {
            std::cerr << "bench_ratelimit: " << err << '\n';
            return 1;
        }
    }

    net::io_context ioc(1);
    client_settings settings;
    settings.proxy = proxy_settings{};
    settings.max_idle_per_host = static_cast<std::size_t>(workers);
    https_client client(ioc.get_executor(), settings);
    rate_limiter limiter(real_time());
    const auto harvest_spec = scaled(harvest::rate_limits(), scale);
    const auto qbo_spec = scaled(qbo::rate_limits(), scale);
    limiter.set_limits("harvest", harvest_spec);
    limiter.set_limits("qbo", qbo_spec);
    limiter.set_limits("karbon", scaled(karbon::rate_limits(), scale));
    limiter.set_limits("xero", scaled(xero::rate_limits(), scale));

    vendor_run harvest;
    harvest.name = "harvest";
    harvest.account = "1121";
    harvest.url = harvest_server.base_url() + "/v2/time_entries?per_page=100";
    harvest.headers = {{"Harvest-Account-Id", "1121"}, {"Authorization", "Bearer bench"}};
    harvest.limit = 100;
    harvest.window_s = 15.0 / scale;
    harvest.requests = requests;
    harvest.remaining = requests;

    vendor_run qbo;
    qbo.name = "qbo";
    qbo.account = "9130357766900456";
    qbo.url = qbo_server.base_url() +
              "/v3/company/9130357766900456/query?query=select%20*%20from%20Invoice";
    qbo.headers = {{"Authorization", "Bearer bench"}, {"Accept", "application/json"}};
    qbo.limit = 500;
    qbo.window_s = 60.0 / scale;
    qbo.requests = requests;
    qbo.remaining = requests;

    vendor_run karbon;
    karbon.name = "karbon";
    karbon.account = "practice";
    karbon.url = karbon_server.base_url() + "/v3/TenantSettings";
    karbon.headers = {{"Authorization", "Bearer " + karbon_opts.bearer_token},
                      {"AccessKey", karbon_opts.access_key},
                      {"Accept", "application/json"}};
    karbon.limit = 120;
    karbon.window_s = 60.0 / scale;
    karbon.requests = std::max(1, requests * 3 / 10);
    karbon.remaining = karbon.requests;

    vendor_run xero;
    xero.name = "xero";
    xero.account = xero_tenant;
    xero.url = xero_server.base_url() + "/api.xro/2.0/Invoices?page=1&pageSize=100";
    xero.headers = {{"Authorization", "Bearer " + xero_grant.access_token},
                    {"xero-tenant-id", xero_tenant},
                    {"Accept", "application/json"}};
    xero.limit = 60;
    xero.window_s = 60.0 / scale;
    xero.requests = xero_requests;
    xero.remaining = xero_requests;

    std::cout << "bench_ratelimit: " << requests << " requests per vendor, windows scaled by 1/"
              << scale << " (harvest 100 per " << harvest.window_s << " s, qbo 500 per "
              << qbo.window_s << " s and 10 concurrent, karbon 120 per " << karbon.window_s
              << " s on " << karbon.requests << " requests, xero " << xero_requests
              << " requests, 60 per " << xero.window_s << " s and 5 concurrent), " << workers
              << " workers each" << std::endl;
    const bench_context ctx{&client, &limiter};
    const auto started = steady::now();
    for (int i = 0; i < workers; ++i) {
        net::co_spawn(ioc, worker(ctx, &harvest), net::detached);
        net::co_spawn(ioc, worker(ctx, &qbo), net::detached);
        net::co_spawn(ioc, worker(ctx, &karbon), net::detached);
        net::co_spawn(ioc, worker(ctx, &xero), net::detached);
    }
    ioc.run();
    const double elapsed = std::chrono::duration<double>(steady::now() - started).count();

    nlohmann::json vendors = nlohmann::json::object();
    for (auto* v : {&harvest, &qbo, &karbon, &xero}) {
        const double f = fraction(*v);
        const double ceiling = v->limit / v->window_s;
        const double span = std::chrono::duration<double>(v->last_start - v->first_start).count();
        std::printf(
            "%-8s finished=%d span_s=%.2f achieved=%.1f/s ceiling=%.1f/s fraction=%.3f "
            "r429=%d failures=%d%s%s\n",
            v->name.c_str(),
            v->finished,
            span,
            f * ceiling,
            ceiling,
            f,
            v->r429,
            v->failures,
            v->first_error.empty() ? "" : " first_error=",
            v->first_error.c_str());
        vendors[v->name] = {{"fraction", std::round(f * 1000) / 1000}, {"r429", v->r429}};
    }
    vendors["karbon"]["requests"] = karbon.requests;
    vendors["xero"]["peak_concurrency"] = xero_server.max_concurrent_seen();
    vendors["xero"]["max_concurrent"] = 5;
    vendors["xero"]["server_429"] = xero_sim.rejections() + xero_server.limit_rejections();
    std::printf(
        "server-side 429s: harvest=%llu qbo=%llu karbon=%llu xero=%llu; peak concurrency qbo=%u "
        "xero=%u; total %.1f s\n",
        static_cast<unsigned long long>(harvest_server.limit_rejections()),
        static_cast<unsigned long long>(qbo_server.limit_rejections()),
        static_cast<unsigned long long>(karbon_server.limit_rejections()),
        static_cast<unsigned long long>(xero_sim.rejections() + xero_server.limit_rejections()),
        qbo_server.max_concurrent_seen(),
        xero_server.max_concurrent_seen(),
        elapsed);
    nlohmann::json out{{"bench", "ratelimit"}, {"vendors", vendors}};
    std::cout << out.dump() << std::endl;
    harvest_server.stop();
    qbo_server.stop();
    karbon_server.stop();
    xero_server.stop();
    return (harvest.failures + qbo.failures + karbon.failures + xero.failures) == 0 ? 0 : 1;
}
