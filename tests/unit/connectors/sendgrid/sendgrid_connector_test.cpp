#include "connectors/sendgrid/sendgrid_connector.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "sim/sendgrid_simulator.hpp"
#include "sim/sim_server.hpp"
#include "state/tables.hpp"
#include "tests/fakes/temp_dir.hpp"
#include "tests/unit/connectors/email/email_test_support.hpp"
#include "util/crypto.hpp"

namespace billsync::connectors::sendgrid {
namespace {

using json = nlohmann::json;
using connectors::testing::run;

state::action send_action(const std::string& delivery_id, json extra = json::object()) {
    return testing::send_action("sendgrid", delivery_id, std::move(extra));
}

class sendgrid_test : public ::testing::Test {
protected:
    void SetUp() override {
        sim_.add_routes(server_.routes());
        ASSERT_EQ(server_.start(), "");
        capture_.routes().add(
            "POST", "/webhooks/sendgrid/events", [](http::request) { return ok(); });
        capture_.routes().add(
            "POST", "/webhooks/sendgrid/inbound", [](http::request) { return ok(); });
        ASSERT_EQ(capture_.start(), "");
        auto opened = state::store::open(dir_.path());
        ASSERT_TRUE(opened.ok()) << opened.st.message;
        store_ = std::move(opened.value);
    }

    static net::awaitable<http::response> ok() { co_return http::response::json(200, "{}"); }

    settings config() const {
        settings s;
        s.name = "sendgrid";
        s.base_url = server_.base_url();
        s.api_key = "SG.simulated-key";
        s.from_email = "billing@firm.test";
        s.from_name = "Firm Billing";
        s.event_webhook_public_key = sim_.public_key_base64();
        s.inbound_secret = "inbound-s3cret";
        s.proxy = proxy_settings{};
        s.timeout = std::chrono::seconds(5);
        return s;
    }

    action_outcome perform(sendgrid_connector& c, state::action a) {
        return run(ioc_, c.perform(std::move(a)));
    }

    // The signed delivery as it reached an HTTP server, as the connector's verify() sees it.
    http::request delivered_events(const std::string& events,
                                   const simulators::sendgrid_simulator& signer) {
        capture_.clear_requests();
        const auto statuses =
            signer.deliver_events(capture_.base_url() + "/webhooks/sendgrid/events", events);
        EXPECT_EQ(statuses, std::vector<unsigned>{200});
        return as_request(capture_.requests().at(0));
    }

    static http::request as_request(const simulators::recorded_request& r) {
        http::request req;
        req.method = r.method;
        req.target = r.target;
        req.path = r.path;
        req.query = r.query;
        req.headers = r.headers;
        req.body = r.body;
        return req;
    }

    std::vector<mappings::change> process(sendgrid_connector& c,
                                          const std::string& kind,
                                          const std::string& body,
                                          const std::string& headers_json = "{}") {
        state::inbox_event e;
        e.connector = "sendgrid";
        e.kind = kind;
        e.body = body;
        e.headers_json = headers_json;
        state::batch b(*store_);
        auto res = c.process(e, *store_, b);
        EXPECT_TRUE(res.ok()) << res.st.message;
        EXPECT_TRUE(store_->write(b, false).ok);
        return res.value;
    }

    std::optional<json> entity(std::string_view type, std::string_view id) {
        auto r = state::get_entity(*store_, type, id);
        EXPECT_TRUE(r.ok());
        if (!r.value) {
            return std::nullopt;
        }
        return json::parse(*r.value);
    }

