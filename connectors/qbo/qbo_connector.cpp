#include "connectors/qbo/qbo_connector.hpp"

#include <spdlog/logger.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "connectors/qbo/qbo_kind.hpp"
#include "connectors/qbo/qbo_webhook.hpp"
#include "connectors/runtime/retry.hpp"
#include "connectors/runtime/sync_cursor.hpp"
#include "http/message.hpp"
#include "mappings/exact_json.hpp"
#include "mappings/invoice_draft.hpp"
#include "mappings/model.hpp"
#include "mappings/qbo/qbo_invoice_out.hpp"
#include "mappings/qbo/qbo_time_activity.hpp"
#include "state/apply.hpp"
#include "state/tables.hpp"
#include "util/crypto.hpp"
#include "util/metrics.hpp"

namespace billsync::connectors::qbo {

namespace {

using json = nlohmann::json;
namespace mq = mappings::qbo;

// The entities the sync reads, in the order they are applied (clients before the invoices that
// name them, invoices before the payments applied to them); items last, so a cursor written
// before items were read keeps its step numbers.
constexpr std::array<std::string_view, 4> sync_entities = {
    "Customer", "Invoice", "Payment", "Item"};
// What polled pages may hold, in the order they are applied: the time sync adds employees (staff,
// before the time that names them) and time activities, which CDC does not return.
constexpr std::array<std::string_view, 6> mapped_entities = {
    "Item", "Customer", "Employee", "Invoice", "Payment", "TimeActivity"};
// The time sync: entity -> how far back the first read reaches (0: everything).
constexpr std::array<std::pair<std::string_view, int>, 2> time_entities = {
    {{"Employee", 0}, {"TimeActivity", 31}}};

std::string lower(std::string_view s) {
    std::string out(s);
    for (auto& c : out) {
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    return out;
}

// A string literal of QBO's query language: single quotes, backslash escapes.
std::string literal(std::string_view v) {
    std::string out = "'";
    for (const char c : v) {
        if (c == '\'' || c == '\\') {
            out += '\\';
        }
        out += c;
    }
    out += '\'';
    return out;
}

std::string text_of(const json& j, std::string_view key) {
    auto it = j.find(key);
    return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::optional<util::instant> instant_of(const json& j, std::string_view key) {
    util::instant t{};
    const auto s = text_of(j, key);
    if (s.empty() || !util::parse_rfc3339(s, t)) {
        if (auto p = mappings::parse_timestamp(s)) {
            return *p;
        }
        return std::nullopt;
    }
    return t;
}

// Whether the invoice was emailed by this attempt: EmailStatus says only that it was emailed at
// some time (a reminder resends an invoice emailed weeks ago), so DeliveryInfo.DeliveryTime must
// not be older than the attempt's first start (less a margin for clock skew). Without a recorded
// attempt time or a delivery time, EmailSent is trusted, as before: a duplicate is worse.
bool email_sent_since(const json& inv, util::instant first_attempt) {
    constexpr auto skew = std::chrono::minutes(5);
    if (text_of(inv, "EmailStatus") != "EmailSent") {
        return false;
    }
    const auto info = inv.find("DeliveryInfo");
    const auto delivered = info != inv.end() && info->is_object()
                               ? instant_of(*info, "DeliveryTime")
                               : std::optional<util::instant>();
    if (first_attempt == util::instant{} || !delivered) {
        return true;
    }
    return *delivered >= first_attempt - skew;
}

std::string_view phase_name(sync_cursor::phase p) noexcept {
    switch (p) {
        case sync_cursor::phase::backfill:
            return "backfill";
        case sync_cursor::phase::catchup:
            return "catchup";
        case sync_cursor::phase::cdc:
            return "cdc";
    }
    return "cdc";
}

condition condition_of(mq::fault_kind k) noexcept {
    switch (k) {
        case mq::fault_kind::rate_limited:
            return condition::rate_limited;
        case mq::fault_kind::auth:
            return condition::auth_expired;
        case mq::fault_kind::conflict:
        case mq::fault_kind::duplicate:
            return condition::conflict;
        case mq::fault_kind::not_found:
            return condition::not_found;
        case mq::fault_kind::invalid_request:
            return condition::invalid_request;
        case mq::fault_kind::permanent:
            return condition::permanent;
        case mq::fault_kind::retryable:
            return condition::retryable;
    }
    return condition::permanent;
}

// Fault bodies onto the shared conditions; transport failures and bodiless statuses as usual.
std::optional<call_error> classify_qbo(const http_result& r) {
    if (!r.ok() || r.response.status < 400) {
        return classify(r);
    }
    auto base = classify(r);
    if (auto f = mq::parse_fault(std::string_view(r.response.body))) {
        const auto kind = mq::classify(*f, r.response.status);
        call_error e = base.value_or(call_error{});
        e.cond = condition_of(kind);
        e.status = r.response.status;
        std::string codes;
        for (const auto& err : f->errors) {
            codes += codes.empty() ? "" : ",";
            codes += err.code + " " + err.message;
        }
        e.message = "QBO fault " + f->type + " [" + codes + "] (HTTP " +
                    std::to_string(r.response.status) + ")";
        return e;
    }
    return base;
}

// Objects of one entity in a query answer: {"QueryResponse": {"Invoice": [...]}}.
const json* query_rows(const json& doc, std::string_view entity) {
    auto qr = doc.find("QueryResponse");
    if (qr == doc.end() || !qr->is_object()) {
        return nullptr;
    }
    auto rows = qr->find(entity);
    return rows != qr->end() && rows->is_array() ? &*rows : nullptr;
}

std::size_t cdc_object_count(const json& doc) {
    std::size_t n = 0;
    auto cdc = doc.find("CDCResponse");
    if (cdc == doc.end() || !cdc->is_array()) {
        return 0;
    }
    for (const auto& part : *cdc) {
        auto qrs = part.find("QueryResponse");
        if (qrs == part.end() || !qrs->is_array()) {
            continue;
        }
        for (const auto& qr : *qrs) {
            for (const auto entity : sync_entities) {
                if (auto rows = qr.find(entity); rows != qr.end() && rows->is_array()) {
                    n += rows->size();
                }
            }
        }
    }
    return n;
}

}  // namespace

// ---- pure pieces -------------------------------------------------------------------------------

std::string request_id(std::string_view action_id, std::string_view variant) {
    std::string material(action_id);
    material += '\n';
    material += variant;
    return "bs" + util::hex_encode(util::sha256(material)).substr(0, 40);
}

std::string sync_cursor::encode() const {
    json j{{"phase", std::string(phase_name(ph))},
           {"since", util::format_rfc3339(since)},
           {"started_at", util::format_rfc3339(started_at)}};
    if (ph == phase::cdc) {
        j["items"] = items_read;
    } else {
        j["step"] = step;
        j["after_id"] = after_id;
        j["done"] = done;
        j["total"] = total;
    }
    return j.dump();
}

std::optional<sync_cursor> sync_cursor::decode(std::string_view text) {
    const auto j = json::parse(text, nullptr, false);
    if (!j.is_object()) {
        return std::nullopt;
    }
    sync_cursor c;
    const auto p = text_of(j, "phase");
    if (p == "backfill") {
        c.ph = phase::backfill;
    } else if (p == "catchup") {
        c.ph = phase::catchup;
    } else if (p == "cdc") {
        c.ph = phase::cdc;
    } else {
        return std::nullopt;
    }
    auto since = instant_of(j, "since");
    auto started = instant_of(j, "started_at");
    if (!since || !started) {
        return std::nullopt;
    }
    c.since = *since;
    c.started_at = *started;
    if (c.ph == phase::cdc) {
        c.items_read = j.value("items", false);
    } else {
        c.step = j.value("step", 0u);
        // A cursor written with "position" (STARTPOSITION paging) restarts its step: re-reading
        // rows is harmless, skipping them is not.
        const auto after = j.find("after_id");
        c.after_id =
            after != j.end() && after->is_number_unsigned() ? after->get<std::uint64_t>() : 0;
        c.done = j.value("done", std::uint64_t{0});
        c.total = j.value("total", std::uint64_t{0});
        if (c.step > sync_entities.size()) {
            return std::nullopt;
        }
    }
    return c;
}

std::string step_query(const sync_cursor& c, util::instant now, std::chrono::days payments_back) {
    const auto entity =
        std::string(sync_entities.at(std::min<std::size_t>(c.step, sync_entities.size() - 1)));
    std::string q = "SELECT * FROM " + entity;
    if (c.ph == sync_cursor::phase::catchup) {
        q += " WHERE MetaData.LastUpdatedTime >= " + literal(util::format_rfc3339(c.since));
        if (entity == "Item") {
            q += " AND Active IN (true, false)";  // items made inactive too
        }
        return q;
    }
    if (entity == "Invoice") {
        return q + " WHERE Balance > '0'";
    }
    if (entity == "Payment") {
        const auto from = std::chrono::floor<std::chrono::days>(now) - payments_back;
        return q + " WHERE TxnDate >= " +
               literal(mappings::format_civil_date(std::chrono::year_month_day{from}));
    }
    return q;
}

std::string page_query(const sync_cursor& c,
                       util::instant now,
                       std::chrono::days payments_back,
                       std::size_t page_size) {
    auto q = step_query(c, now, payments_back);
    if (c.after_id > 0) {
        q += q.find(" WHERE ") == std::string::npos ? " WHERE " : " AND ";
        q += "Id > " + literal(std::to_string(c.after_id));
    }
    return q + " ORDERBY Id STARTPOSITION 1 MAXRESULTS " + std::to_string(page_size);
}

settings from(const connector_settings& s) {
    settings out;
    out.name = s.name;
    if (!s.base_url.empty()) {
        out.base_url = s.base_url;
    }
    while (!out.base_url.empty() && out.base_url.back() == '/') {
        out.base_url.pop_back();
    }
    if (const auto* v = s.value("realm_id")) {
        out.realm_id = *v;
    }
    if (const auto* v = s.value("minor_version")) {
        out.minor_version = *v;
    }
    if (const auto* v = s.find_secret("webhook_verifier_token")) {
        out.verifier_token = v->reveal();
    }
    out.client.token_url = s.token_url;
    if (const auto* v = s.value("client_id")) {
        out.client.client_id = *v;
    }
    if (const auto* v = s.find_secret("client_secret")) {
        out.client.client_secret = v->reveal();
    }
    const auto* scope = s.value("scope");
    out.required_scope = scope != nullptr && !scope->empty() ? *scope : oauth2_rules().scope;
    if (const auto* v = s.value("home_currency")) {
        out.home_currency = *v;
    }
    if (const auto* v = s.value("sync_time")) {
        out.sync_time = *v == "true";
    }
    if (const auto* v = s.value("sync_items")) {
        out.sync_items = *v == "true";
    }
    if (const auto* v = s.value("poll_interval_s")) {
        out.poll_interval = std::chrono::seconds(std::stoll(*v));
    }
    if (const auto* v = s.value("page_size")) {
        out.page_size = static_cast<std::size_t>(std::stoull(*v));
    }
    return out;
}

// ---- the connector
// -------------------------------------------------------------------------------

struct qbo_connector::impl {
    settings& s;
    runtime rt;
    https_client http;
    oauth2::token_manager tokens;
    retry_policy reads;
    util::instant next_poll_at{};
    std::uint32_t poll_failures = 0;

    // What /status shows; written on the pipeline's strand, read from the status listener.
    mutable std::mutex status_mutex;
    std::optional<sync_cursor> cursor;
    std::optional<util::instant> last_success;
    std::optional<util::instant> last_error_at;
    std::string last_error;
    std::uint64_t requests = 0;
    std::uint64_t failures = 0;
    std::uint64_t unmappable = 0;
    std::uint64_t unknown_realm_events = 0;
    std::uint64_t unknown_entity_events = 0;
    std::set<std::string> missing_items;  // service items drafts named that QBO does not have
    json time_cursor;                     // the time sync's cursor, for /status

    util::counter* requests_total = nullptr;
    util::counter* errors_total = nullptr;

    impl(settings& st, runtime r)
        : s(st),
          rt(std::move(r)),
          http(rt.executor, rt.http),
          tokens(
              oauth2::manager_settings{
                  .connector = st.name,
                  .credential_id = "qbo/" + st.realm_id,
                  .vendor = "qbo",
                  .client = st.client,
                  .old_refresh_valid = oauth2_rules().old_refresh_valid,
                  .required_scope = st.required_scope,
              },
              oauth2::manager_deps{
                  .http = &http,
                  .tokens = rt.tokens,
                  .clock = rt.clock,
                  .time = rt.time,
                  .log = rt.log,
                  .metrics = rt.metrics,
              }) {
        reads.max_attempts = 3;
        reads.max_total = std::chrono::seconds(30);
        next_poll_at = rt.clock->now();
        if (rt.metrics != nullptr) {
            requests_total = &rt.metrics->get_counter("billsync_connector_requests_total",
                                                      "Vendor API requests by connector.",
                                                      {{"connector", st.name}});
            errors_total =
                &rt.metrics->get_counter("billsync_connector_errors_total",
                                         "Vendor API requests that failed, by connector.",
                                         {{"connector", st.name}});
        }
    }

    std::string url(std::string_view path, std::string_view query = {}) const {
        std::string u = s.base_url + "/v3/company/" + s.realm_id + std::string(path) +
                        "?minorversion=" + s.minor_version;
        if (!query.empty()) {
            u += '&';
            u += query;
        }
        return u;
    }

    void note_error(const std::string& message) {
        std::lock_guard lock(status_mutex);
        ++failures;
        last_error = message;
        last_error_at = rt.clock->now();
    }

    void note_success() {
        std::lock_guard lock(status_mutex);
        last_success = rt.clock->now();
    }

    // One attempt: a rate-limit permit, then the request.
    net::awaitable<http_result> attempt(http_request r) {
        auto permit = co_await rt.limiter->acquire("qbo", s.realm_id);
        auto res = co_await http.send(std::move(r));
        if (res.ok()) {
            rt.limiter->observe("qbo", s.realm_id, res.response);
        }
        {
            std::lock_guard lock(status_mutex);
            ++requests;
        }
        if (requests_total != nullptr) {
            requests_total->inc();
        }
        co_return res;
    }

    // A call with the current access token, retried per policy; a 401 refreshes once.
    net::awaitable<api_result> call(http_request req, retry_policy policy) {
        for (int auth_try = 0; auth_try < 2; ++auth_try) {
            auto tok = co_await tokens.access_token();
            api_result out;
            if (!tok.ok()) {
                out.error = tok.error;
                note_error("token: " + tok.error->message);
                co_return out;
            }
            auto with = req;
            with.headers.push_back({"Authorization", "Bearer " + tok.token});
            with.headers.push_back({"Accept", "application/json"});
            retry_deps deps;
            deps.send = [this](http_request r) { return attempt(std::move(r)); };
            deps.time = rt.time;
            deps.classify = classify_qbo;
            auto res = co_await send_with_retry(std::move(with), policy, std::move(deps));
            out.status = res.last.ok() ? res.last.response.status : 0;
            out.body = std::move(res.last.response.body);
            out.error = res.error;
            if (out.error && out.status >= 400) {
                if (auto f = mq::parse_fault(std::string_view(out.body))) {
                    out.fault = mq::classify(*f, out.status);
                    if (!f->errors.empty()) {
                        out.fault_code = f->errors.front().code;
                    }
                }
            }
            if (out.error && out.error->cond == condition::auth_expired && auth_try == 0) {
                tokens.invalidate(tok.token);
                continue;
            }
            if (out.error) {
                if (errors_total != nullptr) {
                    errors_total->inc();
                }
                const auto tid = res.last.ok() ? res.last.response.header_value("intuit_tid")
                                               : std::string_view();
                note_error(out.error->message);
                if (rt.log) {
                    rt.log->warn(
                        "QBO call failed connector={} method={} status={} intuit_tid={} "
                        "error=\"{}\"",
                        s.name,
                        req.method,
                        out.status,
                        tid,
                        out.error->message);
                }
            } else {
                note_success();
            }
            co_return out;
        }
        co_return api_result{};
    }

    net::awaitable<api_result> get(std::string path, std::string query = {}) {
        http_request req;
        req.method = "GET";
        req.url = url(path, query);
        co_return co_await call(std::move(req), reads);
    }

    net::awaitable<api_result> query(std::string statement) {
        co_return co_await get("/query", "query=" + http::percent_encode(statement));
    }

    // A write with its requestid: retrying the identical request is safe (Intuit replays it).
    net::awaitable<api_result> post(std::string path,
                                    std::string query,
                                    std::string body,
                                    std::string rid,
                                    std::string content_type = "application/json") {
        http_request req;
        req.method = "POST";
        req.url = url(path, (query.empty() ? "" : query + "&") + "requestid=" + rid);
        req.body = std::move(body);
        req.headers.push_back({"Content-Type", std::move(content_type)});
        req.idempotency_key = rid;
        co_return co_await call(std::move(req), reads);
    }

    // The time sync: employees and time activities, which CDC does not return, each read from
    // its own MetaData.LastUpdatedTime on ("<name>/time" = {"Employee": t, "TimeActivity": t}),
    // one page per entity per poll. The first read takes every employee and the last 31 days
    // of time. A row re-read at the boundary maps to no change.
    net::awaitable<std::string> time_sync(const state::store& st,
                                          util::instant now,
                                          poll_outcome& out) {
        const auto key = s.name + "/time";
        auto stored = state::get_cursor(st, key);
        if (!stored.ok()) {
            co_return "cannot read the time cursor: " + stored.st.message;
        }
        json cur = stored.value ? json::parse(*stored.value, nullptr, false) : json::object();
        if (!cur.is_object()) {
            cur = json::object();
        }
        bool full = false;
        for (const auto& [entity, days] : time_entities) {
            const std::string name(entity);
            auto since = instant_of(cur, name);
            if (!since) {
                since = days == 0 ? util::instant{} : now - std::chrono::days(days);
            }
            std::string q = "SELECT * FROM " + name + " WHERE MetaData.LastUpdatedTime >= " +
                            literal(util::format_rfc3339(*since));
            if (name == "Employee") {
                q += " AND Active IN (true, false)";  // deactivations too
            }
            q += " ORDERBY MetaData.LastUpdatedTime STARTPOSITION 1 MAXRESULTS " +
                 std::to_string(s.page_size);
            auto r = co_await query(q);
            if (!r.ok()) {
                co_return name + " query failed: " + r.error->message;
            }
            const auto j = json::parse(r.body, nullptr, false);
            if (!j.is_object() || !j.contains("QueryResponse")) {
                co_return name + " query answer is unreadable";
            }
            const auto* rows = query_rows(j, name);
            auto newest = *since;
            const auto n = rows != nullptr ? rows->size() : 0;
            if (rows != nullptr) {
                for (const auto& row : *rows) {
                    if (const auto meta = row.find("MetaData");
                        meta != row.end() && meta->is_object()) {
                        if (auto t = instant_of(*meta, "LastUpdatedTime")) {
                            newest = std::max(newest, *t);
                        }
                    }
                }
            }
            if (n > 0) {
                out.events.push_back({"entities", std::move(r.body)});
            }
            if (n >= s.page_size) {
                full = true;
                if (newest == *since) {
                    newest += std::chrono::milliseconds(1);  // a full page of one instant
                }
            }
            cur[name] = util::format_rfc3339(newest);
        }
        out.cursors.emplace_back(key, cur.dump());
        out.more = out.more || full;
        {
            std::lock_guard lock(status_mutex);
            time_cursor = cur;
        }
        co_return std::string();
    }

    mq::mapping_options options(const state::store& st) const {
        mq::mapping_options o;
        o.system = s.name;
        o.realm_id = s.realm_id;
        o.home_currency = s.home_currency;
        o.resolve = state::canonical_ids(st, s.name);
        return o;
    }
};

qbo_connector::qbo_connector(settings s, runtime rt)
    : settings_(std::move(s)), impl_(std::make_unique<impl>(settings_, std::move(rt))) {}

qbo_connector::~qbo_connector() = default;

oauth2::token_manager& qbo_connector::tokens() noexcept { return impl_->tokens; }

void qbo_connector::reload_credentials() {
    impl_->tokens.reload();
    impl_->next_poll_at = impl_->rt.clock->now();
}

std::string qbo_connector::cursor_key() const { return settings_.name + "/sync"; }

verify_result qbo_connector::verify(const http::request& req) const {
    verify_result r;
    const auto check =
        verify_signature(settings_.verifier_token, req.body, req.header_value(signature_header));
    if (check != signature_check::ok) {
        r.reason = std::string(to_string(check));
        return r;
    }
    r.accepted = true;
    r.dedup_key = "sha256:" + util::hex_encode(util::sha256(req.body));
    return r;
}

std::string qbo_connector::check_payload(std::string_view body) const {
    const auto parsed = parse_webhook(body, {settings_.realm_id});
    return parsed.ok() ? std::string() : parsed.error;
}

// ---- resolve: fetch after notify ---------------------------------------------------------------

net::awaitable<resolve_outcome> qbo_connector::resolve(const state::inbox_event& e) {
    if (!e.kind.empty()) {
        co_return resolve_outcome{};  // polled pages hold whole entities already
    }
    resolve_outcome out;
    const auto parsed = parse_webhook(e.body, {settings_.realm_id});
    if (!parsed.ok()) {
        out.k = resolve_outcome::kind::permanent;
        out.detail = parsed.error;
        co_return out;
    }
    // Which entities to read, each once however often the delivery names it.
    std::map<std::string, std::set<std::string>, std::less<>> wanted;
    std::uint64_t unknown_realm = 0;
    std::uint64_t unknown_entity = 0;
    bool time_changed = false;
    for (const auto& ev : parsed.events) {
        if (!ev.realm_known) {
            ++unknown_realm;
            continue;
        }
        time_changed =
            time_changed || ev.entity_name == "TimeActivity" || ev.entity_name == "Employee";
        if (!ev.entity_known || ev.entity_name == "TimeActivity") {
            ++unknown_entity;
            continue;
        }
        if (ev.op != operation::deleted) {
            wanted[ev.entity_name].insert(ev.entity_id);
        }
    }
    if (unknown_realm + unknown_entity > 0) {
        std::lock_guard lock(impl_->status_mutex);
        impl_->unknown_realm_events += unknown_realm;
        impl_->unknown_entity_events += unknown_entity;
    }
    if (time_changed) {
        // Not read here: the time sync reads employees and activities by LastUpdatedTime, so
        // the next poll, which runs it, is due at once.
        impl_->next_poll_at = std::min(impl_->next_poll_at, impl_->rt.clock->now());
    }
    if (unknown_realm > 0 && impl_->rt.log) {
        impl_->rt.log->warn(
            "QBO webhook events for a realm not configured were ignored connector={} count={}",
            settings_.name,
            unknown_realm);
    }
    std::map<std::string, json, std::less<>> fetched;  // "Entity/Id" -> object
    for (const auto& [entity, ids] : wanted) {
        std::vector<std::string> list(ids.begin(), ids.end());
        for (std::size_t i = 0; i < list.size(); i += settings_.ids_per_query) {
            const auto end = std::min(list.size(), i + settings_.ids_per_query);
            api_result r;
            if (end - i == 1) {
                r = co_await impl_->get("/" + lower(entity) + "/" + list[i]);
            } else {
                std::string in;
                for (auto k = i; k < end; ++k) {
                    in += (in.empty() ? "" : ",") + literal(list[k]);
                }
                // A query leaves inactive customers and items out unless it asks about Active:
                // one made inactive must be read as inactive, not taken for deleted.
                const bool has_active = entity == "Customer" || entity == "Item";
                r = co_await impl_->query("SELECT * FROM " + entity + " WHERE Id IN (" + in + ")" +
                                          (has_active ? " AND Active IN (true, false)" : "") +
                                          " MAXRESULTS 1000");
            }
            if (!r.ok() && r.error->cond == condition::not_found) {
                continue;  // gone since: mapped as deleted below
            }
            if (!r.ok()) {
                out.k = r.error->cond == condition::invalid_request ||
                                r.error->cond == condition::permanent
                            ? resolve_outcome::kind::permanent
                            : resolve_outcome::kind::retry;
                out.detail = r.error->message;
                if (r.error->retry_after) {
                    out.retry_after =
                        std::chrono::ceil<std::chrono::seconds>(*r.error->retry_after);
                }
                co_return out;
            }
            std::string error;
            auto doc = mappings::parse_exact(r.body, error);
            if (!doc) {
                out.k = resolve_outcome::kind::retry;
                out.detail = "unreadable QBO answer: " + error;
                co_return out;
            }
            if (const auto* obj = mq::entity_object(*doc, entity)) {
                fetched[entity + "/" + text_of(*obj, "Id")] = *obj;
            } else if (const auto* rows = query_rows(*doc, entity)) {
                for (const auto& row : *rows) {
                    fetched[entity + "/" + text_of(row, "Id")] = row;
                }
            }
        }
    }
    json items = json::array();
    std::set<std::string> emitted;
    for (const auto& ev : parsed.events) {
        if (!ev.realm_known || !ev.entity_known || ev.entity_name == "TimeActivity") {
            continue;
        }
        const auto key = ev.entity_name + "/" + ev.entity_id;
        // One item per entity: its current state covers every event about it.
        if (!emitted.insert(key).second) {
            continue;
        }
        json item{{"entity", ev.entity_name},
                  {"id", ev.entity_id},
                  {"op", std::string(to_string(ev.op))},
                  {"void", ev.op == operation::voided}};
        if (auto it = fetched.find(key); it != fetched.end()) {
            item["object"] = it->second;
        } else {
            item["object"] = nullptr;  // deleted (or gone by the time we asked)
        }
        items.push_back(std::move(item));
    }
    out.body = json{{"resolved", std::move(items)}}.dump();
    co_return out;
}

net::awaitable<resolve_outcome> qbo_connector::refresh(std::string entity_type,
                                                       mappings::source_ref ref) {
    resolve_outcome out;
    std::string entity;
    if (entity_type == "invoice") {
        entity = "Invoice";
    } else if (entity_type == "client") {
        entity = "Customer";
    } else if (entity_type == "payment") {
        entity = "Payment";
    }
    if (entity.empty() || ref.id.empty() ||
        (!ref.account.empty() && ref.account != settings_.realm_id)) {
        co_return out;  // not ours to re-read: use what is stored
    }
    auto r = co_await impl_->get("/" + lower(entity) + "/" + ref.id);
    json item{{"entity", entity}, {"id", ref.id}, {"op", "updated"}, {"void", false}};
    if (!r.ok() && r.error->cond == condition::not_found) {
        item["object"] = nullptr;
    } else if (!r.ok()) {
        out.k = resolve_outcome::kind::retry;
        out.detail = r.error->message;
        co_return out;
    } else {
        std::string error;
        auto doc = mappings::parse_exact(r.body, error);
        const auto* obj = doc ? mq::entity_object(*doc, entity) : nullptr;
        if (obj == nullptr) {
            out.k = resolve_outcome::kind::retry;
            out.detail = "unreadable QBO answer: " + error;
            co_return out;
        }
        item["object"] = *obj;
    }
    out.body = json{{"resolved", json::array({std::move(item)})}}.dump();
    co_return out;
}

// ---- process: vendor objects -> canonical entities and changes ---------------------------------

state::result<std::vector<mappings::change>> qbo_connector::process(const state::inbox_event& e,
                                                                    const state::store& st,
                                                                    state::batch& b) {
    using result_t = state::result<std::vector<mappings::change>>;
    std::string error;
    auto doc = mappings::parse_exact(e.body, error);
    if (!doc) {
        return result_t::failure(state::status::failure("unreadable event: " + error));
    }
    // (entity, object, void hint), in application order.
    struct item {
        std::string entity;
        json object;
        bool void_hint = false;
    };
    std::vector<item> items;
    if (e.kind.empty()) {
        auto it = doc->find("resolved");
        if (it == doc->end() || !it->is_array()) {
            return result_t::failure(
                state::status::failure("webhook event was not resolved before mapping"));
        }
        for (const auto& r : *it) {
            item x{text_of(r, "entity"), r.value("object", json()), r.value("void", false)};
            if (x.object.is_null()) {
                x.object = json{{"Id", text_of(r, "id")}, {"status", "Deleted"}};
            }
            items.push_back(std::move(x));
        }
    } else if (e.kind == "entities") {
        for (const auto entity : mapped_entities) {
            if (const auto* rows = query_rows(*doc, entity)) {
                for (const auto& row : *rows) {
                    items.push_back({std::string(entity), row, false});
                }
            }
        }
    } else if (e.kind == "cdc") {
        auto cdc = doc->find("CDCResponse");
        if (cdc != doc->end() && cdc->is_array()) {
            for (const auto& part : *cdc) {
                auto qrs = part.find("QueryResponse");
                if (qrs == part.end() || !qrs->is_array()) {
                    continue;
                }
                for (const auto entity : sync_entities) {
                    for (const auto& qr : *qrs) {
                        if (auto rows = qr.find(entity); rows != qr.end() && rows->is_array()) {
                            for (const auto& row : *rows) {
                                items.push_back({std::string(entity), row, false});
                            }
                        }
                    }
                }
            }
        }
    } else {
        return result_t::failure(state::status::failure("unknown QBO event kind '" + e.kind + "'"));
    }
    // Clients before invoices before payments, each kind in arrival order (bucketed rather than
    // std::stable_sort, whose temporary buffer clang flags as deprecated in libstdc++ 12).
    {
        std::vector<item> ordered;
        ordered.reserve(items.size());
        for (const auto entity : mapped_entities) {
            for (auto& x : items) {
                if (x.entity == entity) {
                    ordered.push_back(std::move(x));
                }
            }
        }
        items = std::move(ordered);
    }

    std::vector<mappings::change> changes;
    auto opts = impl_->options(st);
    auto skip = [this](const std::string& entity, const std::string& why) {
        {
            std::lock_guard lock(impl_->status_mutex);
            ++impl_->unmappable;
        }
        if (impl_->rt.log) {
            impl_->rt.log->error("QBO object skipped connector={} entity={} error=\"{}\"",
                                 settings_.name,
                                 entity,
                                 why);
        }
    };
    for (const auto& x : items) {
        opts.void_hint = x.void_hint;
        std::optional<mappings::entity> entity;
        std::string why;
        const auto take = [&](auto m) {
            if (m) {
                entity.emplace(std::move(*m.value));
            } else {
                why = m.error;
            }
        };
        if (x.entity == "Invoice") {
            take(mq::map_invoice(x.object, opts));
        } else if (x.entity == "Customer") {
            take(mq::map_customer(x.object, opts));
        } else if (x.entity == "Payment") {
            take(mq::map_payment(x.object, opts));
        } else if (x.entity == "Employee") {
            take(mq::map_employee(x.object, opts));
        } else if (x.entity == "TimeActivity") {
            take(mq::map_time_activity(x.object, opts));
        } else if (x.entity == "Item") {
            take(mq::map_item(x.object, opts));
        } else {
            continue;
        }
        if (!entity) {
            skip(x.entity, why);
            continue;
        }
        auto applied = state::apply(st, b, settings_.name, std::move(*entity));
        if (!applied.ok()) {
            return result_t::failure(applied.st);
        }
        if (applied.value) {
            changes.push_back(std::move(*applied.value));
        }
    }
    return {state::status::success(), std::move(changes)};
}

// ---- polling -----------------------------------------------------------------------------------

std::optional<util::instant> qbo_connector::next_poll() const {
    if (impl_->tokens.state() == oauth2::credential_state::reconnect_needed ||
        impl_->tokens.state() == oauth2::credential_state::not_connected) {
        // Nothing to poll with; `billsync connect` and a reload bring it back.
        return impl_->next_poll_at + settings_.poll_interval;
    }
    return impl_->next_poll_at;
}

net::awaitable<poll_outcome> qbo_connector::poll(const state::store& st) {
    poll_outcome out;
    auto& im = *impl_;
    const auto now = im.rt.clock->now();
    auto fail = [&](std::string message) {
        ++im.poll_failures;
        im.next_poll_at = now + poll_backoff(im.poll_failures, settings_.poll_interval);
        out.error = std::move(message);
    };
    auto stored = load_cursor<sync_cursor>(st, cursor_key());
    if (!stored.error.empty()) {
        fail(std::move(stored.error));
        co_return out;
    }
    sync_cursor c;
    if (stored.value) {
        c = *stored.value;
    } else {
        c.ph = sync_cursor::phase::backfill;
        c.started_at = now;
        c.since = now;
    }
    // The steps of a backfill or catch-up: the Item step only with sync_items.
    const auto steps =
        static_cast<std::uint32_t>(sync_entities.size() - (settings_.sync_items ? 0 : 1));
    // A poll that read what it asked for: the cursor is committed with its events.
    const auto commit = [&] {
        im.poll_failures = 0;
        if (out.more) {
            im.next_poll_at = now;
        }
        out.cursors.emplace_back(cursor_key(), c.encode());
        std::lock_guard lock(im.status_mutex);
        im.cursor = c;
    };
    if (c.ph == sync_cursor::phase::cdc && settings_.sync_items && !c.items_read) {
        // Synced before items were read: read them all once (the Item step alone), then CDC
        // from the same `since` (the backfill ends at started_at less the overlap).
        if (im.rt.log) {
            im.rt.log->info("QBO reading every Item once connector={}", settings_.name);
        }
        const auto since = c.since;
        c = sync_cursor{};
        c.ph = sync_cursor::phase::backfill;
        c.step = static_cast<std::uint32_t>(sync_entities.size() - 1);
        c.started_at = since + settings_.cdc_overlap;
        c.since = since;
    }
    if (c.ph == sync_cursor::phase::cdc && now - c.since > settings_.cdc_lookback) {
        // Away longer than CDC reaches back: read everything changed since, page by page.
        if (im.rt.log) {
            im.rt.log->warn(
                "QBO sync gap exceeds the CDC look-back; catching up with queries connector={} "
                "since={}",
                settings_.name,
                util::format_rfc3339(c.since));
        }
        c.ph = sync_cursor::phase::catchup;
        c.step = 0;
        c.after_id = 0;
        c.done = 0;
        c.total = 0;
        c.started_at = now;
    }
    if (c.ph != sync_cursor::phase::cdc) {
        if (c.step == 0 && c.after_id == 0 && c.total == 0) {
            // Progress needs a total: one COUNT per entity at the start of the phase.
            for (std::uint32_t step = 0; step < steps; ++step) {
                auto probe = c;
                probe.step = step;
                auto q = step_query(probe, now, settings_.backfill_payments);
                q.replace(0, 8, "SELECT COUNT(*)");
                auto r = co_await im.query(q);
                if (!r.ok()) {
                    fail("count failed: " + r.error->message);
                    co_return out;
                }
                const auto j = json::parse(r.body, nullptr, false);
                if (j.is_object() && j.contains("QueryResponse")) {
                    c.total += j["QueryResponse"].value("totalCount", std::uint64_t{0});
                }
            }
        }
        // The phase ends after its last step; a cursor left on the Item step by a connector that
        // no longer reads items ends it at once.
        const auto finish_phase = [&] {
            const auto started = c.started_at;
            if (im.rt.log) {
                im.rt.log->info("QBO {} finished connector={} rows={}",
                                phase_name(c.ph),
                                settings_.name,
                                c.done);
            }
            c = sync_cursor{};
            c.ph = sync_cursor::phase::cdc;
            c.started_at = now;
            c.since = started - settings_.cdc_overlap;
            c.items_read = settings_.sync_items;
        };
        if (c.step >= steps) {
            finish_phase();
            out.more = true;
            commit();
            co_return out;
        }
        const auto q = page_query(c, now, settings_.backfill_payments, settings_.page_size);
        auto r = co_await im.query(q);
        if (!r.ok()) {
            fail("query failed: " + r.error->message);
            co_return out;
        }
        const auto j = json::parse(r.body, nullptr, false);
        if (!j.is_object()) {
            fail("query answer is not JSON");
            co_return out;
        }
        const auto* rows = query_rows(j, sync_entities.at(c.step));
        const auto n = rows != nullptr ? rows->size() : 0;
        std::uint64_t last_id = 0;
        if (rows != nullptr) {
            for (const auto& row : *rows) {
                const auto id = text_of(row, "Id");
                std::uint64_t v = 0;
                if (std::from_chars(id.data(), id.data() + id.size(), v).ec == std::errc()) {
                    last_id = std::max(last_id, v);
                }
            }
        }
        if (n > 0) {
            out.events.push_back({"entities", std::move(r.body)});
        }
        c.done += n;
        if (n < settings_.page_size || last_id <= c.after_id) {
            ++c.step;
            c.after_id = 0;
        } else {
            c.after_id = last_id;
        }
        if (c.step >= steps) {
            finish_phase();
        }
        out.more = true;
    } else {
        std::string err;
        if (settings_.sync_time) {
            err = co_await im.time_sync(st, now, out);
        }
        if (!err.empty()) {
            out.events.clear();
            out.cursors.clear();
            fail(std::move(err));
            co_return out;
        }
        auto r = co_await im.get(
            "/cdc",
            std::string(settings_.sync_items ? "entities=Customer,Invoice,Payment,Item"
                                             : "entities=Customer,Invoice,Payment") +
                "&changedSince=" + http::percent_encode(util::format_rfc3339(c.since)));
        if (!r.ok()) {
            fail("CDC failed: " + r.error->message);
            co_return out;
        }
        const auto j = json::parse(r.body, nullptr, false);
        if (!j.is_object()) {
            fail("CDC answer is not JSON");
            co_return out;
        }
        const auto count = cdc_object_count(j);
        if (count >= settings_.cdc_cap) {
            // Capped: the answer may be missing objects. Read the window exactly instead.
            if (im.rt.log) {
                im.rt.log->warn(
                    "QBO CDC answer reached its cap; catching up with queries "
                    "connector={} objects={}",
                    settings_.name,
                    count);
            }
            const auto since = c.since;
            c = sync_cursor{};
            c.ph = sync_cursor::phase::catchup;
            c.started_at = now;
            c.since = since;
            out.more = true;
        } else {
            const auto server_time = instant_of(j, "time").value_or(now);
            if (count > 0) {
                out.events.push_back({"cdc", std::move(r.body)});
            }
            c.since = std::max(c.since, server_time - settings_.cdc_overlap);
            im.next_poll_at = now + settings_.poll_interval;
        }
    }
    commit();
    co_return out;
}

// ---- actions -----------------------------------------------------------------------------------

namespace {

action_outcome make_outcome(action_outcome::kind k, std::string detail) {
    action_outcome o;
    o.k = k;
    o.detail = std::move(detail);
    return o;
}

action_outcome outcome_of(const qbo_connector::api_result& r, std::string done_detail) {
    action_outcome o;
    if (r.ok()) {
        o.k = action_outcome::kind::done;
        o.detail = std::move(done_detail);
        return o;
    }
    o.detail = r.error->message;
    switch (r.error->cond) {
        case condition::retryable:
        case condition::rate_limited:
        case condition::auth_expired:
        case condition::auth_revoked:
        case condition::conflict:
            o.k = action_outcome::kind::retry;
            if (r.error->retry_after) {
                o.retry_after = std::chrono::ceil<std::chrono::seconds>(*r.error->retry_after);
            }
            break;
        default:
            o.k = action_outcome::kind::permanent;
    }
    return o;
}

std::string entity_id_in(const std::string& body, std::string_view entity) {
    const auto j = json::parse(body, nullptr, false);
    if (j.is_object()) {
        if (auto it = j.find(entity); it != j.end() && it->is_object()) {
            return text_of(*it, "Id");
        }
    }
    return {};
}

// The result of an invoice.create: "Invoice/<Id> #<DocNumber>" (the number when QBO gave one).
std::string invoice_result(const json& inv) {
    auto out = "Invoice/" + text_of(inv, "Id");
    if (const auto doc = text_of(inv, "DocNumber"); !doc.empty()) {
        out += " #" + doc;
    }
    return out;
}

std::string invoice_result_in(const std::string& body) {
    const auto j = json::parse(body, nullptr, false);
    const auto* inv = j.is_object() ? mq::entity_object(j, "Invoice") : nullptr;
    return invoice_result(inv != nullptr ? *inv : json::object());
}

// The canonical invoice of an invoice.create action; its key must be the action id.
mappings::parsed_invoice_draft canonical_invoice(const state::action& a) {
    auto d = mappings::parse_invoice_draft(std::string_view(a.payload));
    if (d && d.value->key != a.id) {
        d.value.reset();
        d.error = "\"key\" differs from the action id";
    }
    return d;
}

constexpr std::string_view canonical_create = "invoice.create";
constexpr std::string_view time_create = "time_entry.create";  // the draft-time workflow's

bool all_digits(std::string_view s) {
    return !s.empty() &&
           std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// The TimeActivity whose Description carries the key, among a query's rows; nullptr when none.
const json* activity_with_key(const json& doc, std::string_view key) {
    const auto* rows = query_rows(doc, "TimeActivity");
    if (rows == nullptr) {
        return nullptr;
    }
    for (const auto& row : *rows) {
        if (mq::key_in_description(text_of(row, "Description")) == key) {
            return &row;
        }
    }
    return nullptr;
}

}  // namespace

std::string qbo_connector::serial_key(const state::action& a) const {
    if (a.kind != "qbo.send_invoice" && a.kind != "invoice.send" && a.kind != "qbo.void_invoice") {
        return {};  // creations carry a requestid and modify nothing that exists
    }
    const auto payload = json::parse(a.payload, nullptr, false);
    const auto id = payload.is_object() ? text_of(payload, "id") : std::string();
    return id.empty() ? std::string() : "invoice/" + id;
}

net::awaitable<action_outcome> qbo_connector::perform(state::action a) {
    // "invoice.send" (the workflows' ledger-neutral name) is this ledger's send.
    if (a.kind == "invoice.send") {
        a.kind = "qbo.send_invoice";
    }
    auto& im = *impl_;
    const auto payload = json::parse(a.payload, nullptr, false);
    if (!payload.is_object()) {
        co_return make_outcome(action_outcome::kind::permanent, "payload is not a JSON object");
    }
    if (a.kind == time_create) {
        auto draft = mq::parse_time_draft(a.payload, a.id);
        if (!draft) {
            co_return make_outcome(action_outcome::kind::permanent,
                                   "invalid time_entry.create payload: " + draft.error);
        }
        const auto& d = *draft.value;
        // The service item the work type's `task` names: its Id, or an active Item's Name.
        const bool by_id = all_digits(d.task);
        api_result found;
        if (by_id) {
            found = co_await im.get("/item/" + d.task);
        } else {
            found = co_await im.query("SELECT * FROM Item WHERE Name = " + literal(d.task) +
                                      " MAXRESULTS 10");
        }
        if (!found.ok() && !(by_id && found.error->cond == condition::not_found)) {
            co_return outcome_of(found, "");
        }
        json item = json::object();
        if (found.ok()) {
            std::string error;
            auto doc = mappings::parse_exact(found.body, error);
            if (!doc) {
                co_return make_outcome(action_outcome::kind::retry,
                                       "unreadable QBO item answer: " + error);
            }
            if (const auto* obj = mq::entity_object(*doc, "Item")) {
                item = *obj;
            } else if (const auto* rows = query_rows(*doc, "Item");
                       rows != nullptr && !rows->empty()) {
                item = rows->front();
            }
        }
        const auto missing = [&](std::string why) {
            {
                std::lock_guard lock(im.status_mutex);
                im.missing_items.insert(d.task);
            }
            return make_outcome(action_outcome::kind::permanent, std::move(why));
        };
        if (text_of(item, "Id").empty() || !item.value("Active", true)) {
            co_return missing("QBO has no active service item " +
                              std::string(by_id ? "with Id '" : "named '") + d.task +
                              "' (the [draft_time.work_types] task)");
        }
        if (const auto type = text_of(item, "Type"); !type.empty() && type != "Service") {
            co_return missing("QBO item '" + d.task + "' is of type " + type +
                              ", not a service item");
        }
        mq::service_item service{text_of(item, "Id"), text_of(item, "Name"), std::nullopt};
        if (auto price = item.find("UnitPrice"); price != item.end()) {
            service.unit_price = mappings::decimal_text(*price);
        }
        if (d.billable && !service.unit_price) {
            co_return make_outcome(action_outcome::kind::permanent,
                                   "QBO service item '" + service.name +
                                       "' has no rate (UnitPrice): billable time needs an "
                                       "HourlyRate");
        }
        // The requestid makes a resend of this action (a lost answer, a retry) Intuit's replay
        // of the first answer, never a second TimeActivity. The entry reaches the canonical
        // model with the next time sync.
        auto r = co_await im.post(
            "/timeactivity", "", mq::time_activity_body(d, service), request_id(a.id));
        co_return outcome_of(r, "TimeActivity/" + entity_id_in(r.body, "TimeActivity"));
    }
    const bool canonical = a.kind == canonical_create;
    if (canonical || a.kind == "qbo.create_invoice" || a.kind == "qbo.create_customer") {
        const bool invoice = a.kind != "qbo.create_customer";
        const std::string entity = invoice ? "Invoice" : "Customer";
        std::string body;
        if (canonical) {
            // A vendor-neutral invoice from the invoicing workflow: translated, never sent when
            // it does not validate.
            auto draft = canonical_invoice(a);
            if (!draft) {
                co_return make_outcome(action_outcome::kind::permanent,
                                       "invalid invoice.create payload: " + draft.error);
            }
            body = mq::invoice_create_body(*draft.value);
        } else {
            body = payload.dump();
        }
        auto r = co_await im.post(
            invoice ? "/invoice" : "/customer", "", std::move(body), request_id(a.id));
        if (!r.ok() && r.fault == mq::fault_kind::duplicate) {
            // Someone (or an earlier attempt) created it already: link to it, do not fail.
            auto found = co_await reconcile(a);
            if (found.k == reconcile_outcome::kind::happened) {
                co_return make_outcome(action_outcome::kind::done, found.detail);
            }
        }
        co_return outcome_of(
            r, canonical ? invoice_result_in(r.body) : entity + "/" + entity_id_in(r.body, entity));
    }
    const auto id = text_of(payload, "id");
    if (id.empty()) {
        co_return make_outcome(action_outcome::kind::permanent, "payload has no \"id\"");
    }
    if (a.kind == "qbo.send_invoice") {
        std::string query;
        if (const auto to = text_of(payload, "send_to"); !to.empty()) {
            query = "sendTo=" + http::percent_encode(to);
        }
        auto r = co_await im.post(
            "/invoice/" + id + "/send", query, "", request_id(a.id), "application/octet-stream");
        co_return outcome_of(r, "Invoice/" + id + " sent");
    }
    if (a.kind == "qbo.void_invoice") {
        // Built on the current SyncToken; a stale one (5010) means re-read and re-apply.
        api_result last;
        for (int tries = 0; tries < 3; ++tries) {
            auto cur = co_await im.get("/invoice/" + id);
            if (!cur.ok()) {
                co_return outcome_of(cur, "");
            }
            const auto j = json::parse(cur.body, nullptr, false);
            const auto inv = j.is_object() ? j.value("Invoice", json::object()) : json::object();
            if (text_of(inv, "PrivateNote").starts_with("Voided")) {
                co_return make_outcome(action_outcome::kind::done, "Invoice/" + id + " voided");
            }
            const auto sync_token = text_of(inv, "SyncToken");
            json body{{"Id", id}, {"SyncToken", sync_token}};
            last = co_await im.post(
                "/invoice", "operation=void", body.dump(), request_id(a.id, sync_token));
            if (last.ok() || last.fault != mq::fault_kind::conflict) {
                break;
            }
        }
        co_return outcome_of(last, "Invoice/" + id + " voided");
    }
    co_return make_outcome(action_outcome::kind::permanent,
                           "unknown QBO action kind '" + a.kind + "'");
}

net::awaitable<reconcile_outcome> qbo_connector::reconcile(state::action a) {
    // "invoice.send" (the workflows' ledger-neutral name) is this ledger's send.
    if (a.kind == "invoice.send") {
        a.kind = "qbo.send_invoice";
    }
    auto& im = *impl_;
    reconcile_outcome out;
    const auto payload = json::parse(a.payload, nullptr, false);
    if (!payload.is_object()) {
        out.k = reconcile_outcome::kind::absent;  // perform() will dead-letter it
        co_return out;
    }
    if (a.kind == time_create) {
        // The key is in Description, which QBO's query language cannot filter on: the time
        // activities of the draft's date are read and the one carrying the key is adopted.
        const auto draft = mq::parse_time_draft(a.payload, a.id);
        if (!draft) {
            out.k = reconcile_outcome::kind::absent;  // perform() will dead-letter it
            co_return out;
        }
        auto r = co_await im.query("SELECT * FROM TimeActivity WHERE TxnDate = " +
                                   literal(mappings::format_civil_date(draft.value->date)) +
                                   " MAXRESULTS 1000");
        if (!r.ok()) {
            out.detail = r.error->message;
            co_return out;
        }
        const auto j = json::parse(r.body, nullptr, false);
        if (!j.is_object() || !j.contains("QueryResponse")) {
            out.detail = "unreadable QBO query answer";
            co_return out;  // undecided: asked again later
        }
        if (const auto* row = activity_with_key(j, a.id)) {
            out.k = reconcile_outcome::kind::happened;
            out.detail = "TimeActivity/" + text_of(*row, "Id") + " (existing)";
        } else {
            out.k = reconcile_outcome::kind::absent;
        }
        co_return out;
    }
    if (a.kind == canonical_create) {
        // The key is in PrivateNote, which QBO's query language cannot filter on: the invoices
        // of the customer on the issue date are read and the one carrying the key's marker is
        // adopted.
        const auto draft = canonical_invoice(a);
        if (!draft) {
            out.k = reconcile_outcome::kind::absent;  // perform() will dead-letter it
            co_return out;
        }
        const auto marker = mappings::key_marker(draft.value->key);
        auto r = co_await im.query(
            "SELECT * FROM Invoice WHERE CustomerRef = " + literal(draft.value->client_ref) +
            " AND TxnDate = " + literal(mappings::format_civil_date(draft.value->issue_date)) +
            " MAXRESULTS 1000");
        if (!r.ok()) {
            out.detail = r.error->message;
            co_return out;
        }
        const auto j = json::parse(r.body, nullptr, false);
        if (!j.is_object() || !j.contains("QueryResponse")) {
            out.detail = "unreadable QBO query answer";
            co_return out;  // undecided: asked again later
        }
        const auto* rows = query_rows(j, "Invoice");  // absent when nothing matched
        out.k = reconcile_outcome::kind::absent;
        if (rows != nullptr) {
            for (const auto& row : *rows) {
                if (text_of(row, "PrivateNote").find(marker) != std::string::npos) {
                    out.k = reconcile_outcome::kind::happened;
                    out.detail = invoice_result(row);
                    break;
                }
            }
        }
        co_return out;
    }
    std::string statement;
    std::string entity;
    if (a.kind == "qbo.create_invoice") {
        entity = "Invoice";
        if (const auto doc = text_of(payload, "DocNumber"); !doc.empty()) {
            statement = "SELECT * FROM Invoice WHERE DocNumber = " + literal(doc);
        }
    } else if (a.kind == "qbo.create_customer") {
        entity = "Customer";
        if (const auto name = text_of(payload, "DisplayName"); !name.empty()) {
            statement = "SELECT * FROM Customer WHERE DisplayName = " + literal(name);
        }
    }
    if (!entity.empty()) {
        if (statement.empty()) {
            // Nothing to look up by; a new attempt carries the same requestid, which Intuit
            // answers with the first response instead of creating a second record.
            out.k = reconcile_outcome::kind::absent;
            co_return out;
        }
        auto r = co_await im.query(statement);
        if (!r.ok()) {
            out.detail = r.error->message;
            co_return out;
        }
        const auto j = json::parse(r.body, nullptr, false);
        const auto* rows = j.is_object() ? query_rows(j, entity) : nullptr;
        if (rows != nullptr && !rows->empty()) {
            out.k = reconcile_outcome::kind::happened;
            out.detail = entity + "/" + text_of(rows->front(), "Id") + " (existing)";
        } else {
            out.k = reconcile_outcome::kind::absent;
        }
        co_return out;
    }
    const auto id = text_of(payload, "id");
    if (id.empty() || (a.kind != "qbo.send_invoice" && a.kind != "qbo.void_invoice")) {
        out.k = reconcile_outcome::kind::absent;
        co_return out;
    }
    auto cur = co_await im.get("/invoice/" + id);
    if (!cur.ok()) {
        out.detail = cur.error->message;
        co_return out;
    }
    const auto j = json::parse(cur.body, nullptr, false);
    const auto inv = j.is_object() ? j.value("Invoice", json::object()) : json::object();
    const bool happened = a.kind == "qbo.send_invoice"
                              ? email_sent_since(inv, a.first_attempt_at)
                              : text_of(inv, "PrivateNote").starts_with("Voided");
    out.k = happened ? reconcile_outcome::kind::happened : reconcile_outcome::kind::absent;
    co_return out;
}

// ---- status ------------------------------------------------------------------------------------

std::string qbo_connector::status_json() const {
    auto& im = *impl_;
    const auto now = im.rt.clock->now();
    json j;
    j["realm_id"] = settings_.realm_id;
    j["credential"] = std::string(oauth2::to_string(im.tokens.state()));
    std::vector<std::string> missing;  // required scopes the stored grant lacks
    if (im.rt.tokens != nullptr) {
        auto cred = oauth2::load_credential(*im.rt.tokens, im.tokens.credential_id());
        if (cred.ok() && cred.value) {
            j["token_expires_at"] = util::format_rfc3339(cred.value->access_expires_at);
            if (cred.value->refresh_expires_at) {
                j["refresh_token_expires_at"] =
                    util::format_rfc3339(*cred.value->refresh_expires_at);
            }
            j["scope"] = cred.value->scope;
            missing = oauth2::missing_scopes(cred.value->scope, settings_.required_scope);
        }
    }
    const auto stats = im.rt.limiter->stats("qbo", settings_.realm_id);
    j["rate_limit"] = {
        {"in_flight", stats.in_flight}, {"waiting", stats.waiting}, {"available", stats.available}};
    std::lock_guard lock(im.status_mutex);
    auto when = [](const std::optional<util::instant>& t) {
        return t ? json(util::format_rfc3339(*t)) : json(nullptr);
    };
    j["last_success"] = when(im.last_success);
    j["last_error"] = im.last_error_at ? json{{"at", util::format_rfc3339(*im.last_error_at)},
                                              {"message", im.last_error}}
                                       : json(nullptr);
    j["requests"] = im.requests;
    j["failures"] = im.failures;
    j["skipped_objects"] = im.unmappable;
    j["missing_in_qbo"] = im.missing_items;
    j["time_cursor"] = im.time_cursor.is_object() ? im.time_cursor : json(nullptr);
    j["ignored_events"] = {{"unknown_realm", im.unknown_realm_events},
                           {"unknown_entity", im.unknown_entity_events}};
    if (im.cursor) {
        const auto& c = *im.cursor;
        json cur{
            {"phase", std::string(phase_name(c.ph))},
            {"since", util::format_rfc3339(c.since)},
            {"age_s", std::chrono::duration_cast<std::chrono::seconds>(now - c.since).count()}};
        if (c.ph != sync_cursor::phase::cdc) {
            const auto elapsed =
                std::chrono::duration_cast<std::chrono::milliseconds>(now - c.started_at).count();
            // Rates and ETA are figures for people; integers per second are enough.
            const auto rate =
                elapsed > 0
                    ? static_cast<std::int64_t>(c.done * 1000 / static_cast<std::uint64_t>(elapsed))
                    : 0;
            const auto left = c.total > c.done ? c.total - c.done : 0;
            cur["progress"] = {
                {"done", c.done},
                {"total", c.total},
                {"rate_per_s", rate},
                {"eta_s",
                 rate > 0 ? json(left / static_cast<std::uint64_t>(rate)) : json(nullptr)}};
        }
        j["cursor"] = std::move(cur);
    } else {
        j["cursor"] = nullptr;
    }
    if (!im.last_error.empty() && im.tokens.state() == oauth2::credential_state::reconnect_needed) {
        j["action_needed"] = "run `billsync connect " + settings_.name + " --config FILE`";
    }
    // The grant predates a scope the connector needs now: consent again (docs/operations.md).
    if (!missing.empty()) {
        j["reconsent_needed"] = true;
        j["missing_scopes"] = missing;
        if (!j.contains("action_needed")) {
            j["action_needed"] = oauth2::reconsent_action(settings_.name, missing);
        }
    }
    return j.dump();
}

}  // namespace billsync::connectors::qbo
