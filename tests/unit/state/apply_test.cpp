// The shared apply step: every source's canonical entities are versioned, ordered, diffed and
// linked in the identity map the same way.

#include "state/apply.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "state/tables.hpp"
#include "tests/unit/state/state_test_support.hpp"

namespace billsync::state {
namespace {

using nlohmann::json;
using testing::temp_dir;

mappings::instant at(const char* text) { return *mappings::parse_timestamp(text); }

class apply_test : public ::testing::Test {
protected:
    void SetUp() override {
        store_ = testing::open_store(dir_.db());
        ASSERT_TRUE(store_);
    }

    // Applies one entity in its own batch; the change, if any.
    std::optional<mappings::change> put(mappings::entity e, std::string source = "ledger") {
        batch b(*store_);
        auto r = apply(*store_, b, source, std::move(e));
        EXPECT_TRUE(r.ok()) << r.st.message;
        EXPECT_TRUE(store_->write(b, false).ok);
        return r.value;
    }

    json row(std::string_view type, std::string_view id) {
        auto r = get_entity(*store_, type, id);
        EXPECT_TRUE(r.ok() && r.value) << type << "/" << id;
        return r.value ? json::parse(*r.value) : json();
    }

    static mappings::invoice invoice(std::int64_t balance, const char* updated) {
        mappings::invoice i;
        i.id = "ledger:9:invoice:130";
        i.number = "1042";
        i.client_id = "ledger:9:client:7";
        i.currency = "USD";
        i.total = {50000, "USD"};
        i.balance = {balance, "USD"};
        i.source = {"ledger", "9", "130", "1", at(updated)};
        return i;
    }

