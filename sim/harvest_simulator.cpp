#include "sim/harvest_simulator.hpp"

#include <algorithm>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <cctype>
#include <charconv>

#include "mappings/exact_json.hpp"
#include "mappings/model.hpp"
#include "sim/oauth2_server.hpp"
#include "sim/simulators.hpp"
#include "util/crypto.hpp"

namespace billsync::simulators {

namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;

http::response message(unsigned status, std::string_view text) {
    return http::response::json(status, json{{"message", text}}.dump());
}

std::optional<std::int64_t> to_int(std::string_view s) {
    std::int64_t v = 0;
    if (s.empty() || std::from_chars(s.data(), s.data() + s.size(), v).ptr != s.data() + s.size()) {
        return std::nullopt;
    }
    return v;
}

std::int64_t int_of(const json& j) {
    if (j.is_number_integer()) {
        return j.get<std::int64_t>();
    }
    if (j.is_string()) {
        return to_int(j.get<std::string>()).value_or(0);
    }
    return 0;
}

// "App (contact)": a name, then a contact in parentheses.
bool good_user_agent(std::string_view ua) {
    const auto open = ua.find(" (");
    return open != std::string_view::npos && open > 0 && ua.ends_with(')') && ua.size() > open + 3;
}

std::string field(const std::map<std::string, std::string>& m, const std::string& k) {
    const auto it = m.find(k);
    return it == m.end() ? std::string() : it->second;
}

// The OAuth error shape: {"error": …, "error_description": …}.
http::response oauth_error(unsigned status, std::string_view error, std::string_view why) {
    return http::response::json(status, json{{"error", error}, {"error_description", why}}.dump());
}

std::string token_text(std::string_view prefix, std::uint64_t grant, std::uint64_t serial) {
    const auto digest = util::base64_encode(
        util::sha256(std::string(prefix) + std::to_string(grant) + "/" + std::to_string(serial)));
    std::string tail;
    for (const char c : digest) {
        if (std::isalnum(static_cast<unsigned char>(c)) != 0 && tail.size() < 20) {
            tail += c;
        }
    }
    return std::string(prefix) + std::to_string(grant) + "-" + std::to_string(serial) + "-" + tail;
}

const std::vector<std::string>& resources() {
    static const std::vector<std::string> r = {
        "clients", "projects", "tasks", "users", "task_assignments", "time_entries"};
    return r;
}

}  // namespace

harvest_simulator::harvest_simulator(harvest_options o) : options_(std::move(o)) {
    for (const auto& r : resources()) {
        tables_[r];
    }
}

std::string harvest_simulator::stamp() const {
    const auto t = options_.now ? options_.now()
                                : util::instant(std::chrono::floor<std::chrono::microseconds>(
                                      std::chrono::system_clock::now()));
    return util::format_rfc3339(std::chrono::floor<std::chrono::seconds>(t));
}

std::int64_t harvest_simulator::next_id() { return ++counter_; }

const json* harvest_simulator::find(const std::string& resource, std::int64_t id) const {
    const auto t = tables_.find(resource);
    if (t == tables_.end()) {
        return nullptr;
    }
    const auto it = t->second.rows.find(id);
    return it == t->second.rows.end() ? nullptr : &it->second;
}

// ---- seeding -----------------------------------------------------------------------------------

std::int64_t harvest_simulator::add_client(std::string name, std::string currency) {
    std::lock_guard lock(mutex_);
    const auto id = next_id();
    const auto now = stamp();
    tables_["clients"].rows[id] = json{{"id", id},
                                       {"name", std::move(name)},
                                       {"is_active", true},
                                       {"address", nullptr},
                                       {"statement_key", "sk" + std::to_string(id)},
                                       {"currency", std::move(currency)},
                                       {"created_at", now},
                                       {"updated_at", now}};
    return id;
}

