#include "tests/conformance/harnesses.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <cmath>
#include <list>
#include <mutex>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "connectors/builtin.hpp"
#include "connectors/harvest/harvest_kind.hpp"
#include "connectors/karbon/karbon_kind.hpp"
#include "connectors/qbo/qbo_connector.hpp"
#include "connectors/qbo/qbo_kind.hpp"
#include "connectors/qbo/qbo_webhook.hpp"
#include "connectors/sendgrid/sendgrid_signature.hpp"
#include "connectors/twilio/twilio_kind.hpp"
#include "connectors/xero/xero_connector.hpp"
#include "connectors/xero/xero_kind.hpp"
#include "http/client.hpp"
#include "sim/harvest_simulator.hpp"
#include "sim/karbon_simulator.hpp"
#include "sim/oauth2_server.hpp"
#include "sim/qbo_simulator.hpp"
#include "sim/sendgrid_simulator.hpp"
#include "sim/sim_server.hpp"
#include "sim/simulators.hpp"
#include "sim/smtp_sink.hpp"
#include "sim/twilio_simulator.hpp"
#include "sim/xero_simulator.hpp"
#include "tests/unit/config/test_support.hpp"
#include "util/crypto.hpp"

namespace billsync::conformance {

namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;
using simulators::scripted_response;

constexpr std::string_view start_time = "2026-01-05T09:00:00Z";
// Put into every webhook body, so a test can tell whether a reason repeats the body.
constexpr std::string_view body_marker = "conformance-body-marker";

util::instant start_instant() {
    util::instant t{};
    util::parse_rfc3339(start_time, t);
    return t;
}

std::unique_ptr<simulators::sim_server> start_server(simulators::simulator& sim) {
    auto server = std::make_unique<simulators::sim_server>();
    sim.add_routes(server->routes());
    sim.configure(*server);
    if (auto err = server->start(); !err.empty()) {
        throw std::runtime_error("simulator did not start: " + err);
    }
    return server;
}

http::request webhook(std::string target, std::string body, std::vector<http::header> headers) {
    http::request req;
    req.method = "POST";
    req.target = std::move(target);
    const auto q = req.target.find('?');
    req.path = req.target.substr(0, q);
    req.query = q == std::string::npos ? std::string() : req.target.substr(q + 1);
    req.body = std::move(body);
    req.headers = std::move(headers);
    req.remote = "127.0.0.1";
    return req;
}

// The same delivery with its body altered after signing.
http::request tampered(http::request req) {
    const auto at = req.body.find(body_marker);
    if (at == std::string::npos) {
        throw std::logic_error("webhook body has no marker");
    }
    req.body.replace(at, body_marker.size(), "conformance-body-forgery");
    return req;
}

// The "email.send" action both mail connectors perform.
state::action email_action(std::string connector) {
    state::action a;
    a.id = "act-conformance-1";
    a.connector = std::move(connector);
    a.kind = "email.send";
    a.payload = json{{"to", "client@example.com"},
                     {"to_name", "Client Co"},
                     {"subject", "Invoice 1042"},
                     {"text", "Please pay."},
                     {"delivery_id", "d-1"}}
                    .dump();
    return a;
}

std::string toml_string(std::string_view s) { return "\"" + std::string(s) + "\""; }

}  // namespace

bool run_until(net::io_context& ioc,
               const std::function<bool()>& done,
               std::chrono::milliseconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    ioc.restart();
    while (!done()) {
        if (std::chrono::steady_clock::now() >= deadline) {
            return false;
        }
        // Handlers run as they become ready; with nothing ready this waits at most 10 ms for
        // the simulator's side (its own thread) to make progress.
        if (ioc.run_one_for(10ms) == 0 && ioc.stopped()) {
            ioc.restart();
        }
    }
    return true;
}

// ---- harness_base ------------------------------------------------------------------------------

harness_base::harness_base() : clock_(start_instant()), limiter_(steady_.source()) {
    limiter_.set_limits("qbo", connectors::qbo::rate_limits());
    limiter_.set_limits("twilio", connectors::twilio::rate_limits());
    limiter_.set_limits("harvest", connectors::harvest::rate_limits());
    log_ = std::make_shared<spdlog::logger>("conformance", capture_.sink());
    log_->set_level(spdlog::level::trace);
}

void harness_base::open_store() {
    auto st = state::store::open(dir_ / "state");
    if (!st.ok()) {
        throw std::runtime_error("cannot open the state store: " + st.st.message);
    }
    store_ = std::move(st.value);
    std::string error;
    auto key = connectors::parse_secrets_key(connectors::generate_secrets_key_base64(), error);
    tokens_ = std::make_unique<connectors::token_store>(*store_, std::move(key));
}

harness_base::~harness_base() = default;

void harness_base::configure(const std::string& section_toml) {
    auto loaded = config::testing::load_text(
        "[daemon]\n"
        "data_dir = \"/d\"\n"
        "time_zone = \"UTC\"\n" +
        section_toml);
    if (loaded.connectors.size() != 1 || loaded.diags.error_count() > 0) {
        throw std::runtime_error("connector section did not parse:\n" + loaded.rendered());
    }
    settings_ = std::move(loaded.connectors.front());
}

