#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "http/asio.hpp"
#include "http/message.hpp"
#include "mappings/change.hpp"
#include "mappings/model.hpp"
#include "state/inbox.hpp"
#include "state/outbox.hpp"
#include "state/store.hpp"
#include "util/clock.hpp"

namespace billsync::connectors {

// The verdict on one webhook delivery, reached on the raw bytes before anything parses them.
struct verify_result {
    bool accepted = false;
    std::string dedup_key;  // provider event id, else "sha256:<hex of the body>"
    std::string reason;     // why it was rejected; safe to log (never the body or a secret)
};

// The result of performing one outbox action.
struct action_outcome {
    enum class kind : std::uint8_t {
        done,       // the side effect happened; `detail` is its remote id or result
        retry,      // transient (5xx, 429, timeout): try again later
        permanent,  // the vendor refused it for good (4xx): dead letter
    };
    kind k = kind::done;
    std::string detail;
    std::optional<std::chrono::seconds> retry_after;  // the vendor's own wait, when it gave one
    // Canonical facts the action established (a provider message id), recorded with the
    // action's outcome in one batch and handed to the workflows.
    std::vector<mappings::change> effects;
    // Canonical entities the action found out (a number found opted out): written through the
    // shared apply step in the outcome's batch; what they change reaches the workflows too.
    std::vector<mappings::entity> writes;
};

// What looking up an action whose outcome is unknown (in flight at a crash) found.
struct reconcile_outcome {
    enum class kind : std::uint8_t {
        happened,   // the effect exists remotely: record it as done, do not send again
        absent,     // it never happened: safe to perform
        undecided,  // the lookup failed: ask again later
    };
    kind k = kind::undecided;
    std::string detail;
    std::vector<mappings::change> effects;  // as for action_outcome, when it happened
};

// What resolving an inbox event before mapping found (fetch after notify).
struct resolve_outcome {
    enum class kind : std::uint8_t {
        ready,      // map it: `body` (when set) replaces the event body for process()
        retry,      // the vendor is unreachable or throttling: keep the event, pause the queue
        permanent,  // it can never be resolved: dead letter
    };
    kind k = kind::ready;
    std::optional<std::string> body;
    std::string detail;
    std::optional<std::chrono::seconds> retry_after;
};

// One poll's harvest: events to append to the connector's inbox and the cursors that produced
// them, committed in one batch (so a crash repeats the poll rather than losing or skipping it).
struct poll_outcome {
    struct event {
        std::string kind;
        std::string body;
    };
    std::vector<event> events;
    std::vector<std::pair<std::string, std::string>> cursors;  // cursor key -> value
    std::string error;  // the poll failed: nothing to commit; the connector reschedules itself
    bool more = false;  // another page is ready: poll again at once
};

// One vendor integration as the pipeline sees it. A connector is the only place that knows its
// vendor's HTTP shape; the pipeline only moves bytes, keys and canonical changes.
class connector {
public:
    virtual ~connector() = default;
    virtual const std::string& name() const noexcept = 0;
    virtual std::string_view kind() const noexcept = 0;

    // Whether POST /webhooks/<name>/<kind> is one of this connector's webhook routes (empty kind:
    // /webhooks/<name> itself). The kind is not covered by every vendor's signature, so any other
    // path, dot segments included, is answered 404 before verification. Default: no kinds.
    virtual bool accepts_route_kind(std::string_view kind) const noexcept { return kind.empty(); }

    // Query parameters of a webhook URL that carry a credential (an unsigned source authenticated
    // by a secret in its URL, e.g. SendGrid Inbound Parse's ?token=). They are removed from the
    // request target before it is stored with the event or a dead letter, so the secret never
    // rests in the inbox, dead letters or exports. The default names the usual ones.
    virtual std::vector<std::string> secret_query_params() const {
        return {"token", "access_token", "api_key", "apikey", "key", "secret", "password"};
    }

    // Whether webhook answers carry no body: some vendors (Xero's Intent to Receive) require a 200
    // with an empty body and a 401 with none. Default: the daemon's JSON status bodies.
    virtual bool bare_webhook_answers() const noexcept { return false; }

    // Checks a webhook delivery's signature over the exact bytes received.
    virtual verify_result verify(const http::request& req) const = 0;
    // A cheap structural check after verification (e.g. well-formed JSON). A delivery that fails
    // it is dead-lettered at once: retrying would not fix it. Empty string: fine.
    virtual std::string check_payload(std::string_view body) const = 0;

    // Maps one inbox event to canonical entities, adding entity and identity-map rows to b, and
    // returns the changes for the workflows. An error is retried, then dead-lettered.
    virtual state::result<std::vector<mappings::change>> process(const state::inbox_event& e,
                                                                 const state::store& s,
                                                                 state::batch& b) = 0;

    // Performs an outbox action, carrying its idempotency key (the action id).
    virtual net::awaitable<action_outcome> perform(state::action a) = 0;
    // Looks up, remotely, whether an action whose outcome is unknown already happened.
    virtual net::awaitable<reconcile_outcome> reconcile(state::action a) = 0;

    // Prepares an event for process(), e.g. reads the entities a thin webhook names. Runs on the
    // pipeline's executor right before process(). Default: the event is mapped as stored.
    virtual net::awaitable<resolve_outcome> resolve(const state::inbox_event& e);

    // Re-reads one entity from the vendor right before a decision depends on it (a follow-up
    // touch re-reads the invoice from its source of truth). A body is mapped by process() as an
    // event of kind `refresh_kind()`; ready without a body: nothing to re-read, use what is
    // stored; retry/permanent: it could not be re-read now.
    virtual net::awaitable<resolve_outcome> refresh(std::string entity_type,
                                                    mappings::source_ref ref);
    virtual std::string refresh_kind() const { return {}; }

    // Polling: when the connector next wants poll() to run (nullopt: it does not poll), and the
    // poll itself, which reads its cursors from `s`. The pipeline commits what it returns.
    virtual std::optional<util::instant> next_poll() const { return std::nullopt; }
    virtual net::awaitable<poll_outcome> poll(const state::store& s);

    // How many of this connector's vendor calls (resolve, perform, reconcile, refresh, poll) the
    // pipeline runs at once, in the connector's own lane: the vendor's documented concurrent-
    // request cap. Calls of one connector may interleave (each awaits on the lane's strand).
    virtual std::size_t max_concurrency() const noexcept { return 4; }

    // The operator stored new credentials (`billsync connect`, then SIGHUP): re-read them. Runs
    // on the pipeline's executor.
    virtual void reload_credentials() {}

    // Actions with the same non-empty key run one at a time, in the order the outbox gives them,
    // while the lane runs others beside them: the key names the vendor object the action
    // modifies, where the vendor allows one writer at a time (a version token such as QBO's
    // SyncToken). Default: none, actions of the lane run concurrently up to its cap.
    virtual std::string serial_key(const state::action& /*a*/) const { return {}; }

    // Connector-specific figures for /status (a JSON object as text); empty: none.
    virtual std::string status_json() const { return {}; }
};

}  // namespace billsync::connectors