std::int64_t harvest_simulator::add_project(std::int64_t client_id, std::string name, bool fixed) {
    std::lock_guard lock(mutex_);
    const auto id = next_id();
    const auto now = stamp();
    const auto* c = find("clients", client_id);
    tables_["projects"].rows[id] =
        json{{"id", id},
             {"client",
              c != nullptr
                  ? json{{"id", client_id}, {"name", (*c)["name"]}, {"currency", (*c)["currency"]}}
                  : json(nullptr)},
             {"name", std::move(name)},
             {"code", nullptr},
             {"is_active", true},
             {"is_billable", true},
             {"is_fixed_fee", fixed},
             {"bill_by", "Tasks"},
             {"created_at", now},
             {"updated_at", now}};
    return id;
}

std::int64_t harvest_simulator::add_task(std::string name) {
    std::lock_guard lock(mutex_);
    const auto id = next_id();
    const auto now = stamp();
    tables_["tasks"].rows[id] = json{{"id", id},
                                     {"name", std::move(name)},
                                     {"billable_by_default", true},
                                     {"is_active", true},
                                     {"created_at", now},
                                     {"updated_at", now}};
    return id;
}

std::int64_t harvest_simulator::assign_task(std::int64_t project_id,
                                            std::int64_t task_id,
                                            bool billable) {
    std::lock_guard lock(mutex_);
    const auto id = next_id();
    const auto now = stamp();
    const auto* p = find("projects", project_id);
    const auto* t = find("tasks", task_id);
    tables_["task_assignments"].rows[id] =
        json{{"id", id},
             {"project",
              json{{"id", project_id}, {"name", p != nullptr ? (*p)["name"] : json(nullptr)}}},
             {"task", json{{"id", task_id}, {"name", t != nullptr ? (*t)["name"] : json(nullptr)}}},
             {"is_active", true},
             {"billable", billable},
             {"hourly_rate", 150.0},
             {"created_at", now},
             {"updated_at", now}};
    return id;
}

std::int64_t harvest_simulator::add_user(std::string first, std::string last, std::string email) {
    std::lock_guard lock(mutex_);
    const auto id = next_id();
    const auto now = stamp();
    tables_["users"].rows[id] = json{{"id", id},
                                     {"first_name", std::move(first)},
                                     {"last_name", std::move(last)},
                                     {"email", std::move(email)},
                                     {"is_active", true},
                                     {"access_roles", json::array({"member"})},
                                     {"created_at", now},
                                     {"updated_at", now}};
    if (options_.token_user_id == 0) {
        options_.token_user_id = id;
    }
    return id;
}

json harvest_simulator::entry_json(std::int64_t user,
                                   std::int64_t project,
                                   std::int64_t task,
                                   const std::string& spent_date,
                                   const json& hours,
                                   const std::string& notes) {
    const auto id = next_id();
    const auto now = stamp();
    const auto* u = find("users", user);
    const auto* p = find("projects", project);
    const auto* t = find("tasks", task);
    json client = p != nullptr && (*p)["client"].is_object()
                      ? json{{"id", (*p)["client"]["id"]}, {"name", (*p)["client"]["name"]}}
                      : json(nullptr);
    bool billable = true;
    for (const auto& [aid, a] : tables_["task_assignments"].rows) {
        if (int_of(a["project"]["id"]) == project && int_of(a["task"]["id"]) == task) {
            billable = a.value("billable", true);
        }
    }
    const bool running = hours.is_null();
    return json{
        {"id", id},
        {"spent_date", spent_date},
        {"user",
         json{{"id", user},
              {"name",
               u != nullptr ? (*u)["first_name"].get<std::string>() + " " +
                                  (*u)["last_name"].get<std::string>()
                            : std::string()}}},
        {"client", client},
        {"project", json{{"id", project}, {"name", p != nullptr ? (*p)["name"] : json(nullptr)}}},
        {"task", json{{"id", task}, {"name", t != nullptr ? (*t)["name"] : json(nullptr)}}},
        {"external_reference", nullptr},
        {"invoice", nullptr},
        {"hours", running ? json(0.0) : hours},
        {"hours_without_timer", running ? json(0.0) : hours},
        {"rounded_hours", running ? json(0.0) : hours},
        {"notes", notes.empty() ? json(nullptr) : json(notes)},
        {"is_locked", false},
        {"locked_reason", nullptr},
        {"is_closed", false},
        {"is_billed", false},
        {"timer_started_at", running ? json(now) : json(nullptr)},
        {"started_time", nullptr},
        {"ended_time", nullptr},
        {"is_running", running},
        {"billable", billable},
        {"budgeted", true},
        {"billable_rate", billable ? json(150.0) : json(nullptr)},
        {"cost_rate", 60.0},
        {"created_at", now},
        {"updated_at", now}};
}