connectors::connector& harness_base::connector() {
    if (!connector_) {
        connectors::runtime_deps rt;
        rt.executor = ioc_.get_executor();
        rt.clock = &clock_;
        rt.tokens = tokens_.get();
        rt.limiter = &limiter_;
        rt.http.proxy = connectors::proxy_settings{};
        rt.http.connect_timeout = 10s;
        rt.http.read_timeout = 10s;
        rt.http.total_timeout = 15s;
        rt.http.log = log_;
        rt.log = log_;
        rt.time = steady_.source();
        connector_ = connectors::make_connector(settings_, rt);
        if (!connector_) {
            throw std::runtime_error("make_connector built nothing for kind " + settings_.kind);
        }
    }
    return *connector_;
}

void harness_base::restart() {
    connector_.reset();
    connector();
}

// ---- silent_listener ---------------------------------------------------------------------------

struct silent_listener::impl {
    net::io_context ioc;
    net::ip::tcp::acceptor acceptor{ioc};
    std::list<net::ip::tcp::socket> held;
    std::thread thread;

    void accept(std::atomic<std::uint64_t>& count) {
        acceptor.async_accept([this, &count](boost::system::error_code ec, net::ip::tcp::socket s) {
            if (ec) {
                return;
            }
            held.push_back(std::move(s));
            ++count;
            accept(count);
        });
    }
};

silent_listener::silent_listener() : impl_(std::make_unique<impl>()) {
    const net::ip::tcp::endpoint ep(net::ip::make_address("127.0.0.1"), 0);
    impl_->acceptor.open(ep.protocol());
    impl_->acceptor.bind(ep);
    impl_->acceptor.listen();
    port_ = impl_->acceptor.local_endpoint().port();
    impl_->accept(accepted_);
    impl_->thread = std::thread([this] { impl_->ioc.run(); });
}

silent_listener::~silent_listener() {
    impl_->ioc.stop();
    impl_->thread.join();
}

// ---- generic -----------------------------------------------------------------------------------

namespace {
constexpr std::string_view generic_secret = "generic-hmac-secret-4f1c9a";
}

generic_harness::generic_harness() : sim_(std::make_unique<simulators::generic_recorder>()) {
    server_ = start_server(*sim_);
    configure(
        "[connectors.generic]\n"
        "secret = " +
        toml_string(generic_secret) +
        "\n"
        "action_url = " +
        toml_string(server_->base_url() + "/actions") + "\n");
}

generic_harness::~generic_harness() { reset_connector(); }

state::action generic_harness::sample_action() const {
    state::action a;
    a.id = "act-conformance-1";
    a.connector = "generic";
    a.kind = "notify";
    a.payload = R"({"message":"invoice 1042 is due"})";
    return a;
}

void generic_harness::script_rate_limited(std::chrono::seconds retry_after) {
    server_->script("POST", "/actions", {scripted_response::rate_limited(retry_after)});
}

void generic_harness::script_failure(failure f) {
    switch (f) {
        case failure::server_error:
            server_->script("POST", "/actions", {scripted_response::server_error(503)});
            return;
        case failure::permanent:
            server_->script(
                "POST", "/actions", {scripted_response::status_code(400, R"({"error":"bad"})")});
            return;
        case failure::auth:
            server_->script(
                "POST", "/actions", {scripted_response::status_code(401, R"({"error":"auth"})")});
            return;
    }
}

void generic_harness::script_stall() {
    server_->script("POST", "/actions", {scripted_response::stall(20s)});
}

bool generic_harness::stalled() const { return !server_->requests_to("/actions").empty(); }

std::size_t generic_harness::vendor_calls() const {
    return server_->requests_to("/actions").size();
}

std::vector<std::string> generic_harness::secrets() const { return {std::string(generic_secret)}; }

http::request generic_harness::signed_webhook() const {
    const auto body = json{{"id", "rec-1"}, {"note", body_marker}}.dump();
    return webhook("/webhooks/generic",
                   body,
                   {{"Content-Type", "application/json"},
                    {"X-Signature", util::hex_encode(util::hmac_sha256(generic_secret, body))}});
}

http::request generic_harness::forged_webhook() const { return tampered(signed_webhook()); }

// ---- qbo ---------------------------------------------------------------------------------------

namespace {
constexpr std::string_view qbo_realm = "9130350000000001";
constexpr std::string_view qbo_client_id = "conformance-client-id";
constexpr std::string_view qbo_client_secret = "qbo-client-secret-7d2e81";
constexpr std::string_view qbo_verifier = "qbo-verifier-token-0b6c";

std::string qbo_fault(std::string_view code, std::string_view message) {
    return json{
        {"Fault",
         {{"Error", json::array({{{"Message", message}, {"Detail", message}, {"code", code}}})},
          {"type", "ValidationFault"}}},
        {"time", "2026-01-05T01:00:00.000-08:00"}}
        .dump();
}
}  // namespace

qbo_harness::qbo_harness() {
    simulators::qbo_sim_options o;
    o.realms = {std::string(qbo_realm)};
    o.verifier_token = std::string(qbo_verifier);
    o.now = [this] { return clock_.now(); };
    o.oauth.client_id = std::string(qbo_client_id);
    o.oauth.client_secret = std::string(qbo_client_secret);
    sim_ = std::make_unique<simulators::qbo_simulator>(o);
    server_ = start_server(*sim_);
    open_store();  // the token store: only OAuth2 connectors need one
    const auto base = server_->base_url();
    configure(
        "[connectors.qbo]\n"
        "base_url = " +
        toml_string(base) + "\ntoken_url = " + toml_string(base + "/oauth2/token") +
        "\nclient_id = " + toml_string(qbo_client_id) + "\nclient_secret = " +
        toml_string(qbo_client_secret) + "\nwebhook_verifier_token = " + toml_string(qbo_verifier) +
        "\nrealm_id = " + toml_string(qbo_realm) + "\n");
    seed_credential(false);
}

