#include "sim/karbon_simulator.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <chrono>

#include "http/async_client.hpp"
#include "http/client.hpp"
#include "sim/simulators.hpp"
#include "util/crypto.hpp"

namespace billsync::simulators {

namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;

constexpr std::string_view api_prefix = "/v3/";
constexpr std::size_t max_page = 100;
constexpr std::uint32_t cancel_after_failures = 10;

constexpr std::array<std::string_view, 8> webhook_types = {"Contact",
                                                           "Work",
                                                           "Note",
                                                           "User",
                                                           "Invoice",
                                                           "EstimateSummary",
                                                           "CustomField",
                                                           "IntegrationTask"};

http::response not_found() {
    return http::response::json(404, R"({"statusCode":"404","message":"Resource not found"})");
}

http::response bad_request(std::string_view code, std::string_view message) {
    return http::response::json(400,
                                json{{"error", {{"code", code}, {"message", message}}}}.dump());
}

std::string text_of(const json& j, std::string_view key) {
    const auto it = j.find(key);
    return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// Spaced (lists, filters) and unspaced (single reads, writes) spellings of a primary status.
std::string spaced(std::string s) {
    if (s == "ReadyToStart") {
        return "Ready To Start";
    }
    if (s == "InProgress") {
        return "In Progress";
    }
    return s;
}

std::string unspaced(std::string s) {
    s.erase(std::remove(s.begin(), s.end(), ' '), s.end());
    return s;
}

std::string resource_key_field(const std::string& resource) {
    if (resource == "WorkItems") {
        return "WorkItemKey";
    }
    if (resource == "Invoices") {
        return "InvoiceKey";
    }
    return resource == "Contacts" ? "ContactKey" : "OrganizationKey";
}

// "Field eq 'value'" clauses joined by " and "; nullopt when another form is used.
std::optional<std::vector<std::pair<std::string, std::string>>> parse_filter(std::string_view f) {
    std::vector<std::pair<std::string, std::string>> out;
    while (!f.empty()) {
        const auto eq = f.find(" eq '");
        if (eq == std::string_view::npos) {
            return std::nullopt;
        }
        std::string field(f.substr(0, eq));
        std::string value;
        std::size_t i = eq + 5;
        for (; i < f.size(); ++i) {
            if (f[i] == '\'') {
                if (i + 1 < f.size() && f[i + 1] == '\'') {
                    value += '\'';
                    ++i;
                    continue;
                }
                break;
            }
            value += f[i];
        }
        if (i >= f.size()) {
            return std::nullopt;
        }
        out.emplace_back(std::move(field), std::move(value));
        f = f.substr(i + 1);
        if (f.starts_with(" and ")) {
            f = f.substr(5);
        } else if (!f.empty()) {
            return std::nullopt;
        }
    }
    return out;
}

bool client_resource(const std::string& resource) {
    return resource == "Contacts" || resource == "Organizations";
}

}  // namespace

karbon_simulator::karbon_simulator(karbon_options o) : options_(std::move(o)) {}

void karbon_simulator::set_delivery_base(std::string base) {
    std::lock_guard lock(mutex_);
    options_.delivery_base = std::move(base);
}

util::instant karbon_simulator::now() const {
    if (options_.now) {
        return options_.now();
    }
    return std::chrono::time_point_cast<util::duration>(std::chrono::system_clock::now());
}

std::string karbon_simulator::stamp() const {
    return util::format_rfc3339(std::chrono::floor<std::chrono::seconds>(now()));
}

std::string karbon_simulator::next_key(std::string_view prefix) {
    const auto digest = util::hex_encode(util::sha256(fmt::format("{}/{}", prefix, ++counter_)));
    return std::string(prefix) + digest.substr(0, 10);
}

void karbon_simulator::add_routes(http::router& r) {
    auto h = [this](http::request req) { return handle(std::move(req)); };
    for (const auto* method : {"GET", "POST", "PUT", "PATCH", "DELETE"}) {
        r.add_prefix(method, std::string(api_prefix), "/v3/:resource", h);
    }
}

void karbon_simulator::configure(sim_server& server) {
    if (!options_.enforce_limits) {
        return;
    }
    rate_limit_rule rule;
    rule.path_prefix = std::string(api_prefix);
    rule.requests = 120;
    rule.window = scaled_window(60s, options_.scale);
    rule.key = [](const http::request& req) { return std::string(req.header_value("AccessKey")); };
    rule.reject = [](const limit_hit& hit) {
        const auto secs = std::max<std::int64_t>(
            1, std::chrono::ceil<std::chrono::seconds>(hit.retry_after).count());
        auto r = http::response::json(
            429,
            json{{"statusCode", "429"},
                 {"message", fmt::format("Rate limit is exceeded. Try again in {} seconds.", secs)}}
                .dump());
        r.headers.push_back({"Retry-After", std::to_string(secs)});
        return r;
    };
    server.add_limit(std::move(rule));
}

net::awaitable<http::response> karbon_simulator::handle(http::request req) {
    const bool create = req.method == "POST" && req.path == "/v3/WorkItems";
    auto r = route(req);
    std::chrono::milliseconds hold{0};
    if (create) {
        std::lock_guard lock(mutex_);
        ++creates_;
        hold = create_hold_;
    }
    if (hold.count() > 0) {
        net::steady_timer t(co_await net::this_coro::executor);
        t.expires_after(hold);
        (void)co_await t.async_wait(as_tuple_awaitable);
    }
    co_return r;
}

void karbon_simulator::hold_create_answers(std::chrono::milliseconds hold) {
    std::lock_guard lock(mutex_);
    create_hold_ = hold;
}

std::size_t karbon_simulator::creates_received() const {
    std::lock_guard lock(mutex_);
    return creates_;
}

http::response karbon_simulator::route(const http::request& req) {
    if (req.header_value("Authorization") != "Bearer " + options_.bearer_token ||
        req.header_value("AccessKey") != options_.access_key) {
        return http::response::json(
            401,
            json{{"error", {{"code", "4001"}, {"message", "Authorization has been denied."}}}}
                .dump());
    }
    const std::string rest(std::string_view(req.path).substr(api_prefix.size()));
    const auto slash = rest.find('/');
    const std::string resource = rest.substr(0, slash);
    const std::string key = slash == std::string::npos ? std::string() : rest.substr(slash + 1);

    std::lock_guard lock(mutex_);
    if (resource == "TenantSettings" && req.method == "GET") {
        json statuses = json::array();
        int n = 0;
        for (const auto& s : options_.secondary_statuses) {
            statuses.push_back({{"WorkStatusKey", fmt::format("ws{}", ++n)},
                                {"PrimaryStatusName", "In Progress"},
                                {"SecondaryStatusName", s},
                                {"WorkTypeKeys", json::array({"wt1"})}});
        }
        return http::response::json(200,
                                    json{{"WorkStatuses", statuses},
                                         {"WorkTypes",
                                          json::array({{{"WorkTypeKey", "wt1"},
                                                        {"Name", "Tax Return"},
                                                        {"AvailableStatuses", json::array()}}})}}
                                        .dump());
    }
    if (resource == "WebhookSubscriptions") {
        if (req.method == "POST" && key.empty()) {
            const auto body = json::parse(req.body, nullptr, false);
            const auto type = body.is_object() ? text_of(body, "WebhookType") : std::string();
            const auto target = body.is_object() ? text_of(body, "TargetUrl") : std::string();
            if (std::find(webhook_types.begin(), webhook_types.end(), type) ==
                webhook_types.end()) {
                return bad_request("4000", "WebhookType is not valid");
            }
            if (target.empty() || target.size() > 2000) {
                return bad_request("4000", "TargetUrl is required (at most 2000 characters)");
            }
            const auto signing = text_of(body, "SigningKey");
            const bool key_ok =
                signing.empty() ||
                (signing.size() >= 16 && std::all_of(signing.begin(), signing.end(), [](char c) {
                     return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-' ||
                            c == '_';
                 }));
            if (!key_ok) {
                return bad_request("4000", "SigningKey must match ^[A-Za-z0-9-_]+$ (16+ chars)");
            }
            if (subscriptions_.contains(type)) {
                return bad_request("4000", "A subscription of this WebhookType already exists");
            }
            subscriptions_[type] = {{"TargetUrl", target}, {"WebhookType", type}};
            if (!signing.empty()) {
                subscriptions_[type]["SigningKey"] = signing;
            }
            failures_[type] = 0;
            return http::response::json(201,
                                        json{{"TargetUrl", target}, {"WebhookType", type}}.dump());
        }
        if (req.method == "DELETE" && key.empty()) {
            subscriptions_.clear();
            return http::response::json(204, "");
        }
        const auto it = subscriptions_.find(key);
        if (it == subscriptions_.end()) {
            return not_found();
        }
        if (req.method == "GET") {
            return http::response::json(
                200, json{{"TargetUrl", it->second["TargetUrl"]}, {"WebhookType", key}}.dump());
        }
        if (req.method == "DELETE") {
            subscriptions_.erase(it);
            return http::response::json(204, "");
        }
        return bad_request("4000", "method not allowed here");
    }
    if (req.method != "GET" && (resource == "Invoices" || resource == "ManualPayments" ||
                                resource == "Payments" || resource == "ReverseManualPayment")) {
        ++invoice_writes_;  // Karbon invoices are read-only to billsync: a test asserts none
    }
    if (resource != "WorkItems" && resource != "Contacts" && resource != "Organizations" &&
        resource != "Invoices") {
        return not_found();
    }
    auto& rows = records_[resource];
    if (key.empty() && req.method == "GET") {
        return list(req, resource);
    }
    if (key.empty() && req.method == "POST" && resource == "WorkItems") {
        auto body = json::parse(req.body, nullptr, false);
        if (!body.is_object()) {
            return bad_request("4000", "body is not a JSON object");
        }
        json details = json::array();
        for (const auto* f :
             {"AssigneeEmailAddress", "Title", "ClientKey", "ClientType", "StartDate"}) {
            if (text_of(body, f).empty()) {
                details.push_back({{"code", "4000"}, {"target", f}, {"message", "required"}});
            }
        }
        if (!details.empty()) {
            return http::response::json(
                400,
                json{{"error",
                      {{"code", "4000"}, {"message", "Validation failed"}, {"details", details}}}}
                    .dump());
        }
        const auto made = [&] {
            body["WorkItemKey"] = next_key("wi");
            if (!body.contains("PrimaryStatus")) {
                body["PrimaryStatus"] = "Planned";
            }
            body["PrimaryStatus"] = spaced(text_of(body, "PrimaryStatus"));
            rows.push_back(body);
            auto out = body;
            out["PrimaryStatus"] = unspaced(text_of(out, "PrimaryStatus"));
            return out;
        }();
        return http::response::json(201, made.dump());
    }
    if (client_resource(resource) && req.method != "GET" && req.method != "DELETE") {
        // Contacts and organizations: POST creates, PATCH changes the fields given, PUT replaces
        // the record (its key kept); UserDefinedIdentifier (the firm's client code) is stored and
        // returned like any field.
        auto body = json::parse(req.body, nullptr, false);
        if (!body.is_object()) {
            return bad_request("4000", "body is not a JSON object");
        }
        const auto field = resource_key_field(resource);
        if (key.empty() && req.method == "POST") {
            if (text_of(body, "FullName").empty()) {
                return http::response::json(400,
                                            json{{"error",
                                                  {{"code", "4000"},
                                                   {"message", "Validation failed"},
                                                   {"details",
                                                    json::array({{{"code", "4000"},
                                                                  {"target", "FullName"},
                                                                  {"message", "required"}}})}}}}
                                                .dump());
            }
            body.erase(field);
            return http::response::json(201, add_client_locked(resource, std::move(body)).dump());
        }
        if (!key.empty() && (req.method == "PUT" || req.method == "PATCH")) {
            auto out = update_client_locked(resource, key, body, req.method == "PUT");
            return out.is_null() ? not_found() : http::response::json(200, out.dump());
        }
        return bad_request("4000", "not simulated");
    }
    if (!key.empty() && req.method == "GET") {
        const auto field = resource_key_field(resource);
        for (const auto& row : rows) {
            if (text_of(row, field) == key) {
                auto out = row;
                if (resource == "WorkItems") {
                    out["PrimaryStatus"] = unspaced(text_of(out, "PrimaryStatus"));
                }
                return http::response::json(200, out.dump());
            }
        }
        return not_found();
    }
    return bad_request("4000", "not simulated");
}

http::response karbon_simulator::list(const http::request& req, const std::string& resource) {
    const auto& all = records_[resource];
    std::vector<const json*> rows;
    const auto filter_text = http::query_param(req.query, "$filter");
    std::vector<std::pair<std::string, std::string>> filter;
    if (!filter_text.empty()) {
        auto f = parse_filter(filter_text);
        if (!f) {
            return bad_request("4000", "The $filter expression is not supported");
        }
        filter = std::move(*f);
    }
    if (resource == "Invoices" && std::any_of(filter.begin(), filter.end(), [](const auto& c) {
            return c.first != "InvoiceStatus";
        })) {
        return bad_request("4000", "Invoices filter on InvoiceStatus only");
    }
    for (const auto& row : all) {
        const bool keep = std::all_of(filter.begin(), filter.end(), [&](const auto& clause) {
            return text_of(row, clause.first) == clause.second;
        });
        if (keep) {
            rows.push_back(&row);
        }
    }
    const auto orderby = http::query_param(req.query, "$orderby");
    if (!orderby.empty()) {
        const bool desc = orderby.ends_with(" desc");
        const auto field = orderby.substr(0, orderby.find(' '));
        const bool allowed =
            resource == "WorkItems"  ? (field == "StartDate" || field == "DeadlineDate")
            : resource == "Invoices" ? (field == "InvoiceDate" || field == "CreatedAt" ||
                                        field == "UpdatedAt" || field == "InvoiceNumber")
                                     : (field == "FullName" || field == "LastModifiedDateTime");
        if (!allowed) {
            return bad_request("4000", "The $orderby field is not supported");
        }
        // Stable by insertion order (std::sort with the position as tie-breaker: libstdc++ 12's
        // stable_sort uses a buffer clang flags as deprecated).
        std::vector<std::pair<const json*, std::size_t>> keyed;
        for (std::size_t i = 0; i < rows.size(); ++i) {
            keyed.emplace_back(rows[i], i);
        }
        std::sort(keyed.begin(), keyed.end(), [&](const auto& a, const auto& b) {
            const auto x = text_of(*a.first, field);
            const auto y = text_of(*b.first, field);
            if (x != y) {
                return desc ? x > y : x < y;
            }
            return a.second < b.second;
        });
        for (std::size_t i = 0; i < rows.size(); ++i) {
            rows[i] = keyed[i].first;
        }
    }
    std::size_t top = max_page;
    std::size_t skip = 0;
    try {
        if (const auto t = http::query_param(req.query, "$top"); !t.empty()) {
            top = std::min<std::size_t>(std::stoul(t), max_page);  // quietly reduced
        }
        if (const auto s = http::query_param(req.query, "$skip"); !s.empty()) {
            skip = std::stoul(s);
        }
    } catch (const std::exception&) {
        return bad_request("4000", "$top and $skip must be numbers");
    }
    json value = json::array();
    for (std::size_t i = skip; i < rows.size() && i < skip + top; ++i) {
        auto row = *rows[i];
        if (resource == "Invoices") {
            // Only a single GET shows lines, payments, the breakdown and the links.
            for (const auto* f :
                 {"LineItems", "Payments", "Data", "InvoiceMagicLink", "InvoicePdfUrl"}) {
                row.erase(f);
            }
        }
        value.push_back(std::move(row));
    }
    json out{{"@odata.context", "https://api.karbonhq.com/v3/$metadata#" + resource},
             {"@odata.count", rows.size()},
             {"value", std::move(value)}};
    if (skip + top < rows.size()) {
        std::string query;
        std::string_view q = req.query;
        while (!q.empty()) {
            const auto amp = q.find('&');
            const auto part = q.substr(0, amp);
            q = amp == std::string_view::npos ? std::string_view() : q.substr(amp + 1);
            if (!part.starts_with("$skip=") && !part.starts_with("%24skip=") && !part.empty()) {
                query += (query.empty() ? "" : "&") + std::string(part);
            }
        }
        query += (query.empty() ? "" : "&") + fmt::format("$skip={}", skip + top);
        out["@odata.nextLink"] =
            "http://" + std::string(req.header_value("Host")) + req.path + "?" + query;
    }
    return http::response::json(200, out.dump());
}

json karbon_simulator::add_work_item(json fields) {
    std::lock_guard lock(mutex_);
    if (text_of(fields, "WorkItemKey").empty()) {
        fields["WorkItemKey"] = next_key("wi");
    }
    fields["PrimaryStatus"] = spaced(fields.value("PrimaryStatus", std::string("Planned")));
    records_["WorkItems"].push_back(fields);
    fields["PrimaryStatus"] = unspaced(text_of(fields, "PrimaryStatus"));
    return fields;
}

json karbon_simulator::update_work_item(const std::string& key, const json& fields) {
    std::lock_guard lock(mutex_);
    for (auto& row : records_["WorkItems"]) {
        if (text_of(row, "WorkItemKey") == key) {
            row.update(fields);
            row["PrimaryStatus"] = spaced(text_of(row, "PrimaryStatus"));
            auto out = row;
            out["PrimaryStatus"] = unspaced(text_of(out, "PrimaryStatus"));
            return out;
        }
    }
    return nullptr;
}

json karbon_simulator::add_client_locked(const std::string& resource, json fields) {
    const auto field = resource_key_field(resource);
    if (text_of(fields, field).empty()) {
        fields[field] = next_key(resource == "Contacts" ? "ct" : "org");
    }
    if (!fields.contains("LastModifiedDateTime")) {
        fields["LastModifiedDateTime"] = stamp();
    }
    if (!fields.contains("UserDefinedIdentifier")) {
        fields["UserDefinedIdentifier"] = nullptr;  // listed by the sheet: null when not set
    }
    records_[resource].push_back(fields);
    return fields;
}

json karbon_simulator::update_client_locked(const std::string& resource,
                                            const std::string& key,
                                            const json& fields,
                                            bool replace) {
    const auto field = resource_key_field(resource);
    for (auto& row : records_[resource]) {
        if (text_of(row, field) != key) {
            continue;
        }
        if (replace) {
            row = json{{field, key}, {"UserDefinedIdentifier", nullptr}};
        }
        row.update(fields);
        row[field] = key;
        row["LastModifiedDateTime"] = stamp();
        return row;
    }
    return nullptr;
}

json karbon_simulator::add_contact(json fields) {
    std::lock_guard lock(mutex_);
    return add_client_locked("Contacts", std::move(fields));
}

json karbon_simulator::add_organization(json fields) {
    std::lock_guard lock(mutex_);
    return add_client_locked("Organizations", std::move(fields));
}

json karbon_simulator::update_contact(const std::string& key, const json& fields) {
    std::lock_guard lock(mutex_);
    return update_client_locked("Contacts", key, fields, false);
}

json karbon_simulator::update_organization(const std::string& key, const json& fields) {
    std::lock_guard lock(mutex_);
    return update_client_locked("Organizations", key, fields, false);
}

namespace {
// Karbon types a line's UnitPrice as a string: a number given to the simulator is served as its
// decimal text.
void string_unit_prices(json& invoice) {
    if (auto lines = invoice.find("LineItems"); lines != invoice.end() && lines->is_array()) {
        for (auto& l : *lines) {
            if (auto p = l.find("UnitPrice"); p != l.end() && p->is_number()) {
                *p = p->dump();
            }
        }
    }
}
}  // namespace

json karbon_simulator::add_invoice(json fields) {
    std::lock_guard lock(mutex_);
    if (text_of(fields, "InvoiceKey").empty()) {
        fields["InvoiceKey"] = next_key("inv");
    }
    if (!fields.contains("UpdatedAt")) {
        fields["UpdatedAt"] = stamp();
    }
    if (!fields.contains("CreatedAt")) {
        fields["CreatedAt"] = fields["UpdatedAt"];
    }
    for (const auto* f : {"LineItems", "Payments", "TaxLineItems", "Data"}) {
        if (!fields.contains(f)) {
            fields[f] = json::array();
        }
    }
    string_unit_prices(fields);
    records_["Invoices"].push_back(fields);
    return fields;
}

json karbon_simulator::update_invoice(const std::string& key, const json& fields) {
    std::lock_guard lock(mutex_);
    for (auto& row : records_["Invoices"]) {
        if (text_of(row, "InvoiceKey") == key) {
            row.update(fields);
            row["UpdatedAt"] = stamp();
            string_unit_prices(row);
            return row;
        }
    }
    return nullptr;
}

std::size_t karbon_simulator::writes_to_invoices() const {
    std::lock_guard lock(mutex_);
    return invoice_writes_;
}

bool karbon_simulator::remove(const std::string& key) {
    std::lock_guard lock(mutex_);
    for (auto& [resource, rows] : records_) {
        const auto field = resource_key_field(resource);
        const auto it = std::find_if(
            rows.begin(), rows.end(), [&](const json& r) { return text_of(r, field) == key; });
        if (it != rows.end()) {
            rows.erase(it);
            return true;
        }
    }
    return false;
}

std::size_t karbon_simulator::work_item_count() const {
    std::lock_guard lock(mutex_);
    const auto it = records_.find("WorkItems");
    return it == records_.end() ? 0 : it->second.size();
}

std::vector<json> karbon_simulator::work_items() const {
    std::lock_guard lock(mutex_);
    const auto it = records_.find("WorkItems");
    return it == records_.end() ? std::vector<json>{} : it->second;
}

std::map<std::string, json> karbon_simulator::subscriptions() const {
    std::lock_guard lock(mutex_);
    return subscriptions_;
}

void karbon_simulator::set_subscription(const std::string& type,
                                        const std::string& target_url,
                                        const std::string& signing_key) {
    std::lock_guard lock(mutex_);
    subscriptions_[type] = {
        {"TargetUrl", target_url}, {"WebhookType", type}, {"SigningKey", signing_key}};
    failures_[type] = 0;
}

std::string karbon_simulator::sign(const std::string& signing_key, const std::string& body) {
    static constexpr std::string_view digits = "0123456789abcdef";
    const auto mac = util::hmac_sha256(signing_key, body);
    std::string out;
    for (const char c : mac) {
        const auto b = static_cast<unsigned char>(c);
        out += digits[b >> 4U];
        out += digits[b & 0x0FU];
    }
    return out;
}

std::string karbon_simulator::payload(const std::string& resource_type,
                                      const std::string& key,
                                      const std::string& action) const {
    return json{{"ResourcePermaKey", key},
                {"ResourceType", resource_type},
                {"ActionType", action},
                {"TimeStamp", stamp()}}
        .dump();
}

unsigned karbon_simulator::notify(const std::string& webhook_type,
                                  const std::string& resource_type,
                                  const std::string& key,
                                  const std::string& action) {
    std::string target;
    std::string signing;
    std::string base;
    {
        std::lock_guard lock(mutex_);
        const auto it = subscriptions_.find(webhook_type);
        if (it == subscriptions_.end()) {
            return 404;
        }
        target = text_of(it->second, "TargetUrl");
        signing = text_of(it->second, "SigningKey");
        base = options_.delivery_base;
    }
    const auto body = payload(resource_type, key, action);
    auto parts = http::parse_url(target);
    if (parts && !base.empty()) {
        const auto b = http::parse_url(base);
        if (b) {
            parts->host = b->host;
            parts->port = b->port;
            parts->scheme = b->scheme;
        }
    }
    unsigned status = 0;
    if (parts && parts->scheme == "http") {
        std::vector<http::header> headers = {{"Content-Type", "application/json"}};
        if (!signing.empty()) {
            headers.push_back({"Signature", sign(signing, body)});
        }
        status = http::fetch(parts->host, parts->port, "POST", parts->target, headers, body).status;
    }
    std::lock_guard lock(mutex_);
    if (status >= 200 && status < 300) {
        failures_[webhook_type] = 0;
    } else if (++failures_[webhook_type] >= cancel_after_failures) {
        subscriptions_.erase(webhook_type);  // cancelled: GET answers 404 until re-created
    }
    return status;
}

}  // namespace billsync::simulators
