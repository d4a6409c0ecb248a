#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace billsync::workflows {

// The idempotency key of a side effect: derived from the rule that decided it, the canonical
// entity it concerns and that entity's version, so replaying the same decision yields the same
// key and a vendor (or our outbox) recognises the repeat. At most 50 characters, the tightest
// vendor limit (QBO requestid): "<rule>:<entity>:<version>" when it fits, otherwise the rule
// prefix and a SHA-256-based digest.
std::string action_key(std::string_view rule, std::string_view entity, std::uint64_t version);

}  // namespace billsync::workflows
