#include "daemon/followup_setup.hpp"

#include <initializer_list>
#include <string_view>

#include "connectors/builtin.hpp"
#include "daemon/app_config.hpp"

namespace billsync::daemon {

std::unique_ptr<workflows::followup::followup_rule> make_followup_rule(
    const app_config& cfg,
    const std::set<std::string, std::less<>>& available_connectors,
    util::metrics_registry* metrics,
    std::string* error) {
    namespace fu = workflows::followup;
    if (!cfg.followup.enabled) {
        return nullptr;
    }
    auto p = fu::planner::make(cfg.followup, cfg.daemon().time_zone, error);
    if (!p) {
        return nullptr;
    }
    // The configured connector, else the first available one whose kind performs the action.
    auto pick = [&](const std::string& configured, std::string_view action) {
        if (!configured.empty()) {
            return available_connectors.contains(configured) ? configured : std::string();
        }
        for (const auto& s : cfg.connectors) {
            if (connectors::builtin_kinds().performs(s.kind, action) &&
                available_connectors.contains(s.name)) {
                return s.name;
            }
        }
        return std::string();
    };
    fu::channel_routes routes;
    routes.email = pick(cfg.followup.email_connector, "email.send");
    routes.sms = pick(cfg.followup.sms_connector, "sms.send");
    routes.reply_to = cfg.followup.reply_to;
    routes.coordinator_email = cfg.followup.coordinator_email;
    return std::make_unique<fu::followup_rule>(std::move(*p), std::move(routes), metrics);
}

}  // namespace billsync::daemon
