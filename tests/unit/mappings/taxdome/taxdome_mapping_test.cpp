// TaxDome relays: the strict body the Zap sends, and the canonical client it becomes.

#include "mappings/taxdome/taxdome_mapping.hpp"

#include <gtest/gtest.h>

#include "tests/fakes/temp_dir.hpp"

namespace billsync::mappings::taxdome {
namespace {

const char* good =
    R"({"event":"New Account","id":"7351024","name":"Acme Dental",)"
    R"("emails":"AP@Acme-Dental.example, owner@acme-dental.example","phones":"(415) 555-0123",)"
    R"("tags":"Retainer, payment plan","relayed_at":"2026-01-05T15:04:05Z"})";

std::string error_of(std::string_view body) {
    std::string error;
    EXPECT_FALSE(parse_relay(body, error).has_value()) << body;
    return error;
}

TEST(taxdome_relay, a_new_account_becomes_a_client_with_contacts_and_flags) {
    std::string error;
    const auto r = parse_relay(good, error);
    ASSERT_TRUE(r) << error;
    EXPECT_EQ(r->kind, record_kind::account);
    EXPECT_FALSE(r->deleted);
    EXPECT_EQ(r->emails,
              (std::vector<std::string>{"ap@acme-dental.example", "owner@acme-dental.example"}));
    EXPECT_EQ(r->tags, (std::vector<std::string>{"payment-plan", "retainer"}));
    const auto c =
        to_client(*r, "portal", [](const source_ref& ref) { return "portal:client:" + ref.id; });
    EXPECT_EQ(c.id, "portal:client:7351024");
    EXPECT_EQ(c.display_name, "Acme Dental");
    EXPECT_EQ(c.contact.billing_email, "ap@acme-dental.example, owner@acme-dental.example");
    EXPECT_EQ(c.contact.mobile, "+14155550123");
    EXPECT_TRUE(c.payment_plan);
    EXPECT_TRUE(c.retainer);
    EXPECT_EQ(c.source.system, "portal");
    EXPECT_EQ(c.source.id, "7351024");
    EXPECT_EQ(c.source.updated, parse_timestamp("2026-01-05T15:04:05Z"));
}

TEST(taxdome_relay, contacts_and_deletes) {
    std::string error;
    const auto r = parse_relay(R"({"event":"Deleted Contact","id":"88","account_id":"7351024",)"
                               R"("relayed_at":"2026-01-05T15:04:05+01:00"})",
                               error);
    ASSERT_TRUE(r) << error;
    EXPECT_EQ(r->kind, record_kind::contact);
    EXPECT_TRUE(r->deleted);
    const auto c = to_client(*r, "portal", [](const source_ref& ref) { return ref.id; });
    EXPECT_EQ(c.source.id, "contact-88");  // never the same key as account 88
    EXPECT_TRUE(c.deleted);
}

TEST(taxdome_relay, the_fixture_in_the_connector_folder_is_a_valid_relay) {
    std::string error;
    const auto body = testing::read_file(std::string(BILLSYNC_SOURCE_DIR) +
                                         "/connectors/taxdome/fixtures/relay_new_account.json");
    EXPECT_TRUE(parse_relay(body, error)) << error;
}

TEST(taxdome_relay, every_schema_error_names_its_field) {
    EXPECT_NE(error_of("[1]").find("not a JSON object"), std::string::npos);
    EXPECT_NE(
        error_of(
            R"({"event":"New Account","id":"1","name":"A","relayed_at":"2026-01-05T15:04:05Z","nmae":"x"})")
            .find("unknown field 'nmae'"),
        std::string::npos);
    EXPECT_NE(
        error_of(
            R"({"event":"Invoice Paid","id":"1","name":"A","relayed_at":"2026-01-05T15:04:05Z"})")
            .find("field 'event' is 'Invoice Paid'"),
        std::string::npos);
    EXPECT_NE(error_of(R"({"event":"New Account","name":"A","relayed_at":"2026-01-05T15:04:05Z"})")
                  .find("field 'id'"),
              std::string::npos);
    EXPECT_NE(error_of(R"({"event":"New Account","id":"1","relayed_at":"2026-01-05T15:04:05Z"})")
                  .find("field 'name'"),
              std::string::npos);
    EXPECT_NE(
        error_of(R"({"event":"New Account","id":1,"name":"A","relayed_at":"2026-01-05T15:04:05Z"})")
            .find("field 'id' must be a string"),
        std::string::npos);
    EXPECT_NE(
        error_of(
            R"({"event":"New Account","id":"1","name":"A","emails":"not-an-address","relayed_at":"2026-01-05T15:04:05Z"})")
            .find("field 'emails'"),
        std::string::npos);
    EXPECT_NE(error_of(R"({"event":"New Account","id":"1","name":"A","relayed_at":"yesterday"})")
                  .find("field 'relayed_at'"),
              std::string::npos);
    EXPECT_NE(error_of(R"({"event":"New Account","id":"1","name":"A"})").find("field 'relayed_at'"),
              std::string::npos);
    EXPECT_NE(
        error_of(
            R"({"event":"New Account","id":"a/b","name":"A","relayed_at":"2026-01-05T15:04:05Z"})")
            .find("field 'id'"),
        std::string::npos);
}

}  // namespace
}  // namespace billsync::mappings::taxdome
