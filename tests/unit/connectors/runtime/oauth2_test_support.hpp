#pragma once

#include <spdlog/logger.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <memory>
#include <stdexcept>
#include <string>

#include "connectors/builtin.hpp"
#include "connectors/runtime/https_client.hpp"
#include "connectors/runtime/oauth2.hpp"
#include "connectors/runtime/timing.hpp"
#include "connectors/runtime/token_store.hpp"
#include "sim/oauth2_server.hpp"
#include "sim/sim_server.hpp"
#include "state/store.hpp"
#include "tests/fakes/log_capture.hpp"
#include "tests/fakes/temp_dir.hpp"
#include "util/clock.hpp"
#include "util/crypto.hpp"
#include "util/metrics.hpp"

namespace billsync::oauth2_test {

namespace oauth2 = connectors::oauth2;

template <class T>
T run(net::io_context& ioc, net::awaitable<T> op) {
    auto f = net::co_spawn(ioc, std::move(op), net::use_future);
    ioc.restart();
    ioc.run();
    return f.get();
}

inline util::instant start_time() {
    util::instant t{};
    util::parse_rfc3339("2026-03-02T09:00:00Z", t);
    return t;
}

inline std::string test_key_base64() {
    // 32 bytes: 0x00 0x01 … 0x1f
    std::string raw;
    for (int i = 0; i < 32; ++i) {
        raw += static_cast<char>(i);
    }
    return util::base64_encode(raw);
}

inline connectors::sealing_key test_key() {
    std::string error;
    auto k = connectors::parse_secrets_key(test_key_base64(), error);
    if (!k) {
        throw std::runtime_error(error);
    }
    return *k;
}

// Everything a token-manager test needs: a store, a simulator on loopback, a client, clocks,
// captured logs at debug and a metrics registry.
struct fixture {
    // granted_scope: the "scope" of the simulator's token answers ("": none).
    explicit fixture(simulators::oauth2_mode mode,
                     bool strict_reuse = false,
                     std::string granted_scope = {})
        : clock(start_time()) {
        log = std::make_shared<spdlog::logger>("oauth2", capture.sink());
        log->set_level(spdlog::level::debug);
        simulators::oauth2_server_options o;
        o.mode = mode;
        o.strict_reuse = strict_reuse;
        o.granted_scope = std::move(granted_scope);
        o.now = [c = &clock] { return c->now(); };
        oauth = std::make_unique<simulators::oauth2_server>(o);
        sim = std::make_unique<simulators::sim_server>();
        oauth->add_routes(sim->routes());
        if (auto err = sim->start(); !err.empty()) {
            throw std::runtime_error(err);
        }
        auto opened = state::store::open(dir / "state");
        if (!opened.ok()) {
            throw std::runtime_error(opened.st.message);
        }
        db = std::move(opened.value);
        tokens = std::make_unique<connectors::token_store>(*db, test_key());
        connectors::client_settings cs;
        cs.proxy = connectors::proxy_settings{};
        cs.connect_timeout = std::chrono::seconds(5);
        cs.read_timeout = std::chrono::seconds(5);
        cs.total_timeout = std::chrono::seconds(10);
        cs.log = log;
        http = std::make_unique<connectors::https_client>(ioc.get_executor(), cs);
        vendor = mode == simulators::oauth2_mode::qbo ? "qbo" : "xero";
    }

    std::string token_url() const {
        return sim->base_url() + std::string(simulators::oauth2_server::token_path);
    }

    // Seeds a stored credential from a grant issued by the simulator.
    simulators::oauth2_server::issued seed(std::string id = "acct-1") {
        auto g = oauth->issue_grant();
        oauth2::credential c;
        c.id = vendor + "/" + id;
        c.vendor = vendor;
        c.account = id;
        c.access_token = g.access_token;
        c.access_expires_at = clock.now() + g.expires_in;
        c.refresh_token = g.refresh_token;
        c.connected_at = clock.now();
        if (auto st = oauth2::store_credential(*tokens, c); !st) {
            throw std::runtime_error(st.message);
        }
        credential_id = c.id;
        return g;
    }

    oauth2::manager_settings settings() const {
        oauth2::manager_settings s;
        s.connector = vendor;
        s.credential_id = credential_id;
        s.vendor = vendor;
        s.client = {token_url(), "sim-client-id", "sim-client-secret"};
        s.request_timeout = std::chrono::milliseconds(400);
        // The overlap the vendor's kind declares (qbo 24 h, xero 30 min).
        if (const auto* k = connectors::builtin_kinds().find(vendor); k != nullptr && k->oauth2) {
            s.old_refresh_valid = k->oauth2->old_refresh_valid;
        }
        return s;
    }

    std::unique_ptr<oauth2::token_manager> manager(
        std::optional<oauth2::manager_settings> s = std::nullopt) {
        oauth2::manager_deps d;
        d.http = http.get();
        d.tokens = tokens.get();
        d.clock = &clock;
        d.time = steady.source();
        d.log = log;
        d.metrics = &metrics;
        return std::make_unique<oauth2::token_manager>(s ? *s : settings(), d);
    }

    oauth2::credential stored() const {
        auto r = oauth2::load_credential(*tokens, credential_id);
        if (!r.ok() || !r.value) {
            throw std::runtime_error("no stored credential: " + r.st.message);
        }
        return *r.value;
    }

    testing::temp_dir dir;
    testing::log_capture capture;
    std::shared_ptr<spdlog::logger> log;
    util::manual_clock clock;
    connectors::manual_steady_time steady;
    util::metrics_registry metrics;
    std::unique_ptr<simulators::oauth2_server> oauth;
    std::unique_ptr<simulators::sim_server> sim;
    std::unique_ptr<state::store> db;
    std::unique_ptr<connectors::token_store> tokens;
    net::io_context ioc;
    std::unique_ptr<connectors::https_client> http;
    std::string vendor;
    std::string credential_id;
};

}  // namespace billsync::oauth2_test
