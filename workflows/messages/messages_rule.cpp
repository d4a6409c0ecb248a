#include "workflows/messages/messages_rule.hpp"

#include "util/metrics.hpp"

namespace billsync::workflows::messages {

state::status messages_rule::on_change(const mappings::change& c, context& /*ctx*/) const {
    if (metrics_ == nullptr) {
        return state::status::success();
    }
    if (const auto* s = c.as<mappings::suppression>()) {
        if (s->opted_out) {
            metrics_
                ->get_counter("billsync_opt_outs_total",
                              "Addresses and numbers added to the suppression list.",
                              {{"channel", std::string(mappings::to_string(s->via))}})
                .inc();
        }
    } else if (const auto* m = c.as<mappings::message_status>(); m && m->failed) {
        metrics_
            ->get_counter(
                "billsync_delivery_failures_total",
                "Messages the provider reported as not delivered.",
                {{"channel", std::string(mappings::to_string(m->via))}, {"status", m->status}})
            .inc();
    }
    return state::status::success();
}

std::unique_ptr<rule> make(const settings& /*s*/, const rule_deps& deps, std::string* /*error*/) {
    return std::make_unique<messages_rule>(deps.metrics);
}

}  // namespace billsync::workflows::messages
