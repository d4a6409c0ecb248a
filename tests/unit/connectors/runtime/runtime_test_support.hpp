#pragma once

#include <spdlog/logger.h>
#include <spdlog/sinks/null_sink.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <memory>
#include <string>

#include "connectors/runtime/https_client.hpp"
#include "http/asio.hpp"
#include "sim/sim_server.hpp"

namespace billsync::connectors::testing {

// Runs one coroutine to completion on `ioc` and returns its result.
template <class T>
T run(net::io_context& ioc, net::awaitable<T> op) {
    auto f = net::co_spawn(ioc, std::move(op), net::use_future);
    ioc.restart();
    ioc.run();
    return f.get();
}

// Client settings for loopback tests: no proxy from the environment, short timeouts.
inline client_settings test_settings() {
    client_settings s;
    s.proxy = proxy_settings{};
    s.connect_timeout = std::chrono::seconds(5);
    s.read_timeout = std::chrono::seconds(5);
    s.total_timeout = std::chrono::seconds(10);
    return s;
}

inline http_request get(std::string url) {
    http_request r;
    r.url = std::move(url);
    return r;
}

// A started simulator with routes added by `setup`.
template <class Setup>
std::unique_ptr<simulators::sim_server> start_sim(Setup setup, simulators::sim_options o = {}) {
    auto sim = std::make_unique<simulators::sim_server>(std::move(o));
    setup(*sim);
    const auto err = sim->start();
    if (!err.empty()) {
        throw std::runtime_error(err);
    }
    return sim;
}

inline net::awaitable<http::response> text_ok(http::request req) {
    co_return http::response::json(200, R"({"ok":true,"path":")" + req.path + "\"}");
}

}  // namespace billsync::connectors::testing
