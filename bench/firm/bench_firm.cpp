// bench_firm: a large firm in the state store, and what the daemon and its operators' commands
// cost at that size. Generated straight into a store: 20,000 clients, 100,000 invoices of which
// 15,000 are open (each with an active follow-up sequence and its touch timer), a payment for
// every paid one, 1,000,000 timers in all, 250,000 time entries (40 % of them billed), and a
// week of follow-up audit lines. Then, on that data dir:
//
//   startup_s         `billsync run` (simulated clock, no vendor connector) until /readyz is 200
//   idle_rss_mb       the daemon's resident set 2 s after it became ready
//   report_s          `billsync report weekly --json` next to the running daemon (a process that
//                     opens the store read-only and computes the last finished week)
//   report_compute_s  the same report computed in-process on an open store
//   followups_p50_ms, followups_p99_ms   GET /followups (its first page, the default limit), one
//                                        at a time: 200 requests, or as many as fit in a minute
//                                        (followups_requests)
//   report_route_p50_ms                  GET /reports/weekly, 20 requests
//   dashboard_p99_ms  GET /, 20 requests (null while the status listener has no dashboard page);
//                     the weekly figures it shows are computed off the request path
//   preview_s         `billsync preview --days 30 --json` (a checkpoint of the state, every touch
//                     timer of the next 30 days decided)
//
// at 1/10 of the size and at full size, so the growth with the firm's size shows.
//
//   bench_firm [--scale F] [--only-full | --only-tenth] [--dir PATH] [--billsync PATH] [--keep]
//
// --scale multiplies every count (0.01 for a quick run); --keep leaves the generated data dirs
// (and their billsync.toml) for a closer look. The billsync binary is found next to the
// build tree (../../daemon/billsync from this executable) unless --billsync names it. Output ends
// with one JSON line:
//   {"bench":"firm","clients_full":…,"startup_s_full":…,"idle_rss_mb_full":…,"report_s_full":…,
//    "report_compute_s_full":…,"followups_p50_ms":…,"followups_p99_ms":…,
//    "report_route_p50_ms_full":…,"dashboard_p99_ms":null,"preview_s_full":…,"seed_s_full":…,
//    and the same with _tenth}

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "bench/bench_support.hpp"
#include "http/client.hpp"
#include "mappings/model.hpp"
#include "state/entity_index.hpp"
#include "state/store.hpp"
#include "state/tables.hpp"
#include "state/timers.hpp"
#include "workflows/followup/planner.hpp"
#include "workflows/weekly_report/report.hpp"

extern char** environ;

