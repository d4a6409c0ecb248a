#include "mappings/harvest/harvest_mapping.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "mappings/entity.hpp"
#include "mappings/exact_json.hpp"

namespace billsync::mappings::harvest {
namespace {

using nlohmann::json;

json exact(std::string_view text) {
    std::string error;
    auto j = mappings::parse_exact(text, error);
    EXPECT_TRUE(j) << error;
    return j ? *j : json();
}

json fixture() {
    std::ifstream in(std::string(BILLSYNC_SOURCE_DIR) +
                     "/connectors/harvest/fixtures/time_entry.json");
    std::stringstream ss;
    ss << in.rdbuf();
    return exact(ss.str());
}

mapping_options opts() {
    mapping_options o;
    o.system = "time";
    o.account_id = "123456";
    return o;
}

TEST(harvest_mapping, minutes_come_from_the_exact_decimal_hours) {
    EXPECT_EQ(minutes_of_hours("1.5"), 90);
    EXPECT_EQ(minutes_of_hours("0.25"), 15);
    EXPECT_EQ(minutes_of_hours("3"), 180);
    EXPECT_EQ(minutes_of_hours("0.333333"), 20);  // 19.99998 min
    EXPECT_EQ(minutes_of_hours("0.1"), 6);
    EXPECT_EQ(minutes_of_hours("0.0125"), 1);      // 0.75 min rounds up
    EXPECT_EQ(minutes_of_hours("0.00833333"), 0);  // 0.5 min: half to even
    EXPECT_FALSE(minutes_of_hours("-1"));
    EXPECT_FALSE(minutes_of_hours("abc"));
    EXPECT_EQ(hours_of_minutes(90), "1.5");
    EXPECT_EQ(hours_of_minutes(180), "3");
    EXPECT_EQ(hours_of_minutes(20), "0.333333");
}

TEST(harvest_mapping, time_entry_from_the_recorded_payload) {
    auto m = map_time_entry(fixture(), opts());
    ASSERT_TRUE(m) << m.error;
    const auto& t = *m.value;
    EXPECT_EQ(t.id, "time:123456:time_entry:636709355");
    EXPECT_EQ(t.staff_id, "time:123456:staff:1782959");
    EXPECT_EQ(t.client_id, "time:123456:client:5735774");
    EXPECT_EQ(t.engagement_id, "time:123456:project:14307913");
    EXPECT_EQ(t.service, "Tax Preparation");
    EXPECT_EQ(t.date, parse_civil_date("2026-01-05"));
    EXPECT_EQ(t.minutes, 90);
    EXPECT_TRUE(t.billable);
    ASSERT_TRUE(t.hourly_rate);
    EXPECT_EQ(t.hourly_rate->minor, 15000);
    EXPECT_EQ(t.hourly_rate->currency, "USD");
    EXPECT_FALSE(t.locked);
    EXPECT_EQ(t.external_reference, "billsync:work:4ndQ2tSh7yPk:kim");
    EXPECT_EQ(t.source.id, "636709355");
    EXPECT_EQ(t.source.account, "123456");
    EXPECT_EQ(t.source.version, "2026-01-05T18:00:00Z");
    EXPECT_TRUE(t.source.updated);
}

TEST(harvest_mapping, locked_closed_or_billed_is_locked) {
    for (const auto* flag : {"is_locked", "is_closed", "is_billed"}) {
        auto j = fixture();
        j[flag] = true;
        auto m = map_time_entry(j, opts());
        ASSERT_TRUE(m) << m.error;
        EXPECT_TRUE(m.value->locked) << flag;
    }
}

TEST(harvest_mapping, only_an_invoiced_entry_is_billed) {
    EXPECT_FALSE(map_time_entry(fixture(), opts()).value->billed);
    for (const auto* flag : {"is_locked", "is_closed"}) {
        auto j = fixture();
        j[flag] = true;
        auto m = map_time_entry(j, opts());
        ASSERT_TRUE(m) << m.error;
        EXPECT_FALSE(m.value->billed) << flag;  // approved, not yet invoiced
    }
    auto j = fixture();
    j["is_billed"] = true;
    auto m = map_time_entry(j, opts());
    ASSERT_TRUE(m) << m.error;
    EXPECT_TRUE(m.value->billed);
    EXPECT_TRUE(m.value->locked);
}

TEST(harvest_mapping, rates_are_exact_minor_units_and_a_resolver_gives_canonical_ids) {
    auto j = exact(R"({"id": 7, "spent_date": "2026-02-01", "user": {"id": 3},
        "hours": 0.1, "billable_rate": 123.455, "billable": false, "notes": null,
        "updated_at": "2026-02-01T10:00:00Z", "external_reference": null})");
    auto o = opts();
    o.currency = "USD";
    o.resolve = [](std::string_view type, const source_ref& ref) {
        return std::string(type) == "staff" ? "staff:kim"
                                            : mappings::default_canonical_id(type, ref);
    };
    auto m = map_time_entry(j, o);
    ASSERT_TRUE(m) << m.error;
    EXPECT_EQ(m.value->staff_id, "staff:kim");
    EXPECT_EQ(m.value->minutes, 6);
    EXPECT_FALSE(m.value->billable);
    EXPECT_EQ(m.value->hourly_rate->minor, 12346);  // half to even on the third decimal
    EXPECT_TRUE(m.value->client_id.empty());
    EXPECT_TRUE(m.value->external_reference.empty());
}

TEST(harvest_mapping, malformed_entries_name_the_field) {
    auto j = fixture();
    j.erase("spent_date");
    EXPECT_NE(map_time_entry(j, opts()).error.find("spent_date"), std::string::npos);
    j = fixture();
    j["hours"] = "lots";
    EXPECT_NE(map_time_entry(j, opts()).error.find("hours"), std::string::npos);
    j = fixture();
    j["updated_at"] = "yesterday";
    EXPECT_NE(map_time_entry(j, opts()).error.find("updated_at"), std::string::npos);
    EXPECT_FALSE(map_time_entry(json::array(), opts()));
}

TEST(harvest_mapping, users_clients_and_projects) {
    auto u = map_user(exact(R"({"id": 1782959, "first_name": "Kim", "last_name": "Allen",
        "email": "Kim@Example-CPA.com", "is_active": true, "access_roles": ["manager"],
        "updated_at": "2026-01-02T09:00:00Z"})"),
                      opts());
    ASSERT_TRUE(u) << u.error;
    EXPECT_EQ(u.value->name, "Kim Allen");
    EXPECT_EQ(u.value->email, "kim@example-cpa.com");
    EXPECT_EQ(u.value->role, "manager");
    EXPECT_EQ(u.value->id, "time:123456:staff:1782959");

    auto c = map_client(exact(R"({"id": 5735774, "name": "Acme Dental", "is_active": false,
        "currency": "EUR", "updated_at": "2026-01-02T09:00:00Z"})"),
                        opts());
    ASSERT_TRUE(c) << c.error;
    EXPECT_EQ(c.value->display_name, "Acme Dental");
    EXPECT_FALSE(c.value->active);
    EXPECT_EQ(c.value->currency, "EUR");

    auto p = map_project(exact(R"({"id": 14307913, "name": "2025 Tax Return",
        "client": {"id": 5735774, "name": "Acme Dental", "currency": "USD"},
        "is_active": true, "updated_at": "2026-01-02T09:00:00Z"})"),
                         opts());
    ASSERT_TRUE(p) << p.error;
    EXPECT_EQ(p.value->engagement_id, "time:123456:project:14307913");
    EXPECT_EQ(p.value->client_id, "time:123456:client:5735774");

    auto d = deleted_time_entry("99", opts());
    EXPECT_TRUE(d.deleted);
    EXPECT_EQ(d.id, "time:123456:time_entry:99");
}

}  // namespace
}  // namespace billsync::mappings::harvest
