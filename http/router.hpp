#pragma once

#include <string>
#include <vector>

#include "http/server.hpp"

namespace billsync::http {

// Routes by method and path. Exact routes win over prefix routes; the longest prefix wins among
// prefixes. An unknown path is 404; a known path with another method is 405 with Allow. HEAD
// matches GET routes (RFC 9110: the server then sends the GET headers without the body).
class router {
public:
    void add(std::string method, std::string path, handler h);
    // `route` is the metrics label, e.g. "/webhooks/:connector".
    void add_prefix(std::string method, std::string prefix, std::string route, handler h);

    net::awaitable<response> dispatch(request req) const;
    // A server handler that dispatches through this router (which must outlive the server).
    handler as_handler() const;

private:
    struct entry {
        std::string method;
        std::string path;
        std::string route;
        bool prefix = false;
        handler h;
    };
    std::vector<entry> entries_;
};

}  // namespace billsync::http
