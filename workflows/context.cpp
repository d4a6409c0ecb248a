#include "workflows/context.hpp"

#include <nlohmann/json.hpp>

namespace billsync::workflows {

state::result<bool> context::enqueue(state::action a, std::optional<cause> why) {
    a.next_attempt_at = now;
    auto added = outbox.enqueue(b, a);
    if (!added.ok()) {
        return added;
    }
    if (added.value) {
        enqueued.emplace_back(a.id, a.connector);
    }
    if (why) {
        nlohmann::json line{{"decision", added.value ? "action_enqueued" : "action_already_known"},
                            {"action", a.id},
                            {"rule", why->rule},
                            {"entity", why->entity},
                            {"version", why->version},
                            {"cause", why->why}};
        audit.append(b, now, line.dump());
    }
    return added;
}

}  // namespace billsync::workflows
