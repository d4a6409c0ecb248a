// bench_idle_rss: starts `billsync run` on a sandbox-like firm (the follow-up, a webhook
// connector, the simulated clock, port 0 listeners) with no traffic, waits until it has settled,
// and reports its resident memory. Idle RSS per daemon is what limits the firms one host runs.
//
//   bench_idle_rss [--settle-ms N] [--binary PATH] [--config FILE] [--instances N]
//
// --config runs another configuration instead (its listeners should use port 0 and its data_dir
// a relative scratch directory). --instances N runs N daemons side by side, as N firms on one
// host: their code pages are shared, so the proportional set size (PSS) is what each one costs.
// Figures are the first daemon's RSS and the mean PSS. The last line is one JSON object:
//   {"bench":"idle_rss","rss_mb":...,"pss_mb":...,"rss_anon_mb":...,"threads":...,...}
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

constexpr double goal_mb = 20.0;

const char* sandbox_like = R"(
[daemon]
data_dir = "data"
time_zone = "America/New_York"
log_level = "warn"
log_format = "text"
shutdown_grace = "2s"

[daemon.webhook_listener]
address = "127.0.0.1:0"

[daemon.status_listener]
address = "127.0.0.1:0"

[daemon.clock]
mode = "simulated"
start = "2026-01-05T08:00:00Z"

[connectors.demo]
kind = "generic"
secret = "${env:BILLSYNC_BENCH_SECRET}"
signature_header = "X-Signature"
event_id_header = "X-Event-Id"

[followup]
firm_name = "Bench CPA"
firm_phone = "+1 555 0100"
)";

// VmRSS, RssAnon, RssFile (kB) and Threads of a process.
std::map<std::string, long> proc_status(pid_t pid) {
    std::map<std::string, long> out;
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(in, line)) {
        const auto colon = line.find(':');
        if (colon == std::string::npos) {
            continue;
        }
        const auto key = line.substr(0, colon);
        if (key == "VmRSS" || key == "RssAnon" || key == "RssFile" || key == "RssShmem" ||
            key == "Threads" || key == "VmHWM") {
            out[key] = std::strtol(line.c_str() + colon + 1, nullptr, 10);
        }
    }
    return out;
}

double mb(long kb) { return static_cast<double>(kb) / 1024.0; }

// Proportional set size (kB): shared pages divided among the processes that map them.
long pss_kb(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/smaps_rollup");
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind("Pss:", 0) == 0) {
            return std::strtol(line.c_str() + 4, nullptr, 10);
        }
    }
    return 0;
}

struct daemon_run {
    std::filesystem::path dir;
    std::filesystem::path ports;
    std::filesystem::path log;
    pid_t pid = -1;
};

}  // namespace

