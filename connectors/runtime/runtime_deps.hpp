#pragma once

#include <memory>

#include "connectors/runtime/https_client.hpp"
#include "connectors/runtime/rate_limit.hpp"
#include "connectors/runtime/timing.hpp"
#include "connectors/runtime/token_store.hpp"
#include "http/asio.hpp"
#include "util/clock.hpp"

namespace spdlog {
class logger;
}
namespace billsync::util {
class metrics_registry;
}

namespace billsync::connectors {

// What the daemon lends the connectors that talk to a vendor. Owned by the daemon; it outlives
// every connector. A null member means "not available": connectors that need it are not built.
struct runtime_deps {
    net::any_io_executor executor;  // the pipeline's: perform, resolve and poll run there
    const util::clock* clock = nullptr;
    token_store* tokens = nullptr;
    rate_limiter* limiter = nullptr;
    client_settings http;  // CA bundle, proxy, timeouts; `log` set per connector
    util::metrics_registry* metrics = nullptr;
    std::shared_ptr<spdlog::logger> log;
    time_source time;  // waits between retries (real_time() in production)
};

}  // namespace billsync::connectors
