#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "daemon/access.hpp"
#include "http/router.hpp"
#include "util/clock.hpp"

namespace billsync::util {
class metrics_registry;
}

namespace billsync::daemon {

struct connector_status {
    std::string name;
    std::string kind;
    bool enabled = true;
    std::string state;        // "idle", "disabled", "running", "reconnect_needed", ...
    std::string detail_json;  // the connector's own figures (connector::status_json); may be empty
    std::optional<util::instant> last_webhook;  // newest verified delivery since the start
};

struct queue_depth {
    std::uint64_t count = 0;
    std::optional<std::chrono::seconds> oldest_age;
};

// Rows removed by retention since the start ([daemon.retention]).
struct retention_status {
    std::map<std::string, std::uint64_t> pruned;  // table -> rows (outbox_compacted: compacted)
    std::uint64_t passes = 0;
    std::optional<util::instant> last_pass_at;
    std::string last_error;
};

// Everything /status and /readyz report, taken in one go.
struct status_snapshot {
    std::chrono::seconds uptime{};
    std::string config_file;
    util::instant config_loaded_at{};
    std::uint64_t reloads = 0;
    std::uint64_t reload_failures = 0;
    std::string last_reload_error;
    bool config_loaded = false;
    bool state_open = false;
    bool state_writable = true;
    bool stopping = false;
    bool pipeline_alive = true;  // the pipeline's loop beats (not stalled, not ended)
    std::string data_dir;
    util::instant now{};
    bool clock_simulated = false;
    std::vector<connector_status> connectors;
    // queue name ("inbox", "outbox", "timers", "dead_letters") -> per-connector depth ("" = all)
    std::map<std::string, std::map<std::string, queue_depth>> queues;
    retention_status retention;
};

class status_source {
public:
    virtual ~status_source() = default;
    virtual status_snapshot snapshot() const = 0;
};

std::string render_status_json(const status_snapshot& s);

// GET /healthz, /readyz, /status, /metrics on the status listener; every route but /healthz and
// /readyz behind the read check of `policy` (daemon/access.hpp).
// With a clock_advance handler (simulated clock only), also POST /clock/advance, behind the
// write checks.
void install_status_routes(http::router& routes,
                           const status_source& source,
                           util::metrics_registry& metrics,
                           std::shared_ptr<const access_policy> policy,
                           http::handler clock_advance = nullptr);

}  // namespace billsync::daemon
