// The Twilio connector against the Twilio simulator over loopback (twilio.md).

#include "connectors/twilio/twilio_connector.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <thread>

#include "connectors/twilio/twilio_signature.hpp"
#include "http/client.hpp"
#include "sim/twilio_simulator.hpp"
#include "state/tables.hpp"
#include "tests/fakes/log_capture.hpp"
#include "tests/fakes/temp_dir.hpp"
#include "tests/unit/connectors/runtime/runtime_test_support.hpp"
#include "util/crypto.hpp"
#include "util/log.hpp"

namespace billsync::connectors::twilio {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;
using simulators::scripted_response;
using simulators::sim_server;

const std::string public_url = "https://billsync.example.com";
const std::string customer = "+14155550123";

util::instant at(std::string_view rfc3339) {
    util::instant t{};
    EXPECT_TRUE(util::parse_rfc3339(rfc3339, t));
    return t;
}

http::request as_request(const simulators::recorded_request& r) {
    http::request req;
    req.method = r.method;
    req.target = r.target;
    req.path = r.path;
    req.query = r.query;
    req.headers = r.headers;
    req.body = r.body;
    return req;
}

state::action sms_action(std::string to, std::string body, std::string delivery_id) {
    state::action a;
    a.id = "act-" + delivery_id;
    a.connector = "twilio";
    a.kind = "sms.send";
    a.payload = json{{"to", to}, {"body", body}, {"delivery_id", delivery_id}}.dump();
    return a;
}

state::inbox_event event(std::string kind, std::string body, std::string target = {}) {
    state::inbox_event e;
    e.connector = "twilio";
    e.kind = std::move(kind);
    e.body = std::move(body);
    e.headers_json = json{{":target", target}}.dump();
    e.received_at = at("2026-01-05T09:30:00Z");
    return e;
}

std::string form(const std::vector<std::pair<std::string, std::string>>& p) {
    std::string out;
    for (const auto& [k, v] : p) {
        out += (out.empty() ? "" : "&") + http::percent_encode(k) + "=" + http::percent_encode(v);
    }
    return out;
}

net::awaitable<http::response> stored(http::request) {
    co_return http::response::json(200, R"({"status":"stored"})");
}

class twilio_test : public ::testing::Test {
protected:
    void SetUp() override {
        simulators::twilio_options o;
        o.now = [this] { return clock_.now(); };
        sim_ = std::make_unique<simulators::twilio_simulator>(o);
        server_ = std::make_unique<sim_server>();
        sim_->add_routes(server_->routes());
        sim_->configure(*server_);
        ASSERT_EQ(server_->start(), "");
        // Stands in for billsync's webhook listener: records what the simulator posts.
        receiver_ = std::make_unique<sim_server>();
        receiver_->routes().add_prefix("POST", "/webhooks/", "/webhooks/:any", stored);
        ASSERT_EQ(receiver_->start(), "");
        sim_->set_callback_base(receiver_->base_url());
    }

    settings make_settings() {
        settings s;
        s.name = "twilio";
        s.base_url = server_->base_url();
        s.account_sid = sim_->options().account_sid;
        s.auth_token = sim_->options().auth_token;
        s.from = sim_->options().numbers.front();
        s.public_url = public_url;
        s.client = testing::test_settings();
        s.time = steady_.source();
        s.now = [this] { return clock_.now(); };
        return s;
    }

    twilio_connector& connector() {
        if (!connector_) {
            connector_ = std::make_unique<twilio_connector>(make_settings());
        }
        return *connector_;
    }

    action_outcome perform(state::action a) { return testing::run(ioc_, connector().perform(a)); }
    reconcile_outcome reconcile(state::action a) {
        return testing::run(ioc_, connector().reconcile(a));
    }

    // Processes one event and commits its rows.
    std::vector<mappings::change> process(const state::inbox_event& e) {
        state::batch b(*store_);
        auto r = connector().process(e, *store_, b);
        EXPECT_TRUE(r.ok()) << r.st.message;
        EXPECT_TRUE(store_->write(b, false).ok);
        return r.value;
    }

    void open_store() {
        auto s = state::store::open(dir_ / "db");
        ASSERT_TRUE(s.ok()) << s.st.message;
        store_ = std::move(s.value);
    }

