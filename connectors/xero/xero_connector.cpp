#include "connectors/xero/xero_connector.hpp"

#include <spdlog/logger.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>

#include "connectors/runtime/rate_limit.hpp"
#include "connectors/runtime/retry.hpp"
#include "connectors/xero/xero_kind.hpp"
#include "connectors/xero/xero_webhook.hpp"
#include "http/message.hpp"
#include "mappings/invoice_draft.hpp"
#include "mappings/xero/xero_invoice_out.hpp"
#include "mappings/xero/xero_mapping.hpp"
#include "state/apply.hpp"
#include "state/tables.hpp"
#include "util/crypto.hpp"
#include "util/metrics.hpp"

namespace billsync::connectors::xero {

namespace {

using json = nlohmann::json;
namespace mx = mappings::xero;

constexpr std::string_view api_root = "/api.xro/2.0";
// Applied in this order: contacts before the invoices naming them, invoices before payments;
// items last (a cursor written before items were read keeps its steps).
constexpr std::array<std::string_view, 4> collections = {
    "Contacts", "Invoices", "Payments", "Items"};
// The app-wide minute limit is one key for every tenant.
constexpr std::string_view app_key = "xero-app";

std::string text_of(const json& j, std::string_view key) {
    auto it = j.find(key);
    return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::optional<util::instant> updated_of(const json& row) {
    const auto t = text_of(row, "UpdatedDateUTC");
    if (auto v = mx::parse_ms_date(t)) {
        return *v;
    }
    return mappings::parse_timestamp(t);
}

std::optional<std::uint32_t> header_count(const http_response& r, std::string_view name) {
    const auto v = r.header_value(name);
    std::uint32_t n = 0;
    if (v.empty() || std::from_chars(v.data(), v.data() + v.size(), n).ec != std::errc()) {
        return std::nullopt;
    }
    return n;
}

bool iequals(std::string_view a, std::string_view b) { return http::iequals(a, b); }

}  // namespace

// ---- pure pieces -------------------------------------------------------------------------------

std::string idempotency_key(std::string_view action_id, std::string_view variant) {
    std::string material(action_id);
    material += '\n';
    material += variant;
    return "billsync-" + util::hex_encode(util::sha256(material)).substr(0, 48);
}

std::string reference_for(std::string_view action_id) {
    return "billsync:" + util::hex_encode(util::sha256(action_id)).substr(0, 20);
}

std::string sync_cursor::encode() const {
    json s = json::array();
    for (const auto& t : since) {
        s.push_back(t ? json(util::format_rfc3339(*t)) : json(nullptr));
    }
    return json{{"phase", ph == phase::backfill ? "backfill" : "incremental"},
                {"step", step},
                {"since", std::move(s)},
                {"page", page},
                {"done", done},
                {"total", total},
                {"started_at", util::format_rfc3339(started_at)}}
        .dump();
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
    } else if (p == "incremental") {
        c.ph = phase::incremental;
    } else {
        return std::nullopt;
    }
    const auto s = j.find("since");
    // Three entries: written before items were read; their `since` starts empty.
    if (s == j.end() || !s->is_array() ||
        (s->size() != c.since.size() && s->size() != c.since.size() - 1)) {
        return std::nullopt;
    }
    for (std::size_t i = 0; i < s->size(); ++i) {
        const auto& v = (*s)[i];
        if (v.is_string()) {
            util::instant t{};
            if (!util::parse_rfc3339(v.get<std::string>(), t)) {
                return std::nullopt;
            }
            c.since[i] = t;
        } else if (!v.is_null()) {
            return std::nullopt;
        }
    }
    util::instant started{};
    if (!util::parse_rfc3339(text_of(j, "started_at"), started)) {
        return std::nullopt;
    }
    c.started_at = started;
    c.step = j.value("step", 0u);
    c.page = std::max(1u, j.value("page", 1u));
    c.done = j.value("done", std::uint64_t{0});
    c.total = j.value("total", std::uint64_t{0});
    if (c.step >= collections.size()) {
        return std::nullopt;
    }
    return c;
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
    if (const auto* v = s.value("tenant_id")) {
        out.tenant_id = *v;
    }
    if (const auto* v = s.find_secret("webhook_key")) {
        out.webhook_key = v->reveal();
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
    if (const auto* v = s.value("poll_interval_s")) {
        out.poll_interval = std::chrono::seconds(std::stoll(*v));
    }
    if (const auto* v = s.value("page_size")) {
        out.page_size = static_cast<std::size_t>(std::stoull(*v));
    }
    if (const auto* v = s.value("poll_reserve")) {
        out.poll_reserve = static_cast<std::uint32_t>(std::stoul(*v));
    }
    if (const auto* v = s.value("sync_items")) {
        out.sync_items = *v == "true";
    }
    return out;
}

// ---- the connector -----------------------------------------------------------------------------

struct api_result {
    unsigned status = 0;
    std::string body;
    std::optional<call_error> error;
    bool ok() const noexcept { return !error; }
};

struct xero_connector::impl {
    settings& s;
    runtime_deps rt;
    https_client http;
    oauth2::token_manager tokens;
    retry_policy reads;
    // Writes do not sit out a 429 inside the call: the outbox parks them for Retry-After (the
    // limiter pauses the tenant meanwhile), so a lane slot is not held by a waiting write.
    retry_policy writes;
    util::instant next_poll_at{};
    std::uint32_t poll_failures = 0;

