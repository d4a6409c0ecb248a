// bench_ingest: durable webhook intake throughput and latency of the real billsync binary.
//
// Starts `billsync run` as its own process on a temporary data dir, drives signed deliveries at
// it from many keep-alive connections for a fixed time, then runs the same load against a plain
// Beast server (this program in --ceiling-server mode) that answers 200 without verifying or
// storing: the ceiling of this machine. Last line: one JSON object with the figures.
//
// --soak: memory under sustained load instead. Signed deliveries at a steady offered rate
// (--rate, default 1,500/s, which the daemon keeps pace with on a shared 2-core CI machine)
// for --seconds (default 600), sampling the daemon's VmRSS every second; then the backlog drains
// and the daemon idles (--idle, default 15 s). Reports peak RSS (VmHWM), RSS at the end of the
// load, RSS after the idle period, deliveries and whether all were processed, against the goal
// of 64 MB.
//
//   bench_ingest [--seconds N] [--connections C] [--binary PATH]
//   bench_ingest --soak [--seconds N] [--rate R] [--idle S] [--connections C] [--binary PATH]
#include <signal.h>
#include <spdlog/logger.h>
#include <spdlog/sinks/null_sink.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "http/asio.hpp"
#include "http/client.hpp"
#include "http/router.hpp"
#include "http/server.hpp"
#include "util/crypto.hpp"

namespace {

using namespace billsync;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = net::ip::tcp;
using clock_type = std::chrono::steady_clock;

constexpr const char* secret = "bench-ingest-secret";

constexpr double rss_goal_mb = 64;

struct options {
    int seconds = 10;
    int connections = 64;
    std::string binary;
    std::uint16_t load_only_port = 0;  // drive a daemon that is already running (profiling)
    bool soak = false;
    double rate = 0;  // offered deliveries per second over all connections; 0: as fast as possible
    int idle_seconds = 15;
};

struct load_result {
    std::uint64_t ok = 0;
    std::uint64_t errors = 0;
    double seconds = 0;
    std::vector<std::uint32_t> latencies_us;
};

struct shared_state {
    clock_type::time_point start;
    clock_type::time_point deadline;
    double rate = 0;
    std::atomic<std::uint64_t> next_id{0};
    load_result result;
};

net::awaitable<void> client(std::uint16_t port, std::string target, shared_state* st) {
    auto ex = co_await net::this_coro::executor;
    beast::tcp_stream stream(ex);
    auto [cec] = co_await stream.async_connect(
        tcp::endpoint(net::ip::make_address("127.0.0.1"), port), as_tuple_awaitable);
    if (cec) {
        ++st->result.errors;
        co_return;
    }
    beast::flat_buffer buffer;
    net::steady_timer pace(ex);
    std::vector<std::uint32_t> local;
    local.reserve(1 << 16);
    while (clock_type::now() < st->deadline) {
        const auto id = st->next_id.fetch_add(1);
        if (st->rate > 0) {
            // Delivery id is due at start + id / rate: a steady offered rate, not a closed loop.
            const auto due =
                st->start + std::chrono::duration_cast<clock_type::duration>(
                                std::chrono::duration<double>(static_cast<double>(id) / st->rate));
            if (due >= st->deadline) {
                break;
            }
            if (due > clock_type::now()) {
                pace.expires_at(due);
                co_await pace.async_wait(as_tuple_awaitable);
            }
        }
        std::string body = R"({"id":"inv-)" + std::to_string(id) +
                           R"(","customer":"cust-42","amount":"1250.00","currency":"USD",)"
                           R"("status":"open","due_date":"2026-02-01"})";
        bhttp::request<bhttp::string_body> req{bhttp::verb::post, target, 11};
        req.set(bhttp::field::host, "127.0.0.1");
        req.set(bhttp::field::content_type, "application/json");
        const auto event_id = "evt-" + std::to_string(id);
        // The generic connector signs "<event id>.<body>" when the delivery carries an id.
        req.set("X-Signature", util::hex_encode(util::hmac_sha256(secret, event_id + "." + body)));
        req.set("X-Event-Id", event_id);
        req.body() = std::move(body);
        req.prepare_payload();
        const auto started = clock_type::now();
        auto [wec, wn] = co_await bhttp::async_write(stream, req, as_tuple_awaitable);
        if (wec) {
            ++st->result.errors;
            break;
        }
        bhttp::response<bhttp::string_body> res;
        auto [rec, rn] = co_await bhttp::async_read(stream, buffer, res, as_tuple_awaitable);
        if (rec) {
            ++st->result.errors;
            break;
        }
        const auto us =
            std::chrono::duration_cast<std::chrono::microseconds>(clock_type::now() - started);
        if (res.result_int() == 200) {
            ++st->result.ok;
            local.push_back(static_cast<std::uint32_t>(us.count()));
        } else {
            ++st->result.errors;
        }
    }
    st->result.latencies_us.insert(st->result.latencies_us.end(), local.begin(), local.end());
}

