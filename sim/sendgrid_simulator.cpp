#include "sim/sendgrid_simulator.hpp"

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "http/async_client.hpp"
#include "http/client.hpp"
#include "util/crypto.hpp"

namespace billsync::simulators {

namespace {

using json = nlohmann::json;

http::response sg_error(unsigned status, const std::string& message, const json& field = nullptr) {
    return http::response::json(
        status, json{{"errors", json::array({{{"field", field}, {"message", message}}})}}.dump());
}

unsigned post(const std::string& url, std::vector<http::header> headers, const std::string& body) {
    const auto u = http::parse_url(url);
    if (!u || u->scheme != "http") {
        return 0;
    }
    return http::fetch(u->host, u->port, "POST", u->target, headers, body).status;
}

// Checks the documented required fields; the problems as SendGrid lists them.
json validate(const json& b) {
    json errors = json::array();
    const auto add = [&errors](const std::string& field, const std::string& message) {
        errors.push_back({{"field", field}, {"message", message}});
    };
    if (!b.is_object()) {
        add("", "Bad Request");
        return errors;
    }
    const auto& p = b.contains("personalizations") ? b["personalizations"] : json();
    if (!p.is_array() || p.empty()) {
        add("personalizations",
            "The personalizations field is required and must have at least one personalization.");
    } else if (p.size() > 1000) {
        add("personalizations", "The personalizations field is limited to 1000 personalizations.");
    } else {
        std::size_t recipients = 0;
        std::vector<std::string> seen;
        for (const auto& one : p) {
            if (!one.is_object() || !one.contains("to") || !one["to"].is_array() ||
                one["to"].empty()) {
                add("personalizations.0.to",
                    "The to array is required for all personalization objects, and must have at "
                    "least one email object with a valid email address.");
                continue;
            }
            for (const char* list : {"to", "cc", "bcc"}) {
                if (!one.contains(list) || !one[list].is_array()) {
                    continue;
                }
                for (const auto& r : one[list]) {
                    ++recipients;
                    const auto email =
                        r.is_object() && r.contains("email") && r["email"].is_string()
                            ? r["email"].get<std::string>()
                            : std::string();
                    if (email.find('@') == std::string::npos) {
                        add(std::string("personalizations.0.") + list + ".email",
                            "Does not contain a valid address.");
                    } else if (std::find(seen.begin(), seen.end(), email) != seen.end()) {
                        add("personalizations.0",
                            "Each email address in the personalization block should be unique "
                            "between to, cc, and bcc.");
                    }
                    seen.push_back(email);
                }
            }
        }
        if (recipients > 1000) {
            add("personalizations", "The total number of recipients must be less than 1000.");
        }
    }
    if (!b.contains("from") || !b["from"].is_object() || !b["from"].contains("email") ||
        !b["from"]["email"].is_string()) {
        add("from.email", "The from email does not contain a valid address.");
    }
    const bool subject = b.contains("subject") && b["subject"].is_string() &&
                         !b["subject"].get<std::string>().empty();
    if (!subject && !b.contains("template_id")) {
        add("subject",
            "The subject is required. You can get around this requirement if you use a template "
            "with a subject defined or if every personalization has a subject defined.");
    }
    if (!b.contains("template_id")) {
        if (!b.contains("content") || !b["content"].is_array() || b["content"].empty()) {
            add("content",
                "Unless a valid template_id is provided, the content parameter is required. There "
                "must be at least one defined content block.");
        } else {
            for (const auto& c : b["content"]) {
                if (!c.is_object() || !c.contains("type") || !c.contains("value") ||
                    !c["value"].is_string() || c["value"].get<std::string>().empty()) {
                    add("content.0.value",
                        "The content value must be a string at least one character in length.");
                }
            }
        }
    }
    if (b.contains("custom_args")) {
        if (!b["custom_args"].is_object()) {
            add("custom_args",
                "Invalid type. Expected: object, given: " +
                    std::string(b["custom_args"].type_name()) + ".");
        } else {
            for (const auto& [k, v] : b["custom_args"].items()) {
                if (!v.is_string()) {
                    add("custom_args." + k, "Invalid type. Expected: string.");
                }
            }
        }
    }
    return errors;
}

}  // namespace

struct sendgrid_simulator::key {
    EVP_PKEY* pkey = nullptr;
    ~key() { EVP_PKEY_free(pkey); }
};

sendgrid_simulator::sendgrid_simulator(sendgrid_options o)
    : options_(std::move(o)), key_(std::make_unique<key>()) {
    key_->pkey = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
    if (key_->pkey == nullptr) {
        throw std::runtime_error("cannot generate the simulator's P-256 key");
    }
}

sendgrid_simulator::~sendgrid_simulator() = default;

std::string sendgrid_simulator::public_key_base64() const {
    unsigned char* der = nullptr;
    const int n = i2d_PUBKEY(key_->pkey, &der);
    if (n <= 0) {
        return {};
    }
    std::string out(reinterpret_cast<const char*>(der), static_cast<std::size_t>(n));
    OPENSSL_free(der);
    return util::base64_encode(out);
}

std::string sendgrid_simulator::sign(const std::string& timestamp, const std::string& body) const {
    const std::string signed_bytes = timestamp + body;
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    std::size_t len = 0;
    std::string sig;
    if (ctx != nullptr &&
        EVP_DigestSignInit(ctx, nullptr, EVP_sha256(), nullptr, key_->pkey) == 1 &&
        EVP_DigestSign(ctx,
                       nullptr,
                       &len,
                       reinterpret_cast<const unsigned char*>(signed_bytes.data()),
                       signed_bytes.size()) == 1) {
        sig.resize(len);
        if (EVP_DigestSign(ctx,
                           reinterpret_cast<unsigned char*>(sig.data()),
                           &len,
                           reinterpret_cast<const unsigned char*>(signed_bytes.data()),
                           signed_bytes.size()) == 1) {
            sig.resize(len);
        } else {
            sig.clear();
        }
    }
    EVP_MD_CTX_free(ctx);
    return util::base64_encode(sig);
}

void sendgrid_simulator::set_rate_limit(std::uint32_t requests, std::chrono::seconds window) {
    std::lock_guard lock(mutex_);
    options_.rate_limit = requests;
    options_.window = window;
    used_ = 0;
    window_start_ = {};
}

std::vector<sendgrid_simulator::message> sendgrid_simulator::messages() const {
    std::lock_guard lock(mutex_);
    return messages_;
}

void sendgrid_simulator::add_routes(http::router& r) {
    r.add("POST", "/v3/mail/send", [this](http::request req) { return mail_send(std::move(req)); });
    auto admin_h = [this](http::request req) { return admin(std::move(req)); };
    r.add_prefix("GET", "/_sim/sendgrid/", "/_sim/sendgrid/:op", admin_h);
    r.add_prefix("POST", "/_sim/sendgrid/", "/_sim/sendgrid/:op", admin_h);
}

net::awaitable<http::response> sendgrid_simulator::mail_send(http::request req) {
    const auto auth = req.header_value("Authorization");
    if (auth != "Bearer " + options_.api_key) {
        co_return sg_error(401, "The provided authorization grant is invalid, expired, or revoked");
    }
    std::lock_guard lock(mutex_);
    // A fixed window per key; every answer carries the X-RateLimit-* headers.
    const auto now = std::chrono::system_clock::now();
    if (window_start_ == std::chrono::system_clock::time_point{} ||
        now >= window_start_ + options_.window) {
        window_start_ = now;
        used_ = 0;
    }
    const auto reset = std::chrono::ceil<std::chrono::seconds>(
                           (window_start_ + options_.window).time_since_epoch())
                           .count();
    const auto with_limits = [&](http::response res) {
        res.headers.push_back({"X-RateLimit-Limit", std::to_string(options_.rate_limit)});
        res.headers.push_back(
            {"X-RateLimit-Remaining",
             std::to_string(options_.rate_limit > used_ ? options_.rate_limit - used_ : 0)});
        res.headers.push_back({"X-RateLimit-Reset", std::to_string(reset)});
        return res;
    };
    if (used_ >= options_.rate_limit) {
        co_return with_limits(sg_error(429, "too many requests"));
    }
    ++used_;
    const auto body = json::parse(req.body, nullptr, false);
    if (body.is_discarded()) {
        co_return with_limits(sg_error(400, "Bad Request"));
    }
    if (auto errors = validate(body); !errors.empty()) {
        co_return with_limits(http::response::json(400, json{{"errors", errors}}.dump()));
    }
    message m;
    const auto n = next_id_++;
    m.message_id = "sim" + util::hex_encode(util::sha256(std::to_string(n))).substr(0, 19);
    m.body = req.body;
    m.to = body["personalizations"][0]["to"][0]["email"].get<std::string>();
    m.subject = body.value("subject", std::string());
    if (body.contains("custom_args") && body["custom_args"].contains("billsync_delivery_id")) {
        m.delivery_id = body["custom_args"]["billsync_delivery_id"].get<std::string>();
    }
    auto res = http::response::text(202, "");
    res.headers.push_back({"X-Message-Id", m.message_id});
    messages_.push_back(std::move(m));
    co_return with_limits(std::move(res));
}

std::string sendgrid_simulator::events_for_messages(const std::string& event) const {
    std::lock_guard lock(mutex_);
    json out = json::array();
    const auto ts = std::chrono::duration_cast<std::chrono::seconds>(
                        std::chrono::system_clock::now().time_since_epoch())
                        .count();
    for (const auto& m : messages_) {
        json ev{{"email", m.to},
                {"event", event},
                {"sg_event_id", util::base64_encode(event + "-" + m.message_id)},
                {"sg_message_id", m.message_id + ".filterdrecv-sim-0"},
                {"smtp-id", "<" + m.message_id + "@ismtpd-sim.sendgrid.net>"},
                {"timestamp", ts}};
        if (!m.delivery_id.empty()) {
            ev["billsync_delivery_id"] = m.delivery_id;
        }
        if (event == "bounce" || event == "dropped") {
            ev["reason"] = event == "bounce" ? "550 5.1.1 The email account does not exist"
                                             : "Bounced Address";
        }
        out.push_back(std::move(ev));
    }
    return out.dump();
}

std::vector<unsigned> sendgrid_simulator::deliver_events(const std::string& url,
                                                         const std::string& events_json_array,
                                                         bool duplicate) const {
    const auto ts = std::to_string(std::chrono::duration_cast<std::chrono::seconds>(
                                       std::chrono::system_clock::now().time_since_epoch())
                                       .count());
    const std::vector<http::header> headers = {
        {"Content-Type", "application/json"},
        {"X-Twilio-Email-Event-Webhook-Signature", sign(ts, events_json_array)},
        {"X-Twilio-Email-Event-Webhook-Timestamp", ts},
        {"User-Agent", "SendGrid Event API"}};
    std::vector<unsigned> statuses;
    statuses.push_back(post(url, headers, events_json_array));
    if (duplicate) {
        statuses.push_back(post(url, headers, events_json_array));
    }
    return statuses;
}

std::string sendgrid_simulator::inbound_form(const std::string& boundary,
                                             const std::string& from,
                                             const std::string& to,
                                             const std::string& subject,
                                             const std::string& text,
                                             const std::string& headers) {
    std::string body;
    const auto field = [&](const std::string& name, const std::string& value) {
        body += "--" + boundary + "\r\n";
        body += "Content-Disposition: form-data; name=\"" + name + "\"\r\n\r\n";
        body += value + "\r\n";
    };
    field("headers", headers);
    const auto at = from.rfind('@');
    const auto close = from.find('>', at == std::string::npos ? 0 : at);
    const auto domain =
        at == std::string::npos
            ? std::string("example.com")
            : from.substr(at + 1, close == std::string::npos ? std::string::npos : close - at - 1);
    field("dkim", "{@" + domain + " : pass}");
    field("to", to);
    field("from", from);
    field("subject", subject);
    field("text", text);
    field("sender_ip", "127.0.0.1");
    field("envelope", json{{"to", json::array({to})}, {"from", from}}.dump());
    field("attachments", "0");
    field("charsets", R"({"to":"UTF-8","subject":"UTF-8","from":"UTF-8","text":"UTF-8"})");
    field("SPF", "pass");
    body += "--" + boundary + "--\r\n";
    return body;
}

unsigned sendgrid_simulator::send_inbound(const std::string& url,
                                          const std::string& from,
                                          const std::string& to,
                                          const std::string& subject,
                                          const std::string& text,
                                          const std::string& headers) const {
    const std::string boundary = "xYzZY";
    return post(url,
                {{"Content-Type", "multipart/form-data; boundary=" + boundary},
                 {"User-Agent", "Sendlib/1.0 sim"}},
                inbound_form(boundary, from, to, subject, text, headers));
}

net::awaitable<http::response> sendgrid_simulator::admin(http::request req) {
    const auto op = std::string_view(req.path).substr(std::string_view("/_sim/sendgrid/").size());
    if (req.method == "GET" && op == "messages") {
        json out = json::array();
        for (const auto& m : messages()) {
            out.push_back({{"message_id", m.message_id},
                           {"to", m.to},
                           {"subject", m.subject},
                           {"delivery_id", m.delivery_id},
                           {"body", json::parse(m.body, nullptr, false)}});
        }
        co_return http::response::json(200, out.dump());
    }
    if (req.method == "GET" && op == "public_key") {
        co_return http::response::json(200, json{{"public_key", public_key_base64()}}.dump());
    }
    const auto j = json::parse(req.body, nullptr, false);
    if (req.method != "POST" || !j.is_object() || !j.contains("url") || !j["url"].is_string()) {
        co_return http::response::error(400, "bad_request", "expected a JSON object with \"url\"");
    }
    const auto url = j["url"].get<std::string>();
    if (op == "events") {
        const auto statuses = deliver_events(
            url, events_for_messages(j.value("event", "delivered")), j.value("duplicate", false));
        co_return http::response::json(200, json{{"statuses", statuses}}.dump());
    }
    if (op == "inbound") {
        const auto status = send_inbound(url,
                                         j.value("from", "client@example.com"),
                                         j.value("to", "billing@example.com"),
                                         j.value("subject", "Re: your invoice"),
                                         j.value("text", "Thanks, paying today."),
                                         j.value("headers", ""));
        co_return http::response::json(200, json{{"status", status}}.dump());
    }
    co_return http::response::error(404, "not_found", "unknown simulator operation");
}

}  // namespace billsync::simulators
