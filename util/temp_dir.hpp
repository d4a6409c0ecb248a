#pragma once

// Private scratch directories under the system temp dir. The name ends in random characters
// chosen by mkdtemp(3), which creates the directory atomically with mode 0700: another local user
// can neither predict the name (to plant a directory or symlink there first) nor read what goes
// in (checkpoints hold tokens and client data).

#include <filesystem>
#include <optional>
#include <string_view>
#include <system_error>

namespace billsync::util {

// <temp dir>/<prefix>XXXXXX, created with mode 0700; nullopt with `ec` set when it cannot be.
std::optional<std::filesystem::path> make_private_temp_dir(std::string_view prefix,
                                                           std::error_code& ec);

}  // namespace billsync::util