    util::manual_clock clock_{at("2026-01-05T09:00:00Z")};
    manual_steady_time steady_;
    std::unique_ptr<simulators::twilio_simulator> sim_;
    std::unique_ptr<sim_server> server_;
    std::unique_ptr<sim_server> receiver_;
    billsync::testing::temp_dir dir_;
    std::unique_ptr<state::store> store_;
    net::io_context ioc_;
    std::unique_ptr<twilio_connector> connector_;  // after ioc_: destroyed first
};

// ---- sending ------------------------------------------------------------------------------------

TEST_F(twilio_test, send_posts_the_form_with_basic_auth_and_a_status_callback) {
    const auto out = perform(sms_action(customer, "Invoice 42 is due", "inv-42/touch 2"));
    ASSERT_EQ(out.k, action_outcome::kind::done) << out.detail;
    EXPECT_TRUE(out.detail.starts_with("SM")) << out.detail;
    EXPECT_EQ(out.detail.size(), 34u);

    const auto posts = server_->requests_to("/2010-04-01/Accounts/" + sim_->options().account_sid +
                                            "/Messages.json");
    ASSERT_EQ(posts.size(), 1u);
    EXPECT_EQ(posts[0].method, "POST");
    EXPECT_EQ(posts[0].header_value("Authorization"),
              "Basic " + util::base64_encode(sim_->options().account_sid + ":" +
                                             sim_->options().auth_token));
    EXPECT_EQ(posts[0].header_value("Content-Type"), "application/x-www-form-urlencoded");
    const auto fields = parse_form(posts[0].body);
    ASSERT_TRUE(fields);
    const form_params expected{
        {"To", customer},
        {"From", "+15005550006"},
        {"Body", "Invoice 42 is due"},
        {"StatusCallback",
         "https://billsync.example.com/webhooks/twilio/status?delivery=inv-42%2Ftouch%202"}};
    EXPECT_EQ(*fields, expected);

    ASSERT_EQ(out.effects.size(), 1u);
    EXPECT_EQ(out.effects[0].entity_type, "sms_message");
    EXPECT_EQ(out.effects[0].entity_id, "inv-42/touch 2");
    EXPECT_EQ(out.effects[0].source, "twilio");
    EXPECT_EQ(json::parse(out.effects[0].fields_json),
              (json{{"channel", "sms"},
                    {"delivery_id", "inv-42/touch 2"},
                    {"status", "queued"},
                    {"progress", 1},
                    {"failed", false},
                    {"provider_id", out.detail},
                    {"reason", ""},
                    {"address", customer}}));

    const auto msgs = sim_->messages();
    ASSERT_EQ(msgs.size(), 1u);
    EXPECT_EQ(msgs[0]["sid"], out.detail);
    EXPECT_EQ(msgs[0]["date_created"], "Mon, 05 Jan 2026 09:00:00 +0000");
    EXPECT_EQ(json::parse(connector().status_json())["sends"], 1);
}

TEST_F(twilio_test, a_messaging_service_is_used_when_no_sender_number_is_set) {
    auto s = make_settings();
    s.from.clear();
    s.messaging_service_sid = sim_->options().messaging_service_sids.front();
    connector_ = std::make_unique<twilio_connector>(s);
    const auto out = perform(sms_action("+1 (415) 555-0123", "Hello", "d-1"));
    ASSERT_EQ(out.k, action_outcome::kind::done) << out.detail;
    const auto fields = parse_form(server_->requests().back().body);
    ASSERT_TRUE(fields);
    EXPECT_EQ((*fields)[0], (std::pair<std::string, std::string>{"To", "+14155550123"}));
    EXPECT_EQ((*fields)[1].first, "MessagingServiceSid");
    EXPECT_EQ(sim_->messages()[0]["messaging_service_sid"], s.messaging_service_sid);
}

TEST_F(twilio_test, an_opted_out_recipient_is_permanent_and_suppressed) {
    sim_->opt_out(customer);
    const auto out = perform(sms_action(customer, "Invoice 42 is due", "d-2"));
    EXPECT_EQ(out.k, action_outcome::kind::permanent);
    EXPECT_NE(out.detail.find("21610"), std::string::npos) << out.detail;
    // The number is found opted out: an entity for the shared apply step, written with the
    // outcome.
    EXPECT_TRUE(out.effects.empty());
    ASSERT_EQ(out.writes.size(), 1u);
    EXPECT_EQ(mappings::entity_type_of(out.writes[0]), "suppression");
    EXPECT_EQ(mappings::entity_id_of(out.writes[0]), "sms:+14155550123");
    const auto& f = std::get<mappings::suppression>(out.writes[0]);
    EXPECT_TRUE(f.opted_out);
    EXPECT_EQ(f.via, mappings::channel::sms);
    EXPECT_EQ(f.address, customer);
    EXPECT_EQ(f.reason, "21610");
    EXPECT_EQ(f.at, "2026-01-05T09:00:00Z");
    EXPECT_TRUE(sim_->messages().empty());
    const auto status = json::parse(connector().status_json());
    EXPECT_EQ(status["opt_outs"], 1);
    EXPECT_EQ(status["failures"], 1);
}

TEST_F(twilio_test, throttling_server_errors_and_transport_failures_are_retried) {
    const auto path = "/2010-04-01/Accounts/" + sim_->options().account_sid + "/Messages.json";
    auto throttled = scripted_response::status_code(
        429,
        R"({"code":20429,"message":"Too Many Requests","more_info":"https://www.twilio.com/docs/errors/20429","status":429})");
    throttled.headers.push_back({"Retry-After", "3"});
    server_->script(
        "POST", path, {throttled, scripted_response::server_error(503), scripted_response::drop()});
    const auto first = perform(sms_action(customer, "Hi", "d-3"));
    EXPECT_EQ(first.k, action_outcome::kind::retry);
    ASSERT_TRUE(first.retry_after);
    EXPECT_EQ(*first.retry_after, 3s);
    EXPECT_NE(first.detail.find("20429"), std::string::npos) << first.detail;
    EXPECT_EQ(perform(sms_action(customer, "Hi", "d-3")).k, action_outcome::kind::retry);
    EXPECT_EQ(perform(sms_action(customer, "Hi", "d-3")).k, action_outcome::kind::retry);
    EXPECT_TRUE(sim_->messages().empty());
}

TEST_F(twilio_test, other_client_errors_are_permanent_with_twilios_code) {
    auto s = make_settings();
    s.from = "+15005550009";  // not a number the account owns
    connector_ = std::make_unique<twilio_connector>(s);
    const auto out = perform(sms_action(customer, "Hi", "d-4"));
    EXPECT_EQ(out.k, action_outcome::kind::permanent);
    EXPECT_NE(out.detail.find("twilio error 21606"), std::string::npos) << out.detail;
    EXPECT_TRUE(out.effects.empty());

    s = make_settings();
    s.auth_token = "wrong-token";
    connector_ = std::make_unique<twilio_connector>(s);
    const auto denied = perform(sms_action(customer, "Hi", "d-4"));
    EXPECT_EQ(denied.k, action_outcome::kind::permanent);
    EXPECT_NE(denied.detail.find("20003"), std::string::npos) << denied.detail;

    const auto bad = perform(sms_action("not a number", "Hi", "d-4"));
    EXPECT_EQ(bad.k, action_outcome::kind::permanent);
    EXPECT_EQ(bad.detail, "invalid sms.send payload: \"to\" is not an E.164 number");
}

TEST_F(twilio_test, the_simulator_enforces_body_and_number_rules) {
    const auto out = perform(sms_action(customer, std::string(1601, 'x'), "d-5"));
    EXPECT_EQ(out.k, action_outcome::kind::permanent);
    EXPECT_NE(out.detail.find("21617"), std::string::npos) << out.detail;
    EXPECT_EQ(perform(sms_action(customer, std::string(1600, 'x'), "d-5")).k,
              action_outcome::kind::done);
}

// ---- reconciling --------------------------------------------------------------------------------

TEST_F(twilio_test, reconcile_finds_a_sent_message_and_reports_absent_otherwise) {
    const auto a = sms_action(customer, "Invoice 42 is due", "d-6");
    const auto sent = perform(a);
    ASSERT_EQ(sent.k, action_outcome::kind::done);

    const auto found = reconcile(a);
    EXPECT_EQ(found.k, reconcile_outcome::kind::happened) << found.detail;
    EXPECT_EQ(found.detail, sent.detail);
    ASSERT_EQ(found.effects.size(), 1u);
    EXPECT_EQ(json::parse(found.effects[0].fields_json)["provider_id"], sent.detail);

    const auto lists = server_->requests_to("/2010-04-01/Accounts/" + sim_->options().account_sid +
                                            "/Messages.json");
    ASSERT_EQ(lists.back().method, "GET");
    EXPECT_EQ(http::query_param(lists.back().query, "To"), "+14155550123");
    // No DateSent filter: a queued message has no date_sent yet.
    EXPECT_EQ(lists.back().query.find("DateSent"), std::string::npos) << lists.back().query;

    EXPECT_EQ(reconcile(sms_action(customer, "Another text", "d-7")).k,
              reconcile_outcome::kind::absent);
    EXPECT_EQ(reconcile(sms_action("+14155550199", "Invoice 42 is due", "d-8")).k,
              reconcile_outcome::kind::absent);
}

// Issue 18 item 2: the look-up is anchored to the first attempt, not to "now", so a reconcile
// days later (a weekend outage, a long backoff) still finds the first text.
TEST_F(twilio_test, reconcile_looks_back_to_the_first_attempt_however_long_ago) {
    auto a = sms_action(customer, "Invoice 42 is due", "d-9");
    ASSERT_EQ(perform(a).k, action_outcome::kind::done);
    a.first_attempt_at = clock_.now();
    a.attempts = 1;
    clock_.advance(std::chrono::hours(24 * 3));
    const auto found = reconcile(a);
    EXPECT_EQ(found.k, reconcile_outcome::kind::happened) << found.detail;
    // A retry that late looks too, and does not text twice.
    EXPECT_EQ(perform(a).k, action_outcome::kind::done);
    EXPECT_EQ(sim_->messages().size(), 1u);
}

TEST_F(twilio_test, reconcile_stops_listing_at_messages_older_than_the_first_attempt) {
    auto s = make_settings();
    s.page_size = 1;
    connector_ = std::make_unique<twilio_connector>(s);
    for (int i = 0; i < 4; ++i) {
        ASSERT_EQ(perform(sms_action(customer, "Old " + std::to_string(i), "o")).k,
                  action_outcome::kind::done);
    }
    clock_.advance(std::chrono::hours(24 * 2));
    auto a = sms_action(customer, "Lost", "d-9b");
    a.first_attempt_at = clock_.now();
    a.attempts = 1;
    clock_.advance(std::chrono::hours(1));
    server_->clear_requests();
    EXPECT_EQ(reconcile(a).k, reconcile_outcome::kind::absent);
    EXPECT_EQ(server_->request_count(), 1u);  // the first page is already older: no more pages
}

TEST_F(twilio_test, a_young_attempt_not_listed_yet_is_undecided) {
    auto a = sms_action(customer, "Invoice 42 is due", "d-9c");
    a.first_attempt_at = clock_.now();
    a.attempts = 1;
    clock_.advance(std::chrono::minutes(2));
    const auto young = reconcile(a);
    EXPECT_EQ(young.k, reconcile_outcome::kind::undecided);
    EXPECT_FALSE(young.detail.empty());
    EXPECT_EQ(perform(a).k, action_outcome::kind::retry);  // nor sent again while undecided
    EXPECT_TRUE(sim_->messages().empty());
    clock_.advance(std::chrono::minutes(10));
    EXPECT_EQ(reconcile(a).k, reconcile_outcome::kind::absent);
}

TEST_F(twilio_test, reconcile_follows_next_page_uri) {
    auto s = make_settings();
    s.page_size = 2;
    connector_ = std::make_unique<twilio_connector>(s);
    const auto target = sms_action(customer, "The one", "d-10");
    ASSERT_EQ(perform(target).k, action_outcome::kind::done);
    for (int i = 0; i < 5; ++i) {
        clock_.advance(std::chrono::minutes(1));
        ASSERT_EQ(perform(sms_action(customer, "Other " + std::to_string(i), "o")).k,
                  action_outcome::kind::done);
    }
    server_->clear_requests();
    const auto found = reconcile(target);
    EXPECT_EQ(found.k, reconcile_outcome::kind::happened) << found.detail;
    // Newest first, two per page: the oldest message is on the third page.
    EXPECT_EQ(server_->request_count(), 3u);
    server_->clear_requests();
    EXPECT_EQ(reconcile(sms_action(customer, "Never sent", "d-11")).k,
              reconcile_outcome::kind::absent);
    EXPECT_EQ(server_->request_count(), 3u);
}

TEST_F(twilio_test, a_failed_listing_is_undecided) {
    auto s = make_settings();
    s.read_retry.max_attempts = 2;
    connector_ = std::make_unique<twilio_connector>(s);
    const auto path = "/2010-04-01/Accounts/" + sim_->options().account_sid + "/Messages.json";
    server_->script(
        "GET", path, {scripted_response::server_error(500), scripted_response::server_error(502)});
    const auto r = reconcile(sms_action(customer, "Hi", "d-12"));
    EXPECT_EQ(r.k, reconcile_outcome::kind::undecided);
    EXPECT_FALSE(r.detail.empty());
    EXPECT_EQ(server_->request_count(), 2u);
}

TEST_F(twilio_test, a_retried_send_looks_before_sending_again) {
    auto a = sms_action(customer, "Invoice 42 is due", "d-13");
    ASSERT_EQ(perform(a).k, action_outcome::kind::done);
    a.attempts = 1;  // as if the first attempt's outcome had been lost
    const auto again = perform(a);
    EXPECT_EQ(again.k, action_outcome::kind::done);
    EXPECT_EQ(sim_->messages().size(), 1u);  // not sent twice

    auto fresh = sms_action(customer, "Not yet sent", "d-14");
    fresh.attempts = 1;
    EXPECT_EQ(perform(fresh).k, action_outcome::kind::done);
    EXPECT_EQ(sim_->messages().size(), 2u);
}

// ---- webhooks: verification ---------------------------------------------------------------------

TEST_F(twilio_test, verify_accepts_the_simulators_signed_inbound_text) {
    const auto url = receiver_->base_url() + "/webhooks/twilio/sms";
    const auto statuses = sim_->send_inbound(
        url, customer, "+15005550006", "Is invoice 42 right?", public_url + "/webhooks/twilio/sms");
    ASSERT_EQ(statuses, std::vector<unsigned>{200});
    const auto got = receiver_->requests_to("/webhooks/twilio/sms");
    ASSERT_EQ(got.size(), 1u);
    const auto v = connector().verify(as_request(got[0]));
    EXPECT_TRUE(v.accepted) << v.reason;
    EXPECT_EQ(v.dedup_key, "sms:" + sim_->messages()[0]["sid"].get<std::string>());
    EXPECT_EQ(connector().check_payload(got[0].body), "");
}

TEST_F(twilio_test, verify_rejects_forged_missing_and_wrong_url_signatures) {
    const auto url = receiver_->base_url() + "/webhooks/twilio/sms";
    // Signed for the loopback URL, not the public one billsync is configured with.
    sim_->send_inbound(url, customer, "+15005550006", "hi");
    sim_->send_inbound(
        url, customer, "+15005550006", "hi", "https://evil.example.com/webhooks/twilio/sms");
    sim_->send_inbound(url, customer, "+15005550006", "hi", public_url + "/webhooks/twilio/sms");
    const auto got = receiver_->requests_to("/webhooks/twilio/sms");
    ASSERT_EQ(got.size(), 3u);
    EXPECT_FALSE(connector().verify(as_request(got[0])).accepted);
    EXPECT_FALSE(connector().verify(as_request(got[1])).accepted);
    ASSERT_TRUE(connector().verify(as_request(got[2])).accepted);

    auto tampered = as_request(got[2]);
    tampered.body += "&Extra=1";
    EXPECT_EQ(connector().verify(tampered).reason, "signature mismatch");

    auto forged = as_request(got[2]);
    for (auto& h : forged.headers) {
        if (http::iequals(h.name, "X-Twilio-Signature")) {
            h.value = "fake_signature";
        }
    }
    EXPECT_FALSE(connector().verify(forged).accepted);

    auto bare = as_request(got[2]);
    std::erase_if(bare.headers, [](const http::header& h) {
        return http::iequals(h.name, "X-Twilio-Signature");
    });
    const auto v = connector().verify(bare);
    EXPECT_FALSE(v.accepted);
    EXPECT_EQ(v.reason, "missing X-Twilio-Signature header");
}

TEST_F(twilio_test, verify_accepts_signed_status_callbacks_with_their_delivery_query) {
    const auto sent = perform(sms_action(customer, "Invoice 42 is due", "inv-42/touch 2"));
    ASSERT_EQ(sent.k, action_outcome::kind::done);
    const auto statuses = sim_->flush_status_callbacks();
    EXPECT_EQ(statuses, (std::vector<unsigned>{200, 200}));
    const auto got = receiver_->requests_to("/webhooks/twilio/status");
    ASSERT_EQ(got.size(), 2u);
    EXPECT_EQ(got[0].query, "delivery=inv-42%2Ftouch%202");
    const auto first = connector().verify(as_request(got[0]));
    EXPECT_TRUE(first.accepted) << first.reason;
    EXPECT_EQ(first.dedup_key, "status:" + sent.detail + ":sent");
    const auto second = connector().verify(as_request(got[1]));
    EXPECT_TRUE(second.accepted) << second.reason;
    EXPECT_EQ(second.dedup_key, "status:" + sent.detail + ":delivered");
    // Final: a second flush sends nothing.
    EXPECT_TRUE(sim_->flush_status_callbacks().empty());

    // The query is signed: another delivery id does not verify.
    auto moved = as_request(got[0]);
    moved.target = "/webhooks/twilio/status?delivery=other";
    moved.query = "delivery=other";
    EXPECT_FALSE(connector().verify(moved).accepted);
}

TEST_F(twilio_test, verify_checks_json_bodies_by_their_hash) {
    const std::string body = R"({"MessageSid":"SM1"})";
    const auto hash = util::hex_encode(util::sha256(body));
    http::request req;
    req.method = "POST";
    req.path = "/webhooks/twilio/sms";
    req.query = "bodySHA256=" + hash;
    req.target = req.path + "?" + req.query;
    req.body = body;
    req.headers.push_back(
        {"X-Twilio-Signature",
         compute_signature(sim_->options().auth_token, public_url + req.target, {})});
    EXPECT_TRUE(connector().verify(req).accepted);
    req.body = R"({"MessageSid":"SM2"})";
    EXPECT_FALSE(connector().verify(req).accepted);
}

TEST_F(twilio_test, check_payload_rejects_malformed_bodies) {
    auto& c = connector();
    EXPECT_EQ(c.check_payload("MessageSid=SM1&From=%2B1415&To=%2B1500"), "");
    EXPECT_EQ(c.check_payload("MessageSid=SM1&MessageStatus=sent"), "");
    EXPECT_EQ(c.check_payload("MessageSid=SM1&From=%zz"), "body is not a well-formed form");
    EXPECT_EQ(c.check_payload("From=%2B1415&To=%2B1500"), "MessageSid is missing");
    EXPECT_EQ(c.check_payload("MessageSid=SM1&To=%2B1500"), "From and To are required");
    EXPECT_EQ(c.check_payload("MessageSid=SM1&MessageStatus="), "MessageStatus is empty");
}

// ---- webhooks: processing -----------------------------------------------------------------------

TEST_F(twilio_test, stop_suppresses_the_number_and_start_lifts_it) {
    open_store();
    const auto stop = event("sms",
                            form({{"MessageSid", "SM1"},
                                  {"From", "+14155550123"},
                                  {"To", "+15005550006"},
                                  {"Body", " Stop "}}));
    const auto changes = process(stop);
    ASSERT_EQ(changes.size(), 2u);
    EXPECT_EQ(changes[0].entity_type, "sms_inbound");
    EXPECT_EQ(changes[0].entity_id, "SM1");
    EXPECT_EQ(json::parse(changes[0].fields_json),
              (json{{"channel", "sms"},
                    {"sender_verified", false},  // an email-only notion (SPF and DKIM)
                    {"id", "SM1"},
                    {"from", "+14155550123"},
                    {"to", {"+15005550006"}},
                    {"subject", ""},
                    {"text", " Stop "},
                    {"keyword", "stop"},
                    {"in_reply_to", ""},
                    {"references", ""}}));
    EXPECT_EQ(changes[1].entity_type, "suppression");
    EXPECT_EQ(changes[1].entity_id, "sms:+14155550123");
    EXPECT_EQ(json::parse(changes[1].fields_json),
              (json{{"channel", "sms"},
                    {"address", "+14155550123"},
                    {"opted_out", true},
                    {"reason", "STOP"},
                    {"at", "2026-01-05T09:30:00Z"}}));
    EXPECT_TRUE(is_suppressed(*store_, "+14155550123"));
    EXPECT_FALSE(is_suppressed(*store_, "+14155550199"));

    // A second STOP changes nothing; a plain reply only records the text.
    EXPECT_EQ(process(event("sms",
                            form({{"MessageSid", "SM2"},
                                  {"From", "+14155550123"},
                                  {"To", "+15005550006"},
                                  {"Body", "STOPALL"}})))
                  .size(),
              1u);
    EXPECT_EQ(process(event("sms",
                            form({{"MessageSid", "SM3"},
                                  {"From", "+14155550123"},
                                  {"To", "+15005550006"},
                                  {"Body", "stop please"}})))
                  .size(),
              1u);
    EXPECT_TRUE(is_suppressed(*store_, "+14155550123"));

    const auto start = process(event("sms",
                                     form({{"MessageSid", "SM4"},
                                           {"From", "+14155550123"},
                                           {"To", "+15005550006"},
                                           {"Body", "start"}})));
    ASSERT_EQ(start.size(), 2u);
    EXPECT_EQ(json::parse(start[1].fields_json)["opted_out"], false);
    EXPECT_EQ(start[1].version, 2u);
    EXPECT_FALSE(is_suppressed(*store_, "+14155550123"));
}

TEST_F(twilio_test, an_inbound_stop_end_to_end_blocks_the_next_send) {
    open_store();
    const auto url = receiver_->base_url() + "/webhooks/twilio/sms";
    sim_->send_inbound(url, customer, "+15005550006", "STOP", public_url + "/webhooks/twilio/sms");
    EXPECT_TRUE(sim_->opted_out(customer));
    const auto got = receiver_->requests_to("/webhooks/twilio/sms");
    ASSERT_EQ(got.size(), 1u);
    ASSERT_TRUE(connector().verify(as_request(got[0])).accepted);
    process(event("sms", got[0].body, got[0].target));
    EXPECT_TRUE(is_suppressed(*store_, customer));
    EXPECT_EQ(perform(sms_action(customer, "Hi", "d-15")).k, action_outcome::kind::permanent);
}

TEST_F(twilio_test, status_never_moves_backwards) {
    open_store();
    const auto status = [](std::string s, std::string code = {}) {
        std::vector<std::pair<std::string, std::string>> p{
            {"MessageSid", "SM9"}, {"MessageStatus", s}, {"To", "+14155550123"}};
        if (!code.empty()) {
            p.emplace_back("ErrorCode", code);
        }
        return event("status", form(p), "/webhooks/twilio/status?delivery=inv-42%2Ftouch%202");
    };
    auto c = process(status("sent"));
    ASSERT_EQ(c.size(), 1u);
    EXPECT_EQ(c[0].entity_type, "sms_message");
    EXPECT_EQ(c[0].entity_id, "inv-42/touch 2");
    EXPECT_EQ(json::parse(c[0].fields_json),
              (json{{"channel", "sms"},
                    {"delivery_id", "inv-42/touch 2"},
                    {"status", "sent"},
                    {"progress", 3},
                    {"failed", false},
                    {"provider_id", "SM9"},
                    {"reason", ""},
                    {"address", "+14155550123"}}));
    c = process(status("delivered"));
    ASSERT_EQ(c.size(), 1u);
    EXPECT_EQ(c[0].version, 2u);
    EXPECT_EQ(c[0].what, mappings::change::op::updated);
    EXPECT_TRUE(process(status("sent")).empty());
    EXPECT_TRUE(process(status("queued")).empty());
    EXPECT_TRUE(process(status("undelivered")).empty());  // final already
    auto row = state::get_entity(*store_, "sms_message", "inv-42/touch 2");
    ASSERT_TRUE(row.ok() && row.value);
    EXPECT_EQ(json::parse(*row.value)["fields"]["status"], "delivered");

    // 21610 in a callback marks the number, even when the status itself is stale.
    c = process(status("failed", "21610"));
    ASSERT_EQ(c.size(), 1u);
    EXPECT_EQ(c[0].entity_type, "suppression");
    EXPECT_TRUE(is_suppressed(*store_, "+14155550123"));
}

TEST_F(twilio_test, a_status_callback_without_its_delivery_fails_processing) {
    open_store();
    state::batch b(*store_);
    const auto r = connector().process(
        event("status", "MessageSid=SM9&MessageStatus=sent", "/webhooks/twilio/status"),
        *store_,
        b);
    EXPECT_FALSE(r.ok());
    const auto bad = connector().process(event("sms", "From=%zz"), *store_, b);
    EXPECT_FALSE(bad.ok());
}

// ---- secrets ------------------------------------------------------------------------------------

TEST_F(twilio_test, the_auth_token_never_reaches_the_logs) {
    billsync::testing::log_capture capture;
    util::log_hub hub(util::log_output::text, spdlog::level::trace, {capture.sink()});
    auto s = make_settings();
    s.client.log = hub.get("http.client");
    connector_ = std::make_unique<twilio_connector>(s);
    ASSERT_EQ(perform(sms_action(customer, "Hi", "d-16")).k, action_outcome::kind::done);
    sim_->opt_out(customer);
    EXPECT_EQ(perform(sms_action(customer, "Hi", "d-17")).k, action_outcome::kind::permanent);
    EXPECT_EQ(reconcile(sms_action(customer, "Hi", "d-16")).k, reconcile_outcome::kind::happened);
    hub.flush();
    const auto all = capture.joined();
    EXPECT_NE(all.find("Messages.json"), std::string::npos) << "nothing was logged";
    EXPECT_EQ(all.find(s.auth_token), std::string::npos) << all;
    EXPECT_EQ(all.find(util::base64_encode(s.account_sid + ":" + s.auth_token)), std::string::npos)
        << all;
}

}  // namespace
}  // namespace billsync::connectors::twilio