int main(int argc, char** argv) {
    long settle_ms = 3000;
    std::string binary = BILLSYNC_BINARY;
    std::string config_arg;
    int instances = 1;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string flag = argv[i];
        if (flag == "--settle-ms") {
            settle_ms = std::strtol(argv[i + 1], nullptr, 10);
        } else if (flag == "--binary") {
            binary = argv[i + 1];
        } else if (flag == "--config") {
            config_arg = argv[i + 1];
        } else if (flag == "--instances") {
            instances = static_cast<int>(std::strtol(argv[i + 1], nullptr, 10));
        } else {
            std::cerr << "usage: bench_idle_rss [--settle-ms N] [--binary PATH] [--config FILE] "
                         "[--instances N]\n";
            return 64;
        }
    }

    if (instances < 1 || instances > 64) {
        std::cerr << "--instances: 1 to 64\n";
        return 64;
    }
    ::setenv("BILLSYNC_BENCH_SECRET", "bench-webhook-secret-0123456789", 1);
    std::vector<daemon_run> runs(static_cast<std::size_t>(instances));
    const auto stop_all = [&runs] {
        for (auto& r : runs) {
            if (r.pid > 0) {
                ::kill(r.pid, SIGKILL);
                ::waitpid(r.pid, nullptr, 0);
            }
            if (!r.dir.empty()) {
                fs::remove_all(r.dir);
            }
        }
    };
    const auto start = std::chrono::steady_clock::now();
    for (auto& r : runs) {
        char pattern[] = "/tmp/billsync-idle-rss-XXXXXX";
        if (::mkdtemp(pattern) == nullptr) {
            std::perror("mkdtemp");
            stop_all();
            return 1;
        }
        r.dir = pattern;
        fs::path config = config_arg;
        if (config.empty()) {
            config = r.dir / "billsync.toml";
            std::ofstream(config) << sandbox_like;
        } else {
            // Each instance gets its own copy, so a relative data_dir is its own.
            fs::copy_file(config_arg, r.dir / "billsync.toml");
            config = r.dir / "billsync.toml";
        }
        r.ports = r.dir / "ports.json";
        r.log = r.dir / "daemon.log";
        r.pid = ::fork();
        if (r.pid == 0) {
            std::freopen(r.log.c_str(), "w", stderr);
            std::freopen("/dev/null", "w", stdout);
            ::execl(binary.c_str(),
                    binary.c_str(),
                    "run",
                    "--config",
                    config.c_str(),
                    "--ports-file",
                    r.ports.c_str(),
                    static_cast<char*>(nullptr));
            std::_Exit(127);
        }
    }
    for (auto& r : runs) {
        bool up = false;
        while (std::chrono::steady_clock::now() - start < 60s) {
            if (fs::exists(r.ports) && fs::file_size(r.ports) > 0) {
                up = true;
                break;
            }
            int status = 0;
            if (::waitpid(r.pid, &status, WNOHANG) == r.pid) {
                r.pid = -1;
                break;
            }
            std::this_thread::sleep_for(20ms);
        }
        if (!up) {
            std::cerr << "billsync did not start; its log:\n"
                      << std::ifstream(r.log).rdbuf() << "\n";
            stop_all();
            return 1;
        }
    }
    const double startup_s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    // Idle: nothing arrives. Sample once a second and keep the last sample (the settled one).
    std::map<std::string, long> first;
    long pss_total = 0;
    for (long waited = 0; waited < settle_ms; waited += 1000) {
        std::this_thread::sleep_for(std::chrono::milliseconds(std::min(1000L, settle_ms - waited)));
    }
    first = proc_status(runs.front().pid);
    for (const auto& r : runs) {
        pss_total += pss_kb(r.pid);
    }
    bool clean = true;
    for (auto& r : runs) {
        ::kill(r.pid, SIGTERM);
    }
    for (auto& r : runs) {
        int status = 0;
        ::waitpid(r.pid, &status, 0);
        r.pid = -1;
        clean = clean && WIFEXITED(status) && WEXITSTATUS(status) == 0;
        fs::remove_all(r.dir);
    }
    const double pss_mb = mb(pss_total) / static_cast<double>(instances);

    std::printf(
        "%d idle billsync after %.1f s: first VmRSS %.1f MiB (anon %.1f, file %.1f), "
        "peak %.1f MiB, %ld threads; PSS per daemon %.1f MiB; goal < %.0f MiB\n",
        instances,
        static_cast<double>(settle_ms) / 1000.0,
        mb(first["VmRSS"]),
        mb(first["RssAnon"]),
        mb(first["RssFile"]),
        mb(first["VmHWM"]),
        first["Threads"],
        pss_mb,
        goal_mb);
    std::printf(
        "{\"bench\":\"idle_rss\",\"instances\":%d,\"rss_mb\":%.1f,\"pss_mb\":%.1f,"
        "\"rss_anon_mb\":%.1f,\"rss_file_mb\":%.1f,\"peak_rss_mb\":%.1f,\"threads\":%ld,"
        "\"startup_s\":%.3f,\"settle_s\":%.1f,\"goal_mb\":%.0f,\"clean_stop\":%s}\n",
        instances,
        mb(first["VmRSS"]),
        pss_mb,
        mb(first["RssAnon"]),
        mb(first["RssFile"]),
        mb(first["VmHWM"]),
        first["Threads"],
        startup_s,
        static_cast<double>(settle_ms) / 1000.0,
        goal_mb,
        clean ? "true" : "false");
    return clean ? 0 : 1;
}
