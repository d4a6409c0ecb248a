#pragma once

#include <string>
#include <string_view>

namespace billsync::util {

std::string_view version() noexcept;
std::string_view git_commit() noexcept;
// One line per library: "boost 1.81.0", "rocksdb 7.8.3", ...
std::string library_versions();

}  // namespace billsync::util