std::int64_t harvest_simulator::add_time_entry(std::int64_t user_id,
                                               std::int64_t project_id,
                                               std::int64_t task_id,
                                               std::string spent_date,
                                               std::string hours,
                                               std::string notes) {
    std::lock_guard lock(mutex_);
    auto e = entry_json(user_id, project_id, task_id, spent_date, json(std::stod(hours)), notes);
    const auto id = e["id"].get<std::int64_t>();
    tables_["time_entries"].rows[id] = std::move(e);
    return id;
}

void harvest_simulator::edit_time_entry(std::int64_t id, const json& fields) {
    std::lock_guard lock(mutex_);
    auto& rows = tables_["time_entries"].rows;
    if (auto it = rows.find(id); it != rows.end()) {
        for (const auto& [k, v] : fields.items()) {
            it->second[k] = v;
        }
        it->second["updated_at"] = stamp();
    }
}

void harvest_simulator::set_flags(std::int64_t id, bool locked, bool closed, bool billed) {
    std::lock_guard lock(mutex_);
    auto& rows = tables_["time_entries"].rows;
    if (auto it = rows.find(id); it != rows.end()) {
        it->second["is_locked"] = locked;
        it->second["locked_reason"] =
            locked ? json("Item Approved and Locked for this Time Period") : json(nullptr);
        it->second["is_closed"] = closed;
        it->second["is_billed"] = billed;
        it->second["updated_at"] = stamp();
    }
}

void harvest_simulator::remove_time_entry(std::int64_t id) {
    std::lock_guard lock(mutex_);
    tables_["time_entries"].rows.erase(id);
}

std::vector<json> harvest_simulator::time_entries() const {
    std::lock_guard lock(mutex_);
    std::vector<json> out;
    for (const auto& [id, e] : tables_.at("time_entries").rows) {
        out.push_back(e);
    }
    return out;
}

std::size_t harvest_simulator::time_entry_creates() const {
    std::lock_guard lock(mutex_);
    return creates_;
}

// ---- OAuth2 (Harvest ID) -----------------------------------------------------------------------

util::instant harvest_simulator::now() const {
    return options_.now ? options_.now()
                        : util::instant(std::chrono::floor<std::chrono::microseconds>(
                              std::chrono::system_clock::now()));
}

harvest_simulator::grant harvest_simulator::issue_locked(std::uint64_t grant_id,
                                                         const std::string& old_refresh) {
    ++serial_;
    grant out;
    out.access_token = token_text("sim-hv-at-", grant_id, serial_);
    out.refresh_token = token_text("sim-hv-rt-", grant_id, serial_);
    out.expires_in = options_.oauth_access_lifetime;
    access_[out.access_token] = {grant_id, now() + out.expires_in};
    refresh_[out.refresh_token] = {grant_id, true};
    if (auto it = refresh_.find(old_refresh); it != refresh_.end()) {
        it->second.current = false;  // rotated away: refused from now on
    }
    return out;
}

harvest_simulator::grant harvest_simulator::issue_grant() {
    std::lock_guard lock(mutex_);
    return issue_locked(next_grant_++, {});
}

