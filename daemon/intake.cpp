#include "daemon/intake.hpp"

#include <spdlog/logger.h>

#include <boost/asio/post.hpp>
#include <nlohmann/json.hpp>

#include "state/dead_letters.hpp"
#include "util/metrics.hpp"

namespace billsync::daemon {

struct intake::connector_metrics {
    util::counter* received;
    util::counter* verified;
    util::counter* rejected;
    util::counter* deduplicated;
    util::counter* malformed;
    util::counter* failed;
    std::optional<util::instant> last_verified;  // the newest delivery that passed verify
};

namespace {

// Completes on the awaiting coroutine's executor when the committer thread reports the outcome.
// Lambdas are named before any co_await: GCC 12 double-frees capturing lambdas built inside a
// co_await expression.
template <class T, class Start>
net::awaitable<T> await_callback(Start start) {
    auto initiate = [start = std::move(start)](auto handler) mutable {
        auto h = std::make_shared<decltype(handler)>(std::move(handler));
        start([h](T value) {
            auto ex = net::get_associated_executor(*h);
            net::post(ex, [h, value = std::move(value)]() mutable { (*h)(std::move(value)); });
        });
    };
    co_return co_await net::async_initiate<decltype(use_awaitable), void(T)>(std::move(initiate),
                                                                             use_awaitable);
}

// Headers worth keeping with an event; credentials and cookies are dropped. The request target
// is kept as ":target" (not a possible header name): some vendors put routing data in the URL
// (Twilio status callbacks carry billsync's delivery id in the query); query parameters that
// carry a credential (the connector names them) are removed first.
std::string headers_json(const http::request& req, const connectors::connector& source) {
    nlohmann::json j = nlohmann::json::object();
    j[":target"] = http::without_query_params(req.target, source.secret_query_params());
    for (const auto& h : req.headers) {
        if (http::iequals(h.name, "authorization") || http::iequals(h.name, "cookie") ||
            http::iequals(h.name, "proxy-authorization")) {
            continue;
        }
        std::string name = h.name;
        for (auto& c : name) {
            c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        }
        j[name] = h.value;
    }
    return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace

intake::intake(deps d) : d_(std::move(d)) {
    for (const auto& [name, c] : d_.connectors) {
        metrics_for(name);
    }
}

intake::~intake() = default;

std::map<std::string, util::instant, std::less<>> intake::last_webhooks() const {
    std::map<std::string, util::instant, std::less<>> out;
    for (const auto& [name, m] : metrics_) {
        if (m->last_verified) {
            out.emplace(name, *m->last_verified);
        }
    }
    return out;
}

intake::connector_metrics& intake::metrics_for(const std::string& name) {
    auto it = metrics_.find(name);
    if (it != metrics_.end()) {
        return *it->second;
    }
    auto counter = [&](std::string_view outcome) {
        return &d_.metrics.get_counter("billsync_webhook_events_total",
                                       "Webhook deliveries by connector and outcome.",
                                       {{"connector", name}, {"outcome", std::string(outcome)}});
    };
    auto m = std::make_unique<connector_metrics>(connector_metrics{counter("received"),
                                                                   counter("verified"),
                                                                   counter("rejected"),
                                                                   counter("deduplicated"),
                                                                   counter("malformed"),
                                                                   counter("failed"),
                                                                   std::nullopt});
    return *metrics_.emplace(name, std::move(m)).first->second;
}

void intake::set_connector(const std::string& name, connectors::connector* c) {
    if (c == nullptr) {
        d_.connectors.erase(name);
        return;
    }
    d_.connectors.insert_or_assign(name, c);
    metrics_for(name);
}

net::awaitable<http::response> intake::handle(http::request req) {
    // /webhooks/<connector>[/<kind>]
    std::string_view rest(req.path);
    rest.remove_prefix(std::string_view("/webhooks/").size());
    const auto slash = rest.find('/');
    const std::string name(rest.substr(0, slash));
    const std::string kind(slash == std::string_view::npos ? std::string_view()
                                                           : rest.substr(slash + 1));
    auto it = d_.connectors.find(name);
    const bool trailing_slash = slash != std::string_view::npos && kind.empty();
    if (it == d_.connectors.end() || trailing_slash || !it->second->accepts_route_kind(kind)) {
        co_return http::response::error(404, "unknown_connector", "no connector at this path");
    }
    // The connector is used before the first suspension only: a reload may replace it.
    auto& c = *it->second;
    const bool bare = c.bare_webhook_answers();
    auto& m = metrics_for(name);
    m.received->inc();

    const auto verdict = c.verify(req);
    if (!verdict.accepted) {
        m.rejected->inc();
        d_.log->warn("Rejected webhook connector={} remote={} bytes={} reason=\"{}\"",
                     name,
                     req.remote,
                     req.body.size(),
                     verdict.reason);
        co_return bare
            ? http::response::text(401, "")
            : http::response::error(401, "invalid_signature", "signature verification failed");
    }
    m.verified->inc();
    const auto now = d_.clock.now();
    m.last_verified = now;

    if (auto problem = c.check_payload(req.body); !problem.empty()) {
        m.malformed->inc();
        state::inbox_event ev;
        ev.connector = name;
        ev.kind = kind;
        ev.dedup_key = verdict.dedup_key;
        ev.received_at = now;
        ev.headers_json = headers_json(req, c);
        ev.body = req.body;
        const auto dl = state::intake_dead_letter(ev, problem, now);
        state::batch b(d_.store);
        b.put(state::cf::dead_letters, dl.id, state::encode_dead_letter(dl));
        auto submit = [this, b = std::move(b)](std::function<void(state::status)> done) mutable {
            // Never blocks the listener: a full queue answers 503 and the vendor redelivers.
            if (!d_.committer.try_submit(std::move(b), std::move(done))) {
                done(state::status::failure("the commit queue is full"));
            }
        };
        auto st = co_await await_callback<state::status>(std::move(submit));
        d_.on_write_result(st.ok);
        if (!st.ok) {
            m.failed->inc();
            d_.log->error(
                "Cannot store a malformed delivery connector={} error=\"{}\"", name, st.message);
            co_return http::response::error(503, "unavailable", "could not store the delivery");
        }
        d_.log->warn("Malformed webhook stored as a dead letter connector={} id={} problem=\"{}\"",
                     name,
                     dl.id,
                     problem);
        co_return bare ? http::response::text(200, "")
                       : http::response::json(200, R"({"status":"dead_lettered"})");
    }

    auto stored_headers = headers_json(req, c);
    auto append = [this, &name, &kind, &verdict, &req, &stored_headers, now](
                      std::function<void(state::append_result)> done) {
        d_.inbox.append(name,
                        kind,
                        verdict.dedup_key,
                        std::move(stored_headers),
                        std::move(req.body),
                        now,
                        std::move(done));
    };
    auto result = co_await await_callback<state::append_result>(std::move(append));
    switch (result.outcome) {
        case state::append_outcome::stored:
            d_.on_write_result(true);
            d_.on_stored();
            co_return bare ? http::response::text(200, "")
                           : http::response::json(200, R"({"status":"stored"})");
        case state::append_outcome::duplicate:
            m.deduplicated->inc();
            co_return bare ? http::response::text(200, "")
                           : http::response::json(200, R"({"status":"duplicate"})");
        case state::append_outcome::failed:
            break;
    }
    m.failed->inc();
    d_.on_write_result(false);
    d_.log->error(
        "Cannot store a webhook delivery connector={} error=\"{}\"", name, result.st.message);
    co_return http::response::error(503, "unavailable", "could not store the delivery durably");
}

}  // namespace billsync::daemon
