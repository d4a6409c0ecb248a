#include "workflows/action_key.hpp"

#include <gtest/gtest.h>

namespace billsync::workflows {
namespace {

TEST(action_key, is_stable_and_readable_when_short) {
    EXPECT_EQ(action_key("notify", "generic/demo/ev-1", 3), "notify:generic/demo/ev-1:3");
    EXPECT_EQ(action_key("notify", "generic/demo/ev-1", 3),
              action_key("notify", "generic/demo/ev-1", 3));
}

TEST(action_key, differs_by_rule_entity_and_version) {
    EXPECT_NE(action_key("a", "e", 1), action_key("b", "e", 1));
    EXPECT_NE(action_key("a", "e", 1), action_key("a", "f", 1));
    EXPECT_NE(action_key("a", "e", 1), action_key("a", "e", 2));
}

TEST(action_key, long_keys_are_digested_to_fifty_characters) {
    const std::string entity(200, 'x');
    const auto k = action_key("followup.touch2", entity, 7);
    EXPECT_LE(k.size(), 50u);
    EXPECT_TRUE(k.starts_with("followup.touch2:"));
    EXPECT_NE(k, action_key("followup.touch2", entity, 8));
}

}  // namespace
}  // namespace billsync::workflows