void harvest_simulator::expire_access_tokens() {
    std::lock_guard lock(mutex_);
    const auto t = now();
    for (auto& [token, a] : access_) {
        a.expires_at = std::min(a.expires_at, t);
    }
}

void harvest_simulator::refuse_oauth_tokens(bool refuse) {
    std::lock_guard lock(mutex_);
    refuse_oauth_ = refuse;
}

void harvest_simulator::revoke_grants() {
    std::lock_guard lock(mutex_);
    for (std::uint64_t g = 1; g < next_grant_; ++g) {
        revoked_.insert(g);
    }
}

bool harvest_simulator::oauth_token_valid_locked(std::string_view token) const {
    const auto it = access_.find(token);
    return it != access_.end() && now() < it->second.expires_at &&
           !revoked_.contains(it->second.grant);
}

bool harvest_simulator::access_token_valid(std::string_view token) const {
    std::lock_guard lock(mutex_);
    return oauth_token_valid_locked(token);
}

std::uint64_t harvest_simulator::code_grants() const {
    std::lock_guard lock(mutex_);
    return code_grants_;
}
std::uint64_t harvest_simulator::refresh_grants() const {
    std::lock_guard lock(mutex_);
    return refresh_grants_;
}
std::uint64_t harvest_simulator::invalid_grants() const {
    std::lock_guard lock(mutex_);
    return invalid_grants_;
}
std::vector<std::string> harvest_simulator::refresh_tokens_presented() const {
    std::lock_guard lock(mutex_);
    return presented_;
}

http::response harvest_simulator::authorize(const http::request& req) {
    const auto q = form_fields(req.query);
    const auto redirect = field(q, "redirect_uri");
    if (field(q, "client_id") != options_.client_id) {
        return oauth_error(400, "invalid_client", "Unknown client_id");
    }
    if (field(q, "response_type") != "code" || redirect.empty()) {
        return oauth_error(400, "invalid_request", "response_type=code and redirect_uri needed");
    }
    std::string code;
    {
        std::lock_guard lock(mutex_);
        ++serial_;
        code = token_text("sim-hv-code-", 0, serial_);
        codes_[code] = {redirect, now() + options_.code_lifetime};
    }
    auto r = http::response::text(302, "");
    r.headers.push_back({"Location",
                         redirect + (redirect.find('?') == std::string::npos ? "?" : "&") +
                             "code=" + http::percent_encode(code) +
                             "&state=" + http::percent_encode(field(q, "state"))});
    return r;
}

http::response harvest_simulator::token(const http::request& req) {
    const auto f = form_fields(req.body);
    // Harvest ID's documented token requests carry the client as form fields; that is the one
    // form this simulator takes (HTTP Basic is not documented for it).
    const bool in_form =
        field(f, "client_id") == options_.client_id &&
        util::constant_time_equal(field(f, "client_secret"), options_.client_secret);
    if (!in_form) {
        return oauth_error(401, "invalid_client", "Client authentication failed");
    }
    const auto grant_type = field(f, "grant_type");
    std::lock_guard lock(mutex_);
    grant out;
    if (grant_type == "authorization_code") {
        const auto it = codes_.find(field(f, "code"));
        if (it == codes_.end() || now() >= it->second.expires_at ||
            (f.contains("redirect_uri") && field(f, "redirect_uri") != it->second.redirect_uri)) {
            ++invalid_grants_;
            return oauth_error(400,
                               "invalid_grant",
                               "The authorization code is invalid, expired or was issued to "
                               "another redirect URI");
        }
        codes_.erase(it);  // one use
        out = issue_locked(next_grant_++, {});
        ++code_grants_;
    } else if (grant_type == "refresh_token") {
        const auto rt = field(f, "refresh_token");
        presented_.push_back(rt);
        const auto it = refresh_.find(rt);
        if (it == refresh_.end() || !it->second.current || revoked_.contains(it->second.grant)) {
            ++invalid_grants_;
            return oauth_error(400,
                               "invalid_grant",
                               "The refresh token is invalid, expired, revoked or was already "
                               "used");
        }
        out = issue_locked(it->second.grant, rt);
        ++refresh_grants_;
    } else {
        return oauth_error(400, "unsupported_grant_type", "Unsupported grant_type");
    }
    return http::response::json(200,
                                json{{"access_token", out.access_token},
                                     {"refresh_token", out.refresh_token},
                                     {"token_type", "bearer"},
                                     {"expires_in", out.expires_in.count()}}
                                    .dump());
}

