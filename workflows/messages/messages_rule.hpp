#pragma once

// Channel outcomes the operator watches, counted from canonical changes whoever caused them:
// billsync_opt_outs_total{channel} for every suppression that opts an address or number out, and
// billsync_delivery_failures_total{channel,status} for every sms_message or email_message the
// provider reported as not delivered. Decides nothing; without metrics it does nothing.

#include <memory>
#include <string>

#include "workflows/rule.hpp"

namespace billsync::workflows::messages {

struct settings {};

class messages_rule final : public rule {
public:
    explicit messages_rule(util::metrics_registry* metrics) : metrics_(metrics) {}

    std::string_view name() const noexcept override { return "messages"; }
    state::status on_change(const mappings::change& c, context& ctx) const override;

private:
    util::metrics_registry* metrics_;
};

std::unique_ptr<rule> make(const settings& s, const rule_deps& deps, std::string* error);

}  // namespace billsync::workflows::messages
