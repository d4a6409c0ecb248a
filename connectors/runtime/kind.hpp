#pragma once

// A connector kind describes itself: its settings schema, its OAuth2 rules (if any), its rate
// limits and the factory that builds it. Each vendor folder
// (connectors/<kind>/) owns one description; connectors/builtin.cpp lists them, one line each.
// Nothing here knows a vendor.

#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "connectors/runtime/oauth2_rules.hpp"
#include "connectors/runtime/rate_limit.hpp"
#include "connectors/runtime/settings.hpp"

namespace billsync::connectors {

class connector;
struct runtime_deps;

enum class field_type : std::uint8_t { string, secret, url, integer, boolean, choice };

// One key of a connector section.
struct field {
    std::string_view key;
    field_type type = field_type::string;
    bool required = false;
    std::optional<std::string_view> fallback = std::nullopt;  // default, as text
    std::int64_t min = std::numeric_limits<std::int64_t>::min();
    std::int64_t max = std::numeric_limits<std::int64_t>::max();
    std::vector<std::string_view> choices = {};
    // url only: an address vendors call (billsync's own), so no credential of ours travels to it
    // and plain http:// is not refused off loopback.
    bool inbound = false;
};

// The keys every OAuth2 authorization-code kind takes (`billsync connect`), around its own.
std::vector<field> with_oauth2_keys(std::vector<field> vendor);

// Checks that span several keys, run after every key was read; report with r.error(key, …).
using cross_check = void (*)(const connector_settings&, config::reader&);
// Builds the connector; nullptr when `rt` lacks what it needs.
using connector_factory = std::unique_ptr<connector> (*)(const connector_settings&,
                                                         const runtime_deps&);

struct connector_kind {
    std::string_view kind = {};
    std::string_view summary = {};    // one line for people: what it connects
    std::string_view base_url = {};   // default; empty: none (base_url optional)
    std::string_view token_url = {};  // default; empty: token_url is not a key
    std::vector<field> fields = {};
    cross_check check = nullptr;
    std::optional<oauth2::vendor_rules> oauth2 = {};  // set: `billsync connect` applies
    std::optional<limit_spec> limits = {};            // the vendor's documented limits
    // The outbox action kinds its connector performs ("email.send", …): workflows route to a
    // connector by what it does, never by vendor.
    std::vector<std::string_view> actions = {};
    // The largest webhook body its vendor sends, when that is known and differs from the
    // listener's max_body (most send a few KiB): the body cap of POST /webhooks/<name>[/…], so
    // a client that has not yet been verified cannot make the daemon buffer more there. Never
    // above the listener's max_buffered_body. nullopt: the listener's max_body.
    std::optional<std::size_t> webhook_max_body = {};
    // nullptr: the kind is known (its section validates) but this build cannot run it.
    connector_factory make = nullptr;
};

// The kinds one build knows.
class kind_registry {
public:
    kind_registry() = default;
    // Throws std::logic_error for a duplicate kind (a programming error in the built-in list).
    void add(connector_kind k);

    const connector_kind* find(std::string_view kind) const;
    // Every known kind, sorted.
    std::vector<std::string_view> kinds() const;
    bool available(std::string_view kind) const;
    bool uses_oauth2(std::string_view kind) const;
    bool performs(std::string_view kind, std::string_view action) const;

    // Reads the keys of section's kind from r; problems go to diags (the reader's diagnostics).
    // Unknown kind → error with a suggestion. Keys left unread are reported by the loader's
    // finish(). nullopt when the section had errors.
    std::optional<connector_settings> parse(const config::connector_section& section,
                                            config::reader& r,
                                            config::diagnostics& diags) const;

    // nullptr for an unknown or unavailable kind, or one whose needs `rt` does not meet.
    std::unique_ptr<connector> make(const connector_settings& s, const runtime_deps& rt) const;

    // Gives the limiter every kind's documented limits, keyed by kind.
    void register_limits(rate_limiter& limiter) const;

private:
    std::vector<connector_kind> kinds_;
};

}  // namespace billsync::connectors
