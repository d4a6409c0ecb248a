#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "http/client.hpp"
#include "tests/fakes/daemon_process.hpp"

namespace billsync::testing {

// The real billsync binary running `run` on a config in a test directory, on ports it picked
// itself (port 0, reported through --ports-file), restartable on the same data dir.
class billsync_daemon {
public:
    // `config` is the full TOML text; it is written to dir/billsync.toml.
    billsync_daemon(std::filesystem::path dir,
                    std::string config,
                    std::vector<std::string> env = {});

    // Starts the process and waits until it serves; false (with output()) when it did not.
    bool start(std::uint64_t max_file_bytes = 0);
    void kill();                // SIGKILL, no goodbye
    std::optional<int> stop();  // SIGTERM and wait
    daemon_process& process() { return *process_; }
    std::string output() { return process_ ? process_->output() : std::string(); }

    std::uint16_t webhook_port() const { return webhook_port_; }
    std::uint16_t status_port() const { return status_port_; }
    const std::filesystem::path& config_path() const { return config_path_; }

    // The token the daemon wrote for changes (its ports file names the file), or the one given
    // to use_status_token.
    const std::string& status_token() const { return status_token_; }
    // The config sets this bearer_token: status_get and status_post send it.
    void use_status_token(std::string token) { configured_token_ = std::move(token); }

    http::simple_response status_get(const std::string& target);
    // POST with Content-Type: application/json and the daemon's status token.
    http::simple_response status_post(const std::string& target, const std::string& body);
    // POST /clock/advance; returns the daemon's new time (RFC 3339) or "" on failure.
    std::string advance(std::int64_t seconds);
    // Runs `billsync <args...> --config <config>` to completion; returns exit code and output.
    std::pair<int, std::string> cli(std::vector<std::string> args);

private:
    std::filesystem::path dir_;
    std::filesystem::path config_path_;
    std::vector<std::string> env_;
    std::unique_ptr<daemon_process> process_;
    std::uint16_t webhook_port_ = 0;
    std::uint16_t status_port_ = 0;
    std::string status_token_;
    std::string configured_token_;
};

// The [daemon] tables of a test firm: its data in "data" beside the config, both listeners on
// loopback port 0 (billsync_daemon reads the ports it took), a simulated clock from `start`
// (RFC 3339), and [daemon] public_url when one is given.
std::string simulated_daemon_toml(std::string_view time_zone,
                                  std::string_view start,
                                  std::string_view public_url = {});

// A generic-connector delivery signed with HMAC-SHA256 (hex) in X-Signature.
http::simple_response post_signed(std::uint16_t port,
                                  const std::string& connector,
                                  const std::string& secret,
                                  const std::string& body,
                                  const std::string& event_id = {});

}  // namespace billsync::testing
