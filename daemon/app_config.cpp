#include "daemon/app_config.hpp"

#include <algorithm>

#include "connectors/builtin.hpp"
#include "connectors/runtime/token_store.hpp"
#include "daemon/workflows/builtin.hpp"

namespace billsync::daemon {

std::optional<app_config> load_app_config(const std::filesystem::path& file,
                                          config::diagnostics& diags) {
    std::vector<connectors::connector_settings> parsed;
    config::sources_settings sources;
    std::map<std::string, std::any, std::less<>> workflow_settings;
    config::section_parsers sections{
        {"sources", [&sources](config::reader& r) { sources = config::parse_sources(r); }}};
    for (const auto& f : builtin_rules()) {
        if (!f.section.empty() && f.parse) {
            sections.emplace(std::string(f.section), [&workflow_settings, &f](config::reader& r) {
                if (auto s = f.parse(r)) {
                    workflow_settings.insert_or_assign(std::string(f.name), std::move(*s));
                }
            });
        }
    }
    auto loaded = config::load(
        file,
        diags,
        [&parsed, &diags](const config::connector_section& section, config::reader& r) {
            const auto& kinds = connectors::builtin_kinds();
            if (auto s = kinds.parse(section, r, diags)) {
                // A section this build cannot run is an error now, not a connector that
                // silently never syncs.
                if (s->enabled && !kinds.available(s->kind)) {
                    r.error("kind",
                            "kind '" + s->kind +
                                "' is not available in this build (set enabled = false to keep "
                                "the section)");
                    return;
                }
                parsed.push_back(std::move(*s));
            }
        },
        sections);
    if (!loaded || diags.has_errors()) {
        return std::nullopt;
    }
    // A relative data_dir is relative to the configuration file, not to wherever the daemon
    // happened to be started.
    auto& data_dir = loaded->daemon.data_dir;
    if (data_dir.is_relative()) {
        data_dir = std::filesystem::absolute(file).parent_path() / data_dir;
    }
    // A connector key named public_url (the external URL the vendor calls and signs) defaults to
    // [daemon] public_url; one of the two is required.
    for (auto& c : parsed) {
        const auto* kind = connectors::builtin_kinds().find(c.kind);
        const bool takes =
            kind != nullptr &&
            std::any_of(kind->fields.begin(), kind->fields.end(), [](const connectors::field& f) {
                return f.key == "public_url";
            });
        if (!takes || c.value("public_url") != nullptr) {
            continue;
        }
        if (!loaded->daemon.public_url.empty()) {
            c.values.emplace("public_url", loaded->daemon.public_url);
            continue;
        }
        for (const auto& section : loaded->connectors) {
            if (section.name == c.name) {
                diags.error(section.where,
                            "[connectors." + c.name +
                                "] 'public_url' is required: set it here or set [daemon] "
                                "public_url (the URL the vendor calls; signatures cover it)");
            }
        }
    }
    // A connector key named time_zone (vendor instants become civil dates there) defaults to
    // [daemon] time_zone.
    for (auto& c : parsed) {
        const auto* kind = connectors::builtin_kinds().find(c.kind);
        const bool takes =
            kind != nullptr &&
            std::any_of(kind->fields.begin(), kind->fields.end(), [](const connectors::field& f) {
                return f.key == "time_zone";
            });
        if (takes && c.value("time_zone") == nullptr && !loaded->daemon.time_zone.empty()) {
            c.values.emplace("time_zone", loaded->daemon.time_zone);
        }
    }
    // A connector key named sync_time (poll the firm's time records) defaults to true for the
    // connector [sources] time_entries names, false elsewhere.
    const auto time_owner = sources.owner("time_entries");
    for (auto& c : parsed) {
        const auto* kind = connectors::builtin_kinds().find(c.kind);
        const bool takes =
            kind != nullptr &&
            std::any_of(kind->fields.begin(), kind->fields.end(), [](const connectors::field& f) {
                return f.key == "sync_time";
            });
        if (takes && c.value("sync_time") == nullptr) {
            c.values.emplace("sync_time", c.name == time_owner ? "true" : "false");
        }
    }
    // A connector key named invoices_source (its invoices drive the workflows rather than being
    // stored as read-only facts) defaults to true for the connector [sources] invoices names,
    // false elsewhere.
    const auto invoice_owner = sources.owner("invoices");
    for (auto& c : parsed) {
        const auto* kind = connectors::builtin_kinds().find(c.kind);
        const bool takes =
            kind != nullptr &&
            std::any_of(kind->fields.begin(), kind->fields.end(), [](const connectors::field& f) {
                return f.key == "invoices_source";
            });
        if (takes && c.value("invoices_source") == nullptr) {
            c.values.emplace("invoices_source", c.name == invoice_owner ? "true" : "false");
        }
    }
    if (diags.has_errors()) {
        return std::nullopt;
    }
    app_config out{
        std::move(*loaded), std::move(parsed), std::move(sources), std::move(workflow_settings)};
    // OAuth2 tokens are sealed at rest under secrets_key; without one they are stored unsealed.
    const auto& d = out.daemon();
    if (d.secrets_key && d.secrets_key->resolved()) {
        std::string error;
        if (!connectors::parse_secrets_key(d.secrets_key->reveal(), error)) {
            diags.error(d.where.daemon, "[daemon] secrets_key: " + error);
            return std::nullopt;
        }
    } else if (!d.secrets_key && out.uses_oauth2()) {
        diags.warning(d.where.daemon,
                      "[daemon] no secrets_key: OAuth2 tokens will be stored unsealed, and the "
                      "daemon refuses a data_dir readable by other users");
    }
    return out;
}

bool app_config::uses_oauth2() const {
    return std::any_of(connectors.begin(), connectors.end(), [](const auto& c) {
        // A kind may offer OAuth2 next to a static token (Harvest): a section uses OAuth2 when
        // it names an OAuth2 client.
        return c.enabled && billsync::connectors::builtin_kinds().uses_oauth2(c.kind) &&
               c.value("client_id") != nullptr;
    });
}

}  // namespace billsync::daemon
