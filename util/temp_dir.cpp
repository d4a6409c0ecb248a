#include "util/temp_dir.hpp"

#include <stdlib.h>

#include <cerrno>
#include <string>
#include <vector>

namespace billsync::util {

std::optional<std::filesystem::path> make_private_temp_dir(std::string_view prefix,
                                                           std::error_code& ec) {
    const auto base = std::filesystem::temp_directory_path(ec);
    if (ec) {
        return std::nullopt;
    }
    const std::string pattern = (base / (std::string(prefix) + "XXXXXX")).string();
    std::vector<char> name(pattern.begin(), pattern.end());
    name.push_back('\0');
    if (::mkdtemp(name.data()) == nullptr) {
        ec = std::error_code(errno, std::generic_category());
        return std::nullopt;
    }
    ec.clear();
    return std::filesystem::path(name.data());
}

}  // namespace billsync::util
