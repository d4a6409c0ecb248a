#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>

#include "connectors/runtime/connector.hpp"
#include "http/message.hpp"
#include "state/group_commit.hpp"
#include "state/inbox.hpp"
#include "util/clock.hpp"

namespace spdlog {
class logger;
}
namespace billsync::util {
class metrics_registry;
}

namespace billsync::daemon {

// POST /webhooks/<connector>[/<kind>]: verify on the raw bytes, append to the durable inbox
// (deduplicated), and answer only once the append is synced.
//   200 stored or duplicate        401 signature rejected (counted, logged without the body)
//   404 unknown connector          413 body over the limit (the HTTP server)
//   503 the append could not be made durable (the vendor retries); /readyz turns not-ready
// A delivery that verifies but is malformed (connector::check_payload) is stored as a dead letter
// and answered 200: retrying would not fix it.
class intake {
public:
    struct deps {
        std::map<std::string, connectors::connector*, std::less<>> connectors;
        state::store& store;
        state::inbox& inbox;
        state::group_commit& committer;
        const util::clock& clock;
        util::metrics_registry& metrics;
        std::shared_ptr<spdlog::logger> log;
        std::function<void()> on_stored;               // wake the pipeline
        std::function<void(bool ok)> on_write_result;  // state writable or not
    };

    explicit intake(deps d);
    ~intake();
    net::awaitable<http::response> handle(http::request req);
    // A reload rebuilt, added (c) or removed (nullptr) connector `name`: deliveries for it are
    // verified by `c` from the next request on. The caller keeps `c` alive while this lives.
    // Call on the listener's thread.
    void set_connector(const std::string& name, connectors::connector* c);
    // When each connector last received a delivery that passed verification, since the start
    // (for /status and the dashboard). Call on the listener's thread.
    std::map<std::string, util::instant, std::less<>> last_webhooks() const;

private:
    struct connector_metrics;
    connector_metrics& metrics_for(const std::string& name);

    deps d_;
    std::map<std::string, std::unique_ptr<connector_metrics>, std::less<>> metrics_;
};

}  // namespace billsync::daemon