namespace {

using namespace billsync;
using json = nlohmann::json;
using clock_type = std::chrono::steady_clock;
namespace fs = std::filesystem;

// Tuesday 8 December 2026, 10:00 in New York: week 2026-W49 has just ended.
constexpr std::string_view now_text = "2026-12-08T15:00:00Z";
constexpr std::string_view time_zone = "America/New_York";

[[noreturn]] void usage(const char* why) {
    std::cerr << "bench_firm: " << why << "\n"
              << "usage: bench_firm [--scale F] [--only-full | --only-tenth] [--dir PATH] "
                 "[--billsync PATH]\n";
    std::exit(2);
}

[[noreturn]] void fail(std::string_view what, std::string_view why) {
    std::cerr << "bench_firm: " << what << ": " << why << "\n";
    std::exit(1);
}

void check(const state::status& st, std::string_view what) {
    if (!st.ok) {
        fail(what, st.message);
    }
}

util::instant at(std::string_view text) {
    util::instant t{};
    if (!util::parse_rfc3339(text, t)) {
        usage("bad instant");
    }
    return t;
}

mappings::civil_date day_offset(int days_from_week_end) {
    using namespace std::chrono;
    return mappings::civil_date(sys_days(year(2026) / December / 6) + days(days_from_week_end));
}

struct sizes {
    std::int64_t clients, invoices, open, timers, entries, staff;
};

sizes scaled(double f) {
    const auto n = [f](double v) {
        return std::max<std::int64_t>(1, static_cast<std::int64_t>(v * f));
    };
    return {n(20000), n(100000), n(15000), n(1000000), n(250000), n(100)};
}

// Writes in batches of `chunk` operations, unsynced (the WAL still has them), flushed at the end.
class writer {
public:
    explicit writer(state::store& s) : s_(s), b_(std::make_unique<state::batch>(s)) {}
    state::batch& b() {
        if (b_->count() >= 2000) {
            commit();
        }
        return *b_;
    }
    void commit() {
        check(s_.write(*b_, false), "write");
        b_ = std::make_unique<state::batch>(s_);
    }

private:
    state::store& s_;
    std::unique_ptr<state::batch> b_;
};

// A row as the apply step stores it: with its index rows (state/entity_index.hpp).
void put_indexed(state::batch& b, std::string_view type, const std::string& id, std::string row) {
    state::put_entity(b, type, id, row);
    state::entity_index::update(b, type, id, std::nullopt, std::move(row));
}

double seed(const fs::path& data_dir, const sizes& n) {
    const auto start = clock_type::now();
    fs::create_directories(data_dir);
    auto opened = state::store::open(data_dir / "state");
    if (!opened.ok()) {
        fail("open", opened.st.message);
    }
    auto& s = *opened.value;
    state::timers timers(s);
    auto audit = state::audit_log::open(s);
    if (!audit.ok()) {
        fail("audit", audit.st.message);
    }
    writer w(s);
    for (std::int64_t c = 0; c < n.clients; ++c) {
        mappings::client cl;
        cl.id = "client-" + std::to_string(c);
        cl.display_name = "Client " + std::to_string(c) + " LLC";
        cl.contact.billing_email = "billing" + std::to_string(c) + "@client.example";
        cl.currency = "USD";
        cl.source = {"qbo", "", std::to_string(c), "0", std::nullopt};
        state::put_entity(w.b(), "client", cl.id, mappings::to_json(cl).dump());
    }
    std::int64_t timers_written = 0;
    const auto week_start = at("2026-11-30T05:00:00Z");
    for (std::int64_t i = 0; i < n.invoices; ++i) {
        mappings::invoice inv;
        inv.id = "inv-" + std::to_string(i);
        inv.number = std::to_string(10000 + i);
        inv.client_id = "client-" + std::to_string(i % n.clients);
        inv.currency = "USD";
        const bool open = i < n.open;
        // Open: due over the last 120 days (every aging bucket); paid: issued over the year.
        const int due_offset = open ? -static_cast<int>(i % 120) + 5 : -static_cast<int>(i % 365);
        inv.due_date = day_offset(due_offset);
        inv.issue_date = day_offset(due_offset - 30);
        const std::int64_t total = 50000 + (i % 97) * 1250;
        inv.total = {total, "USD"};
        inv.balance = {open ? total : 0, "USD"};
        inv.status = open ? mappings::invoice_status::open : mappings::invoice_status::paid;
        inv.lines.push_back({mappings::line_kind::item,
                             "Professional services",
                             "1",
                             mappings::format_decimal(total, 2),
                             {total, "USD"},
                             "1",
                             "Services"});
        inv.billing_email = "billing" + std::to_string(i % n.clients) + "@client.example";
        inv.source = {"qbo", "", std::to_string(i), "0", std::nullopt};
        put_indexed(w.b(), "invoice", inv.id, mappings::to_json(inv).dump());
        if (!open) {
            mappings::payment p;
            p.id = "pay-" + std::to_string(i);
            p.client_id = inv.client_id;
            p.amount = {total, "USD"};
            p.date = day_offset(due_offset + static_cast<int>(i % 20));
            p.applied.push_back({inv.id, inv.source.id, {total, "USD"}});
            p.source = {"qbo", "", "p" + std::to_string(i), "0", std::nullopt};
            put_indexed(w.b(), "payment", p.id, mappings::to_json(p).dump());
            continue;
        }
        // An active sequence with its next touch timer inside the next 30 days.
        workflows::followup::sequence_state st;
        st.invoice_id = inv.id;
        st.seen = st.entered = true;
        st.current = workflows::followup::phase::active;
        st.cycle = 1;
        st.last_touch = 1;
        st.next_touch = 2;
        const auto due = at(now_text) + std::chrono::hours(1 + (i % (29 * 24)));
        st.next_touch_at = due;
        st.last_touch_at = at(now_text) - std::chrono::hours(24 * (1 + i % 14));
        st.timer = workflows::followup::touch_timer_name(inv.id, 2);
        st.timer_due = due;
        const auto ymd = *inv.due_date;
        st.due_date = st.anchor =
            date::year_month_day{date::year{static_cast<int>(ymd.year())},
                                 date::month{static_cast<unsigned>(ymd.month())},
                                 date::day{static_cast<unsigned>(ymd.day())}};
        st.balance = total;
        state::put_entity(w.b(), "followup", inv.id, workflows::followup::encode(st));
        check(timers.schedule(w.b(), st.timer, due, "{}"), "timer");
        ++timers_written;
        // A touch sent during the week, in the audit log.
        json line{{"at", util::format_rfc3339(week_start)},
                  {"rule", "followup"},
                  {"invoice", inv.id},
                  {"decision", "touch"},
                  {"touch", 1},
                  {"cause",
                   "touch 1 (standard.touch1) for " + mappings::format_decimal(total, 2) +
                       " USD via email"}};
        audit.value->append(
            w.b(), week_start + std::chrono::minutes(i % (7 * 24 * 60)), line.dump());
    }
    // The rest of the timers: scheduled work far in the future (next year's retainer runs, entry
    // timers of invoices not yet due), none of it due within the benchmark's 30 days.
    for (std::int64_t t = timers_written; t < n.timers; ++t) {
        const auto due = at("2027-03-01T14:00:00Z") + std::chrono::minutes(t);
        check(timers.schedule(w.b(), "bench/future/" + std::to_string(t), due, "{}"), "timer");
    }
    for (std::int64_t st = 0; st < n.staff; ++st) {
        mappings::staff sf;
        sf.id = "staff-" + std::to_string(st);
        sf.name = "Staff " + std::to_string(st);
        sf.email = "staff" + std::to_string(st) + "@firm.example";
        state::put_entity(w.b(), "staff", sf.id, mappings::to_json(sf).dump());
    }
    for (std::int64_t e = 0; e < n.entries; ++e) {
        mappings::time_entry t;
        t.id = "te-" + std::to_string(e);
        t.staff_id = "staff-" + std::to_string(e % n.staff);
        t.client_id = "client-" + std::to_string(e % n.clients);
        t.service = "Tax Preparation";
        t.date = day_offset(-static_cast<int>(e % 90));
        t.minutes = 30 + (e % 8) * 15;
        t.billable = e % 5 != 0;
        t.locked = true;
        t.source = {"harvest", "", std::to_string(e), "0", std::nullopt};
        put_indexed(w.b(), "time_entry", t.id, mappings::to_json(t).dump());
        if (e % 5 < 2) {
            state::put_entity(w.b(), "invoicing_entry", t.id, R"({"draft":"bench"})");
        }
    }
    w.commit();
    check(s.flush(), "flush");
    return bench::seconds_since(start);
}

// ---- processes ---------------------------------------------------------------------------------

pid_t spawn(const std::vector<std::string>& args, const fs::path& out_file) {
    std::vector<char*> argv;
    for (const auto& a : args) {
        argv.push_back(const_cast<char*>(a.c_str()));
    }
    argv.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, out_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    pid_t pid = 0;
    const int rc = posix_spawn(&pid, argv[0], &fa, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) {
        fail("spawn " + args[0], std::strerror(rc));
    }
    return pid;
}

int wait_exit(pid_t pid) {
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// Runs a command to completion; its wall time in seconds (exits on failure).
double timed_run(const std::vector<std::string>& args, const fs::path& out_file) {
    const auto start = clock_type::now();
    const auto rc = wait_exit(spawn(args, out_file));
    const auto took = bench::seconds_since(start);
    if (rc != 0) {
        std::ifstream in(out_file);
        std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        fail(args.size() > 1 ? args[1] : args[0], "exit " + std::to_string(rc) + ": " + text);
    }
    return took;
}

double rss_mb(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind("VmRSS:", 0) == 0) {
            return std::stod(line.substr(6)) / 1024.0;
        }
    }
    return 0.0;
}

