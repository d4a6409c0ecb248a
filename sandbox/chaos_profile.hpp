#pragma once

// A fault profile of one's own for `billsync sandbox --chaos --faults FILE` (docs/chaos.md,
// "Your own fault profile"): per simulated vendor, the request faults by method and path prefix
// and what happens to its webhook deliveries. A vendor the profile names gets exactly the
// profile's faults; the others keep the runner's own profile.

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sim/faults.hpp"

namespace billsync::sandbox {

struct chaos_vendor_faults {
    std::vector<simulators::fault_rule> requests;
    std::optional<simulators::webhook_fault_rule> webhooks;
    bool permanent() const;  // a rule that never lifts: dead letters are expected
};

struct chaos_profile {
    std::map<std::string, chaos_vendor_faults, std::less<>> vendors;
};

// The vendors of a chaos run and the path prefix of each one's API (a rule's default path).
struct chaos_vendor {
    std::string_view name;
    std::string_view api_prefix;
    std::string_view webhook_source;  // empty: the runner delivers none of its webhooks
};
const std::vector<chaos_vendor>& chaos_vendors();

// Reads a profile from TOML text; `file` names it in errors. nullopt with `error` set to
// "FILE:LINE:COL: what is wrong" for the first mistake (a syntax error, an unknown vendor, key or
// fault kind, a value out of range): nothing of a profile with a mistake is used.
std::optional<chaos_profile> parse_chaos_profile(std::string_view text,
                                                 const std::string& file,
                                                 std::string& error);
std::optional<chaos_profile> read_chaos_profile(const std::string& file, std::string& error);

}  // namespace billsync::sandbox
