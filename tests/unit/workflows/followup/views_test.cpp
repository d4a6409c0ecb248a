// What the follow-up workflow shows operators, read from state: GET /followups one page at a time
// (the cursor, the limit, finished sequences left out) and the dashboard's counts by stage.

#include "workflows/followup/views.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "mappings/model.hpp"
#include "state/tables.hpp"
#include "tests/unit/workflows/workflows_test_support.hpp"
#include "workflows/followup/planner.hpp"

namespace billsync::workflows::followup {
namespace {

using json = nlohmann::json;

class followup_views_test : public testing_support::state_fixture {
protected:
    void SetUp() override {
        state_fixture::SetUp();
        mappings::client cl;
        cl.id = "c-1";
        cl.display_name = "Acme Dental";
        put("client", cl.id, mappings::to_json(cl).dump());
    }

    void put(std::string_view type, std::string_view id, const std::string& row) {
        state::batch b(*store_);
        state::put_entity(b, type, id, row);
        ASSERT_TRUE(store_->write(b, true).ok);
    }

    // A sequence in `p` with its invoice (number = "N" + id).
    void sequence(const std::string& id, phase p, std::uint32_t last_touch = 0) {
        mappings::invoice inv;
        inv.id = id;
        inv.number = "N" + id;
        inv.client_id = "c-1";
        inv.currency = "USD";
        inv.total = inv.balance = {1000, "USD"};
        put("invoice", id, mappings::to_json(inv).dump());
        sequence_state st;
        st.invoice_id = id;
        st.seen = true;
        st.current = p;
        st.last_touch = last_touch;
        st.due_date = st.anchor = date::year(2026) / date::month(1) / date::day(5);
        put("followup", id, encode(st));
    }

    static std::vector<std::string> ids(const json& page) {
        std::vector<std::string> out;
        for (const auto& row : page["followups"]) {
            out.push_back(row["invoice"].get<std::string>());
        }
        return out;
    }

    settings cfg_ = default_settings();
};

TEST_F(followup_views_test, pages_through_the_open_sequences_in_invoice_order) {
    sequence("inv-1", phase::active, 1);
    sequence("inv-2", phase::completed, 3);
    sequence("inv-3", phase::paused, 2);
    sequence("inv-4", phase::cancelled);
    sequence("inv-5", phase::waiting);
    sequence("inv-6", phase::stopped);

    auto page = followups_page(*store_, cfg_, 2, "");
    EXPECT_EQ(ids(page), (std::vector<std::string>{"inv-1", "inv-3"}));
    EXPECT_EQ(page["limit"], 2);
    EXPECT_EQ(page["next"], "inv-3");
    // The rows are the full list's rows.
    const auto all = followups_json(*store_, cfg_);
    ASSERT_EQ(all.size(), 3u);
    EXPECT_EQ(page["followups"][0], all[0]);
    EXPECT_EQ(page["followups"][0]["number"], "Ninv-1");
    EXPECT_EQ(page["followups"][0]["client_name"], "Acme Dental");

    // The last page: nothing follows (only finished sequences after it), so no cursor.
    page = followups_page(*store_, cfg_, 2, "inv-3");
    EXPECT_EQ(ids(page), (std::vector<std::string>{"inv-5"}));
    EXPECT_TRUE(page["next"].is_null());

    // A page that ends exactly at the last open sequence has no cursor either.
    page = followups_page(*store_, cfg_, 3, "");
    EXPECT_EQ(ids(page), (std::vector<std::string>{"inv-1", "inv-3", "inv-5"}));
    EXPECT_TRUE(page["next"].is_null());

    // `after` is a position: an id that is not a sequence (or past the end) still works.
    EXPECT_EQ(ids(followups_page(*store_, cfg_, 10, "inv-2")),
              (std::vector<std::string>{"inv-3", "inv-5"}));
    EXPECT_TRUE(followups_page(*store_, cfg_, 10, "inv-9")["followups"].empty());
}

TEST_F(followup_views_test, an_id_that_extends_the_cursor_is_on_the_next_page) {
    sequence("inv-1", phase::active, 1);
    sequence("inv-10", phase::active, 1);
    sequence("inv-1a", phase::active, 1);
    const auto first = followups_page(*store_, cfg_, 1, "");
    EXPECT_EQ(ids(first), (std::vector<std::string>{"inv-1"}));
    ASSERT_EQ(first["next"], "inv-1");
    const auto second = followups_page(*store_, cfg_, 5, "inv-1");
    EXPECT_EQ(ids(second), (std::vector<std::string>{"inv-10", "inv-1a"}));
}

TEST_F(followup_views_test, counts_the_open_sequences_by_phase_and_last_touch) {
    sequence("inv-1", phase::active, 1);
    sequence("inv-2", phase::active, 1);
    sequence("inv-3", phase::active, 2);
    sequence("inv-4", phase::paused, 2);
    sequence("inv-5", phase::completed, 3);
    sequence("inv-6", phase::waiting);
    const auto counted = followup_stages(*store_);
    EXPECT_EQ(counted["open"], 5);
    EXPECT_EQ(counted["stages"], json::parse(R"([{"phase":"active","last_touch":1,"count":2},
                              {"phase":"active","last_touch":2,"count":1},
                              {"phase":"paused","last_touch":2,"count":1},
                              {"phase":"waiting","last_touch":0,"count":1}])"));
    EXPECT_EQ(followup_stages(*store_)["open"], followups_json(*store_, cfg_).size());
}

// The counts read each row's phase and last touch without decoding it; a row written in another
// member order or spacing counts the same, and one the scan cannot place (an unknown phase) is
// left to the full decode, which refuses it, as before.
TEST_F(followup_views_test, counts_rows_in_any_member_order_and_skips_unreadable_ones) {
    sequence("inv-1", phase::active, 1);
    sequence("inv-2", phase::stopped, 3);
    auto reordered = json::parse(encode([] {
        sequence_state st;
        st.invoice_id = "inv-3";
        st.seen = true;
        st.current = phase::paused;
        st.last_touch = 2;
        st.due_date = st.anchor = date::year(2026) / date::month(1) / date::day(5);
        return st;
    }()));
    std::string text = "{ \"last_touch\" : 2 , \"phase\" : \"paused\"";
    for (const auto& [k, v] : reordered.items()) {
        if (k != "last_touch" && k != "phase") {
            text += ", \"" + k + "\": " + v.dump();
        }
    }
    text += " }";
    put("followup", "inv-3", text);
    auto unknown = reordered;
    unknown["phase"] = "dormant";
    put("followup", "inv-4", unknown.dump());
    put("followup", "inv-5", "not json");

    const auto counted = followup_stages(*store_);
    EXPECT_EQ(counted["open"], 2);
    EXPECT_EQ(counted["stages"], json::parse(R"([{"phase":"active","last_touch":1,"count":1},
                              {"phase":"paused","last_touch":2,"count":1}])"));
    const auto page = followups_page(*store_, cfg_, 10, "");
    EXPECT_EQ(page["followups"].size(), 2u) << page.dump(1);
}

}  // namespace
}  // namespace billsync::workflows::followup
