#include "workflows/messages/messages_rule.hpp"

#include <nlohmann/json.hpp>

#include "util/metrics.hpp"

namespace billsync::workflows::messages {

state::status messages_rule::on_change(const mappings::change& c, context& /*ctx*/) const {
    const bool message = c.entity_type == "sms_message" || c.entity_type == "email_message";
    if (metrics_ == nullptr || (c.entity_type != "suppression" && !message)) {
        return state::status::success();
    }
    const auto f = nlohmann::json::parse(c.fields_json, nullptr, false);
    if (!f.is_object()) {
        return state::status::success();
    }
    if (c.entity_type == "suppression") {
        if (f.value("opted_out", false)) {
            metrics_
                ->get_counter("billsync_opt_outs_total",
                              "Addresses and numbers added to the suppression list.",
                              {{"channel", f.value("channel", std::string("unknown"))}})
                .inc();
        }
        return state::status::success();
    }
    const auto status = f.value("status", std::string());
    if (status == "undelivered" || status == "failed" || status == "bounce" ||
        status == "dropped") {
        metrics_
            ->get_counter(
                "billsync_delivery_failures_total",
                "Messages the provider reported as not delivered.",
                {{"channel", c.entity_type == "sms_message" ? "sms" : "email"}, {"status", status}})
            .inc();
    }
    return state::status::success();
}

std::unique_ptr<rule> make(const settings& /*s*/, const rule_deps& deps, std::string* /*error*/) {
    return std::make_unique<messages_rule>(deps.metrics);
}

}  // namespace billsync::workflows::messages
