#pragma once

// The built-in workflows: one registration line per rule in builtin.cpp, naming the rule, the
// top-level TOML table of its settings (if any), how that table is parsed into the rule's plain
// settings struct, and the factory that builds the rule from those settings and its deps. The
// daemon, the CLI and `billsync preview` all build their rules from this one list.

#include <any>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "config/reader.hpp"
#include "workflows/rule.hpp"

namespace billsync::daemon {

struct app_config;

struct rule_factory {
    std::string_view name;
    std::string_view section;  // top-level table of its settings; empty: none
    // Parses the table into the rule's settings (nullopt: errors, reported on r.diags()).
    std::function<std::optional<std::any>(config::reader& r)> parse;
    // nullptr: the rule is off (*error empty) or cannot be built (*error says why).
    std::function<std::unique_ptr<workflows::rule>(
        const std::any* settings, const workflows::rule_deps& deps, std::string* error)>
        make;
};

// One line of the list: Settings is the rule's plain settings struct, parse (optional, with a
// section) reads it from a config::reader, make(settings, deps, error) builds the rule.
template <class Settings, class Make>
rule_factory rule_of(std::string_view name,
                     Make make,
                     std::string_view section = {},
                     std::optional<Settings> (*parse)(config::reader&) = nullptr) {
    rule_factory f;
    f.name = name;
    f.section = section;
    if (parse != nullptr) {
        f.parse = [parse](config::reader& r) -> std::optional<std::any> {
            auto s = parse(r);
            if (!s) {
                return std::nullopt;
            }
            return std::any(std::move(*s));
        };
    }
    f.make = [make](const std::any* settings,
                    const workflows::rule_deps& deps,
                    std::string* error) -> std::unique_ptr<workflows::rule> {
        const auto* s = settings == nullptr ? nullptr : std::any_cast<Settings>(settings);
        return make(s == nullptr ? Settings{} : *s, deps, error);
    };
    return f;
}

const std::vector<rule_factory>& builtin_rules();

// Every enabled connector's name (where nothing is contacted, all count as available).
std::set<std::string, std::less<>> enabled_connectors(const app_config& cfg);

// The deps rules get: the firm's default time zone, the available connectors (by name, in
// configuration order) with the channel each carries, and metrics (null: none).
workflows::rule_deps rule_deps_for(const app_config& cfg,
                                   const std::set<std::string, std::less<>>& available,
                                   util::metrics_registry* metrics);

struct built_rules {
    std::vector<std::unique_ptr<workflows::rule>> rules;      // the enabled ones, in list order
    std::vector<std::pair<std::string, std::string>> failed;  // rule name, why it cannot run
};
built_rules make_rules(const app_config& cfg, const workflows::rule_deps& deps);

// Builds every workflow of a loaded configuration with all its enabled connectors available and
// reports each one that cannot run as an error at its settings table ("[report] has recipients
// in 'to' but no email connector is enabled"), so `billsync validate` finds what the daemon would
// only log at start-up. Nothing is contacted or stored.
void check_rules(const app_config& cfg, config::diagnostics& diags);

}  // namespace billsync::daemon