load_result drive(std::uint16_t port, const std::string& target, const options& opt) {
    net::io_context ioc{1};
    shared_state st;
    const auto start = clock_type::now();
    st.start = start;
    st.deadline = start + std::chrono::seconds(opt.seconds);
    st.rate = opt.rate;
    for (int i = 0; i < opt.connections; ++i) {
        net::co_spawn(ioc, client(port, target, &st), net::detached);
    }
    ioc.run();
    st.result.seconds = std::chrono::duration<double>(clock_type::now() - start).count();
    return std::move(st.result);
}

double percentile_ms(std::vector<std::uint32_t>& v, double p) {
    if (v.empty()) {
        return 0;
    }
    const auto idx = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1));
    std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(idx), v.end());
    return v[idx] / 1000.0;
}

// A field of /proc/<pid>/status in MB (kB / 1024); 0 when unknown.
double status_mb(pid_t pid, std::string_view field) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(in, line)) {
        if (line.size() > field.size() && line.starts_with(field) && line[field.size()] == ':') {
            return std::strtod(line.c_str() + field.size() + 1, nullptr) / 1024.0;
        }
    }
    return 0;
}

double peak_rss_mb(pid_t pid) { return status_mb(pid, "VmHWM"); }
double rss_mb(pid_t pid) { return status_mb(pid, "VmRSS"); }

// Samples a process's VmRSS about once a second on its own thread.
class rss_sampler {
public:
    explicit rss_sampler(pid_t pid) : pid_(pid), thread_([this] { run(); }) {}
    ~rss_sampler() { stop(); }
    rss_sampler(const rss_sampler&) = delete;
    rss_sampler& operator=(const rss_sampler&) = delete;

    void stop() {
        {
            std::lock_guard lock(mutex_);
            stopping_ = true;
        }
        wake_.notify_all();
        if (thread_.joinable()) {
            thread_.join();
        }
    }
    // (seconds since start, VmRSS MB), one per second.
    std::vector<std::pair<int, double>> samples() const {
        std::lock_guard lock(mutex_);
        return samples_;
    }

private:
    void run() {
        const auto start = clock_type::now();
        std::unique_lock lock(mutex_);
        for (int s = 0;; ++s) {
            samples_.emplace_back(s, rss_mb(pid_));
            if (wake_.wait_until(
                    lock, start + std::chrono::seconds(s + 1), [this] { return stopping_; })) {
                return;
            }
        }
    }

    pid_t pid_;
    mutable std::mutex mutex_;
    std::condition_variable wake_;
    bool stopping_ = false;
    std::vector<std::pair<int, double>> samples_;
    std::thread thread_;
};

pid_t spawn(const std::vector<std::string>& args) {
    const pid_t pid = ::fork();
    if (pid == 0) {
        std::vector<char*> argv;
        for (const auto& a : args) {
            argv.push_back(const_cast<char*>(a.c_str()));
        }
        argv.push_back(nullptr);
        ::execv(argv[0], argv.data());
        ::_exit(127);
    }
    return pid;
}