qbo_harness::~qbo_harness() { reset_connector(); }

std::string qbo_harness::api_path() const {
    return "/v3/company/" + std::string(qbo_realm) + "/customer";
}

std::string qbo_harness::credential_id() const { return "qbo/" + std::string(qbo_realm); }

void qbo_harness::seed_credential(bool expired) {
    const auto grant = sim_->oauth().issue_grant();
    connectors::oauth2::credential c;
    c.id = credential_id();
    c.vendor = "qbo";
    c.account = std::string(qbo_realm);
    c.access_token = grant.access_token;
    c.access_expires_at = expired ? clock_.now() - 1min : clock_.now() + grant.expires_in;
    c.refresh_token = grant.refresh_token;
    c.connected_at = clock_.now();
    c.refreshed_at = clock_.now();
    if (!connectors::oauth2::store_credential(*tokens_, c).ok) {
        throw std::runtime_error("cannot store the seeded credential");
    }
    seeded_access_ = grant.access_token;
    seeded_refresh_ = grant.refresh_token;
    if (connector_) {
        connector_->reload_credentials();
    }
}

simulators::oauth2_server& qbo_harness::oauth() { return sim_->oauth(); }

connectors::qbo::qbo_connector& qbo_harness::qbo() {
    return dynamic_cast<connectors::qbo::qbo_connector&>(connector());
}

connectors::oauth2::token_manager& qbo_harness::manager() { return qbo().tokens(); }

std::size_t qbo_harness::calls_with(const std::string& access_token) const {
    std::size_t n = 0;
    for (const auto& r : server_->requests()) {
        if (r.path.starts_with("/v3/") &&
            r.header_value("Authorization") == "Bearer " + access_token) {
            ++n;
        }
    }
    return n;
}

state::action qbo_harness::sample_action() const {
    state::action a;
    a.id = "act-conformance-1";
    a.connector = "qbo";
    a.kind = "qbo.create_customer";
    a.payload = R"({"DisplayName":"Conformance Co"})";
    return a;
}

void qbo_harness::script_rate_limited(std::chrono::seconds) {
    // QBO's throttle carries no Retry-After; every attempt of the call meets it.
    std::vector<scripted_response> answers;
    for (std::size_t i = 0; i < attempts_per_call; ++i) {
        answers.push_back(
            scripted_response::status_code(429, qbo_fault("003001", "ThrottleExceeded")));
    }
    server_->script("POST", api_path(), std::move(answers));
}

void qbo_harness::script_failure(failure f) {
    std::vector<scripted_response> answers;
    switch (f) {
        case failure::server_error:
            // Every attempt of the call, so the call itself fails.
            for (std::size_t i = 0; i < attempts_per_call; ++i) {
                answers.push_back(scripted_response::server_error(503));
            }
            break;
        case failure::permanent:
            answers.push_back(scripted_response::status_code(
                400,
                qbo_fault("2020", "Required param missing, need to supply the required value")));
            break;
        case failure::auth:
            // The first 401 refreshes the token; the second is the failure.
            answers.push_back(scripted_response::expired_token());
            answers.push_back(scripted_response::expired_token());
            break;
    }
    server_->script("POST", api_path(), std::move(answers));
}

void qbo_harness::script_stall() {
    server_->script("POST", api_path(), {scripted_response::stall(20s)});
}

bool qbo_harness::stalled() const { return !server_->requests_to(api_path()).empty(); }

std::size_t qbo_harness::vendor_calls() const { return server_->requests_to(api_path()).size(); }

std::vector<std::string> qbo_harness::secrets() const {
    std::vector<std::string> out{
        std::string(qbo_client_secret), std::string(qbo_verifier), seeded_access_, seeded_refresh_};
    if (auto c = connectors::oauth2::load_credential(*tokens_, credential_id());
        c.ok() && c.value) {
        out.push_back(c.value->access_token);
        out.push_back(c.value->refresh_token);
        if (!c.value->previous_refresh_token.empty()) {
            out.push_back(c.value->previous_refresh_token);
        }
    }
    return out;
}

std::vector<std::string> qbo_harness::credential_encodings() const {
    return {connectors::oauth2::basic_auth(qbo_client_id, qbo_client_secret)};
}

http::request qbo_harness::signed_webhook() const {
    const json body{
        {"eventNotifications",
         json::array({{{"realmId", qbo_realm},
                       {"dataChangeEvent",
                        {{"entities",
                          json::array({{{"name", "Customer"},
                                        {"id", "1"},
                                        {"operation", "Create"},
                                        {"lastUpdated", "2026-01-05T09:00:00.000Z"}}})}}}}})},
        {"note", body_marker}};
    const auto d = sim_->sign(body.dump());
    return webhook("/webhooks/qbo",
                   d.body,
                   {{"Content-Type", "application/json"},
                    {std::string(connectors::qbo::signature_header), d.signature}});
}

http::request qbo_harness::forged_webhook() const { return tampered(signed_webhook()); }

// ---- twilio ------------------------------------------------------------------------------------

