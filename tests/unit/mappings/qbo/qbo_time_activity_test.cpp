// The draft-time payload -> QBO TimeActivity body, and Employee / TimeActivity -> canonical staff
// and time entries.

#include "mappings/qbo/qbo_time_activity.hpp"

#include <gtest/gtest.h>

#include "mappings/exact_json.hpp"
#include "mappings/qbo/qbo_mapping.hpp"

namespace billsync::mappings::qbo {
namespace {

using json = nlohmann::json;

constexpr const char* key = "draft_time:karbon:work:W1:1";

json payload() {
    return json{
        {"key", key},
        {"group_id", "karbon:work:W1"},
        {"client_ref", "9130350000000001/client/58"},
        {"user_ref", "55"},
        {"project", "2025 Tax Return"},
        {"task", "Tax Preparation"},
        {"spent_date", "2026-01-05"},
        {"hours", "3.5"},
        {"notes", "2025 1040 - Acme (1040, work item karbon:work:W1) - drafted by billsync"},
        {"billable", true}};
}

json parsed(const std::string& body) {
    std::string error;
    auto j = parse_exact(body, error);
    EXPECT_TRUE(j) << error << " in " << body;
    return j ? *j : json();
}

TEST(qbo_time_activity, a_draft_maps_to_an_employee_time_activity_with_exact_hours_and_rate) {
    const auto d = parse_time_draft(payload().dump(), key);
    ASSERT_TRUE(d) << d.error;
    EXPECT_EQ(d.value->minutes, 210);
    EXPECT_EQ(d.value->customer_ref, "58");  // the identity key's last segment
    const service_item item{"7", "Tax Preparation", "150.00"};
    const auto body = time_activity_body(*d.value, item);
    EXPECT_NE(body.find(R"("HourlyRate":150.00)"), std::string::npos) << body;
    const auto j = parsed(body);
    EXPECT_EQ(j["NameOf"], "Employee");
    EXPECT_EQ(j["EmployeeRef"]["value"], "55");
    EXPECT_EQ(j["CustomerRef"]["value"], "58");
    EXPECT_EQ(j["ItemRef"]["value"], "7");
    EXPECT_EQ(j["TxnDate"], "2026-01-05");
    EXPECT_EQ(j["Hours"], 3);
    EXPECT_EQ(j["Minutes"], 30);
    EXPECT_EQ(j["BillableStatus"], "Billable");
    const auto desc = j["Description"].get<std::string>();
    EXPECT_TRUE(desc.starts_with("2025 1040 - Acme")) << desc;
    EXPECT_TRUE(desc.ends_with(std::string(" [billsync-ref:") + key + "]")) << desc;
    EXPECT_EQ(key_in_description(desc), key);
    EXPECT_FALSE(j.contains("ProjectRef"));
}

TEST(qbo_time_activity, a_non_billable_draft_carries_no_rate) {
    auto p = payload();
    p["billable"] = false;
    const auto d = parse_time_draft(p.dump(), key);
    ASSERT_TRUE(d) << d.error;
    const auto j = time_activity_json(*d.value, {"7", "Internal", "150.00"});
    EXPECT_EQ(j["BillableStatus"], "NotBillable");
    EXPECT_FALSE(j.contains("HourlyRate"));
}

TEST(qbo_time_activity, a_long_description_is_cut_to_4000_and_keeps_the_marker) {
    auto p = payload();
    std::string notes;
    for (int i = 0; i < 2100; ++i) {
        notes += "\xc3\xa9";  // two bytes each: the cut must not split one
    }
    p["notes"] = notes;
    const auto d = parse_time_draft(p.dump(), key);
    ASSERT_TRUE(d);
    const auto desc =
        time_activity_json(*d.value, {"7", "Tax", "1"})["Description"].get<std::string>();
    EXPECT_LE(desc.size(), max_description);
    EXPECT_EQ(key_in_description(desc), key);
    EXPECT_TRUE(json::parse(json(desc).dump(), nullptr, false).is_string());
    EXPECT_EQ((desc.size() - time_ref_marker(key).size() - 1) % 2, 0U);
}

TEST(qbo_time_activity, bad_payloads_are_refused_with_the_field) {
    const std::vector<std::pair<std::string, json>> cases = {
        {"user_ref", json(nullptr)},
        {"client_ref", ""},
        {"task", " "},
        {"spent_date", "2026-13-01"},
        {"hours", "0.33"},  // not whole minutes
        {"hours", "0"},
        {"hours", "25"},
        {"hours", 3.5},  // a number, not exact text
    };
    for (const auto& [field, value] : cases) {
        auto p = payload();
        p[field] = value;
        const auto d = parse_time_draft(p.dump(), key);
        EXPECT_FALSE(d) << field << "=" << value.dump();
        EXPECT_NE(d.error.find(field), std::string::npos) << d.error;
    }
    EXPECT_FALSE(parse_time_draft(payload().dump(), "another key"));
    EXPECT_FALSE(parse_time_draft("[1]", key));
}

TEST(qbo_mapping_time, an_employee_is_staff_found_by_lower_case_email) {
    mapping_options o;
    o.system = "books";
    o.realm_id = "9130350000000001";
    const auto e = map_employee(
        json::parse(
            R"({"Employee":{"Id":"55","SyncToken":"0","GivenName":"Kim","FamilyName":"Allen",
            "PrimaryEmailAddr":{"Address":"Kim@Example-CPA.com"},"Active":true,
            "MetaData":{"LastUpdatedTime":"2026-01-05T06:00:00-08:00"}}})"),
        o);
    ASSERT_TRUE(e) << e.error;
    EXPECT_EQ(e.value->id, "books:9130350000000001:staff:55");
    EXPECT_EQ(e.value->name, "Kim Allen");
    EXPECT_EQ(e.value->email, "kim@example-cpa.com");
    EXPECT_TRUE(e.value->active);
    EXPECT_EQ(e.value->source.id, "55");
    const auto inactive =
        map_employee(json::parse(R"({"Id":"56","DisplayName":"Lee","Active":false})"), o);
    ASSERT_TRUE(inactive);
    EXPECT_FALSE(inactive.value->active);
    EXPECT_EQ(inactive.value->name, "Lee");
    EXPECT_FALSE(map_employee(json::parse(R"({"DisplayName":"no id"})"), o));
}