http::response harvest_simulator::accounts(const http::request& req) {
    const auto h = req.header_value("Authorization");
    constexpr std::string_view bearer = "Bearer ";
    std::lock_guard lock(mutex_);
    const auto token = h.starts_with(bearer) ? h.substr(bearer.size()) : std::string_view{};
    if (token != options_.access_token && !oauth_token_valid_locked(token)) {
        return oauth_error(401, "invalid_token", "The access token is invalid");
    }
    json list = json::array();
    if (options_.accounts.empty()) {
        list.push_back({{"id", to_int(options_.account_id).value_or(0)},
                        {"name", "Sim CPA"},
                        {"product", "harvest"}});
    }
    for (const auto& a : options_.accounts) {
        list.push_back({{"id", a.id}, {"name", a.name}, {"product", a.product}});
    }
    const auto* u = find("users", options_.token_user_id);
    json user = u != nullptr ? json{{"id", (*u)["id"]},
                                    {"first_name", (*u)["first_name"]},
                                    {"last_name", (*u)["last_name"]},
                                    {"email", (*u)["email"]}}
                             : json{{"id", 1}, {"first_name", "Sim"}, {"last_name", "User"}};
    return http::response::json(200, json{{"user", user}, {"accounts", list}}.dump());
}

// ---- routes ------------------------------------------------------------------------------------

void harvest_simulator::add_routes(http::router& r) {
    auto h = [this](http::request req) { return handle(std::move(req)); };
    for (const auto* m : {"GET", "POST", "PATCH", "DELETE"}) {
        r.add_prefix(m, "/v2/", "/v2/:resource", h);
    }
    r.add("GET", "/oauth2/authorize", h);
    r.add("POST", "/api/v2/oauth2/token", h);
    r.add("GET", "/api/v2/accounts", h);
}

rate_limit_rule harvest_rate_rule(double scale) {
    rate_limit_rule rule;
    rule.path_prefix = "/v2/";
    rule.requests = 100;
    rule.window = scaled_window(15s, scale);
    rule.key = [](const http::request& req) {
        return std::string(req.header_value("Harvest-Account-Id"));
    };
    rule.reject = [](const limit_hit& hit) {
        auto r = message(429, "Too many requests. Retry later.");
        const auto secs = std::chrono::ceil<std::chrono::seconds>(hit.retry_after).count();
        r.headers.push_back({"Retry-After", std::to_string(secs < 1 ? 1 : secs)});
        return r;
    };
    return rule;
}

void harvest_simulator::configure(sim_server& server) {
    if (options_.enforce_limits) {
        server.add_limit(harvest_rate_rule(options_.scale));
    }
}

void harvest_simulator::hold_create_answers(std::chrono::milliseconds d) {
    std::lock_guard lock(mutex_);
    hold_creates_ = d;
}

net::awaitable<http::response> harvest_simulator::handle(http::request req) {
    if (req.path == "/oauth2/authorize") {
        co_return authorize(req);
    }
    if (req.path == "/api/v2/oauth2/token") {
        co_return token(req);
    }
    if (req.path == "/api/v2/accounts") {
        co_return accounts(req);
    }
    auto answer = route(req);
    std::chrono::milliseconds hold{0};
    if (req.method == "POST" && answer.status == 201) {
        std::lock_guard lock(mutex_);
        hold = hold_creates_;
    }
    if (hold.count() > 0) {
        net::steady_timer t(co_await net::this_coro::executor, hold);
        co_await t.async_wait(net::use_awaitable);
    }
    co_return answer;
}

