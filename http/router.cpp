#include "http/router.hpp"

#include <algorithm>

namespace billsync::http {

void router::add(std::string method, std::string path, handler h) {
    auto route = path;
    entries_.push_back({std::move(method), std::move(path), std::move(route), false, std::move(h)});
}

void router::add_prefix(std::string method, std::string prefix, std::string route, handler h) {
    entries_.push_back(
        {std::move(method), std::move(prefix), std::move(route), true, std::move(h)});
}

net::awaitable<response> router::dispatch(request req) const {
    const entry* best = nullptr;
    std::string allow;
    const auto note_allowed = [&allow](std::string_view method) {
        if (allow.find(method) == std::string::npos) {
            allow += allow.empty() ? std::string(method) : ", " + std::string(method);
        }
    };
    for (const auto& e : entries_) {
        const bool matches = e.prefix ? req.path.starts_with(e.path) : req.path == e.path;
        if (!matches) {
            continue;
        }
        // HEAD is answered like GET (the server sends the headers without the body).
        const bool head_of_get = req.method == "HEAD" && e.method == "GET";
        if (e.method != req.method && !head_of_get) {
            note_allowed(e.method);
            if (e.method == "GET") {
                note_allowed("HEAD");
            }
            continue;
        }
        if (best == nullptr || (best->prefix && !e.prefix) ||
            (best->prefix == e.prefix && e.path.size() > best->path.size())) {
            best = &e;
        }
    }
    if (best == nullptr) {
        if (!allow.empty()) {
            auto r = response::error(405, "method_not_allowed", "method not allowed");
            r.headers.push_back({"Allow", allow});
            r.route = "unmatched";
            co_return r;
        }
        auto r = response::error(404, "not_found", "no such route");
        r.route = "unmatched";
        co_return r;
    }
    auto r = co_await best->h(std::move(req));
    r.route = best->route;
    co_return r;
}

handler router::as_handler() const {
    return [this](request req) { return dispatch(std::move(req)); };
}

}  // namespace billsync::http
