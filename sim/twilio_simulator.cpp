#include "sim/twilio_simulator.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <chrono>

#include "http/async_client.hpp"
#include "http/client.hpp"
#include "util/crypto.hpp"

namespace billsync::simulators {

namespace {

using json = nlohmann::json;
using params_t = std::vector<std::pair<std::string, std::string>>;

constexpr std::string_view accounts_prefix = "/2010-04-01/Accounts/";
constexpr std::string_view admin_prefix = "/_sim/twilio/";

std::string form_decode(std::string_view s) {
    std::string plus(s);
    std::replace(plus.begin(), plus.end(), '+', ' ');
    return http::percent_decode(plus);
}

params_t parse_pairs(std::string_view text) {
    params_t out;
    while (!text.empty()) {
        const auto amp = text.find('&');
        const auto pair = text.substr(0, amp);
        text = amp == std::string_view::npos ? std::string_view() : text.substr(amp + 1);
        if (pair.empty()) {
            continue;
        }
        const auto eq = pair.find('=');
        out.emplace_back(
            form_decode(pair.substr(0, eq)),
            form_decode(eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1)));
    }
    return out;
}

const std::string* find(const params_t& p, std::string_view name) {
    for (const auto& [k, v] : p) {
        if (k == name) {
            return &v;
        }
    }
    return nullptr;
}

std::string form_encode(const params_t& p) {
    std::string out;
    for (const auto& [k, v] : p) {
        out += out.empty() ? "" : "&";
        out += http::percent_encode(k) + "=" + http::percent_encode(v);
    }
    return out;
}

http::response twilio_error(unsigned status, int code, std::string_view message) {
    return http::response::json(
        status,
        json{{"code", code},
             {"message", message},
             {"more_info", fmt::format("https://www.twilio.com/docs/errors/{}", code)},
             {"status", status}}
            .dump());
}

bool is_e164(std::string_view n) {
    if (n.size() < 3 || n.size() > 16 || n[0] != '+' || n[1] < '1' || n[1] > '9') {
        return false;
    }
    return std::all_of(n.begin() + 1, n.end(), [](char c) { return c >= '0' && c <= '9'; });
}

std::size_t utf8_chars(std::string_view s) {
    return static_cast<std::size_t>(std::count_if(s.begin(), s.end(), [](char c) {
        return (static_cast<unsigned char>(c) & 0xC0U) != 0x80U;
    }));
}

// "Mon, 05 Jan 2026 09:00:00 +0000", as Twilio writes date_created.
std::string rfc2822(util::instant t) {
    static constexpr std::array<std::string_view, 7> days = {
        "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static constexpr std::array<std::string_view, 12> months = {
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    const auto day = std::chrono::floor<std::chrono::days>(t);
    const std::chrono::year_month_day ymd(day);
    const std::chrono::weekday wd(day);
    const std::chrono::hh_mm_ss hms(std::chrono::floor<std::chrono::seconds>(t - day));
    return fmt::format("{}, {:02} {} {:04} {:02}:{:02}:{:02} +0000",
                       days[wd.c_encoding()],
                       static_cast<unsigned>(ymd.day()),
                       months[static_cast<unsigned>(ymd.month()) - 1],
                       static_cast<int>(ymd.year()),
                       hms.hours().count(),
                       hms.minutes().count(),
                       hms.seconds().count());
}

std::string iso_date(util::instant t) {
    const std::chrono::year_month_day ymd(std::chrono::floor<std::chrono::days>(t));
    return fmt::format("{:04}-{:02}-{:02}",
                       static_cast<int>(ymd.year()),
                       static_cast<unsigned>(ymd.month()),
                       static_cast<unsigned>(ymd.day()));
}

bool is_keyword(std::string_view body, std::initializer_list<std::string_view> words) {
    const auto first = body.find_first_not_of(" \t\r\n");
    if (first == std::string_view::npos) {
        return false;
    }
    const auto last = body.find_last_not_of(" \t\r\n");
    std::string w(body.substr(first, last - first + 1));
    for (auto& c : w) {
        c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    }
    return std::find(words.begin(), words.end(), w) != words.end();
}

bool is_final(std::string_view status) {
    return status == "delivered" || status == "undelivered" || status == "failed" ||
           status == "received";
}

// The account SID of /2010-04-01/Accounts/{sid}/…
std::string account_of(const http::request& req) {
    if (!req.path.starts_with(accounts_prefix)) {
        return {};
    }
    const auto rest = std::string_view(req.path).substr(accounts_prefix.size());
    return std::string(rest.substr(0, rest.find('/')));
}

}  // namespace

twilio_simulator::twilio_simulator(twilio_options o) : options_(std::move(o)) {}

void twilio_simulator::set_callback_base(std::string base) {
    std::lock_guard lock(mutex_);
    options_.callback_base = std::move(base);
}

util::instant twilio_simulator::now() const {
    if (options_.now) {
        return options_.now();
    }
    return std::chrono::time_point_cast<util::duration>(std::chrono::system_clock::now());
}

std::string twilio_simulator::next_sid() {
    const auto digest =
        util::hex_encode(util::sha256(fmt::format("{}/{}", options_.account_sid, ++counter_)));
    return "SM" + digest.substr(0, 32);
}

void twilio_simulator::add_routes(http::router& r) {
    auto h = [this](http::request req) { return handle(std::move(req)); };
    r.add_prefix("POST", std::string(accounts_prefix), "/2010-04-01/Accounts/:sid", h);
    r.add_prefix("GET", std::string(accounts_prefix), "/2010-04-01/Accounts/:sid", h);
    r.add_prefix("POST", std::string(admin_prefix), "/_sim/twilio/:op", h);
    r.add_prefix("GET", std::string(admin_prefix), "/_sim/twilio/:op", h);
}

void twilio_simulator::configure(sim_server& server) {
    if (options_.max_concurrent == 0) {
        return;
    }
    rate_limit_rule rule;
    rule.path_prefix = std::string(accounts_prefix);
    rule.max_concurrent = options_.max_concurrent;
    rule.key = account_of;
    rule.reject = [](const limit_hit&) { return twilio_error(429, 20429, "Too Many Requests"); };
    server.add_limit(std::move(rule));
}

std::vector<json> twilio_simulator::messages() const {
    std::lock_guard lock(mutex_);
    std::vector<json> out;
    for (const auto& m : messages_) {
        auto j = m.j;
        j["status_callback"] = m.status_callback;
        out.push_back(std::move(j));
    }
    return out;
}

void twilio_simulator::opt_out(std::string number) {
    std::lock_guard lock(mutex_);
    opted_out_.insert(std::move(number));
}

void twilio_simulator::opt_in(std::string number) {
    std::lock_guard lock(mutex_);
    opted_out_.erase(number);
}

bool twilio_simulator::opted_out(const std::string& number) const {
    std::lock_guard lock(mutex_);
    return opted_out_.contains(number);
}

std::string twilio_simulator::sign(const std::string& url, params_t params) const {
    std::sort(params.begin(), params.end());
    std::string data = url;
    for (const auto& [k, v] : params) {
        data += k;
        data += v;
    }
    return util::base64_encode(util::hmac_sha1(options_.auth_token, data));
}

unsigned twilio_simulator::post_signed(const std::string& url,
                                       const std::string& signed_url,
                                       const params_t& params) const {
    const auto parts = http::parse_url(url);
    if (!parts || parts->scheme != "http") {
        return 0;
    }
    const auto res = http::fetch(
        parts->host,
        parts->port,
        "POST",
        parts->target,
        {{"Content-Type", "application/x-www-form-urlencoded"},
         {"X-Twilio-Signature", sign(signed_url, params)},
         {"I-Twilio-Idempotency-Token", util::hex_encode(util::sha256(form_encode(params)))}},
        form_encode(params));
    return res.status;
}

std::vector<unsigned> twilio_simulator::send_inbound(const std::string& url,
                                                     std::string from,
                                                     std::string to,
                                                     std::string body,
                                                     std::string signed_url) {
    params_t params;
    {
        std::lock_guard lock(mutex_);
        const auto sid = next_sid();
        const auto t = now();
        message m;
        m.sent_at = t;
        m.j = json{{"sid", sid},
                   {"account_sid", options_.account_sid},
                   {"messaging_service_sid", nullptr},
                   {"from", from},
                   {"to", to},
                   {"body", body},
                   {"status", "received"},
                   {"direction", "inbound"},
                   {"num_segments", "1"},
                   {"num_media", "0"},
                   {"error_code", nullptr},
                   {"error_message", nullptr},
                   {"price", nullptr},
                   {"api_version", "2010-04-01"},
                   {"date_created", rfc2822(t)},
                   {"date_sent", rfc2822(t)},
                   {"date_updated", rfc2822(t)}};
        messages_.push_back(std::move(m));
        if (is_keyword(
                body,
                {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"})) {
            opted_out_.insert(from);
        } else if (is_keyword(body, {"START", "YES", "UNSTOP"})) {
            opted_out_.erase(from);
        }
        params = {{"ToCountry", "US"},
                  {"SmsMessageSid", sid},
                  {"NumMedia", "0"},
                  {"SmsSid", sid},
                  {"SmsStatus", "received"},
                  {"Body", body},
                  {"To", to},
                  {"NumSegments", "1"},
                  {"MessageSid", sid},
                  {"AccountSid", options_.account_sid},
                  {"From", from},
                  {"ApiVersion", "2010-04-01"}};
    }
    return {post_signed(url, signed_url.empty() ? url : signed_url, params)};
}

std::vector<unsigned> twilio_simulator::flush_status_callbacks(std::string final_status) {
    struct callback {
        std::string url;
        std::string signed_url;
        params_t params;
    };
    std::vector<callback> calls;
    {
        std::lock_guard lock(mutex_);
        const auto t = now();
        for (auto& m : messages_) {
            const auto status = m.j.value("status", std::string());
            if (is_final(status) || m.j.value("direction", std::string()) == "inbound") {
                continue;
            }
            std::vector<std::string> steps;
            if (status != "sent") {
                steps.emplace_back("sent");
            }
            steps.push_back(final_status);
            for (const auto& step : steps) {
                m.j["status"] = step;
                m.j["date_updated"] = rfc2822(t);
                if (step == "failed" || step == "undelivered") {
                    m.j["error_code"] = 30003;
                    m.j["error_message"] = "Unreachable destination handset";
                }
                if (m.status_callback.empty()) {
                    continue;
                }
                params_t p{{"SmsSid", m.j["sid"].get<std::string>()},
                           {"SmsStatus", step},
                           {"MessageStatus", step},
                           {"To", m.j["to"].get<std::string>()},
                           {"MessageSid", m.j["sid"].get<std::string>()},
                           {"AccountSid", options_.account_sid},
                           {"From", m.j.value("from", std::string())},
                           {"ApiVersion", "2010-04-01"}};
                if (m.j["messaging_service_sid"].is_string()) {
                    p.emplace_back("MessagingServiceSid",
                                   m.j["messaging_service_sid"].get<std::string>());
                }
                if (step == "failed" || step == "undelivered") {
                    p.emplace_back("ErrorCode", "30003");
                }
                if (step == "delivered" || step == "undelivered") {
                    const std::chrono::year_month_day ymd(std::chrono::floor<std::chrono::days>(t));
                    const std::chrono::hh_mm_ss hms(std::chrono::floor<std::chrono::minutes>(
                        t - std::chrono::floor<std::chrono::days>(t)));
                    p.emplace_back("RawDlrDoneDate",
                                   fmt::format("{:02}{:02}{:02}{:02}{:02}",
                                               static_cast<int>(ymd.year()) % 100,
                                               static_cast<unsigned>(ymd.month()),
                                               static_cast<unsigned>(ymd.day()),
                                               hms.hours().count(),
                                               hms.minutes().count()));
                }
                std::string url = m.status_callback;
                if (!options_.callback_base.empty()) {
                    const auto scheme = url.find("://");
                    const auto path =
                        scheme == std::string::npos ? std::string::npos : url.find('/', scheme + 3);
                    url = options_.callback_base +
                          (path == std::string::npos ? std::string("/") : url.substr(path));
                }
                calls.push_back({std::move(url), m.status_callback, std::move(p)});
            }
        }
    }
    std::vector<unsigned> out;
    for (const auto& c : calls) {
        out.push_back(post_signed(c.url, c.signed_url, c.params));
    }
    return out;
}

net::awaitable<http::response> twilio_simulator::handle(http::request req) {
    if (req.path.starts_with(admin_prefix)) {
        co_return admin(req);
    }
    const auto account = account_of(req);
    const auto expected =
        "Basic " + util::base64_encode(options_.account_sid + ":" + options_.auth_token);
    if (account != options_.account_sid ||
        !util::constant_time_equal(req.header_value("Authorization"), expected)) {
        co_return twilio_error(401, 20003, "Authenticate");
    }
    const auto rest = std::string_view(req.path).substr(accounts_prefix.size() + account.size());
    if (rest == "/Messages.json") {
        if (req.method == "POST") {
            co_return create_message(req);
        }
        co_return list_messages(req);
    }
    constexpr std::string_view one = "/Messages/";
    if (req.method == "GET" && rest.starts_with(one) && rest.ends_with(".json")) {
        co_return read_message(rest.substr(one.size(), rest.size() - one.size() - 5));
    }
    co_return twilio_error(
        404, 20404, fmt::format("The requested resource {} was not found", req.path));
}

http::response twilio_simulator::create_message(const http::request& req) {
    const auto p = parse_pairs(req.body);
    const auto* to = find(p, "To");
    const auto* from = find(p, "From");
    const auto* service = find(p, "MessagingServiceSid");
    const auto* body = find(p, "Body");
    if (to == nullptr || to->empty()) {
        return twilio_error(400, 21604, "A 'To' phone number is required.");
    }
    if (!is_e164(*to)) {
        return twilio_error(400, 21211, fmt::format("Invalid 'To' Phone Number: {}", *to));
    }
    std::string sender;
    if (from != nullptr && !from->empty()) {
        if (std::find(options_.numbers.begin(), options_.numbers.end(), *from) ==
            options_.numbers.end()) {
            return twilio_error(400,
                                21606,
                                fmt::format("The From phone number {} is not a valid, SMS-capable "
                                            "inbound phone number or short code for your account.",
                                            *from));
        }
        sender = *from;
    } else if (service != nullptr && !service->empty()) {
        if (std::find(options_.messaging_service_sids.begin(),
                      options_.messaging_service_sids.end(),
                      *service) == options_.messaging_service_sids.end()) {
            return twilio_error(
                400, 21701, fmt::format("The Messaging Service Sid {} is invalid.", *service));
        }
        sender = options_.numbers.empty() ? std::string() : options_.numbers.front();
    } else {
        return twilio_error(400, 21603, "A 'From' phone number is required.");
    }
    if (body == nullptr || body->empty()) {
        return twilio_error(400, 21602, "Message body is required.");
    }
    if (utf8_chars(*body) > 1600) {
        return twilio_error(
            400, 21617, "The concatenated message body exceeds the 1600 character limit.");
    }
    std::lock_guard lock(mutex_);
    if (opted_out_.contains(*to)) {
        return twilio_error(400, 21610, "Attempt to send to unsubscribed recipient");
    }
    const auto sid = next_sid();
    const auto t = now();
    message m;
    m.sent_at = t;
    if (const auto* cb = find(p, "StatusCallback")) {
        m.status_callback = *cb;
    }
    m.j = json{
        {"sid", sid},
        {"account_sid", options_.account_sid},
        {"messaging_service_sid",
         service != nullptr && (from == nullptr || from->empty()) ? json(*service) : json(nullptr)},
        {"from", sender},
        {"to", *to},
        {"body", *body},
        {"status", "queued"},
        {"direction", "outbound-api"},
        {"num_segments", std::to_string(utf8_chars(*body) / 153 + 1)},
        {"num_media", "0"},
        {"error_code", nullptr},
        {"error_message", nullptr},
        {"price", nullptr},
        {"price_unit", "USD"},
        {"api_version", "2010-04-01"},
        {"date_created", rfc2822(t)},
        {"date_sent", rfc2822(t)},
        {"date_updated", rfc2822(t)},
        {"uri",
         fmt::format("/2010-04-01/Accounts/{}/Messages/{}.json", options_.account_sid, sid)}};
    auto out = http::response::json(201, m.j.dump());
    messages_.push_back(std::move(m));
    return out;
}

http::response twilio_simulator::list_messages(const http::request& req) const {
    const auto q = parse_pairs(req.query);
    const auto text = [&q](std::string_view name) {
        const auto* v = find(q, name);
        return v == nullptr ? std::string() : *v;
    };
    std::size_t page_size = 50;
    if (const auto ps = text("PageSize"); !ps.empty()) {
        page_size = std::clamp<std::size_t>(std::stoul(ps), 1, 1000);
    }
    std::size_t page = 0;
    std::size_t offset = 0;
    if (const auto token = text("PageToken"); token.starts_with("PA")) {
        offset = std::stoul(token.substr(2));
        page = std::stoul(text("Page").empty() ? "0" : text("Page"));
    }
    const auto to = text("To");
    const auto from = text("From");
    const auto on = text("DateSent");
    const auto before = text("DateSent<");
    const auto after = text("DateSent>");

    std::vector<json> matching;
    {
        std::lock_guard lock(mutex_);
        // Newest first, as Twilio lists.
        for (auto it = messages_.rbegin(); it != messages_.rend(); ++it) {
            const auto day = iso_date(it->sent_at);
            if ((!to.empty() && it->j.value("to", std::string()) != to) ||
                (!from.empty() && it->j.value("from", std::string()) != from) ||
                (!on.empty() && day != on) || (!before.empty() && day > before) ||
                (!after.empty() && day < after)) {
                continue;
            }
            matching.push_back(it->j);
        }
    }
    const auto uri_base =
        fmt::format("/2010-04-01/Accounts/{}/Messages.json", options_.account_sid);
    // The filters again, for the page URIs.
    params_t filters;
    for (const auto& [k, v] : q) {
        if (k != "PageToken" && k != "Page" && k != "PageSize") {
            filters.emplace_back(k, v);
        }
    }
    const auto page_uri = [&](std::size_t page_no, std::size_t from_offset) {
        auto f = filters;
        f.emplace_back("PageSize", std::to_string(page_size));
        f.emplace_back("Page", std::to_string(page_no));
        if (from_offset > 0) {
            f.emplace_back("PageToken", "PA" + std::to_string(from_offset));
        }
        return uri_base + "?" + form_encode(f);
    };
    json list = json::array();
    for (std::size_t i = offset; i < matching.size() && i < offset + page_size; ++i) {
        list.push_back(matching[i]);
    }
    const bool more = offset + page_size < matching.size();
    json out{
        {"messages", list},
        {"page", page},
        {"page_size", page_size},
        {"start", offset},
        {"end", offset + list.size() - (list.empty() ? 0 : 1)},
        {"uri", page_uri(page, offset)},
        {"first_page_uri", page_uri(0, 0)},
        {"previous_page_uri", nullptr},
        {"next_page_uri", more ? json(page_uri(page + 1, offset + page_size)) : json(nullptr)}};
    return http::response::json(200, out.dump());
}

http::response twilio_simulator::read_message(std::string_view sid) const {
    std::lock_guard lock(mutex_);
    for (const auto& m : messages_) {
        if (m.j.value("sid", std::string()) == sid) {
            return http::response::json(200, m.j.dump());
        }
    }
    return twilio_error(
        404,
        20404,
        fmt::format("The requested resource /2010-04-01/Accounts/{}/Messages/{}.json was not found",
                    options_.account_sid,
                    sid));
}

http::response twilio_simulator::admin(const http::request& req) {
    const auto op = std::string_view(req.path).substr(admin_prefix.size());
    if (op == "messages" && req.method == "GET") {
        return http::response::json(200, json(messages()).dump());
    }
    const auto body = json::parse(req.body.empty() ? "{}" : req.body, nullptr, false);
    if (!body.is_object() || req.method != "POST") {
        return http::response::error(400, "bad_request", "POST a JSON object");
    }
    const auto text = [&body](const char* key) { return body.value(key, std::string()); };
    if (op == "opt_out") {
        opt_out(text("number"));
        return http::response::json(200, R"({"ok":true})");
    }
    if (op == "opt_in") {
        opt_in(text("number"));
        return http::response::json(200, R"({"ok":true})");
    }
    if (op == "inbound") {
        const auto statuses =
            send_inbound(text("url"), text("from"), text("to"), text("body"), text("signed_url"));
        return http::response::json(200, json{{"statuses", statuses}}.dump());
    }
    if (op == "flush") {
        if (const auto base = text("callback_base"); !base.empty()) {
            set_callback_base(base);
        }
        const auto final_status = text("final_status");
        const auto statuses =
            flush_status_callbacks(final_status.empty() ? "delivered" : final_status);
        return http::response::json(200, json{{"statuses", statuses}}.dump());
    }
    return http::response::error(404, "not_found", "unknown simulator operation");
}

}  // namespace billsync::simulators