http::response harvest_simulator::route(const http::request& req) {
    if (!good_user_agent(req.header_value("User-Agent"))) {
        return message(400, "Missing or invalid User-Agent header: send \"AppName (contact)\"");
    }
    const auto auth = req.header_value("Authorization");
    const bool pat = auth == "Bearer " + options_.access_token;
    bool oauth = false;
    if (!pat && auth.starts_with("Bearer ")) {
        std::lock_guard lock(mutex_);
        oauth = !refuse_oauth_ && oauth_token_valid_locked(auth.substr(7));
    }
    if (!pat && !oauth) {
        return http::response::json(401,
                                    json{{"error", "invalid_token"},
                                         {"error_description",
                                          "The access token provided is expired, revoked, "
                                          "malformed or invalid for other reasons."}}
                                        .dump());
    }
    if (req.header_value("Harvest-Account-Id") != options_.account_id) {
        return message(404, "Account not found");
    }
    std::lock_guard lock(mutex_);
    std::string_view rest(req.path);
    rest.remove_prefix(4);  // "/v2/"
    if (req.method == "GET" && rest == "company") {
        return http::response::json(200,
                                    json{{"base_uri", "https://sim.harvestapp.com"},
                                         {"name", "Sim CPA"},
                                         {"wants_timestamp_timers", false},
                                         {"clock", "24h"},
                                         {"week_start_day", "Monday"}}
                                        .dump());
    }
    if (req.method == "GET" && rest == "users/me") {
        const auto* u = find("users", options_.token_user_id);
        return u != nullptr ? http::response::json(200, u->dump()) : message(404, "Not found");
    }
    if (std::find(resources().begin(), resources().end(), rest) != resources().end()) {
        if (req.method == "GET") {
            return list(req, std::string(rest));
        }
        if (req.method == "POST" && rest == "time_entries") {
            return create_entry(req);
        }
        return message(405, "Method not allowed");
    }
    if (rest.starts_with("projects/") && rest.ends_with("/task_assignments") &&
        req.method == "GET") {
        return list(req, "task_assignments");
    }
    if (rest.starts_with("time_entries/")) {
        const auto id = to_int(rest.substr(13));
        if (!id || find("time_entries", *id) == nullptr) {
            return message(404, "Not found");
        }
        if (req.method == "GET") {
            return http::response::json(200, find("time_entries", *id)->dump());
        }
        if (req.method == "PATCH") {
            return update_entry(*id, req);
        }
        if (req.method == "DELETE") {
            return delete_entry(*id);
        }
    }
    return message(404, "Not found");
}

