// The systemd units shipped in packaging/: every secret the production sample references is a
// LoadCredential= of both units, and the units run what the docs say.
#include <gtest/gtest.h>

#include <algorithm>

#include "tests/unit/packaging/packaging_support.hpp"

namespace billsync::packaging {
namespace {

using testing::credentials_referenced;
using testing::live_lines;
using testing::read;
using testing::source_dir;

// "Key=value" lines of a unit file, in order.
std::vector<std::pair<std::string, std::string>> settings(const std::string& unit) {
    std::vector<std::pair<std::string, std::string>> out;
    for (const auto& line : live_lines(unit)) {
        const auto eq = line.find('=');
        if (eq != std::string::npos && line.front() != '[') {
            out.emplace_back(line.substr(0, eq), line.substr(eq + 1));
        }
    }
    return out;
}

std::vector<std::string> values_of(const std::string& unit, const std::string& key) {
    std::vector<std::string> out;
    for (const auto& [k, v] : settings(unit)) {
        if (k == key) {
            out.push_back(v);
        }
    }
    return out;
}

// LoadCredential=ID:PATH -> ID, checking PATH is dir/ID.
std::set<std::string> credential_ids(const std::string& unit, const std::string& dir) {
    std::set<std::string> out;
    for (const auto& v : values_of(unit, "LoadCredential")) {
        const auto colon = v.find(':');
        EXPECT_NE(colon, std::string::npos) << v;
        const auto id = v.substr(0, colon);
        EXPECT_EQ(v.substr(colon + 1), dir + "/" + id) << v;
        out.insert(id);
    }
    return out;
}

const std::string sample = read(source_dir / "packaging" / "billsync.toml");
const std::string unit = read(source_dir / "packaging" / "billsync.service");
const std::string templ = read(source_dir / "packaging" / "billsync@.service");

TEST(units, every_secret_of_the_sample_is_a_credential_of_both_units) {
    const auto referenced = credentials_referenced(sample);
    for (const char* must : {"twilio_auth_token",
                             "sendgrid_api_key",
                             "karbon_bearer_token",
                             "harvest_access_token",
                             "taxdome_relay_secret",
                             "xero_client_secret",
                             "qbo_client_secret",
                             "secrets_key"}) {
        EXPECT_TRUE(referenced.contains(must)) << must;
    }
    EXPECT_EQ(credential_ids(unit, "/etc/billsync/credentials"), referenced);
    EXPECT_EQ(credential_ids(templ, "/etc/billsync/credentials/%i"), referenced);
}

TEST(units, validate_before_run_on_the_same_file) {
    EXPECT_EQ(values_of(unit, "ExecStartPre"),
              (std::vector<std::string>{
                  "/usr/bin/billsync validate --config /etc/billsync/billsync.toml"}));
    EXPECT_EQ(
        values_of(unit, "ExecStart"),
        (std::vector<std::string>{"/usr/bin/billsync run --config /etc/billsync/billsync.toml"}));
    EXPECT_EQ(
        values_of(templ, "ExecStartPre"),
        (std::vector<std::string>{"/usr/bin/billsync validate --config /etc/billsync/%i.toml"}));
    EXPECT_EQ(values_of(templ, "ExecStart"),
              (std::vector<std::string>{"/usr/bin/billsync run --config /etc/billsync/%i.toml"}));
    // Never started without a configuration (the .deb installs the units enabled-but-idle).
    EXPECT_EQ(values_of(unit, "ConditionPathExists"),
              (std::vector<std::string>{"/etc/billsync/billsync.toml"}));
    EXPECT_EQ(values_of(templ, "ConditionPathExists"),
              (std::vector<std::string>{"/etc/billsync/%i.toml"}));
}

TEST(units, the_state_directory_is_the_samples_data_dir) {
    EXPECT_EQ(values_of(unit, "StateDirectory"), (std::vector<std::string>{"billsync"}));
    EXPECT_NE(sample.find("data_dir = \"/var/lib/billsync\""), std::string::npos);
    EXPECT_EQ(values_of(unit, "User"), (std::vector<std::string>{"billsync"}));
    const auto sysusers = read(source_dir / "packaging" / "debian" / "billsync.sysusers");
    EXPECT_NE(sysusers.find("u billsync - "), std::string::npos) << sysusers;
    // One firm per instance, each its own user and state directory.
    EXPECT_EQ(values_of(templ, "StateDirectory"), (std::vector<std::string>{"billsync-%i"}));
    EXPECT_EQ(values_of(templ, "DynamicUser"), (std::vector<std::string>{"yes"}));
}

TEST(units, both_units_are_equally_hardened) {
    for (const char* key : {"NoNewPrivileges",
                            "ProtectSystem",
                            "ProtectHome",
                            "PrivateTmp",
                            "PrivateDevices",
                            "CapabilityBoundingSet",
                            "SystemCallFilter",
                            "RestrictAddressFamilies",
                            "MemoryDenyWriteExecute",
                            "UMask",
                            "WatchdogSec",
                            "Type"}) {
        const auto a = values_of(unit, key);
        EXPECT_FALSE(a.empty()) << key;
        EXPECT_EQ(a, values_of(templ, key)) << key;
    }
    EXPECT_EQ(values_of(unit, "ProtectSystem"), (std::vector<std::string>{"strict"}));
    EXPECT_EQ(values_of(unit, "Type"), (std::vector<std::string>{"notify"}));
}

}  // namespace
}  // namespace billsync::packaging
