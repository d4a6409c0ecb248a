// What GET /identities and `billsync identities list` show of the identity map: each client's
// code and how every member of a party joined it.

#include "daemon/identities.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <sstream>

#include "state/apply.hpp"
#include "tests/unit/state/state_test_support.hpp"

namespace billsync::daemon {
namespace {

using json = nlohmann::json;

class identities_test : public ::testing::Test {
protected:
    void SetUp() override {
        store_ = state::testing::open_store(dir_.db());
        ASSERT_TRUE(store_);
    }

    void put(std::string system, std::string id, std::string name, std::string code) {
        mappings::client c;
        c.id = system + ":client:" + id;
        c.display_name = std::move(name);
        c.client_code = std::move(code);
        c.source = {system, "", id, "1", *mappings::parse_timestamp("2026-03-02T10:00:00Z")};
        state::batch b(*store_);
        auto r = state::apply(*store_, b, system, std::move(c));
        ASSERT_TRUE(r.ok()) << r.st.message;
        ASSERT_TRUE(store_->write(b, false).ok);
    }

    state::testing::temp_dir dir_;
    std::unique_ptr<state::store> store_;
};

TEST_F(identities_test, members_show_their_client_code_and_that_it_linked_them) {
    put("books", "7", "Smith Holdings", "SMI001");
    put("practice", "ORG1", "J. Smith", "smi001");
    put("practice", "ORG2", "Jones", "");
    const auto j = identities_json(*store_);
    ASSERT_EQ(j["parties"].size(), 1U) << j.dump();
    const auto& members = j["parties"][0]["members"];
    ASSERT_EQ(members.size(), 2U);
    EXPECT_EQ(members[0]["client"], "books:client:7");
    EXPECT_EQ(members[0]["client_code"], "SMI001");
    EXPECT_TRUE(members[0]["how"].is_null());
    EXPECT_EQ(members[1]["client"], "practice:client:ORG1");
    EXPECT_EQ(members[1]["client_code"], "smi001");
    EXPECT_EQ(members[1]["how"], "client_code");

    std::ostringstream out;
    print_identities(j, out);
    EXPECT_NE(out.str().find("practice     practice:client:ORG1 \"J. Smith\" code smi001 "
                             "(by client_code)\n"),
              std::string::npos)
        << out.str();
    EXPECT_NE(out.str().find("books        books:client:7 \"Smith Holdings\" code SMI001\n"),
              std::string::npos)
        << out.str();
}

TEST_F(identities_test, a_code_exception_names_the_code_of_each_client) {
    put("books", "7", "Smith", "SMI001");
    put("books", "8", "Smith (old)", "SMI001");
    const auto j = identities_json(*store_);
    ASSERT_EQ(j["exceptions"].size(), 1U) << j.dump();
    const auto& e = j["exceptions"][0];
    EXPECT_EQ(e["client"], "books:client:8");
    EXPECT_EQ(e["client_code"], "SMI001");
    EXPECT_EQ(e["kind"], "ambiguous");
    ASSERT_EQ(e["candidates"].size(), 1U);
    EXPECT_EQ(e["candidates"][0]["client_code"], "SMI001");
    std::ostringstream out;
    print_identities(j, out);
    EXPECT_NE(out.str().find("  books:client:8 \"Smith (old)\" code SMI001 [ambiguous]: its "
                             "client code 'SMI001' is also on books:client:7"),
              std::string::npos)
        << out.str();
    EXPECT_NE(out.str().find("      candidate books:client:7 \"Smith\" code SMI001\n"),
              std::string::npos)
        << out.str();
}

TEST_F(identities_test, a_client_without_a_code_shows_null_and_nothing_in_the_text) {
    put("books", "7", "Jones", "");
    put("books", "8", "Jones", "");  // same name, one system: no match, no exception
    put("practice", "ORG1", "Jones", "");
    const auto j = identities_json(*store_);
    ASSERT_FALSE(j["exceptions"].empty()) << j.dump();
    EXPECT_TRUE(j["exceptions"][0]["client_code"].is_null());
    std::ostringstream out;
    print_identities(j, out);
    EXPECT_EQ(out.str().find(" code "), std::string::npos) << out.str();
}

}  // namespace
}  // namespace billsync::daemon