http::response harvest_simulator::list(const http::request& req, const std::string& resource) {
    const auto q = [&](std::string_view k) { return http::query_param(req.query, k); };
    std::uint32_t per_page = options_.max_per_page;
    if (const auto pp = q("per_page"); !pp.empty()) {
        const auto v = to_int(pp);
        if (!v || *v < 1 || *v > options_.max_per_page) {
            return message(
                422, "per_page must be between 1 and " + std::to_string(options_.max_per_page));
        }
        per_page = static_cast<std::uint32_t>(*v);
    }
    std::optional<mappings::instant> since;
    if (const auto s = q("updated_since"); !s.empty()) {
        since = mappings::parse_timestamp(s);
        if (!since) {
            return message(422, "updated_since is not an ISO 8601 date-time");
        }
    }
    std::optional<std::int64_t> project_scope;
    if (resource == "task_assignments" && req.path.starts_with("/v2/projects/")) {
        std::string_view p(req.path);
        p.remove_prefix(13);
        project_scope = to_int(p.substr(0, p.find('/')));
    }
    std::vector<const json*> rows;
    for (const auto& [id, row] : tables_[resource].rows) {
        if (since) {
            const auto u = mappings::parse_timestamp(row.value("updated_at", std::string()));
            if (!u || *u < *since) {
                continue;
            }
        }
        if (const auto a = q("is_active");
            !a.empty() && row.value("is_active", true) != (a == "true")) {
            continue;
        }
        if (project_scope && int_of(row["project"]["id"]) != *project_scope) {
            continue;
        }
        if (resource == "time_entries") {
            if (const auto x = q("external_reference_id"); !x.empty()) {
                const auto& ext = row["external_reference"];
                if (!ext.is_object() || ext.value("id", std::string()) != x) {
                    continue;
                }
            }
            bool skip = false;
            for (const auto* k : {"user", "client", "project"}) {
                if (const auto v = q(std::string(k) + "_id"); !v.empty()) {
                    skip = skip || !row[k].is_object() || std::to_string(int_of(row[k]["id"])) != v;
                }
            }
            if (skip) {
                continue;
            }
        }
        if (resource == "projects") {
            if (const auto v = q("client_id");
                !v.empty() &&
                (!row["client"].is_object() || std::to_string(int_of(row["client"]["id"])) != v)) {
                continue;
            }
        }
        rows.push_back(&row);
    }
    if (resource == "time_entries") {
        // Newest spent_date first, then newest id. The keys are read once per row (a sort that
        // looked them up per comparison made a page of 50,000 entries cost most of a second).
        // Ids are unique, so std::sort orders as Harvest does (std::stable_sort's temporary
        // buffer is flagged deprecated by clang with libstdc++ 12).
        struct keyed {
            std::string date;
            std::int64_t id = 0;
            const json* row = nullptr;
        };
        std::vector<keyed> order;
        order.reserve(rows.size());
        for (const auto* r : rows) {
            order.push_back({r->value("spent_date", std::string()), int_of((*r)["id"]), r});
        }
        std::sort(order.begin(), order.end(), [](const keyed& a, const keyed& b) {
            return a.date != b.date ? a.date > b.date : a.id > b.id;
        });
        for (std::size_t i = 0; i < order.size(); ++i) {
            rows[i] = order[i].row;
        }
    }
    std::size_t offset = 0;
    const auto cursor = q("cursor");
    if (!cursor.empty()) {
        const auto v = cursor.starts_with("c") ? to_int(cursor.substr(1)) : std::nullopt;
        if (!v || *v < 0) {
            return message(422, "Invalid cursor");
        }
        offset = static_cast<std::size_t>(*v);
    }
    json page = json::array();
    for (std::size_t i = offset; i < rows.size() && i < offset + per_page; ++i) {
        page.push_back(*rows[i]);
    }
    const auto total_pages =
        rows.empty() ? std::size_t{1} : (rows.size() + per_page - 1) / per_page;
    const bool last = offset + per_page >= rows.size();
    const bool first = offset == 0;
    // links.next carries the filters, as Harvest's cursor URLs do.
    std::string base = "http://" + std::string(req.header_value("Host")) + req.path + "?";
    for (const auto* k : {"updated_since",
                          "is_active",
                          "external_reference_id",
                          "user_id",
                          "client_id",
                          "project_id"}) {
        if (const auto v = q(k); !v.empty()) {
            base += std::string(k) + "=" + http::percent_encode(v) + "&";
        }
    }
    json links{{"first", base + "per_page=" + std::to_string(per_page)},
               {"next",
                last ? json(nullptr)
                     : json(base + "cursor=c" + std::to_string(offset + per_page) +
                            "&per_page=" + std::to_string(per_page) + "&ref=next_cursor")},
               {"previous", nullptr},
               {"last", nullptr}};
    json body{{resource, std::move(page)},
              {"per_page", per_page},
              {"total_pages", total_pages},
              {"total_entries", rows.size()},
              {"page",
               first  ? json(1)
               : last ? json(total_pages)
                      : json(nullptr)},
              {"next_page", first && !last ? json(2) : json(nullptr)},
              {"previous_page", nullptr},
              {"links", std::move(links)}};
    return http::response::json(200, body.dump());
}

