#pragma once

// [sources]: which connector is the source of truth for each data type.
//
//   [sources]
//   invoices = "qbo"
//   payments = "qbo"
//   clients = "karbon"      # "customers" is accepted as another name for it
//   time_entries = "harvest"
//   work_items = "karbon"

#include <array>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "config/diagnostics.hpp"
#include "config/reader.hpp"

namespace billsync::config {

// The data types [sources] knows, in canonical spelling.
inline constexpr std::array<std::string_view, 5> source_data_types = {
    "invoices", "payments", "clients", "time_entries", "work_items"};

struct sources_settings {
    std::map<std::string, std::string, std::less<>> owners;  // data type -> connector name
    std::map<std::string, source_pos, std::less<>> where;    // data type -> the key's position

    // The connector that owns data_type ("customers" reads as "clients"); empty when unset.
    std::string owner(std::string_view data_type) const;
    bool owns(std::string_view connector, std::string_view data_type) const {
        const auto o = owner(data_type);
        return !o.empty() && o == connector;
    }
};

// "customers" -> "clients"; other names unchanged.
std::string_view canonical_data_type(std::string_view data_type) noexcept;

// Reads [sources] (an absent table gives empty settings). Each value must name a
// [connectors.<name>] section of the same document (a disabled one draws a warning); unknown
// keys are reported with a suggestion by the loader's finish(). Errors go to r.diags().
sources_settings parse_sources(reader& r);
// The same against an explicit list of connector names.
sources_settings parse_sources(reader& r, const std::vector<std::string>& connector_names);

}  // namespace billsync::config
