// billsync-sim <vendor> [--port N] [--host H] [--scale X] [--tls-dir DIR]: runs one simulator
// until SIGINT or SIGTERM. With --tls-dir it serves HTTPS with a fresh test CA written to DIR
// (trust DIR/sim-ca.pem).

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>

#include "sim/simulators.hpp"
#include "sim/smtp_sink.hpp"
#include "sim/test_ca.hpp"

namespace {

int usage() {
    std::cerr << "usage: billsync-sim <vendor> [--port N] [--host H] [--scale X] [--tls-dir DIR]\n"
                 "vendors:";
    for (auto n : billsync::simulators::simulator_names()) {
        std::cerr << ' ' << n;
    }
    std::cerr << " smtp\n";
    return 2;
}

// Blocks SIGINT and SIGTERM in this thread and the ones it starts later, so sigwait gets them.
sigset_t block_stop_signals() {
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
    return stop_signals;
}

// The loopback SMTP sink (no AUTH; STARTTLS with --tls-dir).
int run_smtp(const billsync::simulators::sim_options& options, const std::string& tls_dir) {
    using namespace billsync::simulators;
    smtp_sink_options o;
    o.host = options.host;
    o.port = options.port;
    if (!tls_dir.empty()) {
        test_ca ca;
        const auto files = ca.issue_loopback(tls_dir);
        o.cert_file = files.cert;
        o.key_file = files.key;
        std::cout << "trust " << files.ca_cert.string() << std::endl;
    }
    const sigset_t stop_signals = block_stop_signals();
    smtp_sink sink(o);
    if (auto err = sink.start(); !err.empty()) {
        std::cerr << "billsync-sim: " << err << '\n';
        return 1;
    }
    std::cout << "smtp listening on " << o.host << ":" << sink.port() << std::endl;
    int sig = 0;
    sigwait(&stop_signals, &sig);
    sink.stop();
    std::cout << "smtp received " << sink.messages().size() << " messages" << std::endl;
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    using namespace billsync::simulators;
    if (argc < 2) {
        return usage();
    }
    const std::string vendor = argv[1];
    sim_options options;
    simulator_options sim_opts;
    std::string tls_dir;
    for (int i = 2; i < argc; ++i) {
        const std::string arg = argv[i];
        if (i + 1 >= argc) {
            return usage();
        }
        const std::string value = argv[++i];
        try {
            if (arg == "--port") {
                const auto p = std::stoul(value);
                if (p > 65535) {
                    return usage();
                }
                options.port = static_cast<std::uint16_t>(p);
            } else if (arg == "--host") {
                options.host = value;
            } else if (arg == "--scale") {
                sim_opts.scale = std::stod(value);
            } else if (arg == "--tls-dir") {
                tls_dir = value;
            } else {
                return usage();
            }
        } catch (const std::exception&) {
            return usage();
        }
    }
    if (vendor == "smtp") {
        return run_smtp(options, tls_dir);
    }
    auto sim = make_simulator(vendor, sim_opts);
    if (!sim) {
        std::cerr << "billsync-sim: unknown vendor '" << vendor << "'\n";
        return usage();
    }
    if (!tls_dir.empty()) {
        test_ca ca;
        const auto files = ca.issue_loopback(tls_dir);
        options.cert_file = files.cert;
        options.key_file = files.key;
        std::cout << "trust " << files.ca_cert.string() << std::endl;
    }
    // Block the stop signals before any thread starts, then wait for one.
    const sigset_t stop_signals = block_stop_signals();

    sim_server server(options);
    sim->add_routes(server.routes());
    sim->configure(server);
    if (auto err = server.start(); !err.empty()) {
        std::cerr << "billsync-sim: " << err << '\n';
        return 1;
    }
    std::cout << vendor << " listening on " << server.base_url() << std::endl;
    int sig = 0;
    sigwait(&stop_signals, &sig);
    server.stop();
    return 0;
}