namespace {
constexpr std::string_view twilio_sid = "AC0000000000000000000000000000c0f0";
constexpr std::string_view twilio_token = "twilio-auth-token-5a3b9e";
constexpr std::string_view twilio_public = "https://billsync.example.com";

std::string twilio_error(int code, std::string_view message, unsigned status) {
    return json{{"code", code},
                {"message", message},
                {"more_info", "https://www.twilio.com/docs/errors/" + std::to_string(code)},
                {"status", status}}
        .dump();
}

std::string form(const std::vector<std::pair<std::string, std::string>>& p) {
    std::string out;
    for (const auto& [k, v] : p) {
        out += (out.empty() ? "" : "&") + http::percent_encode(k) + "=" + http::percent_encode(v);
    }
    return out;
}
}  // namespace

twilio_harness::twilio_harness() {
    simulators::twilio_options o;
    o.account_sid = std::string(twilio_sid);
    o.auth_token = std::string(twilio_token);
    o.now = [this] { return clock_.now(); };
    sim_ = std::make_unique<simulators::twilio_simulator>(o);
    server_ = start_server(*sim_);
    configure(
        "[connectors.twilio]\n"
        "base_url = " +
        toml_string(server_->base_url()) + "\naccount_sid = " + toml_string(twilio_sid) +
        "\nauth_token = " + toml_string(twilio_token) + "\nfrom = " +
        toml_string(o.numbers.front()) + "\npublic_url = " + toml_string(twilio_public) + "\n");
}

twilio_harness::~twilio_harness() { reset_connector(); }

std::string twilio_harness::messages_path() const {
    return "/2010-04-01/Accounts/" + std::string(twilio_sid) + "/Messages.json";
}

state::action twilio_harness::sample_action() const {
    state::action a;
    a.id = "act-conformance-1";
    a.connector = "twilio";
    a.kind = "sms.send";
    a.payload = R"({"to":"+14155550123","body":"Invoice 1042 is due","delivery_id":"d-1"})";
    return a;
}

void twilio_harness::script_rate_limited(std::chrono::seconds retry_after) {
    auto r = scripted_response::status_code(429, twilio_error(20429, "Too Many Requests", 429));
    r.headers.push_back({"Retry-After", std::to_string(retry_after.count())});
    server_->script("POST", messages_path(), {r});
}

void twilio_harness::script_failure(failure f) {
    switch (f) {
        case failure::server_error:
            server_->script("POST", messages_path(), {scripted_response::server_error(503)});
            return;
        case failure::permanent:
            server_->script(
                "POST",
                messages_path(),
                {scripted_response::status_code(
                    400,
                    twilio_error(21211, "The 'To' number is not a valid phone number.", 400))});
            return;
        case failure::auth:
            server_->script(
                "POST",
                messages_path(),
                {scripted_response::status_code(401, twilio_error(20003, "Authenticate", 401))});
            return;
    }
}

void twilio_harness::script_stall() {
    server_->script("POST", messages_path(), {scripted_response::stall(20s)});
}

bool twilio_harness::stalled() const { return !server_->requests_to(messages_path()).empty(); }

std::size_t twilio_harness::vendor_calls() const {
    return server_->requests_to(messages_path()).size();
}

std::vector<std::string> twilio_harness::secrets() const { return {std::string(twilio_token)}; }

std::vector<std::string> twilio_harness::credential_encodings() const {
    return {util::base64_encode(std::string(twilio_sid) + ":" + std::string(twilio_token))};
}

http::request twilio_harness::signed_webhook() const {
    const std::vector<std::pair<std::string, std::string>> params{
        {"MessageSid", "SM00000000000000000000000000000001"},
        {"AccountSid", std::string(twilio_sid)},
        {"From", "+14155550123"},
        {"To", "+15005550006"},
        {"Body", std::string(body_marker)}};
    const std::string target = "/webhooks/twilio/sms";
    const auto signature = sim_->sign(std::string(twilio_public) + target, params);
    return webhook(
        target,
        form(params),
        {{"Content-Type", "application/x-www-form-urlencoded"}, {"X-Twilio-Signature", signature}});
}

http::request twilio_harness::forged_webhook() const { return tampered(signed_webhook()); }

// ---- sendgrid ----------------------------------------------------------------------------------

namespace {
constexpr std::string_view sendgrid_key = "SG.conformance-api-key-91ab.x";
constexpr std::string_view sendgrid_inbound = "sendgrid-inbound-secret-55c0";

std::string sendgrid_errors(std::string_view message) {
    return json{{"errors", json::array({{{"message", message}, {"field", nullptr}}})}}.dump();
}
}  // namespace

sendgrid_harness::sendgrid_harness() {
    simulators::sendgrid_options o;
    o.api_key = std::string(sendgrid_key);
    sim_ = std::make_unique<simulators::sendgrid_simulator>(o);
    server_ = start_server(*sim_);
    configure(
        "[connectors.sendgrid]\n"
        "base_url = " +
        toml_string(server_->base_url()) + "\napi_key = " + toml_string(sendgrid_key) +
        "\nfrom_email = \"billing@firm.test\"\nevent_webhook_public_key = " +
        toml_string(sim_->public_key_base64()) +
        "\ninbound_secret = " + toml_string(sendgrid_inbound) + "\n");
}

sendgrid_harness::~sendgrid_harness() { reset_connector(); }

state::action sendgrid_harness::sample_action() const { return email_action("sendgrid"); }

