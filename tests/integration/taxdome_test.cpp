// TaxDome relays end to end through the real daemon: refused without the right bearer secret or
// when stale, dead-lettered with the field named when malformed, and linked across systems by
// the identity map, which an operator can inspect and override from the CLI.
#include <gtest/gtest.h>

#include <chrono>
#include <nlohmann/json.hpp>

#include "http/client.hpp"
#include "tests/fakes/billsync_daemon.hpp"
#include "tests/fakes/temp_dir.hpp"
#include "util/clock.hpp"

namespace billsync {
namespace {

using json = nlohmann::json;

const std::string secret_a(40, 'a');
const std::string secret_b(40, 'b');

std::string config_text() {
    return "[daemon]\n"
           "data_dir = \"data\"\n"
           "time_zone = \"America/New_York\"\n"
           "[daemon.webhook_listener]\n"
           "address = \"127.0.0.1:0\"\n"
           "[daemon.status_listener]\n"
           "address = \"127.0.0.1:0\"\n"
           "[daemon.clock]\n"
           "mode = \"simulated\"\n"
           "start = \"2026-01-05T14:00:00Z\"\n"
           "[connectors.taxdome]\n"
           "relay_secret = \"${env:RELAY_A}\"\n"
           // A second TaxDome firm entity stands in for a second system of the same client.
           "[connectors.branch]\n"
           "kind = \"taxdome\"\n"
           "relay_secret = \"${env:RELAY_B}\"\n";
}

std::string now_text(std::chrono::seconds offset = std::chrono::seconds(0)) {
    return util::format_rfc3339(std::chrono::time_point_cast<util::instant::duration>(
        std::chrono::system_clock::now() + offset));
}

std::string relay_body(const std::string& id,
                       const std::string& name,
                       const std::string& emails,
                       const std::string& at) {
    return json{{"event", "New Account"},
                {"id", id},
                {"name", name},
                {"emails", emails},
                {"relayed_at", at}}
        .dump();
}

http::simple_response post(std::uint16_t port,
                           const std::string& connector,
                           const std::string& body,
                           const std::string& authorization) {
    std::vector<http::header> headers{{"Content-Type", "application/json"}};
    if (!authorization.empty()) {
        headers.push_back({"Authorization", authorization});
    }
    return http::fetch("127.0.0.1", port, "POST", "/webhooks/" + connector, headers, body);
}

TEST(taxdome, relays_are_authenticated_checked_and_linked_across_systems) {
    testing::temp_dir dir;
    testing::billsync_daemon d(
        dir.path(), config_text(), {"RELAY_A=" + secret_a, "RELAY_B=" + secret_b});
    ASSERT_TRUE(d.start()) << d.output();
    const auto port = d.webhook_port();

    const auto good = relay_body("7351024", "Acme Dental", "ap@acme-dental.example", now_text());
    EXPECT_EQ(post(port, "taxdome", good, "").status, 401U);
    EXPECT_EQ(post(port, "taxdome", good, "Bearer " + secret_b).status, 401U);
    EXPECT_EQ(post(port,
                   "taxdome",
                   relay_body("7351024", "Acme Dental", "", now_text(-std::chrono::hours(25))),
                   "Bearer " + secret_a)
                  .status,
              401U);
    EXPECT_EQ(post(port, "taxdome", good, "Bearer " + secret_a).status, 200U);
    // A Zap edited by hand: authentic, so kept, as a dead letter naming the field.
    auto bad = json::parse(good);
    bad["email"] = "x@acme-dental.example";
    EXPECT_EQ(post(port, "taxdome", bad.dump(), "Bearer " + secret_a).status, 200U);
    // The same client in the other system: linked by its billing email.
    EXPECT_EQ(post(port,
                   "branch",
                   relay_body("55", "ACME DENTAL, LLC", "AP@acme-dental.example", now_text()),
                   "Bearer " + secret_b)
                  .status,
              200U);
    // A name-only match is never guessed.
    EXPECT_EQ(post(port,
                   "taxdome",
                   relay_body("8", "Birch Family", "birch@gmail.com", now_text()),
                   "Bearer " + secret_a)
                  .status,
              200U);
    EXPECT_EQ(post(port,
                   "branch",
                   relay_body("9", "Birch Family", "pat.birch@gmail.com", now_text()),
                   "Bearer " + secret_b)
                  .status,
              200U);
    ASSERT_NE(d.advance(0), "");

    const auto dead = d.cli({"deadletters", "list"});
    EXPECT_NE(dead.second.find("unknown field 'email'"), std::string::npos) << dead.second;

    auto ids = json::parse(d.status_get("/identities").body);
    ASSERT_EQ(ids["parties"].size(), 1U) << ids.dump(2);
    EXPECT_EQ(ids["parties"][0]["members"].size(), 2U);
    ASSERT_EQ(ids["exceptions"].size(), 1U) << ids.dump(2);
    // The two connectors' deliveries are processed in either order: whichever Birch Family came
    // second waits, with the first as its candidate.
    const auto waiting = ids["exceptions"][0]["client"].get<std::string>();
    ASSERT_TRUE(waiting == "branch:client:9" || waiting == "taxdome:client:8") << ids.dump(2);
    const std::string other = waiting == "branch:client:9" ? "taxdome:client:8" : "branch:client:9";
    EXPECT_EQ(ids["exceptions"][0]["kind"], "name_only");

    auto [rc, text] = d.cli({"identities", "list"});
    EXPECT_EQ(rc, 0) << text;
    EXPECT_NE(text.find("Identity exceptions waiting for a person: 1"), std::string::npos) << text;
    EXPECT_NE(text.find("candidate " + other + " \"Birch Family\""), std::string::npos) << text;

    std::tie(rc, text) = d.cli({"identities", "link", "taxdome:8", "branch:9"});
    EXPECT_EQ(rc, 0) << text;
    EXPECT_NE(text.find("now has 2 members"), std::string::npos) << text;
    std::tie(rc, text) = d.cli({"identities", "unlink", "branch:55"});
    EXPECT_EQ(rc, 0) << text;
    std::tie(rc, text) = d.cli({"identities", "link", "taxdome:nope", "branch:9"});
    EXPECT_EQ(rc, 65) << text;
    EXPECT_NE(text.find("no client 'taxdome:nope'"), std::string::npos) << text;

    ids = json::parse(d.status_get("/identities").body);
    EXPECT_TRUE(ids["exceptions"].empty()) << ids.dump(2);
    ASSERT_EQ(ids["parties"].size(), 1U) << ids.dump(2);
    EXPECT_EQ(ids["parties"][0]["members"][1]["how"], "manual");
    const auto audit = d.cli({"inspect", "audit"});
    EXPECT_NE(audit.second.find("\"rule\":\"identities\""), std::string::npos) << audit.second;
    EXPECT_EQ(d.output().find(secret_a), std::string::npos);
}

}  // namespace
}  // namespace billsync
