#include "tests/fakes/action_recorder.hpp"

#include <spdlog/logger.h>
#include <spdlog/sinks/null_sink.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_future.hpp>

#include "http/router.hpp"
#include "http/server.hpp"

namespace billsync::testing {

struct action_recorder::impl {
    net::io_context ioc;
    http::router routes;
    std::unique_ptr<http::server> srv;
    std::thread thread;

    mutable std::mutex mutex;
    std::condition_variable cv;
    std::map<std::string, int> counts;
    std::map<std::string, std::string> bodies;
    std::vector<std::string> arrivals;
    std::uint64_t posts = 0;
    std::chrono::milliseconds delay{0};
    int fail_remaining = 0;
    unsigned fail_status = 503;
    int fail_retry_after = -1;

    http::response post(const http::request& req) {
        std::lock_guard lock(mutex);
        ++posts;
        if (fail_remaining > 0) {
            --fail_remaining;
            auto r = http::response::error(fail_status, "scripted", "scripted failure");
            if (fail_retry_after >= 0) {
                r.headers.push_back({"Retry-After", std::to_string(fail_retry_after)});
            }
            return r;
        }
        const std::string key(req.header_value("Idempotency-Key"));
        if (key.empty()) {
            return http::response::error(400, "missing_key", "Idempotency-Key is required");
        }
        ++counts[key];
        bodies[key] = req.body;
        arrivals.push_back(key);
        cv.notify_all();
        return http::response::json(200, R"({"ok":true})");
    }

    http::response get(const http::request& req) {
        const auto key = http::query_param(req.query, "idempotency_key");
        if (key.empty()) {
            return http::response::error(400, "missing_key", "idempotency_key is required");
        }
        std::lock_guard lock(mutex);
        return counts.contains(key) ? http::response::json(200, R"({"found":true})")
                                    : http::response::error(404, "not_found", "no such action");
    }
};

namespace {
net::awaitable<http::response> on_post(action_recorder::impl* self, http::request req) {
    std::chrono::milliseconds delay;
    {
        std::lock_guard lock(self->mutex);
        delay = self->delay;
    }
    if (delay.count() > 0) {
        // Received, not yet recorded or answered: the window where a crash leaves the outcome
        // unknown to the sender.
        net::steady_timer t(co_await net::this_coro::executor);
        t.expires_after(delay);
        co_await t.async_wait(use_awaitable);
    }
    co_return self->post(req);
}
net::awaitable<http::response> on_get(action_recorder::impl* self, http::request req) {
    co_return self->get(req);
}
}  // namespace

action_recorder::action_recorder() : impl_(std::make_unique<impl>()) {
    auto* self = impl_.get();
    impl_->routes.add(
        "POST", "/actions", [self](http::request r) { return on_post(self, std::move(r)); });
    impl_->routes.add(
        "GET", "/actions", [self](http::request r) { return on_get(self, std::move(r)); });
    auto log = std::make_shared<spdlog::logger>("recorder",
                                                std::make_shared<spdlog::sinks::null_sink_mt>());
    impl_->srv = std::make_unique<http::server>(
        impl_->ioc.get_executor(), "recorder", http::limits{}, impl_->routes.as_handler(), log);
    impl_->srv->listen("127.0.0.1", 0);
    impl_->srv->start();
    impl_->thread = std::thread([self] { self->ioc.run(); });
}

action_recorder::~action_recorder() {
    auto done = net::co_spawn(
        impl_->ioc, impl_->srv->shutdown(std::chrono::milliseconds(100)), net::use_future);
    done.get();
    impl_->ioc.stop();
    impl_->thread.join();
}

std::uint16_t action_recorder::port() const { return impl_->srv->port(); }

std::string action_recorder::url() const {
    return "http://127.0.0.1:" + std::to_string(port()) + "/actions";
}

void action_recorder::set_delay(std::chrono::milliseconds d) {
    std::lock_guard lock(impl_->mutex);
    impl_->delay = d;
}

void action_recorder::fail_next(int n, unsigned status, int retry_after_s) {
    std::lock_guard lock(impl_->mutex);
    impl_->fail_remaining = n;
    impl_->fail_status = status;
    impl_->fail_retry_after = retry_after_s;
}

std::map<std::string, int> action_recorder::counts() const {
    std::lock_guard lock(impl_->mutex);
    return impl_->counts;
}

std::string action_recorder::body_of(const std::string& key) const {
    std::lock_guard lock(impl_->mutex);
    auto it = impl_->bodies.find(key);
    return it == impl_->bodies.end() ? std::string() : it->second;
}

std::uint64_t action_recorder::posts() const {
    std::lock_guard lock(impl_->mutex);
    return impl_->posts;
}

std::vector<std::string> action_recorder::order() const {
    std::lock_guard lock(impl_->mutex);
    return impl_->arrivals;
}

bool action_recorder::wait_for_keys(std::size_t n, std::chrono::milliseconds timeout) {
    std::unique_lock lock(impl_->mutex);
    return impl_->cv.wait_for(lock, timeout, [&] { return impl_->counts.size() >= n; });
}

}  // namespace billsync::testing