void sendgrid_harness::script_rate_limited(std::chrono::seconds retry_after) {
    // SendGrid's reset is Unix seconds of the wall clock (the connector reads the system clock).
    const auto now = std::chrono::system_clock::now().time_since_epoch();
    const auto reset = std::chrono::ceil<std::chrono::seconds>(now) + retry_after;
    auto r = scripted_response::status_code(429, sendgrid_errors("too many requests"));
    r.headers = {{"X-RateLimit-Limit", "600"},
                 {"X-RateLimit-Remaining", "0"},
                 {"X-RateLimit-Reset", std::to_string(reset.count())}};
    server_->script("POST", "/v3/mail/send", {r});
}

void sendgrid_harness::script_failure(failure f) {
    switch (f) {
        case failure::server_error:
            server_->script("POST", "/v3/mail/send", {scripted_response::server_error(503)});
            return;
        case failure::permanent:
            server_->script(
                "POST",
                "/v3/mail/send",
                {scripted_response::status_code(
                    400, sendgrid_errors("The from email does not contain a valid address."))});
            return;
        case failure::auth:
            server_->script(
                "POST",
                "/v3/mail/send",
                {scripted_response::status_code(
                    401,
                    sendgrid_errors(
                        "The provided authorization grant is invalid, expired, or revoked"))});
            return;
    }
}

void sendgrid_harness::script_stall() {
    server_->script("POST", "/v3/mail/send", {scripted_response::stall(20s)});
}

bool sendgrid_harness::stalled() const { return !server_->requests_to("/v3/mail/send").empty(); }

std::size_t sendgrid_harness::vendor_calls() const {
    return server_->requests_to("/v3/mail/send").size();
}

std::vector<std::string> sendgrid_harness::secrets() const {
    return {std::string(sendgrid_key), std::string(sendgrid_inbound)};
}

http::request sendgrid_harness::signed_webhook() const {
    // Signed now: the connector rejects signed timestamps beyond its replay tolerance.
    const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
    const std::string timestamp = std::to_string(now);
    const auto body = json::array({{{"email", "client@example.com"},
                                    {"event", "delivered"},
                                    {"timestamp", now},
                                    {"sg_event_id", "ev-1"},
                                    {"sg_message_id", "msg-1"},
                                    {"note", body_marker}}})
                          .dump();
    return webhook(
        "/webhooks/sendgrid/events",
        body,
        {{"Content-Type", "application/json"},
         {std::string(connectors::sendgrid::signature_header), sim_->sign(timestamp, body)},
         {std::string(connectors::sendgrid::timestamp_header), timestamp}});
}

http::request sendgrid_harness::forged_webhook() const { return tampered(signed_webhook()); }

// ---- smtp --------------------------------------------------------------------------------------

namespace {
constexpr std::string_view smtp_user = "billsync";
constexpr std::string_view smtp_password = "smtp-Pass-word-3e9!";
}  // namespace

smtp_harness::smtp_harness() {
    tls_ = ca_.issue_loopback(dir_.path());
    simulators::smtp_sink_options o;
    o.cert_file = tls_.cert;
    o.key_file = tls_.key;
    o.username = std::string(smtp_user);
    o.password = std::string(smtp_password);
    sink_ = std::make_unique<simulators::smtp_sink>(o);
    if (auto err = sink_->start(); !err.empty()) {
        throw std::runtime_error("smtp sink did not start: " + err);
    }
    configure(section(sink_->port()));
}

smtp_harness::~smtp_harness() { reset_connector(); }

std::string smtp_harness::section(std::uint16_t port) const {
    return "[connectors.smtp]\n"
           "host = \"localhost\"\n"
           "port = " +
           std::to_string(port) + "\nusername = " + toml_string(smtp_user) +
           "\npassword = " + toml_string(smtp_password) +
           "\ntls = \"starttls\"\nca_file = " + toml_string(tls_.ca_cert.string()) +
           "\nfrom_email = \"billing@firm.test\"\n";
}

state::action smtp_harness::sample_action() const { return email_action("smtp"); }

void smtp_harness::script_rate_limited(std::chrono::seconds) {
    sink_->script({simulators::smtp_stage::mail, 421, "4.7.0 Try again later", false});
}

void smtp_harness::script_failure(failure f) {
    switch (f) {
        case failure::server_error:
            sink_->script({simulators::smtp_stage::rcpt, 451, "4.3.0 Local error", false});
            return;
        case failure::permanent:
            sink_->script({simulators::smtp_stage::rcpt, 550, "5.1.1 No such user", false});
            return;
        case failure::auth:
            sink_->script(
                {simulators::smtp_stage::auth, 535, "5.7.8 Authentication failed", false});
            return;
    }
}

void smtp_harness::script_stall() {
    silent_ = std::make_unique<silent_listener>();
    configure(section(silent_->port()));
    reset_connector();
}

bool smtp_harness::stalled() const { return silent_ && silent_->accepted() > 0; }

std::size_t smtp_harness::vendor_calls() const { return sink_->connections(); }

std::vector<std::string> smtp_harness::secrets() const { return {std::string(smtp_password)}; }

std::vector<std::string> smtp_harness::credential_encodings() const {
    using namespace std::string_literals;
    return {
        util::base64_encode("\0"s + std::string(smtp_user) + "\0"s + std::string(smtp_password)),
        util::base64_encode(smtp_password)};
}

http::request smtp_harness::signed_webhook() const {
    return webhook("/webhooks/smtp", std::string(body_marker), {});
}

http::request smtp_harness::forged_webhook() const { return signed_webhook(); }

// ---- karbon ------------------------------------------------------------------------------------

