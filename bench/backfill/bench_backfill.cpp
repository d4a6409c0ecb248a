// bench_backfill: the first sync of a time connector at firm scale. The Harvest connector, in
// process with a real store and the daemon's shared limiter, backfills 2,000 clients (each with a
// project) and 50,000 time entries from the Harvest simulator, which enforces Harvest's limit
// (100 requests per 15 s per account, 429 with Retry-After beyond it). Every page is committed as
// the pipeline commits it (events mapped and written with the cursor).
//
//   bench_backfill [--clients N] [--entries M] [--per-page P] [--scale F]
//
// --per-page is the connector's page size (Harvest allows 2,000; default 100 so the run has
// enough requests to meet the limit); --scale divides the 15 s window on both sides (the
// simulator and the client-side budget), so the run takes 1/F of the real time at the same
// shape. Output ends with one JSON line:
//   {"bench":"backfill","vendor":"harvest","clients":…,"entries":…,"per_page":…,"scale":…,
//    "seed_s":…,"seconds":…,"requests":…,"r429":…,"ceiling_fraction":…,"entries_mapped":…,
//    "peak_rss_mb":…}
// ceiling_fraction: requests made / requests the vendor's window allows over the run's length.

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <string_view>

#include "bench/bench_support.hpp"
#include "connectors/harvest/harvest_connector.hpp"
#include "connectors/harvest/harvest_kind.hpp"
#include "connectors/runtime/rate_limit.hpp"
#include "mappings/change.hpp"
#include "mappings/model.hpp"
#include "sim/harvest_simulator.hpp"
#include "sim/sim_server.hpp"
#include "state/inbox.hpp"
#include "state/store.hpp"
#include "state/tables.hpp"
#include "util/clock.hpp"
#include "util/temp_dir.hpp"

namespace {

using namespace billsync;
using json = nlohmann::json;

[[noreturn]] void usage(const char* why) {
    std::cerr << "bench_backfill: " << why << "\n"
              << "usage: bench_backfill [--clients N] [--entries M] [--per-page P] [--scale F]\n";
    std::exit(2);
}

struct options {
    std::int64_t clients = 2000;
    std::int64_t entries = 50000;
    std::uint32_t per_page = 100;
    double scale = 1.0;
};

options parse(int argc, char** argv) {
    options o;
    for (int i = 1; i < argc; ++i) {
        const std::string_view a = argv[i];
        if (i + 1 >= argc) {
            usage("missing value");
        }
        const std::string v = argv[++i];
        if (a == "--clients") {
            o.clients = std::stoll(v);
        } else if (a == "--entries") {
            o.entries = std::stoll(v);
        } else if (a == "--per-page") {
            o.per_page = static_cast<std::uint32_t>(std::stoul(v));
        } else if (a == "--scale") {
            o.scale = std::stod(v);
        } else {
            usage("unknown option");
        }
    }
    if (o.clients < 1 || o.entries < 0 || o.per_page < 1 || o.per_page > 2000 || o.scale <= 0) {
        usage("out of range");
    }
    return o;
}

}  // namespace

