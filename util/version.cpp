#include "util/version.hpp"

#include <fmt/format.h>
#include <openssl/opensslv.h>
#include <rocksdb/version.h>
#include <spdlog/version.h>

#include <boost/version.hpp>
#include <nlohmann/json.hpp>

#include "util/version_info.hpp"

namespace billsync::util {

std::string_view version() noexcept { return BILLSYNC_VERSION; }

std::string_view git_commit() noexcept { return BILLSYNC_GIT_COMMIT; }

std::string library_versions() {
    std::string out;
    out += fmt::format("boost {}.{}.{}\n",
                       BOOST_VERSION / 100000,
                       BOOST_VERSION / 100 % 1000,
                       BOOST_VERSION % 100);
    out += fmt::format("rocksdb {}.{}.{}\n", ROCKSDB_MAJOR, ROCKSDB_MINOR, ROCKSDB_PATCH);
    out += fmt::format("openssl {}\n", OPENSSL_VERSION_TEXT);
    out += fmt::format("spdlog {}.{}.{}\n", SPDLOG_VER_MAJOR, SPDLOG_VER_MINOR, SPDLOG_VER_PATCH);
    out += fmt::format(
        "fmt {}.{}.{}\n", FMT_VERSION / 10000, FMT_VERSION / 100 % 100, FMT_VERSION % 100);
    out += fmt::format("nlohmann_json {}.{}.{}\n",
                       NLOHMANN_JSON_VERSION_MAJOR,
                       NLOHMANN_JSON_VERSION_MINOR,
                       NLOHMANN_JSON_VERSION_PATCH);
    return out;
}

}  // namespace billsync::util
