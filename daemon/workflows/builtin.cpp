#include "daemon/workflows/builtin.hpp"

#include "connectors/builtin.hpp"
#include "daemon/app_config.hpp"
#include "daemon/workflows/draft_time_settings.hpp"
#include "daemon/workflows/followup_settings.hpp"
#include "daemon/workflows/invoicing_settings.hpp"
#include "daemon/workflows/late_fees_settings.hpp"
#include "daemon/workflows/report_settings.hpp"
#include "util/crypto.hpp"
#include "workflows/draft_time/draft_time_rule.hpp"
#include "workflows/followup/followup_rule.hpp"
#include "workflows/invoicing/invoicing_rule.hpp"
#include "workflows/late_fees/late_fees_rule.hpp"
#include "workflows/messages/messages_rule.hpp"
#include "workflows/records/records_rule.hpp"
#include "workflows/weekly_report/weekly_report_rule.hpp"

namespace billsync::daemon {

namespace wf = workflows;

const std::vector<rule_factory>& builtin_rules() {
    // One line per workflow. Order is the order rules see each change.
    static const std::vector<rule_factory> list{
        rule_of<wf::messages::settings>("messages", wf::messages::make),
        rule_of<wf::records::settings>("records", wf::records::make),
        rule_of<wf::followup::settings>(
            "followup", wf::followup::make, "followup", config::parse_followup),
        rule_of<wf::draft_time::settings>(
            "draft_time", wf::draft_time::make, "draft_time", config::parse_draft_time),
        rule_of<wf::invoicing::settings>(
            "invoicing", wf::invoicing::make, "invoicing", config::parse_invoicing),
        rule_of<wf::late_fees::settings>(
            "late_fees", wf::late_fees::make, "late_fees", config::parse_late_fees),
        rule_of<wf::weekly_report::settings>(
            "weekly_report", wf::weekly_report::make, "report", config::parse_report),
    };
    return list;
}

std::set<std::string, std::less<>> enabled_connectors(const app_config& cfg) {
    std::set<std::string, std::less<>> out;
    for (const auto& c : cfg.connectors) {
        if (c.enabled) {
            out.insert(c.name);
        }
    }
    return out;
}

workflows::rule_deps rule_deps_for(const app_config& cfg,
                                   const std::set<std::string, std::less<>>& available,
                                   util::metrics_registry* metrics) {
    workflows::rule_deps deps;
    deps.time_zone = cfg.daemon().time_zone;
    deps.metrics = metrics;
    if (const auto& key = cfg.daemon().secrets_key) {
        deps.reply_key = util::hmac_sha256(key->reveal(), "billsync/followup/reply-token/v1");
    }
    for (const auto& [type, owner] : cfg.sources.owners) {
        deps.sources.emplace(type, owner);
    }
    for (const auto& s : cfg.connectors) {
        if (s.enabled && available.contains(s.name)) {
            workflows::rule_deps::connector c{s.name,
                                              std::string(connectors::channel_of_kind(s.kind)),
                                              s.value("action_url") != nullptr,
                                              {}};
            if (const auto* k = connectors::builtin_kinds().find(s.kind)) {
                c.actions.assign(k->actions.begin(), k->actions.end());
            }
            deps.connectors.push_back(std::move(c));
        }
    }
    return deps;
}

built_rules make_rules(const app_config& cfg, const workflows::rule_deps& deps) {
    built_rules out;
    for (const auto& f : builtin_rules()) {
        const auto it = cfg.workflow_settings.find(f.name);
        std::string error;
        auto r = f.make(it == cfg.workflow_settings.end() ? nullptr : &it->second, deps, &error);
        if (r) {
            out.rules.push_back(std::move(r));
        } else if (!error.empty()) {
            out.failed.emplace_back(std::string(f.name), std::move(error));
        }
    }
    return out;
}

void check_rules(const app_config& cfg, config::diagnostics& diags) {
    const auto built = make_rules(cfg, rule_deps_for(cfg, enabled_connectors(cfg), nullptr));
    for (const auto& [name, error] : built.failed) {
        config::source_pos where{cfg.loaded.file.string()};
        for (const auto& f : builtin_rules()) {
            if (f.name == name && !f.section.empty() && cfg.loaded.document) {
                config::diagnostics unused;
                config::reader root(cfg.loaded.document, cfg.loaded.file.string(), unused);
                where = root.sub(f.section).position();
            }
        }
        diags.error(where, "workflow '" + name + "' cannot run: " + error);
    }
}

}  // namespace billsync::daemon