    net::io_context ioc_;
    simulators::sendgrid_simulator sim_;
    simulators::sim_server server_;
    simulators::sim_server capture_;
    billsync::testing::temp_dir dir_;
    std::unique_ptr<state::store> store_;
};

TEST_F(sendgrid_test, sends_the_documented_request_and_records_the_message_id) {
    sendgrid_connector c(config());
    const auto out = perform(c,
                             send_action("d-1",
                                         {{"html", "<p>Please pay.</p>"},
                                          {"reply_to", "ap@firm.test"},
                                          {"headers", {{"In-Reply-To", "<m0@client.test>"}}}}));
    ASSERT_EQ(out.k, action_outcome::kind::done) << out.detail;
    const auto messages = sim_.messages();
    ASSERT_EQ(messages.size(), 1u);
    EXPECT_EQ(out.detail, messages[0].message_id);
    EXPECT_EQ(messages[0].delivery_id, "d-1");

    const auto reqs = server_.requests_to("/v3/mail/send");
    ASSERT_EQ(reqs.size(), 1u);
    EXPECT_EQ(reqs[0].header_value("Authorization"), "Bearer SG.simulated-key");
    const auto body = json::parse(reqs[0].body);
    EXPECT_EQ(body["personalizations"],
              json::parse(R"([{"to":[{"email":"client@example.com","name":"Client Co"}]}])"));
    EXPECT_EQ(body["from"], json::parse(R"({"email":"billing@firm.test","name":"Firm Billing"})"));
    EXPECT_EQ(body["reply_to"], json::parse(R"({"email":"ap@firm.test"})"));
    EXPECT_EQ(body["subject"], "Invoice 1042");
    EXPECT_EQ(body["content"],
              json::parse(R"([{"type":"text/plain","value":"Please pay."},)"
                          R"({"type":"text/html","value":"<p>Please pay.</p>"}])"));
    EXPECT_EQ(body["headers"], json::parse(R"({"In-Reply-To":"<m0@client.test>"})"));
    EXPECT_EQ(body["custom_args"], json::parse(R"({"billsync_delivery_id":"d-1"})"));

    ASSERT_EQ(out.effects.size(), 1u);
    EXPECT_EQ(out.effects[0].entity_type, "email_message");
    EXPECT_EQ(out.effects[0].entity_id, "d-1");
    const auto* sent = out.effects[0].as<mappings::message_status>();
    ASSERT_NE(sent, nullptr);
    EXPECT_EQ(sent->via, mappings::channel::email);
    EXPECT_EQ(sent->delivery_id, "d-1");
    EXPECT_EQ(sent->provider_id, messages[0].message_id);
    EXPECT_EQ(sent->status, "accepted");
}

TEST_F(sendgrid_test, rate_limited_sends_wait_for_the_reset_and_pace_themselves) {
    sim_.set_rate_limit(1, std::chrono::seconds(60));
    sendgrid_connector c(config());
    ASSERT_EQ(perform(c, send_action("d-1")).k, action_outcome::kind::done);
    // The 202 said nothing is left: the next send waits without asking.
    const auto paced = perform(c, send_action("d-2"));
    EXPECT_EQ(paced.k, action_outcome::kind::retry);
    ASSERT_TRUE(paced.retry_after);
    EXPECT_GE(paced.retry_after->count(), 1);
    EXPECT_LE(paced.retry_after->count(), 61);
    EXPECT_EQ(server_.requests_to("/v3/mail/send").size(), 1u);

    // Another connector (no local pacing yet) draws the 429 and reads X-RateLimit-Reset.
    sendgrid_connector fresh(config());
    const auto limited = perform(fresh, send_action("d-3"));
    EXPECT_EQ(limited.k, action_outcome::kind::retry);
    EXPECT_NE(limited.detail.find("too many requests"), std::string::npos) << limited.detail;
    ASSERT_TRUE(limited.retry_after);
    EXPECT_GE(limited.retry_after->count(), 1);
    EXPECT_LE(limited.retry_after->count(), 61);
    EXPECT_EQ(sim_.messages().size(), 1u);
}

TEST_F(sendgrid_test, failures_before_the_request_was_written_are_retried) {
    auto s = config();
    s.base_url = "http://127.0.0.1:1";
    sendgrid_connector unreachable(s);
    const auto out = perform(unreachable, send_action("d-1"));
    EXPECT_EQ(out.k, action_outcome::kind::retry);
    EXPECT_TRUE(out.effects.empty());
    EXPECT_TRUE(sim_.messages().empty());
}

// Issue 18 item 1: once the request was written, SendGrid may have queued the mail; a 5xx, a 408,
// or a connection lost before the answer is an unknown outcome, recorded and never resent.
TEST_F(sendgrid_test, failures_after_the_request_was_written_are_unknown_and_never_resent) {
    auto s = config();
    s.timeout = std::chrono::milliseconds(300);
    sendgrid_connector c(s);
    server_.script("POST",
                   "/v3/mail/send",
                   {simulators::scripted_response::server_error(503),
                    simulators::scripted_response::status_code(408),
                    simulators::scripted_response::drop(),
                    simulators::scripted_response::stall(std::chrono::seconds(2))});
    for (const auto* delivery : {"d-503", "d-408", "d-drop", "d-stall"}) {
        const auto out = perform(c, send_action(delivery));
        EXPECT_EQ(out.k, action_outcome::kind::done) << delivery << ": " << out.detail;
        EXPECT_NE(out.detail.find("outcome unknown"), std::string::npos) << out.detail;
        ASSERT_EQ(out.effects.size(), 1u) << delivery;
        EXPECT_EQ(out.effects[0].entity_id, delivery);
        EXPECT_EQ(json::parse(out.effects[0].fields_json).at("status"), "unknown");
    }
    // One request each: the client never sent any of them a second time.
    EXPECT_EQ(server_.requests_to("/v3/mail/send").size(), 4u);
}

TEST_F(sendgrid_test, refusals_are_permanent_with_sendgrids_messages) {
    auto s = config();
    s.api_key = "SG.wrong";
    sendgrid_connector wrong(s);
    const auto out = perform(wrong, send_action("d-1"));
    EXPECT_EQ(out.k, action_outcome::kind::permanent);
    EXPECT_NE(out.detail.find("authorization grant is invalid"), std::string::npos) << out.detail;

    sendgrid_connector c(config());
    server_.script(
        "POST",
        "/v3/mail/send",
        {simulators::scripted_response::status_code(
            400,
            R"({"errors":[{"field":"from.email","message":"The from address does not match a verified Sender Identity."}]})")});
    const auto bad = perform(c, send_action("d-2"));
    EXPECT_EQ(bad.k, action_outcome::kind::permanent);
    EXPECT_EQ(bad.detail,
              "http 400: from.email: The from address does not match a verified Sender Identity.");

    // A payload that cannot be sent never reaches SendGrid.
    auto a = send_action("d-3");
    a.payload = R"({"to":"not an address","subject":"x","text":"y","delivery_id":"d-3"})";
    EXPECT_EQ(perform(c, a).k, action_outcome::kind::permanent);
    a.kind = "sms.send";
    EXPECT_EQ(perform(c, a).k, action_outcome::kind::permanent);
    EXPECT_EQ(server_.requests_to("/v3/mail/send").size(), 2u);
}

TEST_F(sendgrid_test, reconcile_never_resends) {
    sendgrid_connector c(config());
    const auto r = run(ioc_, c.reconcile(send_action("d-1")));
    EXPECT_EQ(r.k, reconcile_outcome::kind::happened);
    EXPECT_NE(r.detail.find("outcome unknown"), std::string::npos);
    EXPECT_EQ(server_.request_count(), 0u);
}

TEST_F(sendgrid_test, verify_accepts_signed_events_and_rejects_forged_missing_and_tampered) {
    sendgrid_connector c(config());
    const std::string events = R"([{"email":"a@b.com","event":"delivered","sg_event_id":"e1"}])";
    const auto good = delivered_events(events, sim_);
    const auto v = c.verify(good);
    EXPECT_TRUE(v.accepted) << v.reason;
    EXPECT_EQ(v.dedup_key, "events:sha256:" + util::hex_encode(util::sha256(events)));

    simulators::sendgrid_simulator other;  // another key
    EXPECT_FALSE(c.verify(delivered_events(events, other)).accepted);

    auto tampered = good;
    tampered.body = R"([{"email":"a@b.com","event":"bounce","sg_event_id":"e1"}])";
    EXPECT_FALSE(c.verify(tampered).accepted);

    auto missing = good;
    missing.headers.clear();
    const auto m = c.verify(missing);
    EXPECT_FALSE(m.accepted);
    EXPECT_NE(m.reason.find("missing"), std::string::npos);

    auto retimed = good;
    for (auto& h : retimed.headers) {
        if (http::iequals(h.name, "X-Twilio-Email-Event-Webhook-Timestamp")) {
            h.value = "1";
        }
    }
    EXPECT_FALSE(c.verify(retimed).accepted);

    auto s = config();
    s.event_webhook_public_key.clear();
    EXPECT_FALSE(sendgrid_connector(s).verify(good).accepted);

    auto elsewhere = good;
    elsewhere.path = "/webhooks/sendgrid/other";
    EXPECT_FALSE(c.verify(elsewhere).accepted);
}

// Issue 18 item 11: a captured, validly signed delivery replayed later than SendGrid's retry
// horizon is rejected by its signed timestamp, not only by dedup rows (which get pruned).
TEST_F(sendgrid_test, signed_timestamps_outside_the_tolerance_are_rejected) {
    const std::string events = R"([{"email":"a@b.com","event":"delivered","sg_event_id":"r1"}])";
    const auto delivery = delivered_events(events, sim_);
    auto s = config();
    const auto sent = std::chrono::system_clock::now();
    s.wall_clock = [sent] { return sent + std::chrono::hours(24 * 2); };
    EXPECT_TRUE(sendgrid_connector(s).verify(delivery).accepted);  // a retry two days later
    s.wall_clock = [sent] { return sent + std::chrono::hours(24 * 4); };
    const auto old = sendgrid_connector(s).verify(delivery);
    EXPECT_FALSE(old.accepted);
    EXPECT_NE(old.reason.find("tolerance"), std::string::npos) << old.reason;
    s.event_max_age = std::chrono::hours(24 * 7);
    EXPECT_TRUE(sendgrid_connector(s).verify(delivery).accepted);
    s.wall_clock = [sent] { return sent - std::chrono::hours(1); };
    EXPECT_FALSE(sendgrid_connector(s).verify(delivery).accepted);  // from the future
}

TEST_F(sendgrid_test, events_are_deduplicated_per_event_and_never_regress) {
    sendgrid_connector c(config());
    const std::string batch1 =
        R"([{"email":"client@example.com","event":"processed","sg_event_id":"p1","sg_message_id":"m.1","timestamp":1767600000,"billsync_delivery_id":"d-1"},)"
        R"({"email":"client@example.com","event":"delivered","sg_event_id":"dl1","sg_message_id":"m.1","timestamp":1767600005,"billsync_delivery_id":"d-1"},)"
        R"({"email":"client@example.com","event":"delivered","sg_event_id":"dl1","sg_message_id":"m.1","timestamp":1767600005,"billsync_delivery_id":"d-1"}])";
    ASSERT_EQ(c.check_payload(batch1), "");
    const auto first = process(c, "events", batch1);
    ASSERT_EQ(first.size(), 2u);
    EXPECT_EQ(first[0].entity_type, "email_message");
    EXPECT_EQ(first[0].entity_id, "d-1");
    EXPECT_EQ(json::parse(first[0].fields_json)["status"], "processed");
    EXPECT_EQ(json::parse(first[1].fields_json),
              (json{{"channel", "email"},
                    {"delivery_id", "d-1"},
                    {"status", "delivered"},
                    {"progress", 3},
                    {"failed", false},
                    {"provider_id", "dl1"},
                    {"reason", ""},
                    {"address", "client@example.com"}}));
    EXPECT_LT(first[0].version, first[1].version);

    // The same events again (another delivery of the batch): nothing changes.
    EXPECT_TRUE(process(c, "events", batch1).empty());
    // A retry that changed sg_event_id is caught by the secondary key.
    EXPECT_TRUE(
        process(
            c,
            "events",
            R"([{"email":"client@example.com","event":"delivered","sg_event_id":"other","sg_message_id":"m.1","timestamp":1767600005,"billsync_delivery_id":"d-1"}])")
            .empty());
    // A late "processed" or "deferred" does not move the status back.
    EXPECT_TRUE(
        process(
            c,
            "events",
            R"([{"email":"client@example.com","event":"deferred","sg_event_id":"df1","billsync_delivery_id":"d-1"}])")
            .empty());
    EXPECT_EQ(entity("email_message", "d-1")->at("fields").at("status"), "delivered");
    // Engagement is reported without touching the delivery status.
    const auto open = process(
        c,
        "events",
        R"([{"email":"client@example.com","event":"open","sg_event_id":"o1","custom_args":{"billsync_delivery_id":"d-1"}}])");
    ASSERT_EQ(open.size(), 1u);
    EXPECT_EQ(json::parse(open[0].fields_json)["status"], "open");
    EXPECT_EQ(entity("email_message", "d-1")->at("fields").at("status"), "delivered");
    EXPECT_TRUE(entity("sendgrid_event", "dl1"));
}

TEST_F(sendgrid_test, bounces_suppress_the_address) {
    sendgrid_connector c(config());
    const auto out = process(
        c,
        "events",
        R"([{"email":"Client@Example.COM","event":"bounce","reason":"550 5.1.1 no such user","sg_event_id":"b1","timestamp":1767600000,"billsync_delivery_id":"d-9"}])");
    ASSERT_EQ(out.size(), 2u);
    EXPECT_EQ(json::parse(out[0].fields_json)["status"], "bounce");
    EXPECT_EQ(out[1].entity_type, "suppression");
    EXPECT_EQ(out[1].entity_id, "email:client@example.com");
    const auto row = entity("suppression", "email:client@example.com");
    ASSERT_TRUE(row);
    EXPECT_EQ(*row,
              (json{{"channel", "email"},
                    {"address", "client@example.com"},
                    {"opted_out", true},
                    {"reason", "550 5.1.1 no such user"},
                    {"at", "2026-01-05T08:00:00Z"},
                    {"version", 1},
                    {"source", "sendgrid"}}));
    // Delivered after a bounce stays a bounce.
    EXPECT_TRUE(
        process(
            c,
            "events",
            R"([{"email":"client@example.com","event":"delivered","sg_event_id":"x2","billsync_delivery_id":"d-9"}])")
            .empty());

    // The official vector's dropped event carries no delivery id: the suppression alone.
    const std::string official =
        R"([{"email":"hello@world.com","event":"dropped","reason":"Bounced Address","sg_event_id":"ZHJvcC0xMDk5NDkxOS1MUnpYbF9OSFN0T0doUTRrb2ZTbV9BLTA","sg_message_id":"LRzXl_NHStOGhQ4kofSm_A.filterdrecv-p3mdw1-756b745b58-kmzbl-18-5F5FC76C-9.0","smtp-id":"<LRzXl_NHStOGhQ4kofSm_A@ismtpd0039p1iad1.sendgrid.net>","timestamp":1600112492}])"
        "\r\n";
    const auto dropped = process(c, "events", official);
    ASSERT_EQ(dropped.size(), 1u);
    EXPECT_EQ(dropped[0].entity_id, "email:hello@world.com");
}

TEST_F(sendgrid_test, simulator_events_for_sent_messages_round_trip) {
    sendgrid_connector c(config());
    ASSERT_EQ(perform(c, send_action("d-1")).k, action_outcome::kind::done);
    const auto req = delivered_events(sim_.events_for_messages("delivered"), sim_);
    ASSERT_TRUE(c.verify(req).accepted);
    ASSERT_EQ(c.check_payload(req.body), "");
    const auto out = process(c, "events", req.body);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].entity_id, "d-1");
}

