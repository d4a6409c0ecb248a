#include "config/config.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstring>

namespace billsync::config {

std::string endpoint::text() const {
    const bool v6 = host.find(':') != std::string::npos;
    return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

bool endpoint::is_loopback() const {
    if (host == "localhost") {
        return true;
    }
    in_addr v4{};
    if (inet_pton(AF_INET, host.c_str(), &v4) == 1) {
        return (ntohl(v4.s_addr) >> 24) == 127;
    }
    in6_addr v6{};
    if (inet_pton(AF_INET6, host.c_str(), &v6) == 1) {
        if (std::memcmp(&v6, &in6addr_loopback, sizeof v6) == 0) {
            return true;
        }
        // ::ffff:127.x.y.z
        static constexpr unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        return std::memcmp(v6.s6_addr, mapped, sizeof mapped) == 0 && v6.s6_addr[12] == 127;
    }
    return false;
}

}  // namespace billsync::config