namespace {
constexpr std::string_view karbon_bearer = "0f6c1a2b-3d4e-4f50-8a9b-c0d1e2f3a4b5";
constexpr std::string_view karbon_access = "eyJhbGciOiJIUzI1NiJ9.conformance.karbon-access-key";
constexpr std::string_view karbon_signing = "conformance-karbon-signing-key";
constexpr std::string_view karbon_items = "/v3/WorkItems";

std::string karbon_error(std::string_view code, std::string_view message) {
    return json{{"error", {{"code", code}, {"message", message}}}}.dump();
}
}  // namespace

karbon_harness::karbon_harness() {
    limiter_.set_limits("karbon", connectors::karbon::rate_limits());
    simulators::karbon_options o;
    o.bearer_token = std::string(karbon_bearer);
    o.access_key = std::string(karbon_access);
    o.now = [this] { return clock_.now(); };
    sim_ = std::make_unique<simulators::karbon_simulator>(o);
    server_ = start_server(*sim_);
    configure("[connectors.karbon]\nbase_url = " + toml_string(server_->base_url()) +
              "\nbearer_token = " + toml_string(karbon_bearer) +
              "\naccess_key = " + toml_string(karbon_access) +
              "\nwebhook_signing_key = " + toml_string(karbon_signing) +
              "\npublic_url = \"https://billsync.example.com\"\n"
              "task_assignee_email = \"coordinator@firm.test\"\n");
}

karbon_harness::~karbon_harness() { reset_connector(); }

state::action karbon_harness::sample_action() const {
    state::action a;
    a.id = "act-conformance-1";
    a.connector = "karbon";
    a.kind = "task.create";
    a.payload =
        R"({"title":"Account hold: Client Co","client_key":"org-1","client_type":"Organization"})";
    return a;
}

void karbon_harness::script_rate_limited(std::chrono::seconds retry_after) {
    auto r = scripted_response::rate_limited(
        retry_after,
        json{{"statusCode", "429"},
             {"message",
              "Rate limit is exceeded. Try again in " + std::to_string(retry_after.count()) +
                  " seconds."}}
            .dump());
    server_->script("POST", std::string(karbon_items), {r});
}

void karbon_harness::script_failure(failure f) {
    switch (f) {
        case failure::server_error:
            server_->script(
                "POST", std::string(karbon_items), {scripted_response::server_error(503)});
            return;
        case failure::permanent:
            server_->script("POST",
                            std::string(karbon_items),
                            {scripted_response::status_code(
                                400, karbon_error("4000", "ClientKey is not valid"))});
            return;
        case failure::auth:
            server_->script("POST",
                            std::string(karbon_items),
                            {scripted_response::status_code(
                                401, karbon_error("4001", "Authorization has been denied."))});
            return;
    }
}

void karbon_harness::script_stall() {
    server_->script("POST", std::string(karbon_items), {scripted_response::stall(20s)});
}

bool karbon_harness::stalled() const {
    return !server_->requests_to(std::string(karbon_items)).empty();
}

std::size_t karbon_harness::vendor_calls() const {
    return server_->requests_to(std::string(karbon_items)).size();
}

std::vector<std::string> karbon_harness::secrets() const {
    return {std::string(karbon_bearer), std::string(karbon_access), std::string(karbon_signing)};
}

http::request karbon_harness::signed_webhook() const {
    const auto body = json{{"ResourcePermaKey", std::string(body_marker)},
                           {"ResourceType", "Work"},
                           {"ActionType", "Updated"},
                           {"TimeStamp", std::string(start_time)}}
                          .dump();
    return webhook(
        "/webhooks/karbon",
        body,
        {{"Content-Type", "application/json"},
         {"Signature", simulators::karbon_simulator::sign(std::string(karbon_signing), body)}});
}

http::request karbon_harness::forged_webhook() const { return tampered(signed_webhook()); }

// ---- xero --------------------------------------------------------------------------------------

namespace {
constexpr std::string_view xero_tenant = "c0f0c0f0-0000-4000-8000-00000000c0f0";
constexpr std::string_view xero_client_id = "conformance-xero-client";
constexpr std::string_view xero_client_secret = "xero-client-secret-41c9e2";
constexpr std::string_view xero_webhook_key = "xero-webhook-key-9d13/LooksLikeBase64==";

std::string xero_validation(std::string_view message) {
    return json{
        {"ErrorNumber", 10},
        {"Type", "ValidationException"},
        {"Message", "A validation exception occurred"},
        {"Elements", json::array({{{"ValidationErrors", json::array({{{"Message", message}}})}}})}}
        .dump();
}
}  // namespace

xero_harness::xero_harness() {
    simulators::xero_sim_options o;
    o.tenants = {std::string(xero_tenant)};
    o.webhook_key = std::string(xero_webhook_key);
    o.now = [this] { return clock_.now(); };
    o.oauth.client_id = std::string(xero_client_id);
    o.oauth.client_secret = std::string(xero_client_secret);
    sim_ = std::make_unique<simulators::xero_simulator>(o);
    server_ = start_server(*sim_);
    const auto contact = sim_->add_contact(
        std::string(xero_tenant), json{{"Name", "Conformance Co"}, {"EmailAddress", "ap@c.test"}});
    invoice_id_ =
        sim_->add_invoice(std::string(xero_tenant),
                          json{{"Contact", {{"ContactID", contact.value("ContactID", "")}}},
                               {"LineItems", json::array({{{"LineAmount", 10}}})}})
            .value("InvoiceID", "");
    open_store();
    limiter_.set_limits("xero", connectors::xero::rate_limits());
    const auto base = server_->base_url();
    configure(
        "[connectors.xero]\n"
        "base_url = " +
        toml_string(base) + "\ntoken_url = " + toml_string(base + "/oauth2/token") +
        "\nclient_id = " + toml_string(xero_client_id) + "\nclient_secret = " +
        toml_string(xero_client_secret) + "\nwebhook_key = " + toml_string(xero_webhook_key) +
        "\ntenant_id = " + toml_string(xero_tenant) + "\n");
    seed_credential(false);
}

