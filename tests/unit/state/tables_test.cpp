#include "state/tables.hpp"

#include <gtest/gtest.h>

#include "tests/unit/state/state_test_support.hpp"

namespace billsync::state {
namespace {

using testing::at_s;
using testing::temp_dir;

TEST(tables, cursors_tokens_entities_and_xref) {
    temp_dir dir;
    auto s = testing::open_store(dir.db());
    ASSERT_TRUE(s);
    batch b(*s);
    put_cursor(b, "harvest/time_entries", "2026-01-05T09:00:00Z");
    put_token(b, "qbo/refresh", "r1");
    put_entity(b, "client", "c1", R"({"name":"Acme"})");
    put_entity(b, "client", "c2", R"({"name":"Bolt"})");
    put_entity(b, "invoice", "i1", "{}");
    put_xref(b, "qbo", "123", "c1");
    ASSERT_TRUE(s->write(b, true).ok);

    EXPECT_EQ(get_cursor(*s, "harvest/time_entries").value,
              std::optional<std::string>("2026-01-05T09:00:00Z"));
    EXPECT_EQ(get_token(*s, "qbo/refresh").value, std::optional<std::string>("r1"));
    EXPECT_EQ(get_entity(*s, "client", "c1").value,
              std::optional<std::string>(R"({"name":"Acme"})"));
    std::vector<std::string> clients;
    ASSERT_TRUE(for_each_entity(*s, "client", [&](std::string_view id, std::string_view) {
                    clients.emplace_back(id);
                    return true;
                }).ok);
    EXPECT_EQ(clients, (std::vector<std::string>{"c1", "c2"}));
    EXPECT_EQ(local_id(*s, "qbo", "123").value, std::optional<std::string>("c1"));
    EXPECT_EQ(remote_id(*s, "c1", "qbo").value, std::optional<std::string>("123"));
    EXPECT_FALSE(local_id(*s, "xero", "123").value);

    batch del(*s);
    delete_token(del, "qbo/refresh");
    delete_entity(del, "client", "c2");
    ASSERT_TRUE(s->write(del, true).ok);
    EXPECT_FALSE(get_token(*s, "qbo/refresh").value);
    EXPECT_FALSE(get_entity(*s, "client", "c2").value);
}

TEST(tables, change_and_audit_logs_continue_after_reopen) {
    temp_dir dir;
    std::uint64_t last = 0;
    {
        auto s = testing::open_store(dir.db());
        ASSERT_TRUE(s);
        auto changes = change_log::open(*s);
        auto audit = audit_log::open(*s);
        ASSERT_TRUE(changes.ok() && audit.ok());
        batch b(*s);
        EXPECT_EQ(changes.value->append(b, "c1"), 1u);
        last = changes.value->append(b, "c2");
        audit.value->append(b, at_s(20), R"({"msg":"second"})");
        audit.value->append(b, at_s(10), R"({"msg":"first"})");
        ASSERT_TRUE(s->write(b, true).ok);
    }
    auto s = testing::open_store(dir.db());
    ASSERT_TRUE(s);
    auto changes = change_log::open(*s);
    auto audit = audit_log::open(*s);
    ASSERT_TRUE(changes.ok() && audit.ok());
    batch b(*s);
    EXPECT_EQ(changes.value->append(b, "c3"), last + 1);
    audit.value->append(b, at_s(20), R"({"msg":"third"})");
    changes.value->remove(b, 1);
    ASSERT_TRUE(s->write(b, true).ok);

    auto read = changes.value->read(0, 10);
    ASSERT_TRUE(read.ok());
    ASSERT_EQ(read.value.size(), 2u);
    EXPECT_EQ(read.value[0], (std::pair<std::uint64_t, std::string>{2, "c2"}));
    EXPECT_EQ(read.value[1], (std::pair<std::uint64_t, std::string>{3, "c3"}));

    auto lines = audit.value->read(at_s(0), 10);
    ASSERT_TRUE(lines.ok());
    ASSERT_EQ(lines.value.size(), 3u);
    EXPECT_EQ(lines.value[0].line, R"({"msg":"first"})");
    EXPECT_EQ(lines.value[1].line, R"({"msg":"second"})");
    EXPECT_EQ(lines.value[2].line, R"({"msg":"third"})");
    EXPECT_EQ(audit.value->read(at_s(15), 1).value.size(), 1u);
}

TEST(tables, the_audit_log_says_which_seq_the_next_line_takes) {
    temp_dir dir;
    auto s = testing::open_store(dir.db());
    ASSERT_TRUE(s);
    {
        auto audit = audit_log::open(*s);
        ASSERT_TRUE(audit.ok());
        EXPECT_EQ(audit.value->next_seq(), 1u);
        batch b(*s);
        audit.value->append(b, at_s(10), R"({"msg":"a"})");
        audit.value->append(b, at_s(10), R"({"msg":"b"})");
        EXPECT_EQ(audit.value->next_seq(), 3u);
        ASSERT_TRUE(s->write(b, true).ok);
    }
    auto audit = audit_log::open(*s);
    ASSERT_TRUE(audit.ok());
    const auto first = audit.value->next_seq();
    EXPECT_EQ(first, 3u);
    batch b(*s);
    audit.value->append(b, at_s(10), R"({"msg":"c"})");
    ASSERT_TRUE(s->write(b, true).ok);
    // The lines appended since `first` are those with a seq from it on.
    const auto lines = audit.value->read(at_s(0), 10);
    ASSERT_TRUE(lines.ok());
    ASSERT_EQ(lines.value.size(), 3u);
    EXPECT_EQ(lines.value[2].seq, first);
    EXPECT_EQ(lines.value[2].line, R"({"msg":"c"})");
    EXPECT_EQ(audit.value->next_seq(), first + 1);
}

}  // namespace
}  // namespace billsync::state