    // What /status shows; written on the pipeline's strand, read from the status listener.
    mutable std::mutex status_mutex;
    std::optional<sync_cursor> cursor;
    std::optional<util::instant> last_success;
    std::optional<util::instant> last_error_at;
    std::optional<util::instant> last_webhook;
    std::string last_error;
    std::optional<std::uint32_t> day_remaining;
    std::optional<std::uint32_t> minute_remaining;
    std::optional<util::instant> day_limited_until;
    std::uint64_t requests = 0;
    std::uint64_t failures = 0;
    std::uint64_t throttled = 0;
    std::uint64_t unmappable = 0;
    std::uint64_t skipped_bills = 0;
    std::uint64_t unknown_tenant_events = 0;
    std::uint64_t polls_deferred = 0;

    util::counter* requests_total = nullptr;
    util::counter* errors_total = nullptr;

    impl(settings& st, runtime_deps r)
        : s(st),
          rt(std::move(r)),
          http(rt.executor, rt.http),
          tokens(
              oauth2::manager_settings{
                  .connector = st.name,
                  .credential_id = "xero/" + st.tenant_id,
                  .vendor = "xero",
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
        reads.max_total = std::chrono::seconds(90);
        writes = reads;
        writes.retry_rate_limited = false;
        next_poll_at = rt.clock->now();
        rt.limiter->set_limits(std::string(app_key), app_rate_limits());
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
        std::string u = s.base_url + std::string(api_root) + std::string(path);
        if (!query.empty()) {
            u += '?';
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

    // What every answer says about the budgets; a daily 429 parks polling until it lifts.
    void note_limits(const http_response& r) {
        std::lock_guard lock(status_mutex);
        if (auto d = header_count(r, "X-DayLimit-Remaining")) {
            day_remaining = d;
        }
        if (auto m = header_count(r, "X-MinLimit-Remaining")) {
            minute_remaining = m;
        }
        if (r.status == 429) {
            ++throttled;
            const auto problem = r.header_value("X-Rate-Limit-Problem");
            if (iequals(problem, "day") || iequals(problem, "daily")) {
                const auto wait = parse_retry_after(r.header_value("Retry-After"),
                                                    std::chrono::system_clock::now())
                                      .value_or(std::chrono::hours(1));
                day_limited_until =
                    rt.clock->now() + std::chrono::duration_cast<util::duration>(wait);
                day_remaining = 0;
            }
        }
    }

    // One attempt: a tenant permit and an app-wide permit, then the request.
    net::awaitable<http_result> attempt(http_request r) {
        auto permit = co_await rt.limiter->acquire("xero", s.tenant_id);
        auto app = co_await rt.limiter->acquire(std::string(app_key), "app");
        auto res = co_await http.send(std::move(r));
        if (res.ok()) {
            note_limits(res.response);
            if (!(res.response.status == 429 && day_limited_until)) {
                // A daily 429 is parked by the connector, not as a pause inside the limiter.
                rt.limiter->observe("xero", s.tenant_id, res.response);
            }
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

    // While a daily 429 holds, calls fail at once with the vendor's wait (parked, not looped).
    std::optional<call_error> parked() {
        std::lock_guard lock(status_mutex);
        const auto now = rt.clock->now();
        if (!day_limited_until || *day_limited_until <= now) {
            return std::nullopt;
        }
        call_error e;
        e.cond = condition::rate_limited;
        e.status = 429;
        e.retry_after = std::chrono::ceil<std::chrono::milliseconds>(*day_limited_until - now);
        e.message =
            "Xero daily limit reached; parked until " + util::format_rfc3339(*day_limited_until);
        return e;
    }

    // A call with the current access token, retried per policy; a 401 refreshes once.
    net::awaitable<api_result> call(http_request req, retry_policy policy) {
        if (auto e = parked()) {
            api_result out;
            out.status = 429;
            out.error = std::move(e);
            co_return out;
        }
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
            with.headers.push_back({"xero-tenant-id", s.tenant_id});
            with.headers.push_back({"Accept", "application/json"});
            retry_deps deps;
            deps.send = [this](http_request r) { return attempt(std::move(r)); };
            deps.time = rt.time;
            auto res = co_await send_with_retry(std::move(with), policy, std::move(deps));
            out.status = res.last.ok() ? res.last.response.status : 0;
            out.body = std::move(res.last.response.body);
            out.error = res.error;
            if (out.error && out.error->cond == condition::auth_expired && auth_try == 0) {
                tokens.invalidate(tok.token);
                continue;
            }
            if (out.error) {
                if (auto m = mx::error_message(out.body); !m.empty()) {
                    out.error->message += ": " + m;
                }
                if (out.status == 403) {
                    out.error->message +=
                        " (the tenant id is missing or not reachable with this grant: check "
                        "tenant_id)";
                }
                if (errors_total != nullptr) {
                    errors_total->inc();
                }
                note_error(out.error->message);
                if (rt.log) {
                    rt.log->warn("Xero call failed connector={} method={} status={} error=\"{}\"",
                                 s.name,
                                 req.method,
                                 out.status,
                                 out.error->message);
                }
            } else {
                std::lock_guard lock(status_mutex);
                last_success = rt.clock->now();
            }
            co_return out;
        }
        co_return api_result{};
    }

    net::awaitable<api_result> get(std::string path,
                                   std::string query = {},
                                   std::optional<util::instant> modified_since = {}) {
        http_request req;
        req.method = "GET";
        req.url = url(path, query);
        if (modified_since) {
            req.headers.push_back(
                {"If-Modified-Since", mx::format_modified_since(*modified_since)});
        }
        co_return co_await call(std::move(req), reads);
    }

    // A write with its Idempotency-Key: retrying the identical request is safe (Xero replays it).
    net::awaitable<api_result> write(std::string method,
                                     std::string path,
                                     std::string query,
                                     std::string body,
                                     std::string key) {
        http_request req;
        req.method = std::move(method);
        req.url = url(path, query);
        req.body = std::move(body);
        req.headers.push_back({"Content-Type", "application/json"});
        req.headers.push_back({"Idempotency-Key", key});
        req.idempotency_key = std::move(key);
        co_return co_await call(std::move(req), writes);
    }

    // GET /Invoices/{id}/OnlineInvoice: the invoice's payment link; nullopt when unavailable.
    net::awaitable<std::optional<std::string>> online_link(std::string id) {
        auto link = co_await get("/Invoices/" + id + "/OnlineInvoice");
        if (!link.ok()) {
            co_return std::nullopt;
        }
        const auto j = json::parse(link.body, nullptr, false);
        const auto* online = j.is_object() ? mx::rows_of(j, "OnlineInvoices") : nullptr;
        if (online == nullptr || online->empty()) {
            co_return std::nullopt;
        }
        auto url = text_of(online->front(), "OnlineInvoiceUrl");
        co_return url.empty() ? std::nullopt : std::optional<std::string>(std::move(url));
    }

    mx::mapping_options options(const state::store& st) const {
        mx::mapping_options o;
        o.system = s.name;
        o.tenant_id = s.tenant_id;
        o.home_currency = s.home_currency;
        o.resolve = state::canonical_ids(st, s.name);
        return o;
    }
};

xero_connector::xero_connector(settings s, runtime_deps rt)
    : settings_(std::move(s)), impl_(std::make_unique<impl>(settings_, std::move(rt))) {}

xero_connector::~xero_connector() = default;

oauth2::token_manager& xero_connector::tokens() noexcept { return impl_->tokens; }

void xero_connector::reload_credentials() {
    impl_->tokens.reload();
    impl_->next_poll_at = impl_->rt.clock->now();
}

std::string xero_connector::cursor_key() const { return settings_.name + "/sync"; }

verify_result xero_connector::verify(const http::request& req) const {
    verify_result r;
    const auto check =
        verify_signature(settings_.webhook_key, req.body, req.header_value(signature_header));
    if (check != signature_check::ok) {
        r.reason = std::string(to_string(check));
        return r;
    }
    r.accepted = true;
    r.dedup_key = "sha256:" + util::hex_encode(util::sha256(req.body));
    {
        std::lock_guard lock(impl_->status_mutex);
        impl_->last_webhook = impl_->rt.clock->now();
    }
    return r;
}

std::string xero_connector::check_payload(std::string_view body) const {
    const auto parsed = parse_webhook(body, {settings_.tenant_id});
    return parsed.ok() ? std::string() : parsed.error;
}

// ---- resolve: fetch after notify ---------------------------------------------------------------

namespace {

resolve_outcome failed_read(const api_result& r) {
    resolve_outcome out;
    out.k = r.error->cond == condition::invalid_request || r.error->cond == condition::permanent
                ? resolve_outcome::kind::permanent
                : resolve_outcome::kind::retry;
    out.detail = r.error->message;
    if (r.error->retry_after) {
        out.retry_after = std::chrono::ceil<std::chrono::seconds>(*r.error->retry_after);
    }
    return out;
}

}  // namespace

net::awaitable<resolve_outcome> xero_connector::resolve(const state::inbox_event& e) {
    if (!e.kind.empty()) {
        co_return resolve_outcome{};  // polled pages hold whole objects already
    }
    resolve_outcome out;
    const auto parsed = parse_webhook(e.body, {settings_.tenant_id});
    if (!parsed.ok()) {
        out.k = resolve_outcome::kind::permanent;
        out.detail = parsed.error;
        co_return out;
    }
    // Each resource once, however many events name it.
    std::map<std::string, std::set<std::string>, std::less<>> wanted;
    std::uint64_t unknown_tenant = 0;
    for (const auto& ev : parsed.events) {
        if (!ev.tenant_known) {
            ++unknown_tenant;
            continue;
        }
        if (ev.category == "INVOICE") {
            wanted["Invoices"].insert(ev.resource_id);
        } else if (ev.category == "CONTACT") {
            wanted["Contacts"].insert(ev.resource_id);
        }
    }
    if (unknown_tenant > 0) {
        std::lock_guard lock(impl_->status_mutex);
        impl_->unknown_tenant_events += unknown_tenant;
    }
    json doc{{"resolved", true}};
    for (const auto collection : collections) {
        doc[std::string(collection)] = json::array();
        auto it = wanted.find(collection);
        if (it == wanted.end()) {
            continue;
        }
        std::vector<std::string> list(it->second.begin(), it->second.end());
        for (std::size_t i = 0; i < list.size(); i += settings_.ids_per_read) {
            const auto end = std::min(list.size(), i + settings_.ids_per_read);
            std::string ids;
            for (auto k = i; k < end; ++k) {
                ids += (ids.empty() ? "" : ",") + list[k];
            }
            auto r = co_await impl_->get("/" + std::string(collection),
                                         "IDs=" + http::percent_encode(ids));
            if (!r.ok()) {
                co_return failed_read(r);
            }
            std::string error;
            auto page = mx::parse_exact(r.body, error);
            const auto* rows = page ? mx::rows_of(*page, collection) : nullptr;
            if (rows == nullptr) {
                out.k = resolve_outcome::kind::retry;
                out.detail = "unreadable Xero answer: " + error;
                co_return out;
            }
            for (const auto& row : *rows) {
                doc[std::string(collection)].push_back(row);
            }
        }
    }
    out.body = doc.dump();
    co_return out;
}

net::awaitable<resolve_outcome> xero_connector::refresh(std::string entity_type,
                                                        mappings::source_ref ref) {
    resolve_outcome out;
    std::string collection;
    if (entity_type == "invoice") {
        collection = "Invoices";
    } else if (entity_type == "client") {
        collection = "Contacts";
    } else if (entity_type == "payment") {
        collection = "Payments";
    }
    if (collection.empty() || ref.id.empty() ||
        (!ref.account.empty() && ref.account != settings_.tenant_id)) {
        co_return out;  // not ours to re-read: use what is stored
    }
    auto r = co_await impl_->get("/" + collection + "/" + ref.id);
    if (!r.ok() && r.error->cond == condition::not_found) {
        co_return out;  // Xero keeps deleted objects (Status DELETED): use what is stored
    }
    if (!r.ok()) {
        co_return failed_read(r);
    }
    std::string error;
    auto page = mx::parse_exact(r.body, error);
    const auto* rows = page ? mx::rows_of(*page, collection) : nullptr;
    if (rows == nullptr || rows->size() != 1) {
        out.k = resolve_outcome::kind::retry;
        out.detail = "unreadable Xero answer: " + error;
        co_return out;
    }
    auto obj = rows->front();
    if (collection == "Invoices" && mx::is_sales_invoice(obj) &&
        text_of(obj, "Status") == "AUTHORISED" && text_of(obj, "OnlineInvoiceUrl").empty()) {
        // The payment link for the touch about to go out.
        if (auto link = co_await impl_->online_link(ref.id)) {
            obj["OnlineInvoiceUrl"] = *link;
        }
    }
    json doc{{"resolved", true}, {collection, json::array({std::move(obj)})}};
    out.body = doc.dump();
    co_return out;
}

// ---- process: vendor objects -> canonical entities and changes ---------------------------------

state::result<std::vector<mappings::change>> xero_connector::process(const state::inbox_event& e,
                                                                     const state::store& st,
                                                                     state::batch& b) {
    using result_t = state::result<std::vector<mappings::change>>;
    std::string error;
    auto doc = mx::parse_exact(e.body, error);
    if (!doc) {
        return result_t::failure(state::status::failure("unreadable event: " + error));
    }
    if (e.kind.empty() && !doc->value("resolved", false)) {
        return result_t::failure(
            state::status::failure("webhook event was not resolved before mapping"));
    }
    if (!e.kind.empty() && e.kind != "page") {
        return result_t::failure(
            state::status::failure("unknown Xero event kind '" + e.kind + "'"));
    }
    auto& im = *impl_;
    auto skip = [&](std::string_view collection, const std::string& why) {
        {
            std::lock_guard lock(im.status_mutex);
            ++im.unmappable;
        }
        if (im.rt.log) {
            im.rt.log->error("Xero object skipped connector={} collection={} error=\"{}\"",
                             settings_.name,
                             collection,
                             why);
        }
    };
    const auto opts = im.options(st);
    std::vector<mappings::change> changes;
    for (const auto collection : collections) {
        const auto* rows = mx::rows_of(*doc, collection);
        if (rows == nullptr) {
            continue;
        }
        for (const auto& row : *rows) {
            std::optional<mappings::entity> entity;
            std::string why;
            const auto take = [&](auto m) {
                if (m) {
                    entity.emplace(std::move(*m.value));
                } else {
                    why = m.error;
                }
            };
            if (collection == "Contacts") {
                take(mx::map_contact(row, opts));
            } else if (collection == "Items") {
                take(mx::map_item(row, opts));
            } else if (collection == "Invoices") {
                if (!mx::is_sales_invoice(row)) {
                    std::lock_guard lock(im.status_mutex);
                    ++im.skipped_bills;  // ACCPAY: bills are not followed up
                    continue;
                }
                auto m = mx::map_invoice(row, opts);
                if (m && m.value->payment_link.empty()) {
                    // The link is read before a touch only; a later copy keeps the known one.
                    auto stored = state::get_entity(st, b, "invoice", m.value->id);
                    if (stored.ok() && stored.value) {
                        const auto j = json::parse(*stored.value, nullptr, false);
                        if (j.is_object()) {
                            m.value->payment_link = text_of(j, "payment_link");
                        }
                    }
                }
                take(std::move(m));
            } else {
                if (!mx::is_sales_payment(row)) {
                    std::lock_guard lock(im.status_mutex);
                    ++im.skipped_bills;
                    continue;
                }
                take(mx::map_payment(row, opts));
            }
            if (!entity) {
                skip(collection, why);
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
    }
    return {state::status::success(), std::move(changes)};
}

// ---- polling -----------------------------------------------------------------------------------

std::optional<util::instant> xero_connector::next_poll() const {
    const auto st = impl_->tokens.state();
    if (st == oauth2::credential_state::reconnect_needed ||
        st == oauth2::credential_state::not_connected) {
        // Paused: webhooks are still stored; `billsync connect` and a reload bring it back.
        return impl_->next_poll_at + settings_.poll_interval;
    }
    return impl_->next_poll_at;
}

net::awaitable<poll_outcome> xero_connector::poll(const state::store& st) {
    poll_outcome out;
    auto& im = *impl_;
    const auto now = im.rt.clock->now();
    auto fail = [&](std::string message) {
        ++im.poll_failures;
        const auto backoff =
            std::chrono::seconds(30LL << std::min<std::uint32_t>(im.poll_failures, 6));
        im.next_poll_at = now + std::min<std::chrono::seconds>(backoff, settings_.poll_interval);
        out.error = std::move(message);
    };
    {
        // A low daily budget is kept for actions: polling waits first.
        std::lock_guard lock(im.status_mutex);
        const bool parked = im.day_limited_until && *im.day_limited_until > now;
        const bool low = im.day_remaining && *im.day_remaining < settings_.poll_reserve;
        if (parked || low) {
            ++im.polls_deferred;
            im.next_poll_at = parked
                                  ? std::max(*im.day_limited_until, now + settings_.poll_interval)
                                  : now + settings_.poll_interval;
            // Forget the figure so the next poll asks the vendor again (one call).
            im.day_remaining.reset();
            co_return out;
        }
    }
    auto stored = state::get_cursor(st, cursor_key());
    if (!stored.ok()) {
        fail("cannot read the sync cursor: " + stored.st.message);
        co_return out;
    }
    sync_cursor c;
    if (stored.value) {
        auto decoded = sync_cursor::decode(*stored.value);
        if (!decoded) {
            fail("the sync cursor is unreadable; delete it to run a full backfill");
            co_return out;
        }
        c = *decoded;
    } else {
        c.started_at = now;
    }
    // The collections of a pass: Items only with sync_items (a cursor left on the Items step by a
    // connector that no longer reads them starts the next pass).
    const auto steps = collections.size() - (settings_.sync_items ? 0 : 1);
    if (c.step >= steps) {
        c.ph = sync_cursor::phase::incremental;
        c.step = 0;
        c.page = 1;
        c.done = 0;
        c.total = 0;
        c.started_at = now;
    }
    const auto collection = collections.at(c.step);
    // Items are not paged: one answer holds them all (unitdp=4: prices as exact as Xero keeps).
    const bool paged = collection != "Items";
    std::string query = paged ? "page=" + std::to_string(c.page) +
                                    "&pageSize=" + std::to_string(settings_.page_size) + "&"
                              : std::string("unitdp=4&");
    query += "order=" + http::percent_encode("UpdatedDateUTC ASC");
    if (collection == "Invoices") {
        query += "&where=" + http::percent_encode("Type==\"ACCREC\"");
    }
    auto r = co_await im.get("/" + std::string(collection), query, c.since.at(c.step));
    if (!r.ok()) {
        fail(std::string(collection) + " poll failed: " + r.error->message);
        co_return out;
    }
    std::string error;
    auto page = mx::parse_exact(r.body, error);
    const auto* rows = page ? mx::rows_of(*page, collection) : nullptr;
    if (rows == nullptr) {
        fail("unreadable Xero answer: " + error);
        co_return out;
    }
    const auto current = c.since.at(c.step);
    if (c.page == 1 && !current && page->contains("pagination") &&
        (*page)["pagination"].is_object()) {
        // The step's first page: how many rows it will read, for progress.
        c.total += (*page)["pagination"].value("itemCount", std::uint64_t{0});
    }
    std::optional<util::instant> newest;
    for (const auto& row : *rows) {
        if (auto t = updated_of(row); t && (!newest || *t > *newest)) {
            newest = t;
        }
    }
    const auto n = rows->size();
    if (collection == "Invoices" && n > 0) {
        // Open sales invoices get their payment link (OnlineInvoiceUrl) once, when first seen
        // without one, so the stored copy carries it before any touch.
        bool added = false;
        for (auto& row : (*page)["Invoices"]) {
            if (!mx::is_sales_invoice(row) || text_of(row, "Status") != "AUTHORISED" ||
                !text_of(row, "OnlineInvoiceUrl").empty()) {
                continue;
            }
            const auto id = text_of(row, "InvoiceID");
            auto known = state::get_entity(
                st,
                "invoice",
                im.options(st).resolve("invoice",
                                       {settings_.name, settings_.tenant_id, id, "", {}}));
            if (known.ok() && known.value &&
                !text_of(json::parse(*known.value, nullptr, false), "payment_link").empty()) {
                continue;
            }
            if (auto link = co_await im.online_link(id)) {
                row["OnlineInvoiceUrl"] = *link;
                added = true;
            }
        }
        if (added) {
            r.body = page->dump();
        }
    }
    if (n > 0) {
        out.events.push_back({"page", std::move(r.body)});
    }
    c.done += n;
    // The next If-Modified-Since: one second before the newest row's second, so rows stamped
    // in that second (read or not yet written) are read again whether Xero compares with > or
    // >=. The apply step drops the copies it has already.
    const auto overlap = [](util::instant t) {
        return util::instant(std::chrono::floor<std::chrono::seconds>(t)) - std::chrono::seconds(1);
    };
    const auto moved = newest && (!current || overlap(*newest) > *current);
    if (paged && n >= settings_.page_size) {
        if (moved) {
            c.since.at(c.step) = overlap(*newest);
            c.page = 1;
        } else {
            ++c.page;  // a whole page inside the overlap: page on at the same If-Modified-Since
        }
        out.more = true;
    } else {
        if (moved) {
            c.since.at(c.step) = overlap(*newest);
        } else if (!current) {
            c.since.at(c.step) = overlap(c.started_at);  // nothing yet: from the pass's start
        }
        c.page = 1;
        ++c.step;
        if (c.step >= steps) {
            if (c.ph == sync_cursor::phase::backfill && im.rt.log) {
                im.rt.log->info(
                    "Xero backfill finished connector={} rows={}", settings_.name, c.done);
            }
            c.ph = sync_cursor::phase::incremental;
            c.step = 0;
            c.done = 0;
            c.total = 0;
            c.started_at = now;
            im.next_poll_at = now + settings_.poll_interval;
        } else {
            out.more = true;
        }
    }
    im.poll_failures = 0;
    if (out.more) {
        im.next_poll_at = now;
    }
    out.cursors.emplace_back(cursor_key(), c.encode());
    {
        std::lock_guard lock(im.status_mutex);
        im.cursor = c;
    }
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

action_outcome outcome_of(const api_result& r, std::string done_detail) {
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

// The one invoice of a write's answer; with summarizeErrors=false a refused element arrives in
// a 200 carrying HasErrors and ValidationErrors.
std::optional<json> saved_invoice(const api_result& r, std::string& why) {
    const auto j = json::parse(r.body, nullptr, false);
    const auto* rows = j.is_object() ? mx::rows_of(j, "Invoices") : nullptr;
    if (rows == nullptr || rows->empty()) {
        why = "the answer holds no invoice";
        return std::nullopt;
    }
    const auto& inv = rows->front();
    if (inv.value("HasErrors", false)) {
        why = "Xero refused the invoice";
        if (auto ve = inv.find("ValidationErrors"); ve != inv.end() && ve->is_array()) {
            for (const auto& v : *ve) {
                why += ": " + text_of(v, "Message");
            }
        }
        return std::nullopt;
    }
    return inv;
}

constexpr std::string_view write_query = "summarizeErrors=false";

constexpr std::string_view canonical_create = "invoice.create";

// The result of an invoice.create: "Invoice/<InvoiceID> #<InvoiceNumber>" (the number when Xero
// gave one).
std::string invoice_result(const json& inv) {
    auto out = "Invoice/" + text_of(inv, "InvoiceID");
    if (const auto number = text_of(inv, "InvoiceNumber"); !number.empty()) {
        out += " #" + number;
    }
    return out;
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

}  // namespace

std::string xero_connector::serial_key(const state::action& a) const {
    if (a.kind == "xero.create_invoice" || a.kind == canonical_create) {
        return {};  // carries an Idempotency-Key and modifies nothing that exists
    }
    const auto payload = json::parse(a.payload, nullptr, false);
    const auto id = payload.is_object() ? text_of(payload, "id") : std::string();
    return id.empty() ? std::string() : "invoice/" + id;
}

net::awaitable<action_outcome> xero_connector::perform(state::action a) {
    // "invoice.send" (the workflows' ledger-neutral name) is this ledger's send.
    if (a.kind == "invoice.send") {
        a.kind = "xero.send_invoice";
    }
    auto& im = *impl_;
    const auto payload = json::parse(a.payload, nullptr, false);
    if (!payload.is_object()) {
        co_return make_outcome(action_outcome::kind::permanent, "payload is not a JSON object");
    }
    const bool canonical = a.kind == canonical_create;
    if (canonical || a.kind == "xero.create_invoice") {
        std::string body;
        if (canonical) {
            // A vendor-neutral invoice from the invoicing workflow: translated, never sent when
            // it does not validate.
            auto draft = canonical_invoice(a);
            if (!draft) {
                co_return make_outcome(action_outcome::kind::permanent,
                                       "invalid invoice.create payload: " + draft.error);
            }
            body = mx::invoice_create_body(*draft.value);
        } else {
            auto inv = payload;
            inv["Type"] = inv.value("Type", std::string("ACCREC"));
            if (text_of(inv, "Reference").empty()) {
                inv["Reference"] = reference_for(a.id);
            }
            body = json{{"Invoices", json::array({inv})}}.dump();
        }
        auto r = co_await im.write(
            "PUT", "/Invoices", std::string(write_query), std::move(body), idempotency_key(a.id));
        if (!r.ok()) {
            co_return outcome_of(r, "");
        }
        std::string why;
        auto saved = saved_invoice(r, why);
        if (!saved) {
            co_return make_outcome(action_outcome::kind::permanent, why);
        }
        co_return make_outcome(
            action_outcome::kind::done,
            canonical ? invoice_result(*saved) : "Invoice/" + text_of(*saved, "InvoiceID"));
    }
    const auto id = text_of(payload, "id");
    if (id.empty()) {
        co_return make_outcome(action_outcome::kind::permanent, "payload has no \"id\"");
    }
    if (a.kind == "xero.send_invoice") {
        auto r = co_await im.write(
            "POST", "/Invoices/" + id + "/Email", "", "{}", idempotency_key(a.id));
        co_return outcome_of(r, "Invoice/" + id + " emailed");
    }
    if (a.kind == "xero.update_invoice") {
        auto fields = payload.value("fields", json::object());
        if (!fields.is_object()) {
            co_return make_outcome(action_outcome::kind::permanent, "\"fields\" is not an object");
        }
        fields["InvoiceID"] = id;
        const json body{{"Invoices", json::array({fields})}};
        const auto text = body.dump();
        auto r = co_await im.write(
            "POST", "/Invoices/" + id, std::string(write_query), text, idempotency_key(a.id, text));
        if (!r.ok()) {
            co_return outcome_of(r, "");
        }
        std::string why;
        if (!saved_invoice(r, why)) {
            co_return make_outcome(action_outcome::kind::permanent, why);
        }
        co_return make_outcome(action_outcome::kind::done, "Invoice/" + id + " updated");
    }
    if (a.kind == "xero.void_invoice") {
        // Approved invoices are voided; drafts and submitted ones are deleted instead.
        auto cur = co_await im.get("/Invoices/" + id);
        if (!cur.ok()) {
            co_return outcome_of(cur, "");
        }
        const auto j = json::parse(cur.body, nullptr, false);
        const auto* rows = j.is_object() ? mx::rows_of(j, "Invoices") : nullptr;
        if (rows == nullptr || rows->empty()) {
            co_return make_outcome(action_outcome::kind::retry, "unreadable Xero answer");
        }
        const auto status = text_of(rows->front(), "Status");
        if (status == "VOIDED" || status == "DELETED") {
            co_return make_outcome(action_outcome::kind::done, "Invoice/" + id + " voided");
        }
        const std::string target =
            status == "DRAFT" || status == "SUBMITTED" ? "DELETED" : "VOIDED";
        const json body{{"Invoices", json::array({{{"InvoiceID", id}, {"Status", target}}})}};
        auto r = co_await im.write("POST",
                                   "/Invoices/" + id,
                                   std::string(write_query),
                                   body.dump(),
                                   idempotency_key(a.id, target));
        if (!r.ok()) {
            co_return outcome_of(r, "");
        }
        std::string why;
        if (!saved_invoice(r, why)) {
            co_return make_outcome(action_outcome::kind::permanent, why);
        }
        co_return make_outcome(action_outcome::kind::done, "Invoice/" + id + " voided");
    }
    co_return make_outcome(action_outcome::kind::permanent,
                           "unknown Xero action kind '" + a.kind + "'");
}

net::awaitable<reconcile_outcome> xero_connector::reconcile(state::action a) {
    // "invoice.send" (the workflows' ledger-neutral name) is this ledger's send.
    if (a.kind == "invoice.send") {
        a.kind = "xero.send_invoice";
    }
    auto& im = *impl_;
    reconcile_outcome out;
    const auto payload = json::parse(a.payload, nullptr, false);
    if (!payload.is_object()) {
        out.k = reconcile_outcome::kind::absent;  // perform() will dead-letter it
        co_return out;
    }
    const bool canonical = a.kind == canonical_create;
    if (canonical || a.kind == "xero.create_invoice") {
        // Found by the number it was given, else by the Reference carrying billsync's key.
        std::string query;
        std::string ref;
        if (canonical) {
            const auto draft = canonical_invoice(a);
            if (!draft) {
                out.k = reconcile_outcome::kind::absent;  // perform() will dead-letter it
                co_return out;
            }
            ref = mx::invoice_reference(*draft.value);
        }
        if (const auto number = text_of(payload, "InvoiceNumber"); !canonical && !number.empty()) {
            query = "InvoiceNumbers=" + http::percent_encode(number);
        } else {
            if (ref.empty()) {
                ref = text_of(payload, "Reference");
            }
            if (ref.empty()) {
                ref = reference_for(a.id);
            }
            std::string escaped;
            for (const char ch : ref) {
                if (ch == '"' || ch == '\\') {
                    escaped += '\\';
                }
                escaped += ch;
            }
            query = "where=" + http::percent_encode("Reference==\"" + escaped + "\"");
        }
        auto r = co_await im.get("/Invoices", query);
        if (!r.ok()) {
            out.detail = r.error->message;
            co_return out;
        }
        const auto j = json::parse(r.body, nullptr, false);
        const auto* rows = j.is_object() ? mx::rows_of(j, "Invoices") : nullptr;
        if (rows == nullptr) {
            out.detail = "unreadable Xero answer";
            co_return out;
        }
        if (!rows->empty()) {
            out.k = reconcile_outcome::kind::happened;
            out.detail = canonical
                             ? invoice_result(rows->front())
                             : "Invoice/" + text_of(rows->front(), "InvoiceID") + " (existing)";
        } else {
            out.k = reconcile_outcome::kind::absent;
        }
        co_return out;
    }
    const auto id = text_of(payload, "id");
    if (a.kind == "xero.void_invoice" && !id.empty()) {
        auto cur = co_await im.get("/Invoices/" + id);
        if (!cur.ok()) {
            out.detail = cur.error->message;
            co_return out;
        }
        const auto j = json::parse(cur.body, nullptr, false);
        const auto* rows = j.is_object() ? mx::rows_of(j, "Invoices") : nullptr;
        const auto status =
            rows != nullptr && !rows->empty() ? text_of(rows->front(), "Status") : std::string();
        out.k = status == "VOIDED" || status == "DELETED" ? reconcile_outcome::kind::happened
                                                          : reconcile_outcome::kind::absent;
        co_return out;
    }
    // Email and update: Xero shows no trace of one particular email or update, so the resend
    // carries the same Idempotency-Key, which Xero answers with the first outcome.
    out.k = reconcile_outcome::kind::absent;
    co_return out;
}

// ---- status ------------------------------------------------------------------------------------

std::string xero_connector::status_json() const {
    auto& im = *impl_;
    const auto now = im.rt.clock->now();
    json j;
    j["tenant_id"] = settings_.tenant_id;
    j["credential"] = std::string(oauth2::to_string(im.tokens.state()));
    std::vector<std::string> missing;  // required scopes the stored grant lacks
    if (im.rt.tokens != nullptr) {
        auto cred = oauth2::load_credential(*im.rt.tokens, im.tokens.credential_id());
        if (cred.ok() && cred.value) {
            j["token_expires_at"] = util::format_rfc3339(cred.value->access_expires_at);
            j["scope"] = cred.value->scope;
            missing = oauth2::missing_scopes(cred.value->scope, settings_.required_scope);
        }
    }
    const auto stats = im.rt.limiter->stats("xero", settings_.tenant_id);
    j["rate_limit"] = {
        {"in_flight", stats.in_flight}, {"waiting", stats.waiting}, {"available", stats.available}};
    std::lock_guard lock(im.status_mutex);
    auto when = [](const std::optional<util::instant>& t) {
        return t ? json(util::format_rfc3339(*t)) : json(nullptr);
    };
    j["daily_budget"] = {
        {"limit", 5000},
        {"remaining", im.day_remaining ? json(*im.day_remaining) : json(nullptr)},
        {"minute_remaining", im.minute_remaining ? json(*im.minute_remaining) : json(nullptr)},
        {"poll_reserve", settings_.poll_reserve},
        {"limited_until",
         im.day_limited_until && *im.day_limited_until > now ? when(im.day_limited_until)
                                                             : json(nullptr)},
        {"polls_deferred", im.polls_deferred}};
    j["last_success"] = when(im.last_success);
    j["last_verified_webhook"] = when(im.last_webhook);
    j["last_error"] = im.last_error_at ? json{{"at", util::format_rfc3339(*im.last_error_at)},
                                              {"message", im.last_error}}
                                       : json(nullptr);
    j["requests"] = im.requests;
    j["failures"] = im.failures;
    j["throttled"] = im.throttled;
    j["skipped_objects"] = im.unmappable;
    j["skipped_bills"] = im.skipped_bills;
    j["ignored_events"] = {{"unknown_tenant", im.unknown_tenant_events}};
    if (im.cursor) {
        const auto& c = *im.cursor;
        json cur{{"phase", c.ph == sync_cursor::phase::backfill ? "backfill" : "incremental"},
                 {"collection", std::string(collections.at(c.step))}};
        if (c.ph == sync_cursor::phase::backfill) {
            cur["progress"] = {{"done", c.done}, {"total", c.total}};
        }
        j["cursor"] = std::move(cur);
    } else {
        j["cursor"] = nullptr;
    }
    if (im.tokens.state() == oauth2::credential_state::reconnect_needed) {
        j["reconnect_needed"] = true;
        j["polling"] = "paused";
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

}  // namespace billsync::connectors::xero