xero_harness::~xero_harness() { reset_connector(); }

std::string xero_harness::api_path() const {
    return "/api.xro/2.0/Invoices/" + invoice_id_ + "/Email";
}

std::string xero_harness::credential_id() const { return "xero/" + std::string(xero_tenant); }

void xero_harness::seed_credential(bool expired) {
    const auto grant = sim_->oauth().issue_grant();
    connectors::oauth2::credential c;
    c.id = credential_id();
    c.vendor = "xero";
    c.account = std::string(xero_tenant);
    c.access_token = grant.access_token;
    c.access_expires_at = expired ? clock_.now() - 1min : clock_.now() + grant.expires_in;
    c.refresh_token = grant.refresh_token;
    c.connected_at = clock_.now();
    c.refreshed_at = clock_.now();
    if (!connectors::oauth2::store_credential(*tokens_, c).ok) {
        throw std::runtime_error("cannot store the seeded credential");
    }
    seeded_access_ = grant.access_token;
    seeded_refresh_ = grant.refresh_token;
    if (connector_) {
        connector_->reload_credentials();
    }
}

simulators::oauth2_server& xero_harness::oauth() { return sim_->oauth(); }

connectors::oauth2::token_manager& xero_harness::manager() {
    return dynamic_cast<connectors::xero::xero_connector&>(connector()).tokens();
}

std::size_t xero_harness::calls_with(const std::string& access_token) const {
    std::size_t n = 0;
    for (const auto& r : server_->requests()) {
        if (r.path.starts_with("/api.xro/") &&
            r.header_value("Authorization") == "Bearer " + access_token) {
            ++n;
        }
    }
    return n;
}

state::action xero_harness::sample_action() const {
    state::action a;
    a.id = "act-conformance-1";
    a.connector = "xero";
    a.kind = "xero.send_invoice";
    a.payload = json{{"id", invoice_id_}}.dump();
    return a;
}

void xero_harness::script_rate_limited(std::chrono::seconds retry_after) {
    auto r = scripted_response::rate_limited(retry_after,
                                             R"({"Title":"Too Many Requests","Status":429})");
    r.headers.push_back({"X-Rate-Limit-Problem", "minute"});
    server_->script("POST", api_path(), {r});
}

void xero_harness::script_failure(failure f) {
    std::vector<scripted_response> answers;
    switch (f) {
        case failure::server_error:
            for (std::size_t i = 0; i < attempts_per_call; ++i) {
                answers.push_back(scripted_response::server_error(503));
            }
            break;
        case failure::permanent:
            answers.push_back(scripted_response::status_code(
                400, xero_validation("Invoices can only be emailed when approved")));
            break;
        case failure::auth:
            answers.push_back(scripted_response::expired_token());
            answers.push_back(scripted_response::expired_token());
            break;
    }
    server_->script("POST", api_path(), std::move(answers));
}

void xero_harness::script_stall() {
    server_->script("POST", api_path(), {scripted_response::stall(20s)});
}

bool xero_harness::stalled() const { return !server_->requests_to(api_path()).empty(); }

std::size_t xero_harness::vendor_calls() const { return server_->requests_to(api_path()).size(); }

std::vector<std::string> xero_harness::secrets() const {
    std::vector<std::string> out{std::string(xero_client_secret),
                                 std::string(xero_webhook_key),
                                 seeded_access_,
                                 seeded_refresh_};
    if (auto c = connectors::oauth2::load_credential(*tokens_, credential_id());
        c.ok() && c.value) {
        out.push_back(c.value->access_token);
        out.push_back(c.value->refresh_token);
        if (!c.value->previous_refresh_token.empty()) {
            out.push_back(c.value->previous_refresh_token);
        }
    }
    return out;
}

std::vector<std::string> xero_harness::credential_encodings() const {
    return {connectors::oauth2::basic_auth(xero_client_id, xero_client_secret)};
}

http::request xero_harness::signed_webhook() const {
    const json body{{"events",
                     json::array({{{"resourceUrl", "https://api.xero.com/api.xro/2.0/Invoices/1"},
                                   {"resourceId", "1"},
                                   {"eventDateUtc", "2026-01-05T09:00:00.000"},
                                   {"eventType", "UPDATE"},
                                   {"eventCategory", "INVOICE"},
                                   {"tenantId", xero_tenant},
                                   {"tenantType", "ORGANISATION"}}})},
                    {"firstEventSequence", 1},
                    {"lastEventSequence", 1},
                    {"entropy", body_marker}};
    const auto d = sim_->sign(body.dump());
    return webhook("/webhooks/xero",
                   d.body,
                   {{"Content-Type", "application/json"}, {"x-xero-signature", d.signature}});
}

http::request xero_harness::forged_webhook() const { return tampered(signed_webhook()); }

// ---- harvest -----------------------------------------------------------------------------------

namespace {
constexpr std::string_view harvest_token = "harvest-pat-2f9c41d7e0";
constexpr std::string_view harvest_entries = "/v2/time_entries";
}  // namespace