TEST_F(sendgrid_test, inbound_parse_is_authenticated_and_mapped) {
    sendgrid_connector c(config());
    const std::string headers =
        "Received: by mx.sendgrid.net\r\n"
        "From: \"Ann Client\" <Ann@Client.test>\r\n"
        "Message-ID: <reply-1@client.test>\r\n"
        "In-Reply-To: <abc@billsync.local>\r\n"
        "References: <root@billsync.local>\r\n"
        " <abc@billsync.local>\r\n";
    capture_.clear_requests();
    ASSERT_EQ(
        sim_.send_inbound(capture_.base_url() + "/webhooks/sendgrid/inbound?token=inbound-s3cret",
                          "\"Ann Client\" <Ann@Client.test>",
                          "billing@firm.test, \"Ops\" <ops@firm.test>",
                          "Re: Invoice 1042",
                          "I dispute this charge.\r\n",
                          headers),
        200u);
    auto req = as_request(capture_.requests().at(0));
    const auto v = c.verify(req);
    ASSERT_TRUE(v.accepted) << v.reason;
    EXPECT_TRUE(v.dedup_key.starts_with("inbound:sha256:"));
    ASSERT_EQ(c.check_payload(req.body), "");

    auto wrong = req;
    wrong.query = "token=guess";
    EXPECT_FALSE(c.verify(wrong).accepted);
    auto none = req;
    none.query.clear();
    EXPECT_FALSE(c.verify(none).accepted);
    auto basic = none;
    basic.headers.push_back(
        {"Authorization", "Basic " + util::base64_encode("parse:inbound-s3cret")});
    EXPECT_TRUE(c.verify(basic).accepted);
    auto s = config();
    s.inbound_secret.clear();
    EXPECT_FALSE(sendgrid_connector(s).verify(req).accepted);

    const json hj{{"content-type", std::string(req.header_value("Content-Type"))}};
    const auto out = process(c, "inbound", req.body, hj.dump());
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].entity_type, "email_inbound");
    EXPECT_EQ(out[0].entity_id, "<reply-1@client.test>");
    EXPECT_EQ(json::parse(out[0].fields_json),
              (json{{"channel", "email"},
                    {"id", "<reply-1@client.test>"},
                    {"from", "ann@client.test"},
                    {"to", {"billing@firm.test", "ops@firm.test"}},
                    {"subject", "Re: Invoice 1042"},
                    {"text", "I dispute this charge.\r\n"},
                    {"keyword", ""},
                    {"in_reply_to", "<abc@billsync.local>"},
                    {"references", "<root@billsync.local> <abc@billsync.local>"},
                    // The simulator's SPF and DKIM (for client.test) passed.
                    {"sender_verified", true}}));
    // Posted again (SendGrid retries): the same message, no new change.
    EXPECT_TRUE(process(c, "inbound", req.body, hj.dump()).empty());
}

