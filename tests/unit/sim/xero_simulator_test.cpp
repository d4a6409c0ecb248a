// The Xero simulator over loopback HTTP, as a client sees it (shared/vendors/xero.md): the
// tenant header, paging, If-Modified-Since, the limits' 429 and headers, Idempotency-Key replay
// and refusal, summarizeErrors, and signed Intent to Receive deliveries.
#include "sim/xero_simulator.hpp"

#include <gtest/gtest.h>

#include "connectors/xero/xero_webhook.hpp"
#include "http/client.hpp"

namespace billsync::simulators {
namespace {

using json = nlohmann::json;

constexpr const char* tenant = "b2c3d4e5-0000-4000-8000-000000000001";

util::instant t0() {
    util::instant t{};
    util::parse_rfc3339("2026-03-02T09:00:00Z", t);
    return t;
}

struct xero_sim : ::testing::Test {
    void SetUp() override {
        xero_sim_options o;
        o.tenants = {tenant};
        o.now = [this] { return clock.now(); };
        o.minute_limit = 5;
        o.day_limit = 8;
        sim = std::make_unique<xero_simulator>(o);
        sim->add_routes(server.routes());
        sim->configure(server);
        ASSERT_EQ(server.start(), "");
        token = sim->oauth().issue_grant().access_token;
        contact = sim->add_contact(tenant, {{"Name", "Acme"}, {"EmailAddress", "a@a.test"}})
                      .value("ContactID", "");
    }

    http::simple_response call(const std::string& method,
                               const std::string& target,
                               const std::string& body = {},
                               std::vector<http::header> extra = {},
                               bool with_tenant = true) {
        std::vector<http::header> h{{"Authorization", "Bearer " + token}};
        if (with_tenant) {
            h.push_back({"xero-tenant-id", tenant});
        }
        for (auto& e : extra) {
            h.push_back(std::move(e));
        }
        return http::fetch("127.0.0.1", server.port(), method, "/api.xro/2.0" + target, h, body);
    }