harvest_harness::harvest_harness() {
    simulators::harvest_options o;
    o.access_token = std::string(harvest_token);
    o.now = [this] { return clock_.now(); };
    sim_ = std::make_unique<simulators::harvest_simulator>(o);
    sim_->add_user("Kim", "Allen", "kim@example-cpa.com");
    client_ = sim_->add_client("Acme Dental");
    const auto project = sim_->add_project(client_, "2025 Tax Return");
    sim_->assign_task(project, sim_->add_task("Tax Preparation"), true);
    server_ = start_server(*sim_);
    configure("[connectors.time]\nkind = \"harvest\"\nbase_url = " +
              toml_string(server_->base_url() + "/v2") + "\naccount_id = \"123456\"\n" +
              "access_token = " + toml_string(harvest_token) +
              "\ncontact = \"it@example-cpa.com\"\n");
}

harvest_harness::~harvest_harness() { reset_connector(); }

state::action harvest_harness::sample_action() const {
    state::action a;
    a.id = "act-conformance-1";
    a.connector = "time";
    a.kind = "time_entry.create";
    a.payload = json{
        {"key", "draft_time:conformance:1"},
        {"group_id", "wi-1"},
        {"client_ref", "123456/client/" + std::to_string(client_)},
        {"project", "2025 Tax Return"},
        {"task", "Tax Preparation"},
        {"spent_date", "2026-01-05"},
        {"hours", "1.5"},
        {"notes", "drafted by billsync"},
        {"billable",
         true}}.dump();
    return a;
}

void harvest_harness::script_rate_limited(std::chrono::seconds retry_after) {
    server_->script("POST",
                    std::string(harvest_entries),
                    {scripted_response::rate_limited(
                        retry_after, R"({"message":"Too many requests. Retry later."})")});
}

void harvest_harness::script_failure(failure f) {
    const std::string path(harvest_entries);
    switch (f) {
        case failure::server_error:
            server_->script("POST", path, {scripted_response::server_error(500)});
            return;
        case failure::permanent:
            server_->script(
                "POST",
                path,
                {scripted_response::status_code(
                    422, R"({"message":"project_id, task_id and spent_date are required"})")});
            return;
        case failure::auth:
            // At the first call: the look-up that precedes every create.
            server_->script("*",
                            path,
                            {scripted_response::status_code(
                                401,
                                R"({"error":"invalid_token","error_description":"The access )"
                                R"(token provided is expired, revoked, malformed or invalid"})")});
            return;
    }
}

void harvest_harness::script_stall() {
    server_->script("POST", std::string(harvest_entries), {scripted_response::stall(20s)});
}

bool harvest_harness::stalled() const { return vendor_calls() > 0; }

std::size_t harvest_harness::vendor_calls() const {
    std::size_t n = 0;
    for (const auto& r : server_->requests_to(harvest_entries)) {
        n += r.method == "POST" ? 1 : 0;
    }
    return n;
}

std::vector<std::string> harvest_harness::secrets() const { return {std::string(harvest_token)}; }

http::request harvest_harness::signed_webhook() const {
    http::request req;
    req.method = "POST";
    req.target = req.path = "/webhooks/time";
    req.body = std::string(R"({"event":")") + std::string(body_marker) + "\"}";
    req.remote = "127.0.0.1";
    return req;
}

// ---- taxdome -----------------------------------------------------------------------------------

namespace {
constexpr std::string_view taxdome_secret = "conformance-taxdome-relay-secret-0123456789";
constexpr std::string_view taxdome_previous = "conformance-taxdome-previous-secret-98765432";
constexpr std::string_view taxdome_wrong = "conformance-taxdome-forged-secret-0000000000";
}  // namespace

taxdome_harness::taxdome_harness() {
    configure("[connectors.taxdome]\nrelay_secret = " + toml_string(taxdome_secret) +
              "\nrelay_secret_previous = " + toml_string(taxdome_previous) + "\n");
}

taxdome_harness::~taxdome_harness() { reset_connector(); }

state::action taxdome_harness::sample_action() const {
    state::action a;
    a.id = "act-conformance-1";
    a.connector = "taxdome";
    a.kind = "task.create";
    a.payload = R"({"title":"Account hold: Client Co"})";
    return a;
}

std::vector<std::string> taxdome_harness::secrets() const {
    return {std::string(taxdome_secret), std::string(taxdome_previous)};
}

std::vector<std::string> taxdome_harness::credential_encodings() const {
    return {"Bearer " + std::string(taxdome_secret), "Bearer " + std::string(taxdome_previous)};
}

http::request taxdome_harness::signed_webhook() const {
    const auto now = std::chrono::floor<util::instant::duration>(std::chrono::system_clock::now());
    const auto body = json{{"event", "New Account"},
                           {"id", "7351024"},
                           {"name", std::string(body_marker)},
                           {"emails", "ap@client.test"},
                           {"relayed_at", util::format_rfc3339(now)}}
                          .dump();
    return webhook("/webhooks/taxdome",
                   body,
                   {{"Content-Type", "application/json"},
                    {"Authorization", "Bearer " + std::string(taxdome_secret)}});
}

http::request taxdome_harness::forged_webhook() const {
    auto req = signed_webhook();
    for (auto& h : req.headers) {
        if (h.name == "Authorization") {
            h.value = "Bearer " + std::string(taxdome_wrong);
        }
    }
    return req;
}

}  // namespace billsync::conformance
