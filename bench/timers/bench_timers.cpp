// bench_timers: schedule N durable timers, restart, fire the due half.
//
//   bench_timers [--timers N] [--dir PATH] [--batch B]
//
// The database lives in PATH/bench_timers.db (PATH defaults to the system temp directory) and is
// removed before and after the run. Prints figures, then one JSON line:
//   {"bench":"timers","timers":N,"startup_s":…,"fire_per_s":…,"rss_mb":…}

#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <string_view>

#include "bench/bench_support.hpp"
#include "state/group_commit.hpp"
#include "state/inbox.hpp"
#include "state/outbox.hpp"
#include "state/store.hpp"
#include "state/timers.hpp"

namespace {

using namespace billsync;
using steady = std::chrono::steady_clock;

using bench::peak_rss_mb;
using bench::seconds_since;

[[noreturn]] void usage(const char* why) {
    std::cerr << "bench_timers: " << why << "\n"
              << "usage: bench_timers [--timers N] [--dir PATH] [--batch B]\n";
    std::exit(2);
}

bool fail(const char* what, const state::status& st) {
    std::cerr << "bench_timers: " << what << ": " << st.message << "\n";
    return false;
}

struct figures {
    double schedule_s = 0;
    double startup_s = 0;
    double fire_s = 0;
    std::uint64_t fired = 0;
};

bool run(const std::filesystem::path& db, std::uint64_t n, std::uint64_t per_batch, figures& f) {
    const util::instant epoch{std::chrono::seconds(1'800'000'000)};
    // Due times are a permutation of epoch + [0, n) seconds, so inserts land all over the index;
    // exactly the first half (< n / 2) is due at `now`.
    const util::instant now = epoch + std::chrono::seconds(n / 2) - util::duration{1};
    const std::uint64_t stride = 7'919;  // prime, coprime with n unless n is a multiple
    {
        auto opened = state::store::open(db);
        if (!opened.ok()) {
            return fail("open", opened.st);
        }
        auto& s = *opened.value;
        state::timers timers(s);
        const auto start = steady::now();
        std::uint64_t i = 0;
        while (i < n) {
            state::batch b(s);
            for (std::uint64_t end = std::min(n, i + per_batch); i < end; ++i) {
                const std::uint64_t slot = (i * stride) % n;
                const auto due = epoch + std::chrono::seconds(slot);
                if (auto st = timers.schedule(b,
                                              "followup/inv-" + std::to_string(i) + "/touch1",
                                              due,
                                              R"({"invoice":"inv-)" + std::to_string(i) + "\"}");
                    !st.ok) {
                    return fail("schedule", st);
                }
            }
            if (auto st = s.write(b, true); !st.ok) {
                return fail("write", st);
            }
        }
        f.schedule_s = seconds_since(start);
    }  // close

    const auto start = steady::now();
    auto opened = state::store::open(db);
    if (!opened.ok()) {
        return fail("reopen", opened.st);
    }
    auto& s = *opened.value;
    state::group_commit committer(s);
    auto in = state::inbox::open(s, committer);  // the counter-initialising scans of start-up
    auto out = state::outbox::open(s);
    if (!in.ok() || !out.ok()) {
        return fail("start-up scans", in.ok() ? out.st : in.st);
    }
    state::timers timers(s);
    auto next = timers.next_due();
    if (!next.ok()) {
        return fail("next_due", next.st);
    }
    f.startup_s = seconds_since(start);

    const auto fire_start = steady::now();
    for (;;) {
        auto due = timers.due(now, per_batch);
        if (!due.ok()) {
            return fail("due", due.st);
        }
        if (due.value.empty()) {
            break;
        }
        state::batch b(s);
        for (const auto& t : due.value) {
            if (auto st = timers.fire(b, t); !st.ok) {
                return fail("fire", st);
            }
        }
        if (auto st = s.write(b, true); !st.ok) {
            return fail("write", st);
        }
        f.fired += due.value.size();
    }
    f.fire_s = seconds_since(fire_start);

    auto rest = timers.next_due();
    if (!rest.ok() || (n > f.fired && (!rest.value || *rest.value <= now))) {
        std::cerr << "bench_timers: timers left due after firing\n";
        return false;
    }
    committer.stop();
    return true;
}

}  // namespace

int main(int argc, char** argv) {
    std::uint64_t n = 1'000'000;
    std::uint64_t per_batch = 1'000;
    std::filesystem::path dir = std::filesystem::temp_directory_path();
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        if (i + 1 >= argc) {
            usage("missing value");
        }
        const char* value = argv[++i];
        if (arg == "--timers") {
            n = std::stoull(value);
        } else if (arg == "--dir") {
            dir = value;
        } else if (arg == "--batch") {
            per_batch = std::stoull(value);
        } else {
            usage("unknown flag");
        }
    }
    if (n == 0 || per_batch == 0) {
        usage("--timers and --batch must be positive");
    }
    const auto db = dir / ("bench_timers." + std::to_string(::getpid()) + ".db");
    std::error_code ec;
    std::filesystem::remove_all(db, ec);

    figures f;
    const bool ok = run(db, n, per_batch, f);
    std::filesystem::remove_all(db, ec);
    if (!ok) {
        return 1;
    }
    const double fire_per_s = f.fire_s > 0 ? static_cast<double>(f.fired) / f.fire_s : 0.0;
    const double rss = peak_rss_mb();
    std::printf("scheduled  %llu timers in %.3f s (%.0f/s, batches of %llu, synced)\n",
                static_cast<unsigned long long>(n),
                f.schedule_s,
                static_cast<double>(n) / f.schedule_s,
                static_cast<unsigned long long>(per_batch));
    std::printf("start-up   %.3f s (open, inbox/outbox scans, first next_due)\n", f.startup_s);
    std::printf("fired      %llu due timers in %.3f s (%.0f/s)\n",
                static_cast<unsigned long long>(f.fired),
                f.fire_s,
                fire_per_s);
    std::printf("peak RSS   %.1f MB\n", rss);
    std::printf(
        "{\"bench\":\"timers\",\"timers\":%llu,\"startup_s\":%.4f,\"fire_per_s\":%.0f,"
        "\"rss_mb\":%.1f}\n",
        static_cast<unsigned long long>(n),
        f.startup_s,
        fire_per_s,
        rss);
    return 0;
}
