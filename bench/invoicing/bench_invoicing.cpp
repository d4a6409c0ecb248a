// bench_invoicing: the invoicing workflow's scheduled runs at firm scale, in process, on a real
// store. A monthly retainer run for 2,000 engagements (each with last period's approved time,
// some above the included hours), then a time-and-materials run over 250,000 approved time
// entries of 2,000 more engagements. Reports each run's time, the drafts and ledger actions it
// queued (one invoice.create per approved draft: the ledger calls), the store writes, and peak
// RSS. The ledger calls themselves go through the connectors' shared limiter, whose use of the
// vendor ceiling bench_ratelimit measures.
//
//   bench_invoicing [--engagements N] [--entries M] [--dir PATH]
//   bench_invoicing --ledger [--engagements N] [--scale X] [--workers W] [--dir PATH]
//
// Output ends with one JSON line:
//   {"bench":"invoicing","retainer_engagements":…,"retainer_run_s":…,"retainer_drafts":…,
//    "tm_engagements":…,"tm_entries":…,"tm_run_s":…,"tm_drafts":…,"ledger_calls":…,
//    "seed_s":…,"index_s":…,"longest_step_s":…,"peak_rss_mb":…}
// A run goes in steps of at most 100 engagements (each one committed batch); longest_step_s is
// the longest, the time the daemon's pipeline is busy with it in one go.
//
// --ledger: the ledger side instead of the time-and-materials run. Each retainer client is a
// customer of the QBO simulator (which enforces QBO's 500 requests per minute and 10 concurrent
// per realm, windows divided by --scale, default 10), the retainer run approves its N drafts by
// policy, and their N invoice.create actions go out through the real QBO connector (its rate
// limiter, OAuth2 token, requestid) with W workers (default 10), each completed in the outbox as
// the pipeline does. The JSON line then adds "ledger": {"actions", "seconds", "requests" (at the
// simulator), "r429" (429s the simulator sent), "retries", "failures", "invoices" (created at
// the simulator: must equal actions), "fraction" (of QBO's ceiling: ideal span / actual span of
// the invoice POSTs, the ideal being (ceil(N / 500) - 1) windows), "scale", "workers"}.

#include <unistd.h>

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <tuple>

#include "bench/bench_support.hpp"
#include "connectors/qbo/qbo_connector.hpp"
#include "connectors/qbo/qbo_kind.hpp"
#include "connectors/runtime/oauth2.hpp"
#include "connectors/runtime/rate_limit.hpp"
#include "connectors/runtime/token_store.hpp"
#include "sim/qbo_simulator.hpp"
#include "sim/sim_server.hpp"
#include "state/outbox.hpp"
#include "state/store.hpp"
#include "state/tables.hpp"
#include "state/timers.hpp"
#include "util/clock.hpp"
#include "workflows/context.hpp"
#include "workflows/invoicing/invoicing_rule.hpp"

namespace {

using namespace billsync;
using json = nlohmann::json;
namespace inv = workflows::invoicing;

[[noreturn]] void usage(const char* why) {
    std::cerr << "bench_invoicing: " << why << "\n"
              << "usage: bench_invoicing [--engagements N] [--entries M] [--dir PATH]\n"
              << "       bench_invoicing --ledger [--engagements N] [--scale X] [--workers W] "
                 "[--dir PATH]\n";
    std::exit(2);
}

util::instant at(std::string_view text) {
    util::instant t{};
    if (!util::parse_rfc3339(text, t)) {
        usage("bad instant");
    }
    return t;
}

void check(const state::status& st, std::string_view what) {
    if (!st.ok) {
        std::cerr << "bench_invoicing: " << what << ": " << st.message << "\n";
        std::exit(1);
    }
}

constexpr const char* realm = "9130350000000001";

// The ledger side: the queued invoice.create actions through the QBO connector.
struct ledger_run {
    std::deque<state::action> todo;
    std::size_t actions = 0;
    std::size_t done = 0;
    std::size_t retries = 0;
    std::size_t failures = 0;
    std::string first_error;
};

net::awaitable<void> ledger_worker(connectors::qbo::qbo_connector& qbo,
                                   state::store& store,
                                   state::outbox& ob,
                                   ledger_run& run) {
    auto ex = co_await net::this_coro::executor;
    while (!run.todo.empty()) {
        auto a = std::move(run.todo.front());
        run.todo.pop_front();
        auto out = co_await qbo.perform(a);
        if (out.k == connectors::action_outcome::kind::done) {
            state::batch b(store);
            check(ob.complete(b, a.id, out.detail), "complete");
            check(store.write(b, false), "complete");
            ++run.done;
        } else if (out.k == connectors::action_outcome::kind::retry) {
            // As the outbox would: later, after the vendor's wait when it gave one.
            ++run.retries;
            net::steady_timer wait(ex, out.retry_after.value_or(std::chrono::seconds(1)));
            co_await wait.async_wait(net::use_awaitable);
            run.todo.push_back(std::move(a));
        } else {
            ++run.failures;
            if (run.first_error.empty()) {
                run.first_error = out.detail;
            }
        }
    }
}

}  // namespace

