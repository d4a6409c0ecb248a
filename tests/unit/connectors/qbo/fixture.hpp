#pragma once

#include <fstream>
#include <sstream>
#include <string>

namespace billsync::testing {

// The bytes of connectors/qbo/fixtures/<name>, exactly as stored.
inline std::string qbo_fixture(const std::string& name) {
    std::ifstream in(std::string(BILLSYNC_SOURCE_DIR) + "/connectors/qbo/fixtures/" + name,
                     std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

}  // namespace billsync::testing
