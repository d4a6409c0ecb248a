// bench_invoicing: the invoicing workflow's scheduled runs at firm scale, in process, on a real
// store. A monthly retainer run for 2,000 engagements (each with last period's approved time,
// some above the included hours), then a time-and-materials run over 250,000 approved time
// entries of 2,000 more engagements. Reports each run's time, the drafts and ledger actions it
// queued (one invoice.create per approved draft: the ledger calls), the store writes, and peak
// RSS. The ledger calls themselves go through the connectors' shared limiter, whose use of the
// vendor ceiling bench_ratelimit measures.
//
//   bench_invoicing [--engagements N] [--entries M] [--dir PATH]
//
// Output ends with one JSON line:
//   {"bench":"invoicing","retainer_engagements":…,"retainer_run_s":…,"retainer_drafts":…,
//    "tm_engagements":…,"tm_entries":…,"tm_run_s":…,"tm_drafts":…,"ledger_calls":…,
//    "seed_s":…,"index_s":…,"longest_step_s":…,"peak_rss_mb":…}
// A run goes in steps of at most 100 engagements (each one committed batch); longest_step_s is
// the longest, the time the daemon's pipeline is busy with it in one go.

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "bench/bench_support.hpp"
#include "state/outbox.hpp"
#include "state/store.hpp"
#include "state/tables.hpp"
#include "state/timers.hpp"
#include "workflows/context.hpp"
#include "workflows/invoicing/invoicing_rule.hpp"

namespace {

using namespace billsync;
using json = nlohmann::json;
namespace inv = workflows::invoicing;

[[noreturn]] void usage(const char* why) {
    std::cerr << "bench_invoicing: " << why << "\n"
              << "usage: bench_invoicing [--engagements N] [--entries M] [--dir PATH]\n";
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

}  // namespace

int main(int argc, char** argv) {
    std::int64_t engagements = 2000;
    std::int64_t entries = 250000;
    std::filesystem::path dir;
    for (int i = 1; i < argc; ++i) {
        const std::string_view a = argv[i];
        if (i + 1 >= argc) {
            usage("missing value");
        }
        if (a == "--engagements") {
            engagements = std::atoll(argv[++i]);
        } else if (a == "--entries") {
            entries = std::atoll(argv[++i]);
        } else if (a == "--dir") {
            dir = argv[++i];
        } else {
            usage("unknown option");
        }
    }
    if (engagements <= 0 || entries < 0) {
        usage("counts must be positive");
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
                const auto remote = std::string(kind) + std::to_string(i);
                const auto id = "client:" + remote;
                state::put_entity(
                    b, "client", id, json{{"id", id}, {"display_name", remote}}.dump());
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
    const auto [tm_s, tm_calls] = run("invoicing/tm/monthly", at("2026-12-01T12:00:06Z"));
    const auto tm_drafts = count_drafts() - retainer_drafts;
    std::cout << "time and materials run: " << tm_drafts << " drafts, " << tm_calls
              << " ledger actions in " << tm_s << " s\n";
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
                      {"peak_rss_mb", std::round(rss * 10) / 10}}
                     .dump()
              << "\n";
    return 0;
}