namespace billsync::connectors::twilio {
namespace {

// ---- the simulator's own surface ----------------------------------------------------------------

TEST_F(twilio_test, invalid_actions_are_absent_on_reconcile) {
    EXPECT_EQ(reconcile(sms_action("nope", "Hi", "d-18")).k, reconcile_outcome::kind::absent);
    auto other = sms_action(customer, "Hi", "d-19");
    other.kind = "email.send";
    EXPECT_EQ(reconcile(other).k, reconcile_outcome::kind::absent);
    EXPECT_EQ(perform(other).k, action_outcome::kind::permanent);
    EXPECT_EQ(server_->request_count(), 0u);
}

TEST_F(twilio_test, the_simulator_reads_one_message_and_answers_twilio_404s) {
    const auto sent = perform(sms_action(customer, "Hi", "d-20"));
    ASSERT_EQ(sent.k, action_outcome::kind::done);
    const auto& o = sim_->options();
    const std::vector<http::header> auth{
        {"Authorization", "Basic " + util::base64_encode(o.account_sid + ":" + o.auth_token)}};
    const auto base = "/2010-04-01/Accounts/" + o.account_sid + "/Messages/";
    auto r = http::fetch("127.0.0.1", server_->port(), "GET", base + sent.detail + ".json", auth);
    ASSERT_EQ(r.status, 200u);
    EXPECT_EQ(json::parse(r.body)["status"], "queued");
    r = http::fetch("127.0.0.1", server_->port(), "GET", base + "SMnope.json", auth);
    EXPECT_EQ(r.status, 404u);
    EXPECT_EQ(json::parse(r.body)["code"], 20404);
    r = http::fetch("127.0.0.1", server_->port(), "GET", base + sent.detail + ".json");
    EXPECT_EQ(r.status, 401u);
    EXPECT_EQ(json::parse(r.body)["code"], 20003);
}

TEST_F(twilio_test, the_simulator_admin_routes_drive_opt_outs_and_listings) {
    auto r = http::fetch("127.0.0.1",
                         server_->port(),
                         "POST",
                         "/_sim/twilio/opt_out",
                         {{"Content-Type", "application/json"}},
                         R"({"number":"+14155550123"})");
    ASSERT_EQ(r.status, 200u) << r.body;
    EXPECT_TRUE(sim_->opted_out(customer));
    EXPECT_EQ(perform(sms_action(customer, "Hi", "d-21")).k, action_outcome::kind::permanent);
    r = http::fetch("127.0.0.1",
                    server_->port(),
                    "POST",
                    "/_sim/twilio/inbound",
                    {{"Content-Type", "application/json"}},
                    json{{"url", receiver_->base_url() + "/webhooks/twilio/sms"},
                         {"signed_url", public_url + "/webhooks/twilio/sms"},
                         {"from", customer},
                         {"to", "+15005550006"},
                         {"body", "start"}}
                        .dump());
    ASSERT_EQ(r.status, 200u) << r.body;
    EXPECT_EQ(json::parse(r.body)["statuses"], json::array({200}));
    EXPECT_FALSE(sim_->opted_out(customer));
    ASSERT_EQ(perform(sms_action(customer, "Hi", "d-22")).k, action_outcome::kind::done);
    r = http::fetch("127.0.0.1", server_->port(), "GET", "/_sim/twilio/messages");
    ASSERT_EQ(r.status, 200u);
    EXPECT_EQ(json::parse(r.body).size(), 2u);  // the inbound START and the send
}

TEST(twilio_simulator, over_the_concurrency_cap_answers_20429) {
    simulators::twilio_options o;
    o.max_concurrent = 1;
    simulators::twilio_simulator sim(o);
    simulators::sim_options so;
    so.service_time = std::chrono::milliseconds(300);
    sim_server server(so);
    sim.add_routes(server.routes());
    sim.configure(server);
    ASSERT_EQ(server.start(), "");
    const std::vector<http::header> auth{
        {"Authorization", "Basic " + util::base64_encode(o.account_sid + ":" + o.auth_token)}};
    const auto target = "/2010-04-01/Accounts/" + o.account_sid + "/Messages.json";
    std::vector<unsigned> statuses(3);
    std::vector<std::string> bodies(3);
    std::vector<std::thread> threads;
    for (std::size_t i = 0; i < statuses.size(); ++i) {
        threads.emplace_back([&, i] {
            const auto r = http::fetch("127.0.0.1", server.port(), "GET", target, auth);
            statuses[i] = r.status;
            bodies[i] = r.body;
        });
    }
    for (auto& t : threads) {
        t.join();
    }
    const auto throttled = std::count(statuses.begin(), statuses.end(), 429u);
    EXPECT_GE(throttled, 1);
    EXPECT_GE(std::count(statuses.begin(), statuses.end(), 200u), 1);
    for (std::size_t i = 0; i < statuses.size(); ++i) {
        if (statuses[i] == 429u) {
            EXPECT_EQ(json::parse(bodies[i])["code"], 20429);
        }
    }
}

}  // namespace
}  // namespace billsync::connectors::twilio