    util::manual_clock clock{t0()};
    sim_server server;
    std::unique_ptr<xero_simulator> sim;
    std::string token;
    std::string contact;
};

TEST_F(xero_sim, the_tenant_header_and_the_bearer_are_required) {
    EXPECT_EQ(call("GET", "/Contacts", {}, {}, false).status, 403u);
    EXPECT_EQ(call("GET", "/Contacts", {}, {{"xero-tenant-id", "nope"}}, false).status, 403u);
    EXPECT_EQ(http::fetch("127.0.0.1",
                          server.port(),
                          "GET",
                          "/api.xro/2.0/Contacts",
                          {{"xero-tenant-id", tenant}})
                  .status,
              401u);
    const auto r = call("GET", "/Contacts");
    ASSERT_EQ(r.status, 200u);
    EXPECT_EQ(json::parse(r.body)["Contacts"].size(), 1u);
    EXPECT_EQ(r.header_value("X-DayLimit-Remaining"), "7");
    EXPECT_EQ(r.header_value("X-MinLimit-Remaining"), "4");
}

TEST_F(xero_sim, paging_and_if_modified_since) {
    for (int i = 0; i < 3; ++i) {
        sim->add_invoice(tenant,
                         {{"Contact", {{"ContactID", contact}}},
                          {"LineItems", json::array({{{"LineAmount", "10.05"}}})}});
    }
    auto r = call("GET", "/Invoices?page=2&pageSize=2");
    ASSERT_EQ(r.status, 200u);
    auto j = json::parse(r.body);
    EXPECT_EQ(j["Invoices"].size(), 1u);
    EXPECT_EQ(j["pagination"]["itemCount"], 3);
    EXPECT_EQ(j["pagination"]["pageCount"], 2);
    EXPECT_EQ(j["Invoices"][0]["Total"].dump(), "10.05");
    // Strictly after: rows stamped at exactly that time are not returned.
    r = call("GET", "/Invoices", {}, {{"If-Modified-Since", "2026-03-02T09:00:00"}});
    EXPECT_EQ(json::parse(r.body)["Invoices"].size(), 0u);
    r = call("GET", "/Invoices", {}, {{"If-Modified-Since", "2026-03-02T08:59:59"}});
    EXPECT_EQ(json::parse(r.body)["Invoices"].size(), 3u);
}

TEST_F(xero_sim, minute_and_day_limits_answer_429_with_their_headers) {
    for (int i = 0; i < 5; ++i) {
        ASSERT_EQ(call("GET", "/Contacts").status, 200u) << i;
    }
    auto r = call("GET", "/Contacts");
    EXPECT_EQ(r.status, 429u);
    EXPECT_EQ(r.header_value("X-Rate-Limit-Problem"), "minute");
    EXPECT_EQ(r.header_value("Retry-After"), "60");
    clock.advance(std::chrono::minutes(1));
    for (int i = 0; i < 3; ++i) {
        ASSERT_EQ(call("GET", "/Contacts").status, 200u) << i;
    }
    r = call("GET", "/Contacts");
    EXPECT_EQ(r.status, 429u);
    EXPECT_EQ(r.header_value("X-Rate-Limit-Problem"), "day");
    EXPECT_EQ(r.header_value("X-DayLimit-Remaining"), "0");
    EXPECT_EQ(sim->rejections(), 2u);
}

TEST_F(xero_sim, idempotency_keys_replay_and_refuse_another_request) {
    const json inv{{"Invoices",
                    json::array({{{"Contact", {{"ContactID", contact}}},
                                  {"LineItems", json::array({{{"LineAmount", 5}}})}}})}};
    const auto a =
        call("PUT", "/Invoices?summarizeErrors=false", inv.dump(), {{"Idempotency-Key", "k1"}});
    const auto b =
        call("PUT", "/Invoices?summarizeErrors=false", inv.dump(), {{"Idempotency-Key", "k1"}});
    ASSERT_EQ(a.status, 200u) << a.body;
    EXPECT_EQ(a.body, b.body);
    EXPECT_EQ(sim->invoices_created(), 1u);
    EXPECT_EQ(sim->idempotent_replays(), 1u);
    const auto c = call("PUT", "/Invoices", "{}", {{"Idempotency-Key", "k1"}});
    EXPECT_EQ(c.status, 400u);
    EXPECT_NE(c.body.find("Idempotency Key: k1 is used with a different request."),
              std::string::npos);
}

TEST_F(xero_sim, summarize_errors_false_answers_200_with_the_failed_element) {
    const json bad{{"Invoices", json::array({{{"Contact", {{"ContactID", "nobody"}}}}})}};
    auto r = call("PUT", "/Invoices?summarizeErrors=false", bad.dump());
    ASSERT_EQ(r.status, 200u);
    EXPECT_TRUE(json::parse(r.body)["Invoices"][0]["HasErrors"].get<bool>());
    r = call("PUT", "/Invoices", bad.dump());
    EXPECT_EQ(r.status, 400u);
    EXPECT_NE(r.body.find("ValidationException"), std::string::npos);
}

TEST_F(xero_sim, overpaying_is_refused_with_xeros_message) {
    const auto inv = sim->add_invoice(
        tenant,
        {{"Contact", {{"ContactID", contact}}}, {"LineItems", json::array({{{"LineAmount", 5}}})}});
    const auto p = sim->add_payment(
        tenant, {{"Invoice", {{"InvoiceID", inv.value("InvoiceID", "")}}}, {"Amount", 6}});
    EXPECT_EQ(p.value("error", ""),
              "Payment amount exceeds the amount outstanding on this document");
}

TEST_F(xero_sim, a_description_only_line_is_a_note_without_an_amount) {
    const auto inv = sim->add_invoice(tenant,
                                      {{"Contact", {{"ContactID", contact}}},
                                       {"LineItems",
                                        json::array({{{"Description", "Prep"}, {"LineAmount", 5}},
                                                     {{"Description", "Thank you"}}})}});
    ASSERT_FALSE(inv.contains("error")) << inv.dump();
    EXPECT_EQ(inv["Total"], 5);  // the note adds nothing
    EXPECT_EQ(inv["LineItems"].size(), 2u);
    // A line with neither a description nor an amount is still refused.
    const auto bad = sim->add_invoice(
        tenant,
        {{"Contact", {{"ContactID", contact}}}, {"LineItems", json::array({json::object()})}});
    EXPECT_NE(bad.value("error", ""), "");
}

TEST_F(xero_sim, the_next_invoice_number_passes_numbers_users_gave) {
    const auto line = json::array({{{"LineAmount", 5}}});
    const auto given = sim->add_invoice(tenant,
                                        {{"Contact", {{"ContactID", contact}}},
                                         {"InvoiceNumber", "INV-0001"},
                                         {"LineItems", line}});
    ASSERT_FALSE(given.contains("error")) << given.dump();
    clock.advance(std::chrono::minutes(5));
    const auto next =
        sim->add_invoice(tenant, {{"Contact", {{"ContactID", contact}}}, {"LineItems", line}});
    EXPECT_EQ(next.value("InvoiceNumber", ""), "INV-0002");
    // Listed with when each was created (business time), in any order.
    const auto all = sim->list(tenant, "Invoices");
    ASSERT_EQ(all.size(), 2u);
    for (const auto& l : all) {
        EXPECT_EQ(l.created,
                  l.object.value("InvoiceNumber", "") == "INV-0001"
                      ? t0()
                      : t0() + std::chrono::minutes(5));
        EXPECT_FALSE(l.object.contains("_created_ms"));  // kept to the simulator
    }
}

TEST_F(xero_sim, deliveries_are_signed_thin_events) {
    const auto d = sim->take_deliveries();
    ASSERT_EQ(d.size(), 1u);  // the contact's CREATE
    EXPECT_EQ(connectors::xero::verify_signature(
                  "sim-xero-webhook-key+/base64lookalike==", d[0].body, d[0].signature),
              connectors::xero::signature_check::ok);
    const auto p = connectors::xero::parse_webhook(d[0].body, {tenant});
    ASSERT_TRUE(p.ok());
    ASSERT_EQ(p.events.size(), 1u);
    EXPECT_EQ(p.events[0].category, "CONTACT");
    EXPECT_EQ(p.events[0].resource_id, contact);
}

TEST_F(xero_sim, contacts_keep_their_contact_number_and_take_changes) {
    const auto coded = sim->add_contact(tenant, {{"Name", "Rimu"}, {"ContactNumber", "RIMU01"}})
                           .value("ContactID", "");
    auto r = call("GET", "/Contacts/" + coded);
    ASSERT_EQ(r.status, 200u);
    EXPECT_EQ(json::parse(r.body)["Contacts"][0]["ContactNumber"], "RIMU01");
    (void)sim->take_deliveries();
    // POST /Contacts/{id} changes the fields given and queues an UPDATE event.
    clock.advance(std::chrono::minutes(1));
    r = call("POST", "/Contacts/" + coded, json{{"ContactNumber", "RIMU02"}}.dump());
    ASSERT_EQ(r.status, 200u) << r.body;
    auto c = json::parse(r.body)["Contacts"][0];
    EXPECT_EQ(c["ContactNumber"], "RIMU02");
    EXPECT_EQ(c["Name"], "Rimu");
    EXPECT_EQ(c["ContactID"], coded);
    const auto d = sim->take_deliveries();
    ASSERT_EQ(d.size(), 1u);
    const auto p = connectors::xero::parse_webhook(d[0].body, {tenant});
    ASSERT_TRUE(p.ok());
    ASSERT_EQ(p.events.size(), 1u);
    EXPECT_EQ(p.events[0].resource_id, coded);
    EXPECT_EQ(p.events[0].type, "UPDATE");
    // POST /Contacts naming the ContactID updates it too (no second contact); a taken Name is
    // refused; an unknown id is 404.
    r = call("POST", "/Contacts", json{{"ContactID", contact}, {"ContactNumber", "AC1"}}.dump());
    ASSERT_EQ(r.status, 200u) << r.body;
    EXPECT_EQ(sim->count(tenant, "Contacts"), 2u);
    EXPECT_EQ(sim->get(tenant, "Contacts", contact)->value("ContactNumber", ""), "AC1");
    EXPECT_EQ(call("POST", "/Contacts/" + coded, json{{"Name", "Acme"}}.dump()).status, 400u);
    EXPECT_EQ(call("POST", "/Contacts/nope", json{{"Name", "X"}}.dump()).status, 404u);
    EXPECT_EQ(sim->update_contact(tenant, coded, {{"ContactNumber", "R3"}})["ContactNumber"], "R3");
}

}  // namespace
}  // namespace billsync::simulators