double percentile(std::vector<double> v, double p) {
    if (v.empty()) {
        return 0.0;
    }
    std::sort(v.begin(), v.end());
    const auto idx = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
    return v[std::min(idx, v.size() - 1)];
}

double round3(double v) {
    return static_cast<double>(static_cast<std::int64_t>(v * 1000 + 0.5)) / 1000;
}

json measure(const fs::path& dir,
             const sizes& n,
             const std::string& billsync,
             std::string_view tag) {
    json out;
    const auto data = dir / "data";
    const auto seed_s = seed(data, n);
    out["seed_s"] = round3(seed_s);
    std::cerr << "bench_firm: " << tag << ": seeded in " << seed_s << " s\n";

    // The report in-process, on the store opened as the daemon would.
    {
        auto opened = state::store::open(data / "state");
        if (!opened.ok()) {
            fail("open", opened.st.message);
        }
        workflows::weekly_report::settings rs;
        rs.time_zone = std::string(time_zone);
        rs.expected_minutes = 420;
        const auto start = clock_type::now();
        const auto r = workflows::weekly_report::weekly_report(*opened.value, rs, "", at(now_text));
        out["report_compute_s"] = round3(bench::seconds_since(start));
        if (!r.ok()) {
            fail("report", r.error);
        }
        out["report_open_invoices"] = r.body["aging"]["total"]["open"]["count"];
    }

    const auto config = dir / "billsync.toml";
    {
        std::ofstream cfg(config);
        cfg << "[daemon]\ndata_dir = \"" << data.string() << "\"\ntime_zone = \"" << time_zone
            << "\"\nlog_level = \"warn\"\n[daemon.webhook_listener]\naddress = \"127.0.0.1:0\"\n"
               "[daemon.status_listener]\naddress = \"127.0.0.1:0\"\n[daemon.clock]\n"
               "mode = \"simulated\"\nstart = \""
            << now_text
            << "\"\n[followup]\nfirm_name = \"Bench CPA\"\nfirm_phone = \"+1 555 0100\"\n"
               "[report]\nexpected_hours = \"7\"\n";
    }
    const auto ports = dir / "ports.json";
    fs::remove(ports);
    const auto start = clock_type::now();
    const pid_t daemon =
        spawn({billsync, "run", "--config", config.string(), "--ports-file", ports.string()},
              dir / "daemon.log");
    std::uint16_t port = 0;
    for (;;) {
        if (bench::seconds_since(start) > 120) {
            kill(daemon, SIGKILL);
            fail("startup", "not ready after 120 s (see " + (dir / "daemon.log").string() + ")");
        }
        if (port == 0) {
            std::ifstream in(ports);
            const auto j = json::parse(in, nullptr, false);
            if (j.is_object() && j.contains("status_port")) {
                port = j["status_port"].get<std::uint16_t>();
            }
        }
        if (port != 0 && http::fetch("127.0.0.1", port, "GET", "/readyz", {}, "").status == 200) {
            break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    out["startup_s"] = round3(bench::seconds_since(start));
    std::this_thread::sleep_for(std::chrono::seconds(2));
    out["idle_rss_mb"] = round3(rss_mb(daemon));

    // At most `count` requests, and no more than a minute of them.
    const auto latency = [&](const std::string& target, int count, unsigned* status) {
        std::vector<double> ms;
        const auto began = clock_type::now();
        for (int i = 0; i < count && bench::seconds_since(began) < 60; ++i) {
            const auto t0 = clock_type::now();
            const auto r = http::fetch("127.0.0.1", port, "GET", target, {}, "");
            ms.push_back(bench::seconds_since(t0) * 1000);
            *status = r.status;
        }
        return ms;
    };
    unsigned status = 0;
    const auto followups = latency("/followups", 200, &status);
    if (status != 200) {
        fail("/followups", "status " + std::to_string(status));
    }
    out["followups_requests"] = followups.size();
    out["followups_p50_ms"] = round3(percentile(followups, 0.5));
    out["followups_p99_ms"] = round3(percentile(followups, 0.99));
    const auto reports = latency("/reports/weekly", 20, &status);
    out["report_route_p50_ms"] = status == 200 ? json(round3(percentile(reports, 0.5))) : json();
    const auto dashboard = latency("/", 20, &status);
    out["dashboard_p99_ms"] = status == 200 ? json(round3(percentile(dashboard, 0.99))) : json();

    std::vector<double> report_runs;
    for (int i = 0; i < 3; ++i) {
        report_runs.push_back(
            timed_run({billsync, "report", "weekly", "--json", "--config", config.string()},
                      dir / "report.json"));
    }
    out["report_s"] = round3(percentile(report_runs, 0.5));
    out["preview_s"] = round3(
        timed_run({billsync, "preview", "--days", "30", "--json", "--config", config.string()},
                  dir / "preview.json"));

    kill(daemon, SIGTERM);
    wait_exit(daemon);
    return out;
}

}  // namespace

int main(int argc, char** argv) {
    double scale = 1.0;
    bool tenth = true, full = true, keep = false;
    fs::path dir;
    std::string billsync;
    for (int i = 1; i < argc; ++i) {
        const std::string_view a = argv[i];
        if (a == "--only-full") {
            tenth = false;
            continue;
        }
        if (a == "--only-tenth") {
            full = false;
            continue;
        }
        if (a == "--keep") {
            keep = true;
            continue;
        }
        if (i + 1 >= argc) {
            usage("missing value");
        }
        if (a == "--scale") {
            scale = std::atof(argv[++i]);
            if (!(scale > 0 && scale <= 10)) {
                usage("--scale must be in (0, 10]");
            }
        } else if (a == "--dir") {
            dir = argv[++i];
        } else if (a == "--billsync") {
            billsync = argv[++i];
        } else {
            usage("unknown option");
        }
    }
    if (billsync.empty()) {
        billsync =
            (fs::canonical("/proc/self/exe").parent_path() / "../../daemon/billsync").string();
    }
    if (!fs::exists(billsync)) {
        usage(("no billsync binary at " + billsync + " (use --billsync)").c_str());
    }
    billsync = fs::canonical(billsync).string();
    const bool own_dir = dir.empty();
    if (own_dir) {
        dir = fs::temp_directory_path() / ("bench_firm." + std::to_string(getpid()));
    }
    json result{{"bench", "firm"}, {"scale", scale}};
    const auto run = [&](double f, std::string_view tag) {
        const auto n = scaled(scale * f);
        const auto sub = dir / std::string(tag);
        fs::remove_all(sub);
        fs::create_directories(sub);
        auto m = measure(sub, n, billsync, tag);
        m["clients"] = n.clients;
        m["invoices"] = n.invoices;
        m["open_invoices"] = n.open;
        m["timers"] = n.timers;
        m["time_entries"] = n.entries;
        std::cout << tag << ": " << m.dump() << "\n";
        for (auto& [k, v] : m.items()) {
            result[k + "_" + std::string(tag)] = v;
        }
        if (!keep) {
            fs::remove_all(sub);
        }
    };
    if (tenth) {
        run(0.1, "tenth");
    }
    if (full) {
        run(1.0, "full");
    }
    if (own_dir && !keep) {
        fs::remove_all(dir);
    }
    // The names the goals are stated in (full size when measured).
    const std::string_view main = full ? "full" : "tenth";
    for (std::string k : {"followups_p50_ms", "followups_p99_ms", "dashboard_p99_ms"}) {
        result[k] = result[k + "_" + std::string(main)];
    }
    std::cout << result.dump() << "\n";
    return 0;
}
