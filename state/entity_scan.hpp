#pragma once

// Entities of one type whose ids start with a prefix, in id order: a rule's own index rows
// ("<client>\x1f<entry>") read for one client without visiting the others.

#include <functional>
#include <string_view>

#include "state/store.hpp"

namespace billsync::state {

// fn(id, value) -> bool (false stops).
status for_each_entity_with_prefix(
    const store& s,
    std::string_view type,
    std::string_view id_prefix,
    const std::function<bool(std::string_view, std::string_view)>& fn);

}  // namespace billsync::state