// Waits (up to 30 s) for a ports file written by the child; 0 when it did not appear.
std::uint16_t wait_for_port(const std::filesystem::path& file, const char* key) {
    for (int i = 0; i < 3000; ++i) {
        std::ifstream in(file);
        const auto j = nlohmann::json::parse(in, nullptr, false);
        if (!j.is_discarded() && j.contains(key)) {
            return j[key].get<std::uint16_t>();
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return 0;
}

// billsync_events_processed_total from the daemon's /metrics: events fully mapped and
// committed. Negative when the status listener did not answer.
double processed_count(std::uint16_t status_port) {
    const auto r = http::fetch("127.0.0.1", status_port, "GET", "/metrics");
    if (r.status != 200) {
        return -1;
    }
    constexpr std::string_view name = "billsync_events_processed_total";
    std::size_t pos = 0;
    while (pos < r.body.size()) {
        auto end = r.body.find('\n', pos);
        if (end == std::string::npos) {
            end = r.body.size();
        }
        const std::string_view line(r.body.data() + pos, end - pos);
        if (line.starts_with(name) && line.size() > name.size() &&
            (line[name.size()] == ' ' || line[name.size()] == '{')) {
            const auto space = line.rfind(' ');
            return std::strtod(std::string(line.substr(space + 1)).c_str(), nullptr);
        }
        pos = end + 1;
    }
    return 0;
}

void stop(pid_t pid) {
    ::kill(pid, SIGTERM);
    int status = 0;
    ::waitpid(pid, &status, 0);
}

net::awaitable<http::response> ok_handler(http::request) {
    co_return http::response::json(200, R"({"status":"stored"})");
}

// The ceiling: the same Beast server billsync uses, answering 200 without verifying or storing.
int ceiling_server(const std::filesystem::path& ports_file) {
    net::io_context ioc{1};
    http::router routes;
    routes.add_prefix("POST", "/webhooks/", "/webhooks/:connector", [](http::request r) {
        return ok_handler(std::move(r));
    });
    auto log = std::make_shared<spdlog::logger>("ceiling",
                                                std::make_shared<spdlog::sinks::null_sink_mt>());
    http::limits lim;
    lim.max_connections = 4096;
    http::server srv(ioc.get_executor(), "ceiling", lim, routes.as_handler(), log);
    if (!srv.listen("127.0.0.1", 0).empty()) {
        return 1;
    }
    srv.start();
    {
        std::ofstream out(ports_file.string() + ".tmp");
        out << nlohmann::json{{"webhook_port", srv.port()}}.dump();
    }
    std::filesystem::rename(ports_file.string() + ".tmp", ports_file);
    net::signal_set signals(ioc, SIGTERM, SIGINT);
    signals.async_wait([&](auto, int) { ioc.stop(); });
    ioc.run();
    return 0;
}

// Waits until the daemon has processed `target` events (up to 10 minutes); the seconds it took,
// or -1.
double wait_processed(std::uint16_t status_port, double target) {
    const auto start = clock_type::now();
    for (int i = 0; i < 12'000; ++i) {
        if (processed_count(status_port) >= target) {
            return std::chrono::duration<double>(clock_type::now() - start).count();
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return -1;
}

double round1(double v) { return std::round(v * 10) / 10; }

int soak(const options& opt, const std::filesystem::path& dir) {
    std::printf(
        "bench_ingest --soak: %.0f deliveries/s offered over %d connections for %d s, "
        "then %d s idle; binary %s\n",
        opt.rate,
        opt.connections,
        opt.seconds,
        opt.idle_seconds,
        opt.binary.c_str());
    std::fflush(stdout);
    const auto ports = dir / "ports.json";
    const pid_t daemon = spawn({opt.binary,
                                "run",
                                "--config",
                                (dir / "billsync.toml").string(),
                                "--ports-file",
                                ports.string()});
    const auto port = wait_for_port(ports, "webhook_port");
    if (port == 0) {
        std::fprintf(stderr, "billsync did not start\n");
        stop(daemon);
        return 1;
    }
    const auto status_port = wait_for_port(ports, "status_port");
    const double start_rss = rss_mb(daemon);
    rss_sampler sampler(daemon);
    auto r = drive(port, "/webhooks/bench", opt);
    const double end_rss = rss_mb(daemon);
    const double processed_at_end = processed_count(status_port);
    const double drain_s = wait_processed(status_port, static_cast<double>(r.ok));
    const double processed = processed_count(status_port);
    std::this_thread::sleep_for(std::chrono::seconds(opt.idle_seconds));
    const double idle_rss = rss_mb(daemon);
    const double peak = peak_rss_mb(daemon);
    sampler.stop();
    stop(daemon);

    const auto samples = sampler.samples();
    double sampled_max = 0;
    std::string timeline;
    for (const auto& [s, mb] : samples) {
        sampled_max = std::max(sampled_max, mb);
        const int step = opt.seconds >= 300 ? 60 : 10;
        if (s % step == 0 && s <= opt.seconds) {
            char buf[48];
            std::snprintf(buf, sizeof buf, "%s%d s %.1f", timeline.empty() ? "" : ", ", s, mb);
            timeline += buf;
        }
    }
    const bool all_processed = drain_s >= 0 && processed >= static_cast<double>(r.ok);
    const double rps = static_cast<double>(r.ok) / r.seconds;
    const bool met = all_processed && r.errors == 0 && peak < rss_goal_mb;
    std::printf(
        "billsync: %llu deliveries acknowledged in %.1f s (%.0f/s, %llu errors), "
        "%.0f processed during the load, all processed: %s (backlog drained in %.2f s)\n",
        static_cast<unsigned long long>(r.ok),
        r.seconds,
        rps,
        static_cast<unsigned long long>(r.errors),
        processed_at_end,
        all_processed ? "yes" : "no",
        drain_s);
    std::printf(
        "billsync RSS (MB): %.1f at start; %s; peak %.1f (highest sample %.1f), %.1f at "
        "the end of the load, %.1f after %d s idle; goal under %.0f: %s\n",
        start_rss,
        timeline.c_str(),
        peak,
        sampled_max,
        end_rss,
        idle_rss,
        opt.idle_seconds,
        rss_goal_mb,
        met ? "met" : "NOT met");
    const nlohmann::ordered_json out{{"bench", "ingest"},
                                     {"mode", "soak"},
                                     {"seconds", opt.seconds},
                                     {"rate", std::round(opt.rate)},
                                     {"deliveries", r.ok},
                                     {"errors", r.errors},
                                     {"rps", std::round(rps)},
                                     {"all_processed", all_processed},
                                     {"start_rss_mb", round1(start_rss)},
                                     {"peak_rss_mb", round1(peak)},
                                     {"end_rss_mb", round1(end_rss)},
                                     {"idle_rss_mb", round1(idle_rss)},
                                     {"rss_goal_mb", rss_goal_mb},
                                     {"met", met}};
    std::printf("%s\n", out.dump().c_str());
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    options opt;
    std::filesystem::path self = std::filesystem::canonical("/proc/self/exe");
    opt.binary = (self.parent_path() / "../../daemon/billsync").lexically_normal().string();
    bool seconds_given = false;
    bool connections_given = false;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--ceiling-server" && i + 1 < argc) {
            return ceiling_server(argv[++i]);
        }
        if (a == "--seconds" && i + 1 < argc) {
            opt.seconds = std::atoi(argv[++i]);
            seconds_given = true;
        } else if (a == "--connections" && i + 1 < argc) {
            opt.connections = std::atoi(argv[++i]);
            connections_given = true;
        } else if (a == "--binary" && i + 1 < argc) {
            opt.binary = argv[++i];
        } else if (a == "--load-only-port" && i + 1 < argc) {
            opt.load_only_port = static_cast<std::uint16_t>(std::atoi(argv[++i]));
        } else if (a == "--soak") {
            opt.soak = true;
        } else if (a == "--rate" && i + 1 < argc) {
            opt.rate = std::strtod(argv[++i], nullptr);
        } else if (a == "--idle" && i + 1 < argc) {
            opt.idle_seconds = std::atoi(argv[++i]);
        } else {
            std::fprintf(stderr,
                         "usage: bench_ingest [--seconds N] [--connections C] [--binary PATH]\n"
                         "       bench_ingest --soak [--seconds N] [--rate R] [--idle S] "
                         "[--connections C] [--binary PATH]\n");
            return 64;
        }
    }
    if (opt.soak) {
        opt.seconds = seconds_given ? opt.seconds : 600;
        opt.connections = connections_given ? opt.connections : 16;
        opt.rate = opt.rate > 0 ? opt.rate : 1500;
    }
    if (opt.seconds <= 0 || opt.connections <= 0 || opt.rate < 0 || opt.idle_seconds < 0) {
        std::fprintf(stderr, "bench_ingest: --seconds and --connections must be positive\n");
        return 64;
    }
    if (opt.load_only_port != 0) {
        auto r = drive(opt.load_only_port, "/webhooks/bench", opt);
        std::printf("%.0f/s, p99 %.2f ms, %llu errors\n",
                    static_cast<double>(r.ok) / r.seconds,
                    percentile_ms(r.latencies_us, 0.99),
                    static_cast<unsigned long long>(r.errors));
        return 0;
    }
    const auto dir = std::filesystem::temp_directory_path() /
                     ("billsync-bench-ingest-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    {
        std::ofstream cfg(dir / "billsync.toml");
        cfg << "[daemon]\n"
               "data_dir = \"data\"\n"
               "time_zone = \"UTC\"\n"
               "log_level = \"warn\"\n"
               "[daemon.webhook_listener]\n"
               "address = \"127.0.0.1:0\"\n"
               "max_connections = 4096\n"
               "[daemon.status_listener]\n"
               "address = \"127.0.0.1:0\"\n"
               "[connectors.bench]\n"
               "kind = \"generic\"\n"
               "secret = \""
            << secret
            << "\"\n"
               "event_id_header = \"X-Event-Id\"\n";
    }
    if (opt.soak) {
        const int rc = soak(opt, dir);
        std::filesystem::remove_all(dir);
        return rc;
    }
    std::printf("bench_ingest: %d connections, %d s per run, binary %s\n",
                opt.connections,
                opt.seconds,
                opt.binary.c_str());

    // billsync: verify, dedup, durable (synced) inbox append, then 200.
    const auto ports = dir / "ports.json";
    const pid_t daemon = spawn({opt.binary,
                                "run",
                                "--config",
                                (dir / "billsync.toml").string(),
                                "--ports-file",
                                ports.string()});
    const auto port = wait_for_port(ports, "webhook_port");
    if (port == 0) {
        std::fprintf(stderr, "billsync did not start\n");
        stop(daemon);
        return 1;
    }
    const auto status_port = wait_for_port(ports, "status_port");
    auto r = drive(port, "/webhooks/bench", opt);
    // Processing keeps pace (or not) while the load runs; then the backlog drains.
    const double processed_at_end = processed_count(status_port);
    const auto drain_start = std::chrono::steady_clock::now();
    double drain_s = -1;
    for (int i = 0; i < 12'000; ++i) {  // at most 10 minutes
        if (processed_count(status_port) >= static_cast<double>(r.ok)) {
            drain_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - drain_start)
                          .count();
            break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    const double rss = peak_rss_mb(daemon);
    stop(daemon);

    // The ceiling.
    const auto ceiling_ports = dir / "ceiling.json";
    const pid_t ceiling = spawn({self.string(), "--ceiling-server", ceiling_ports.string()});
    const auto cport = wait_for_port(ceiling_ports, "webhook_port");
    load_result c;
    if (cport != 0) {
        c = drive(cport, "/webhooks/bench", opt);
    }
    stop(ceiling);
    std::filesystem::remove_all(dir);

    const double rps = static_cast<double>(r.ok) / r.seconds;
    const double ceiling_rps = c.seconds > 0 ? static_cast<double>(c.ok) / c.seconds : 0;
    const double p50 = percentile_ms(r.latencies_us, 0.50);
    const double p99 = percentile_ms(r.latencies_us, 0.99);
    const double p999 = percentile_ms(r.latencies_us, 0.999);
    std::printf(
        "billsync: %llu deliveries acknowledged durably in %.1f s (%llu errors): %.0f/s, "
        "p50 %.2f ms, p99 %.2f ms, p99.9 %.2f ms, peak RSS %.1f MB\n",
        static_cast<unsigned long long>(r.ok),
        r.seconds,
        static_cast<unsigned long long>(r.errors),
        rps,
        p50,
        p99,
        p999,
        rss);
    const double processed_per_s = processed_at_end > 0 ? processed_at_end / r.seconds : 0;
    std::printf(
        "billsync: %.0f events processed per second during the load; backlog drained in "
        "%.2f s\n",
        processed_per_s,
        drain_s);
    std::printf("ceiling (plain Beast server, no verify, no storage): %.0f/s (%llu errors)\n",
                ceiling_rps,
                static_cast<unsigned long long>(c.errors));
    const nlohmann::json out{
        {"bench", "ingest"},
        {"rps", std::round(rps)},
        {"p50_ms", std::round(p50 * 1000) / 1000},
        {"p99_ms", std::round(p99 * 1000) / 1000},
        {"p999_ms", std::round(p999 * 1000) / 1000},
        {"rss_mb", std::round(rss * 10) / 10},
        {"processed_per_s", std::round(processed_per_s)},
        {"drain_s", std::round(drain_s * 100) / 100},
        {"ceiling_rps", std::round(ceiling_rps)},
        {"ratio", ceiling_rps > 0 ? std::round(rps / ceiling_rps * 1000) / 1000 : 0.0}};
    std::printf("%s\n", out.dump().c_str());
    return 0;
}
