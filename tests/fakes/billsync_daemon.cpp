#include "tests/fakes/billsync_daemon.hpp"

#include <signal.h>

#include <nlohmann/json.hpp>

#include "tests/fakes/temp_dir.hpp"
#include "util/crypto.hpp"

namespace billsync::testing {

billsync_daemon::billsync_daemon(std::filesystem::path dir,
                                 std::string config,
                                 std::vector<std::string> env)
    : dir_(std::move(dir)), config_path_(dir_ / "billsync.toml"), env_(std::move(env)) {
    write_file(config_path_, config);
}

bool billsync_daemon::start(std::uint64_t max_file_bytes) {
    const auto ports = dir_ / "ports.json";
    std::filesystem::remove(ports);
    process_ = std::make_unique<daemon_process>(std::vector<std::string>{billsync_binary(),
                                                                         "run",
                                                                         "--config",
                                                                         config_path_.string(),
                                                                         "--ports-file",
                                                                         ports.string()},
                                                env_,
                                                false,
                                                max_file_bytes);
    if (!process_->wait_for_line("Started")) {
        return false;
    }
    const auto j = nlohmann::json::parse(read_file(ports), nullptr, false);
    if (j.is_discarded()) {
        return false;
    }
    webhook_port_ = j.at("webhook_port").get<std::uint16_t>();
    status_port_ = j.at("status_port").get<std::uint16_t>();
    // Changes need the token the daemon generated (when the config names none).
    status_token_ = configured_token_;
    if (configured_token_.empty() && j.contains("status_token_file")) {
        const auto text = read_file(j["status_token_file"].get<std::string>());
        status_token_ = text.substr(0, text.find('\n'));
        if (status_token_.empty()) {
            return false;
        }
    }
    return true;
}

void billsync_daemon::kill() {
    if (process_) {
        process_->signal(SIGKILL);
        process_->wait_exit();
    }
}

std::optional<int> billsync_daemon::stop() {
    if (!process_) {
        return std::nullopt;
    }
    process_->signal(SIGTERM);
    return process_->wait_exit();
}

http::simple_response billsync_daemon::status_get(const std::string& target) {
    if (!configured_token_.empty()) {
        return http::fetch("127.0.0.1",
                           status_port_,
                           "GET",
                           target,
                           {{"Authorization", "Bearer " + configured_token_}});
    }
    return http::fetch("127.0.0.1", status_port_, "GET", target);
}

http::simple_response billsync_daemon::status_post(const std::string& target,
                                                   const std::string& body) {
    std::vector<http::header> headers{{"Content-Type", "application/json"}};
    if (!status_token_.empty()) {
        headers.push_back({"Authorization", "Bearer " + status_token_});
    }
    return http::fetch(
        "127.0.0.1", status_port_, "POST", target, headers, body, std::chrono::seconds(60));
}

std::string billsync_daemon::advance(std::int64_t seconds) {
    const auto r = status_post("/clock/advance", nlohmann::json{{"seconds", seconds}}.dump());
    if (r.status != 200) {
        return {};
    }
    return nlohmann::json::parse(r.body).value("now", "");
}

std::pair<int, std::string> billsync_daemon::cli(std::vector<std::string> args) {
    std::vector<std::string> argv{billsync_binary()};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.push_back("--config");
    argv.push_back(config_path_.string());
    daemon_process p(argv, env_, /*stdout_too=*/true);
    const auto rc = p.wait_exit();
    return {rc.value_or(-1), p.output()};
}

http::simple_response post_signed(std::uint16_t port,
                                  const std::string& connector,
                                  const std::string& secret,
                                  const std::string& body,
                                  const std::string& event_id) {
    std::vector<http::header> headers{
        {"Content-Type", "application/json"},
        {"X-Signature",
         util::hex_encode(util::hmac_sha256(
             secret, event_id.empty() ? body : event_id + "." + body))}};  // signed_content
    if (!event_id.empty()) {
        headers.push_back({"X-Event-Id", event_id});
    }
    return http::fetch("127.0.0.1", port, "POST", "/webhooks/" + connector, headers, body);
}

std::string simulated_daemon_toml(std::string_view time_zone,
                                  std::string_view start,
                                  std::string_view public_url) {
    std::string out =
        "[daemon]\n"
        "data_dir = \"data\"\n"
        "time_zone = \"" +
        std::string(time_zone) + "\"\n";
    if (!public_url.empty()) {
        out += "public_url = \"" + std::string(public_url) + "\"\n";
    }
    return out +
           "[daemon.webhook_listener]\n"
           "address = \"127.0.0.1:0\"\n"
           "[daemon.status_listener]\n"
           "address = \"127.0.0.1:0\"\n"
           "[daemon.clock]\n"
           "mode = \"simulated\"\n"
           "start = \"" +
           std::string(start) + "\"\n";
}

}  // namespace billsync::testing