int main(int argc, char** argv) {
    const auto o = parse(argc, argv);
    std::error_code ec;
    const auto made = util::make_private_temp_dir("billsync-bench-backfill-", ec);
    if (!made) {
        std::cerr << "bench_backfill: no scratch dir: " << ec.message() << "\n";
        return 1;
    }
    const auto& dir = *made;
    util::manual_clock clock(std::chrono::sys_days(std::chrono::year{2026} / 3 / 2));

    simulators::harvest_options ho;
    ho.now = [&clock] { return clock.now(); };
    ho.scale = o.scale;
    simulators::harvest_simulator sim(ho);
    simulators::sim_server server;
    sim.add_routes(server.routes());
    sim.configure(server);
    if (auto e = server.start(); !e.empty()) {
        std::cerr << "bench_backfill: the simulator did not start: " << e << "\n";
        return 1;
    }

    std::cerr << "seeding " << o.clients << " clients and " << o.entries << " time entries\n";
    const auto seed_started = std::chrono::steady_clock::now();
    const auto task = sim.add_task("Tax Preparation");
    std::vector<std::int64_t> users;
    for (int i = 0; i < 25; ++i) {
        users.push_back(sim.add_user(
            "Staff", std::to_string(i), "staff" + std::to_string(i) + "@example-cpa.com"));
    }
    std::vector<std::int64_t> projects;
    for (std::int64_t i = 0; i < o.clients; ++i) {
        const auto client = sim.add_client("Client " + std::to_string(i));
        const auto project = sim.add_project(client, "Engagement " + std::to_string(i));
        sim.assign_task(project, task, true);
        projects.push_back(project);
    }
    for (std::int64_t i = 0; i < o.entries; ++i) {
        const auto day = 1 + (i % 28);
        sim.add_time_entry(users[static_cast<std::size_t>(i) % users.size()],
                           projects[static_cast<std::size_t>(i) % projects.size()],
                           task,
                           "2026-02-" + std::string(day < 10 ? "0" : "") + std::to_string(day),
                           "1.25");
    }
    const double seed_s = bench::seconds_since(seed_started);
    server.clear_requests();

    auto opened = state::store::open(dir / "state");
    if (!opened.ok()) {
        std::cerr << "bench_backfill: " << opened.st.message << "\n";
        return 1;
    }
    auto& store = *opened.value;
    connectors::rate_limiter limiter(connectors::real_time());
    limiter.set_limits("harvest", connectors::scaled(connectors::harvest::rate_limits(), o.scale));
    connectors::harvest::settings s;
    s.name = "time";
    s.base_url = server.base_url() + "/v2";
    s.account_id = ho.account_id;
    s.access_token = ho.access_token;
    s.contact = "it@example-cpa.com";
    s.per_page = o.per_page;
    net::io_context ioc;
    connectors::runtime_deps rt;
    rt.executor = ioc.get_executor();
    rt.clock = &clock;
    rt.limiter = &limiter;
    rt.time = connectors::real_time();
    connectors::harvest::harvest_connector connector(s, rt);

    std::cerr << "backfilling at " << o.per_page << " rows a page, windows divided by " << o.scale
              << "\n";
    const auto started = std::chrono::steady_clock::now();
    std::uint64_t rows = 0;
    std::uint64_t polls = 0;
    std::set<std::string> entry_ids;  // distinct time entries mapped (pages overlap)
    for (;;) {
        connectors::poll_outcome out;
        net::co_spawn(
            ioc,
            [&]() -> net::awaitable<void> { out = co_await connector.poll(store); },
            net::detached);
        ioc.restart();
        ioc.run();
        ++polls;
        if (!out.error.empty()) {
            std::cerr << "bench_backfill: poll failed: " << out.error << "\n";
            return 1;
        }
        state::batch b(store);
        for (const auto& [k, v] : out.cursors) {
            state::put_cursor(b, k, v);
        }
        for (const auto& e : out.events) {
            state::inbox_event ev;
            ev.connector = s.name;
            ev.kind = e.kind;
            ev.body = e.body;
            auto r = connector.process(ev, store, b);
            if (!r.ok()) {
                std::cerr << "bench_backfill: mapping failed: " << r.st.message << "\n";
                return 1;
            }
            rows += r.value.size();
            for (const auto& c : r.value) {
                if (const auto* t = c.as<mappings::time_entry>()) {
                    entry_ids.insert(t->id);
                }
            }
        }
        if (auto st = store.write(b, true); !st.ok) {
            std::cerr << "bench_backfill: " << st.message << "\n";
            return 1;
        }
        if (polls % 50 == 0) {
            std::cerr << "  " << polls << " polls, " << rows << " records, "
                      << server.request_count() << " requests, "
                      << static_cast<std::int64_t>(bench::seconds_since(started)) << " s\n";
        }
        if (!out.more) {
            break;
        }
    }
    const double seconds = bench::seconds_since(started);
    const auto requests = server.request_count();
    const auto r429 = server.limit_rejections();
    const auto stored = static_cast<std::uint64_t>(entry_ids.size());
    const double window_s = 15.0 / o.scale;
    const double allowed = 100.0 * std::max(1.0, seconds / window_s);
    const json line{{"bench", "backfill"},
                    {"vendor", "harvest"},
                    {"clients", o.clients},
                    {"entries", o.entries},
                    {"per_page", o.per_page},
                    {"scale", o.scale},
                    {"seed_s", seed_s},
                    {"seconds", seconds},
                    {"requests", requests},
                    {"r429", r429},
                    {"ceiling_fraction", static_cast<double>(requests) / allowed},
                    {"entries_mapped", stored},
                    {"peak_rss_mb", bench::peak_rss_mb()}};
    std::cerr << "backfill: " << rows << " records in " << polls << " polls, " << requests
              << " requests (" << r429 << " answered 429) in " << seconds << " s; " << stored
              << " distinct time entries mapped\n";
    std::cout << line.dump() << "\n";
    return r429 == 0 && stored == static_cast<std::uint64_t>(o.entries) ? 0 : 1;
}