TEST(qbo_mapping_time, a_time_activity_is_a_time_entry_with_billsyncs_key_and_billed_lock) {
    mapping_options o;
    o.system = "books";
    o.realm_id = "9130350000000001";
    std::string error;
    const auto body = std::string(R"({"TimeActivity":{"Id":"12","SyncToken":"1","NameOf":"Employee",
        "EmployeeRef":{"value":"55","name":"Kim Allen"},"CustomerRef":{"value":"58"},
        "ItemRef":{"value":"7","name":"Tax Preparation"},"TxnDate":"2026-01-05","Hours":3,
        "Minutes":30,"BillableStatus":"HasBeenBilled","HourlyRate":150.00,
        "Description":"2025 1040 - Acme [billsync-ref:)") +
                      key + R"(]",
        "MetaData":{"LastUpdatedTime":"2026-01-05T06:00:00.000-08:00"}}})";
    const auto t = map_time_activity(*parse_exact(body, error), o);
    ASSERT_TRUE(t) << t.error;
    EXPECT_EQ(t.value->id, "books:9130350000000001:time_entry:12");
    EXPECT_EQ(t.value->staff_id, "books:9130350000000001:staff:55");
    EXPECT_EQ(t.value->client_id, "books:9130350000000001:client:58");
    EXPECT_EQ(t.value->service, "Tax Preparation");
    EXPECT_EQ(format_civil_date(*t.value->date), "2026-01-05");
    EXPECT_EQ(t.value->minutes, 210);
    EXPECT_TRUE(t.value->billable);
    EXPECT_TRUE(t.value->locked);
    EXPECT_TRUE(t.value->billed);  // an invoice links it
    EXPECT_EQ(t.value->hourly_rate->minor, 15000);
    EXPECT_EQ(t.value->external_reference, key);
    EXPECT_EQ(t.value->notes, "2025 1040 - Acme");
    ASSERT_TRUE(t.value->source.updated);

    // Start/end instead of hours; not billable; not ours.
    const auto span = map_time_activity(
        json::parse(R"({"Id":"13","NameOf":"Employee","EmployeeRef":{"value":"55"},
            "TxnDate":"2026-01-06","StartTime":"2026-01-06T08:00:00-08:00",
            "EndTime":"2026-01-06T09:45:00-08:00","BillableStatus":"NotBillable"})"),
        o);
    ASSERT_TRUE(span) << span.error;
    EXPECT_EQ(span.value->minutes, 105);
    EXPECT_FALSE(span.value->billable);
    EXPECT_TRUE(span.value->locked);  // recorded by a person: QBO has no approval step
    EXPECT_FALSE(span.value->billed);
    EXPECT_EQ(span.value->external_reference, "");
    EXPECT_FALSE(
        map_time_activity(json::parse(R"({"Id":"14","TxnDate":"2026-01-06","Hours":1})"), o));
    EXPECT_FALSE(map_time_activity(
        json::parse(R"({"Id":"15","EmployeeRef":{"value":"55"},"TxnDate":"2026-01-06"})"), o));
}

TEST(qbo_mapping_time, billable_time_is_approved_unless_it_is_billsyncs_untouched_draft) {
    mapping_options o;
    o.system = "books";
    o.realm_id = "9130350000000001";
    const auto activity = [&](std::string_view sync, std::string_view status, bool marked) {
        auto j = json::parse(R"({"Id":"20","NameOf":"Employee","EmployeeRef":{"value":"55"},
            "CustomerRef":{"value":"58"},"TxnDate":"2026-01-07","Hours":1,"Minutes":0,
            "HourlyRate":150})");
        j["BillableStatus"] = status;
        if (!sync.empty()) {
            j["SyncToken"] = sync;
        }
        j["Description"] =
            marked ? std::string("Acme 1040 [billsync-ref:") + key + "]" : "Acme call";
        auto t = map_time_activity(j, o);
        EXPECT_TRUE(t) << t.error;
        return t ? *t.value : time_entry{};
    };
    // Recorded by a person, billable, not invoiced: approved and not billed.
    auto t = activity("0", "Billable", false);
    EXPECT_TRUE(t.locked);
    EXPECT_FALSE(t.billed);
    // billsync's draft nobody saved since (SyncToken 0, or none given): not approved.
    EXPECT_FALSE(activity("0", "Billable", true).locked);
    EXPECT_FALSE(activity("", "Billable", true).locked);
    // The same draft once someone saved it in QBO: approved.
    t = activity("1", "Billable", true);
    EXPECT_TRUE(t.locked);
    EXPECT_FALSE(t.billed);
    // Invoiced in QBO, whoever made it: billed (and locked), even an untouched draft.
    t = activity("0", "HasBeenBilled", true);
    EXPECT_TRUE(t.billed);
    EXPECT_TRUE(t.locked);
}

}  // namespace
}  // namespace billsync::mappings::qbo