int main(int argc, char** argv) {
    std::int64_t engagements = 2000;
    std::int64_t entries = 250000;
    std::filesystem::path dir;
    bool ledger = false;
    double scale = 10.0;
    int workers = 10;
    for (int i = 1; i < argc; ++i) {
        const std::string_view a = argv[i];
        if (a == "--ledger") {
            ledger = true;
            continue;
        }
        if (i + 1 >= argc) {
            usage("missing value");
        }
        if (a == "--engagements") {
            engagements = std::atoll(argv[++i]);
        } else if (a == "--entries") {
            entries = std::atoll(argv[++i]);
        } else if (a == "--scale") {
            scale = std::atof(argv[++i]);
        } else if (a == "--workers") {
            workers = std::atoi(argv[++i]);
        } else if (a == "--dir") {
            dir = argv[++i];
        } else {
            usage("unknown option");
        }
    }
    if (engagements <= 0 || entries < 0 || scale <= 0 || workers <= 0) {
        usage("counts must be positive");
    }
    if (ledger) {
        entries = 0;  // the ledger side: the retainer run's drafts only
    }
    // The QBO simulator, its customers standing for the retainer clients (--ledger).
    std::unique_ptr<simulators::qbo_simulator> sim;
    std::unique_ptr<simulators::sim_server> server;
    util::system_clock wall;
    if (ledger) {
        simulators::qbo_sim_options o;
        o.realms = {realm};
        o.scale = scale;
        sim = std::make_unique<simulators::qbo_simulator>(o);
        simulators::sim_options so;
        so.now = [&wall] { return wall.now(); };
        server = std::make_unique<simulators::sim_server>(so);
        sim->add_routes(server->routes());
        sim->configure(*server);
        if (auto err = server->start(); !err.empty()) {
            std::cerr << "bench_invoicing: " << err << "\n";
            return 1;
        }
    }
    const bool own_dir = dir.empty();
    if (own_dir) {
        dir = std::filesystem::temp_directory_path() /
              ("bench_invoicing." + std::to_string(::getpid()));
    }
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    auto opened = state::store::open(dir / "state");
    if (!opened.ok()) {
        check(opened.st, "open");
    }
    auto& store = *opened.value;
    auto ob = state::outbox::open(store);
    check(ob.st, "outbox");
    state::timers timers(store);
    auto au = state::audit_log::open(store);
    check(au.st, "audit");

    // The firm: retainer clients r<i>, T&M clients t<i>, 40 staff, the entries.
    inv::settings s;
    s.enabled = true;
    s.ledger = "books";
    s.time_zone = "America/Chicago";
    s.approval.auto_approve_below = 5000000;
    s.approval.approvers = {"partner@firm.example"};
    s.approval.always_review = {"write_down", "overage_above_tolerance"};
    const auto seed_start = std::chrono::steady_clock::now();
    {
        state::batch b(store);
        for (int k = 0; k < 40; ++k) {
            const auto id = "staff:" + std::to_string(k);
            state::put_entity(b,
                              "staff",
                              id,
                              json{{"id", id},
                                   {"email", "staff" + std::to_string(k) + "@firm.example"},
                                   {"role", k % 4 == 0 ? "manager" : "staff"}}
                                  .dump());
        }
        for (std::int64_t i = 0; i < engagements; ++i) {
            for (const char* kind : {"r", "t"}) {
                const auto name = std::string(kind) + std::to_string(i);
                const auto id = "client:" + name;
                state::put_entity(b, "client", id, json{{"id", id}, {"display_name", name}}.dump());
                // The ledger's id of the client: the simulator's customer with --ledger.
                const auto remote = sim && name[0] == 'r'
                                        ? sim->add_customer(realm, json{{"DisplayName", name}})
                                              .value("Id", std::string())
                                        : name;
                state::put_xref(b, "books", "client/" + remote, id);
            }
            inv::engagement r;
            r.id = "retainer-" + std::to_string(i);
            r.client = "client:r" + std::to_string(i);
            r.work_type = "Monthly Bookkeeping";
            r.billing = inv::model::retainer;
            r.currency = "USD";
            r.ledger = "books";
            r.retainer = 150000;
            r.included_minutes = 600;
            r.overage_rate = 17500;
            r.tolerance = 50000;
            s.engagements.push_back(r);
            inv::engagement t;
            t.id = "tm-" + std::to_string(i);
            t.client = "client:t" + std::to_string(i);
            t.work_type = "Advisory";
            t.billing = inv::model::time_and_materials;
            t.currency = "USD";
            t.ledger = "books";
            t.rates.default_rate = 15000;
            t.rates.by_role["manager"] = 22500;
            t.every = inv::schedule::monthly;
            s.engagements.push_back(t);
        }
        check(store.write(b, true), "seed clients");
    }
    // Retainer clients: 10 entries of 66 minutes each (660 min: 60 above the included 600).
    // T&M clients: `entries` spread evenly.
    const auto put_entries = [&](std::string_view prefix, std::int64_t count, std::int64_t per) {
        state::batch b(store);
        for (std::int64_t n = 0; n < count; ++n) {
            const auto client = std::string(prefix) + std::to_string(n / per % engagements);
            const auto id = "time:" + std::string(prefix) + std::to_string(n);
            state::put_entity(b,
                              "time_entry",
                              id,
                              json{{"id", id},
                                   {"staff_id", "staff:" + std::to_string(n % 40)},
                                   {"client_id", "client:" + client},
                                   {"service", n % 3 == 0 ? "Advisory" : "Bookkeeping"},
                                   {"date", "2026-11-" + std::to_string(10 + n % 18)},
                                   {"minutes", 66},
                                   {"billable", true},
                                   {"locked", true}}
                                  .dump());
            if (b.count() >= 20000) {
                check(store.write(b, false), "seed entries");
                b = state::batch(store);
            }
        }
        check(store.write(b, true), "seed entries");
    };
    put_entries("r", engagements * 10, 10);
    put_entries("t", entries, std::max<std::int64_t>(1, entries / engagements));
    const double seed_s = bench::seconds_since(seed_start);

    inv::invoicing_rule rule(s);
    // A scheduled run: its steps (bounded chunks of engagements), each committed, until the
    // timer moves on to the next period. Returns (total s, longest step s, actions queued).
    double longest_step = 0;
    const auto run = [&](std::string_view timer, util::instant now) {
        double total = 0;
        std::size_t queued = 0;
        for (int steps = 0; steps < 10000; ++steps) {
            auto t = timers.get(timer);
            if (!t.ok() || !t.value) {
                usage("timer not scheduled");
            }
            if (t.value->due > now) {
                break;
            }
            state::batch b(store);
            workflows::context ctx{b, *ob.value, timers, *au.value, now};
            ctx.store = &store;
            const auto start = std::chrono::steady_clock::now();
            check(timers.fire(b, *t.value), "fire");
            check(rule.on_timer(*t.value, ctx), "run");
            check(store.write(b, true), "commit");
            const auto took = bench::seconds_since(start);
            total += took;
            longest_step = std::max(longest_step, took);
            queued += ctx.enqueued.size();
            now += std::chrono::milliseconds(1);
        }
        return std::make_pair(total, queued);
    };
    double index_s = 0;  // the first start indexes the stored time once
    {
        state::batch b(store);
        workflows::context ctx{b, *ob.value, timers, *au.value, at("2026-11-30T12:00:00Z")};
        ctx.store = &store;
        const auto start = std::chrono::steady_clock::now();
        check(rule.on_start(ctx), "start");
        check(store.write(b, true), "start");
        index_s = bench::seconds_since(start);
    }
    const auto count_drafts = [&] {
        std::int64_t n = 0;
        check(state::for_each_entity(store,
                                     "invoicing_draft",
                                     [&](std::string_view, std::string_view) {
                                         ++n;
                                         return true;
                                     }),
              "count");
        return n;
    };
    std::cout << "seeded " << engagements * 2 << " engagements, " << engagements * 10 + entries
              << " time entries in " << seed_s << " s\n";
    const auto [retainer_s, retainer_calls] = run("invoicing/retainer", at("2026-12-01T12:00:05Z"));
    const auto retainer_drafts = count_drafts();
    std::cout << "retainer run: " << retainer_drafts << " drafts, " << retainer_calls
              << " ledger actions in " << retainer_s << " s\n";
    double tm_s = 0;
    std::size_t tm_calls = 0;
    std::int64_t tm_drafts = 0;
    if (!ledger) {
        std::tie(tm_s, tm_calls) = run("invoicing/tm/monthly", at("2026-12-01T12:00:06Z"));
        tm_drafts = count_drafts() - retainer_drafts;
        std::cout << "time and materials run: " << tm_drafts << " drafts, " << tm_calls
                  << " ledger actions in " << tm_s << " s\n";
    }
    json ledger_out = nullptr;
    bool ledger_exact = true;  // exactly one invoice at the simulator per approved draft
    if (ledger) {
        // The approved drafts' invoice.create actions, as the outbox hands them out.
        ledger_run lr;
        auto ready = ob.value->ready(at("2026-12-01T12:00:10Z"), 1000000);
        check(ready.st, "ready");
        for (auto& a : ready.value) {
            if (a.kind == "invoice.create" && a.connector == "books") {
                lr.todo.push_back(std::move(a));
            }
        }
        lr.actions = lr.todo.size();
        connectors::token_store tokens(store, std::nullopt);
        const auto grant = sim->oauth().issue_grant();
        connectors::oauth2::credential c;
        c.id = std::string("qbo/") + realm;
        c.vendor = "qbo";
        c.account = realm;
        c.access_token = grant.access_token;
        c.access_expires_at = wall.now() + grant.expires_in;
        c.refresh_token = grant.refresh_token;
        check(connectors::oauth2::store_credential(tokens, c), "credential");
        net::io_context ioc(1);
        connectors::rate_limiter limiter(connectors::real_time());
        limiter.set_limits("qbo", connectors::scaled(connectors::qbo::rate_limits(), scale));
        connectors::qbo::settings qs;
        qs.name = "books";
        qs.base_url = server->base_url();
        qs.realm_id = realm;
        qs.client = {server->base_url() + "/oauth2/token", "sim-client-id", "sim-client-secret"};
        connectors::runtime_deps rt;
        rt.executor = ioc.get_executor();
        rt.clock = &wall;
        rt.tokens = &tokens;
        rt.limiter = &limiter;
        rt.http.proxy = connectors::proxy_settings{};
        rt.http.max_idle_per_host = static_cast<std::size_t>(workers);
        rt.time = connectors::real_time();
        connectors::qbo::qbo_connector qbo(qs, rt);
        const auto before = server->request_count();
        const auto start = std::chrono::steady_clock::now();
        for (int w = 0; w < workers; ++w) {
            net::co_spawn(ioc, ledger_worker(qbo, store, *ob.value, lr), net::detached);
        }
        ioc.run();
        const double ledger_s = bench::seconds_since(start);
        const auto posts = server->requests_to(std::string("/v3/company/") + realm + "/invoice");
        util::instant first{}, last{};
        for (const auto& r : posts) {
            first = first == util::instant{} ? r.at : std::min(first, r.at);
            last = std::max(last, r.at);
        }
        const double limit = 500;
        const double window_s = 60.0 / scale;
        const double ideal = (std::ceil(static_cast<double>(posts.size()) / limit) - 1) * window_s;
        const double actual = std::chrono::duration<double>(last - first).count();
        const double fraction = ideal <= 0 || actual <= 0 ? 1.0 : ideal / actual;
        const auto invoices = sim->count(realm, "Invoice");
        std::cout << "ledger: " << lr.done << " of " << lr.actions << " invoice.create done in "
                  << ledger_s << " s, " << server->request_count() - before << " requests, "
                  << server->limit_rejections() << " 429s, " << invoices
                  << " invoices at the simulator, fraction " << fraction
                  << (lr.first_error.empty() ? "" : ", first error: " + lr.first_error) << "\n";
        ledger_out = json{{"actions", lr.actions},
                          {"done", lr.done},
                          {"seconds", std::round(ledger_s * 1000) / 1000},
                          {"requests", server->request_count() - before},
                          {"invoice_posts", posts.size()},
                          {"r429", server->limit_rejections()},
                          {"retries", lr.retries},
                          {"failures", lr.failures},
                          {"invoices", invoices},
                          {"fraction", std::round(fraction * 1000) / 1000},
                          {"scale", scale},
                          {"workers", workers}};
        server->stop();
        ledger_exact = invoices == lr.actions && lr.failures == 0;
        if (!ledger_exact) {
            std::cerr << "bench_invoicing: " << invoices << " invoices for " << lr.actions
                      << " approved drafts\n";
        }
    }
    const double rss = bench::peak_rss_mb();
    if (own_dir) {
        std::filesystem::remove_all(dir);
    }
    std::cout << json{{"bench", "invoicing"},
                      {"retainer_engagements", engagements},
                      {"retainer_run_s", std::round(retainer_s * 1000) / 1000},
                      {"retainer_drafts", retainer_drafts},
                      {"tm_engagements", engagements},
                      {"tm_entries", entries},
                      {"tm_run_s", std::round(tm_s * 1000) / 1000},
                      {"tm_drafts", tm_drafts},
                      {"ledger_calls", retainer_calls + tm_calls},
                      {"seed_s", std::round(seed_s * 1000) / 1000},
                      {"index_s", std::round(index_s * 1000) / 1000},
                      {"longest_step_s", std::round(longest_step * 1000) / 1000},
                      {"peak_rss_mb", std::round(rss * 10) / 10},
                      {"ledger", ledger_out}}
                     .dump()
              << "\n";
    return ledger_exact ? 0 : 1;
}