TEST_F(sendgrid_test, malformed_payloads_are_rejected) {
    sendgrid_connector c(config());
    const auto form = simulators::sendgrid_simulator::inbound_form(
        "xYzZY", "a@b.com", "billing@firm.test", "s", "t", "");
    EXPECT_EQ(c.check_payload(form), "");
    EXPECT_NE(c.check_payload(form.substr(0, form.size() - 10)).find("malformed multipart"),
              std::string::npos);
    EXPECT_NE(c.check_payload("--xYzZY\r\nContent-Disposition: form-data; name=\"subject\"\r\n\r\n"
                              "s\r\n--xYzZY--\r\n"),
              "");  // neither from/to nor a raw email
    EXPECT_NE(c.check_payload("{\"event\":\"open\"}"), "");
    EXPECT_NE(c.check_payload("[1]"), "");
    EXPECT_NE(c.check_payload("garbage"), "");
    EXPECT_EQ(c.check_payload(R"([{"event":"open"}])"), "");
    // Issue 18 item 17: nesting is capped before anything parses, dumps or compares the body.
    const std::string deep =
        R"([{"event":"open","x":)" + std::string(5000, '[') + std::string(5000, ']') + "}]";
    EXPECT_NE(c.check_payload(deep).find("nested deeper"), std::string::npos);
    state::inbox_event e;
    e.connector = "sendgrid";
    e.kind = "events";
    e.body = deep;
    state::batch b(*store_);
    EXPECT_FALSE(c.process(e, *store_, b).ok());
}

}  // namespace
}  // namespace billsync::connectors::sendgrid
