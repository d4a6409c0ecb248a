#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "state/outbox.hpp"
#include "tests/unit/connectors/runtime/runtime_test_support.hpp"

namespace billsync::connectors::testing {

// An "email.send" action for connector `connector`; `extra` overrides or adds payload fields.
inline state::action send_action(const std::string& connector,
                                 const std::string& delivery_id,
                                 nlohmann::json extra = nlohmann::json::object()) {
    nlohmann::json p{{"to", "client@example.com"},
                     {"to_name", "Client Co"},
                     {"subject", "Invoice 1042"},
                     {"text", "Please pay."},
                     {"delivery_id", delivery_id}};
    p.update(extra);
    state::action a;
    a.id = "act-" + delivery_id;
    a.connector = connector;
    a.kind = "email.send";
    a.payload = p.dump();
    return a;
}

}  // namespace billsync::connectors::testing