    temp_dir dir_;
    std::unique_ptr<store> store_;
};

TEST_F(apply_test, invoices_are_versioned_diffed_and_linked) {
    auto c = put(invoice(50000, "2026-01-05T09:00:00Z"));
    ASSERT_TRUE(c);
    EXPECT_EQ(c->entity_type, "invoice");
    EXPECT_EQ(c->version, 1u);
    EXPECT_EQ(c->what, mappings::change::op::created);
    ASSERT_NE(c->as<mappings::invoice>(), nullptr);
    EXPECT_EQ(c->as<mappings::invoice>()->balance.minor, 50000);
    EXPECT_EQ(json::parse(c->fields_json)["changes"][0]["kind"], "created");
    EXPECT_EQ(local_id(*store_, "ledger", "9/invoice/130").value,
              std::optional<std::string>("ledger:9:invoice:130"));

    // The same copy again: nothing.
    EXPECT_FALSE(put(invoice(50000, "2026-01-05T09:00:00Z")));
    // A payment lands: version 2, the diff says so.
    c = put(invoice(0, "2026-01-06T09:00:00Z"));
    ASSERT_TRUE(c);
    EXPECT_EQ(c->version, 2u);
    EXPECT_EQ(c->what, mappings::change::op::updated);
    EXPECT_EQ(json::parse(c->fields_json)["changes"][0]["kind"], "balance_to_zero");
    // An older copy delivered late is not applied.
    EXPECT_FALSE(put(invoice(50000, "2026-01-05T10:00:00Z")));
    EXPECT_EQ(row("invoice", "ledger:9:invoice:130")["balance"]["minor"], 0);
    EXPECT_EQ(row("invoice", "ledger:9:invoice:130")["version"], 2);

    // A delete keeps the last known fields; a second delete is nothing.
    auto gone = invoice(0, "2026-01-07T09:00:00Z");
    gone.deleted = true;
    gone.number.clear();
    c = put(gone);
    ASSERT_TRUE(c);
    EXPECT_EQ(c->what, mappings::change::op::deleted);
    EXPECT_EQ(row("invoice", "ledger:9:invoice:130")["number"], "1042");
    EXPECT_FALSE(put(gone));
}

TEST_F(apply_test, a_delete_of_something_never_seen_is_nothing) {
    mappings::payment p;
    p.id = "ledger:9:payment:5";
    p.deleted = true;
    p.source = {"ledger", "9", "5", "", std::nullopt};
    EXPECT_FALSE(put(p));
    EXPECT_FALSE(get_entity(*store_, "payment", p.id).value);
}

TEST_F(apply_test, one_canonical_client_links_every_system_that_knows_it) {
    mappings::client c;
    c.id = "client-acme";
    c.display_name = "Acme Dental";
    c.source = {"ledger", "9", "7", "", std::nullopt};
    ASSERT_TRUE(put(c));
    c.display_name = "Acme Dental LLC";
    c.source = {"practice", "", "org-41", "", std::nullopt};
    const auto renamed = put(c, "practice");
    ASSERT_TRUE(renamed);
    EXPECT_EQ(json::parse(renamed->fields_json)["changes"][0]["field"], "display_name");
    auto links = links_of(*store_, "client-acme");
    ASSERT_TRUE(links.ok());
    ASSERT_EQ(links.value.size(), 2u);
    EXPECT_EQ(links.value[0].system, "ledger");
    EXPECT_EQ(links.value[0].remote, "9/client/7");
    EXPECT_EQ(links.value[1].system, "practice");
    EXPECT_EQ(links.value[1].remote, "client/org-41");
    EXPECT_EQ(local_id(*store_, "practice", "client/org-41").value,
              std::optional<std::string>("client-acme"));
}

TEST_F(apply_test, suppressions_change_only_when_the_consent_moves) {
    const mappings::suppression stop{.via = mappings::channel::sms,
                                     .address = "+14155550123",
                                     .opted_out = true,
                                     .reason = "STOP",
                                     .at = "2026-01-05T09:00:00Z"};
    auto c = put(stop, "sms");
    ASSERT_TRUE(c);
    EXPECT_EQ(c->entity_id, "sms:+14155550123");
    EXPECT_EQ(c->version, 1u);
    EXPECT_FALSE(put(stop, "sms"));  // already opted out
    auto start = stop;
    start.opted_out = false;
    start.reason = "START";
    c = put(start, "sms");
    ASSERT_TRUE(c);
    EXPECT_EQ(c->version, 2u);
    EXPECT_EQ(c->what, mappings::change::op::updated);
    EXPECT_EQ(row("suppression", "sms:+14155550123"),
              (json{{"channel", "sms"},
                    {"address", "+14155550123"},
                    {"opted_out", false},
                    {"reason", "START"},
                    {"at", "2026-01-05T09:00:00Z"},
                    {"version", 2},
                    {"source", "sms"}}));
}

TEST_F(apply_test, message_status_only_moves_forward_and_keeps_engagement_beside_it) {
    mappings::message_status m;
    m.via = mappings::channel::email;
    m.delivery_id = "d-1";
    m.status = "delivered";
    m.progress = 3;
    ASSERT_TRUE(put(m, "mail"));
    auto late = m;
    late.status = "processed";
    late.progress = 1;
    EXPECT_FALSE(put(late, "mail"));
    auto open = m;
    open.status = "open";
    open.progress = 0;
    const auto c = put(open, "mail");
    ASSERT_TRUE(c);
    EXPECT_EQ(c->as<mappings::message_status>()->status, "open");
    const auto r = row("email_message", "d-1");
    EXPECT_EQ(r["fields"]["status"], "delivered");
    EXPECT_EQ(r["fields"]["last_engagement"], "open");
    EXPECT_EQ(r["version"], 2);
    auto bounce = m;
    bounce.status = "bounce";
    bounce.progress = 4;
    bounce.failed = true;
    ASSERT_TRUE(put(bounce, "mail"));
    EXPECT_EQ(row("email_message", "d-1")["fields"]["status"], "bounce");
    EXPECT_EQ(row("email_message", "d-1")["fields"]["last_engagement"], "open");
}

TEST_F(apply_test, inbound_messages_are_taken_once) {
    mappings::inbound_message m;
    m.via = mappings::channel::sms;
    m.id = "SM1";
    m.from = "+14155550123";
    m.text = "paid yesterday";
    const auto c = put(m, "sms");
    ASSERT_TRUE(c);
    EXPECT_EQ(c->entity_type, "sms_inbound");
    EXPECT_FALSE(put(m, "sms"));
}

TEST_F(apply_test, records_change_when_their_fields_do) {
    mappings::generic::record r{"forms/42", R"({"id":"42","stage":"done"})", std::nullopt};
    auto c = put(r, "forms");
    ASSERT_TRUE(c);
    EXPECT_EQ(c->fields_json, r.fields_json);
    EXPECT_EQ(local_id(*store_, "forms", "record/42").value,
              std::optional<std::string>("forms/42"));
    EXPECT_FALSE(put(r, "forms"));
    r.fields_json = R"({"id":"42","stage":"billed"})";
    c = put(r, "forms");
    ASSERT_TRUE(c);
    EXPECT_EQ(c->version, 2u);
}

TEST_F(apply_test, practice_entities_follow_the_same_rules) {
    mappings::time_entry t;
    t.id = "time:88";
    t.staff_id = "staff:1";
    t.client_id = "client-acme";
    t.date = mappings::parse_civil_date("2026-01-05");
    t.minutes = 90;
    t.hourly_rate = mappings::money{15000, "USD"};
    t.source = {"hours", "", "88", "", at("2026-01-05T18:00:00Z")};
    auto c = put(t, "hours");
    ASSERT_TRUE(c);
    EXPECT_EQ(c->entity_type, "time_entry");
    std::string error;
    const auto back = mappings::time_entry_from_json(row("time_entry", "time:88"), error);
    ASSERT_TRUE(back) << error;
    EXPECT_EQ(*back, t);
    EXPECT_FALSE(put(t, "hours"));
    t.minutes = 120;
    t.source.updated = at("2026-01-05T19:00:00Z");
    ASSERT_TRUE(put(t, "hours"));
    EXPECT_EQ(row("time_entry", "time:88")["minutes"], 120);

    mappings::work_item w;
    w.id = "work:5";
    w.client_id = "client-acme";
    w.status = "completed";
    w.stage = "Return Filed";
    w.source = {"practice", "", "5", "", std::nullopt};
    ASSERT_TRUE(put(w, "practice"));
    const auto wb = mappings::work_item_from_json(row("work_item", "work:5"), error);
    ASSERT_TRUE(wb) << error;
    EXPECT_EQ(*wb, w);
}

}  // namespace
}  // namespace billsync::state