http::response harvest_simulator::create_entry(const http::request& req) {
    std::string error;
    const auto body = mappings::parse_exact(req.body, error);
    if (!body || !body->is_object()) {
        return message(400, "Body must be a JSON object");
    }
    const auto project = int_of(body->value("project_id", json()));
    const auto task = int_of(body->value("task_id", json()));
    const auto spent = body->value("spent_date", std::string());
    if (project == 0 || task == 0 || !mappings::parse_civil_date(spent)) {
        return message(422, "project_id, task_id and spent_date are required");
    }
    if (find("projects", project) == nullptr) {
        return message(422, "Project not found");
    }
    bool assigned = false;
    for (const auto& [id, a] : tables_["task_assignments"].rows) {
        assigned = assigned || (int_of(a["project"]["id"]) == project &&
                                int_of(a["task"]["id"]) == task && a.value("is_active", true));
    }
    if (!assigned) {
        return message(422, "Task is not assigned to the project");
    }
    auto user = options_.token_user_id;
    if (body->contains("user_id")) {
        user = int_of((*body)["user_id"]);
        if (find("users", user) == nullptr) {
            return message(422, "User not found");
        }
    }
    json hours;
    if (auto it = body->find("hours"); it != body->end() && !it->is_null()) {
        const auto t = mappings::decimal_text(*it);
        if (!t) {
            return message(422, "hours must be a number");
        }
        hours = std::stod(*t);
    }
    const auto notes = body->contains("notes") && (*body)["notes"].is_string()
                           ? (*body)["notes"].get<std::string>()
                           : std::string();
    auto e = entry_json(user, project, task, spent, hours, notes);
    if (auto it = body->find("external_reference"); it != body->end() && it->is_object()) {
        json ext{{"id", it->value("id", std::string())},
                 {"group_id", it->value("group_id", std::string())},
                 {"account_id", it->value("account_id", std::string())},
                 {"permalink", it->value("permalink", std::string())},
                 {"service", "billsync"},
                 {"service_icon_url", nullptr}};
        e["external_reference"] = std::move(ext);
    }
    const auto id = e["id"].get<std::int64_t>();
    tables_["time_entries"].rows[id] = e;
    ++creates_;
    return http::response::json(201, e.dump());
}

http::response harvest_simulator::update_entry(std::int64_t id, const http::request& req) {
    auto& row = tables_["time_entries"].rows[id];
    if (row.value("is_locked", false) || row.value("is_closed", false) ||
        row.value("is_billed", false)) {
        return message(403, "This time entry is locked and cannot be edited");
    }
    std::string error;
    const auto body = mappings::parse_exact(req.body, error);
    if (!body || !body->is_object()) {
        return message(400, "Body must be a JSON object");
    }
    if (auto it = body->find("hours"); it != body->end()) {
        const auto t = mappings::decimal_text(*it);
        if (!t) {
            return message(422, "hours must be a number");
        }
        row["hours"] = std::stod(*t);
        row["hours_without_timer"] = row["hours"];
        row["rounded_hours"] = row["hours"];
    }
    for (const auto* k : {"notes", "spent_date"}) {
        if (auto it = body->find(k); it != body->end()) {
            row[k] = *it;
        }
    }
    row["updated_at"] = stamp();
    return http::response::json(200, row.dump());
}

http::response harvest_simulator::delete_entry(std::int64_t id) {
    auto& rows = tables_["time_entries"].rows;
    const auto& row = rows[id];
    if (row.value("is_closed", false) || row.value("is_billed", false) ||
        row.value("is_locked", false)) {
        return message(403, "This time entry is closed and cannot be deleted");
    }
    rows.erase(id);
    return http::response::json(200, "{}");
}

}  // namespace billsync::simulators
