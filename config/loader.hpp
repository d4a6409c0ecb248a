#pragma once

#include <cstddef>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "config/diagnostics.hpp"
#include "config/reader.hpp"

namespace billsync::config {

// One [connectors.<name>] table. Everything but kind and enabled belongs to the connector's own
// settings parser.
struct connector_section {
    std::string name;  // "qbo"; also the webhook route /webhooks/<name>
    std::string kind;  // which connector implementation; defaults to name
    bool enabled = true;
    source_pos where;  // the table header
};

struct loaded_config {
    daemon_settings daemon;
    std::vector<connector_section> connectors;  // in document order
    std::filesystem::path file;

    // A fresh reader over connectors[i]'s table (kind and enabled already marked as known).
    // Diagnostics go to diags; call finish() on it to report unknown keys.
    reader connector_reader(std::size_t i, diagnostics& diags) const;

    std::shared_ptr<const toml::table> document;  // keeps the parsed file alive
};

// Called once per connector section, in document order, before unknown keys are reported: the
// parser reads its keys from r (r.diags() is the load's diagnostics) and whatever it leaves
// unread is then reported as unknown. Without a parser, connector tables are not checked beyond
// kind and enabled.
using connector_parser = std::function<void(const connector_section& section, reader& r)>;

// Parsers for further top-level tables ("sources", "followup", ...), keyed by table name. Each
// is called with a reader over its table (an empty one when the file has no such table), before
// unknown keys are reported. A top-level table without a parser is an error.
using section_parsers = std::map<std::string, std::function<void(reader& r)>, std::less<>>;

// Loads and checks a configuration file. Every problem goes to diags (file name as given, e.g.
// "billsync.toml:14:3: error: ..."); returns nullopt when this load reported any error.
// Resolves secrets; does not touch the file system otherwise (see check_environment).
std::optional<loaded_config> load(const std::filesystem::path& file,
                                  diagnostics& diags,
                                  const connector_parser& parse_connector = {},
                                  const section_parsers& sections = {});

// The same, from text; file_name is used in diagnostics only.
std::optional<loaded_config> load_string(std::string_view toml_text,
                                         std::string file_name,
                                         diagnostics& diags,
                                         const connector_parser& parse_connector = {},
                                         const section_parsers& sections = {});

}  // namespace billsync::config
