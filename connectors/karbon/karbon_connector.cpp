#include "connectors/karbon/karbon_connector.hpp"

#include <date/tz.h>
#include <spdlog/logger.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>

#include "connectors/karbon/karbon_kind.hpp"
#include "connectors/karbon/karbon_webhook.hpp"
#include "connectors/runtime/https_client.hpp"
#include "connectors/runtime/rate_limit.hpp"
#include "connectors/runtime/retry.hpp"
#include "connectors/runtime/sync_cursor.hpp"
#include "http/message.hpp"
#include "mappings/exact_json.hpp"
#include "mappings/karbon/karbon_mapping.hpp"
#include "state/apply.hpp"
#include "state/tables.hpp"
#include "util/crypto.hpp"
#include "util/metrics.hpp"

namespace billsync::connectors::karbon {

namespace {

using json = nlohmann::json;
namespace mk = mappings::karbon;

constexpr std::string_view vendor = "karbon";

// Open work items, one step per primary status (the $filter matches only the spaced spelling).
constexpr std::array<std::string_view, 4> open_statuses = {
    "Planned", "Ready To Start", "In Progress", "Waiting"};

std::string text_of(const json& j, std::string_view key) {
    if (!j.is_object()) {
        return {};
    }
    auto it = j.find(key);
    return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::optional<util::instant> instant_of(const json& j, std::string_view key) {
    util::instant t{};
    const auto s = text_of(j, key);
    if (s.empty() || !util::parse_rfc3339(s, t)) {
        return std::nullopt;
    }
    return t;
}

// An OData string literal: single quotes, a quote doubled.
std::string odata_literal(std::string_view v) {
    std::string out = "'";
    for (const char c : v) {
        out += c;
        if (c == '\'') {
            out += '\'';
        }
    }
    out += '\'';
    return out;
}

// The last step of a sweep (a backfill skips it): completed work items, so a completion whose
// webhook was lost is still seen. Work items have no last-modified filter, so every completed
// one is listed and only those completed since the last sweep began are kept.
constexpr std::uint32_t completed_step = 6;
// And after it (sweeps only, and only with the Invoice webhook type): invoices newest first
// ($orderby=UpdatedAt desc), stopping at the last sweep. A list row has no lines nor payments,
// so a row changed since it was last read is read once more in full (the "invoice_keys" event).
constexpr std::uint32_t invoice_step = 7;

std::string step_type(std::uint32_t step) {
    if (step < open_statuses.size() || step == completed_step) {
        return "Work";
    }
    return step == 4 ? "Contact" : "Organization";
}

std::string_view phase_name(sync_cursor::phase p) noexcept {
    return p == sync_cursor::phase::backfill ? "backfill" : "sweep";
}

// The path and query of an @odata.nextLink, followed verbatim but against our base URL (a proxy
// or the simulator), so the Bearer token and AccessKey never travel to another host.
std::string path_of_link(std::string_view link) {
    const auto at = link.find("/v3/");
    return at == std::string_view::npos ? std::string() : std::string(link.substr(at));
}

// Karbon's error bodies ({"error": {"code", "message"}} or {"statusCode", "message"}), for logs.
std::string error_text(std::string_view body) {
    const auto j = json::parse(body, nullptr, false);
    if (!j.is_object()) {
        return {};
    }
    if (auto e = j.find("error"); e != j.end() && e->is_object()) {
        return text_of(*e, "code") + " " + text_of(*e, "message");
    }
    return text_of(j, "statusCode") + " " + text_of(j, "message");
}

std::string date_in_zone(util::instant t, const std::string& zone_name) {
    auto day = std::chrono::floor<std::chrono::days>(t);
    try {
        const auto* zone = date::locate_zone(zone_name);
        const auto local = zone->to_local(t);
        day = std::chrono::sys_days{} +
              std::chrono::floor<std::chrono::days>(local.time_since_epoch());
    } catch (const std::exception&) {
        // The loader validated the zone; UTC is the fallback for a zone-less test setup.
    }
    return mappings::format_civil_date(std::chrono::year_month_day{day});
}

action_outcome make_outcome(action_outcome::kind k, std::string detail) {
    action_outcome o;
    o.k = k;
    o.detail = std::move(detail);
    return o;
}

}  // namespace

// ---- pure pieces -------------------------------------------------------------------------------

std::string keyed_title(std::string_view title, std::string_view action_id) {
    return std::string(title) + " [bs:" + util::hex_encode(util::sha256(action_id)).substr(0, 12) +
           "]";
}

std::string first_page(std::uint32_t step, std::size_t page_size) {
    const auto top = "&$top=" + std::to_string(page_size) + "&$skip=0";
    if (step < open_statuses.size() || step == completed_step) {
        const auto status =
            step == completed_step ? std::string_view("Completed") : open_statuses.at(step);
        return "/v3/WorkItems?$filter=" +
               http::percent_encode("PrimaryStatus eq " + odata_literal(status)) +
               "&$orderby=StartDate" + top;
    }
    if (step == invoice_step) {
        return "/v3/Invoices?$orderby=" + http::percent_encode("UpdatedAt desc") + top;
    }
    const std::string resource = step == 4 ? "Contacts" : "Organizations";
    return "/v3/" + resource + "?$orderby=" + http::percent_encode("LastModifiedDateTime desc") +
           top;
}

std::string sync_cursor::encode() const {
    return json{{"phase", std::string(phase_name(ph))},
                {"step", step},
                {"next", next},
                {"done", done},
                {"total", total},
                {"started_at", util::format_rfc3339(started_at)},
                {"since", util::format_rfc3339(since)}}
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
    } else if (p == "sweep") {
        c.ph = phase::sweep;
    } else {
        return std::nullopt;
    }
    const auto started = instant_of(j, "started_at");
    const auto since = instant_of(j, "since");
    const auto step = j.find("step");
    if (!started || !since || step == j.end() || !step->is_number_unsigned()) {
        return std::nullopt;
    }
    c.step = step->get<std::uint32_t>();
    if (c.step >= sync_steps) {
        return std::nullopt;
    }
    c.started_at = *started;
    c.since = *since;
    c.next = text_of(j, "next");
    c.done = j.value("done", std::uint64_t{0});
    c.total = j.value("total", std::uint64_t{0});
    return c;
}

namespace {
std::vector<std::string> split_list(const std::string& text) {
    std::vector<std::string> out;
    std::size_t start = 0;
    while (start <= text.size()) {
        const auto comma = text.find(',', start);
        auto item =
            text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
        const auto b = item.find_first_not_of(" \t");
        if (b != std::string::npos) {
            out.push_back(item.substr(b, item.find_last_not_of(" \t") - b + 1));
        }
        if (comma == std::string::npos) {
            break;
        }
        start = comma + 1;
    }
    return out;
}
}  // namespace

settings from(const connector_settings& s) {
    settings out;
    out.name = s.name;
    if (!s.base_url.empty()) {
        out.base_url = s.base_url;
    }
    while (!out.base_url.empty() && out.base_url.back() == '/') {
        out.base_url.pop_back();
    }
    const auto secret = [&](std::string_view key, std::string& into) {
        if (const auto* v = s.find_secret(key)) {
            into = v->reveal();
        }
    };
    secret("bearer_token", out.bearer_token);
    secret("access_key", out.access_key);
    secret("webhook_signing_key", out.signing_key);
    const auto value = [&](std::string_view key) { return s.value(key); };
    if (const auto* v = value("public_url")) {
        out.public_url = *v;
        while (!out.public_url.empty() && out.public_url.back() == '/') {
            out.public_url.pop_back();
        }
    }
    if (const auto* v = value("time_zone")) {
        out.time_zone = *v;
    }
    if (const auto* v = value("webhook_types")) {
        out.webhook_types = split_list(*v);
    }
    if (const auto* v = value("stages")) {
        out.stages = split_list(*v);
    }
    const auto seconds = [&](std::string_view key, std::chrono::seconds& into) {
        if (const auto* v = value(key)) {
            into = std::chrono::seconds(std::stoll(*v));
        }
    };
    seconds("replay_window_s", out.replay_window);
    seconds("poll_interval_s", out.poll_interval);
    seconds("subscription_check_s", out.subscription_check);
    if (const auto* v = value("page_size")) {
        out.page_size = static_cast<std::size_t>(std::stoull(*v));
    }
    if (const auto* v = value("poll_reserve")) {
        out.poll_reserve = static_cast<std::uint32_t>(std::stoul(*v));
    }
    if (const auto* v = value("task_assignee_email")) {
        out.task_assignee_email = *v;
    }
    if (const auto* v = value("task_work_type")) {
        out.task_work_type = *v;
    }
    if (const auto* v = value("task_due_days")) {
        out.task_due_days = std::stoll(*v);
    }
    if (const auto* v = value("invoices_source")) {
        out.invoices_source = *v == "true";
    }
    return out;
}

// ---- the connector ----------------------------------------------------------------------------

struct karbon_connector::impl {
    struct api_result {
        unsigned status = 0;
        std::string body;
        std::optional<call_error> error;
        bool ok() const noexcept { return !error; }
        bool not_found() const noexcept { return error && error->cond == condition::not_found; }
    };

    struct subscription {
        bool active = false;
        std::optional<util::instant> recreated_at;
        std::optional<util::instant> last_delivery;
        std::optional<util::instant> checked_at;
        std::uint64_t recreated = 0;
        std::string error;
    };

    settings& s;
    runtime_deps rt;
    https_client http;
    retry_policy reads;
    retry_policy writes;
    util::instant next_poll_at{};
    util::instant next_check_at{};
    std::uint32_t poll_failures = 0;

    // Burst coalescing: a monotonic sequence orders deliveries (at verify) and reads (when they
    // are sent). A delivery whose key was read after it arrived needs no read of its own.
    std::atomic<std::uint64_t> sequence{0};
    std::mutex coalesce_mutex;
    std::map<std::string, std::uint64_t, std::less<>> arrived;  // dedup key -> sequence
    std::map<std::string, std::uint64_t, std::less<>> read_at;  // "Type/key" -> sequence
    static constexpr std::size_t coalesce_cap = 20'000;

    // What /status shows; written on the pipeline's strand, read from the status listener.
    mutable std::mutex status_mutex;
    std::optional<sync_cursor> cursor;
    std::optional<util::instant> last_success;
    std::optional<util::instant> last_error_at;
    std::string last_error;
    std::uint64_t requests = 0;
    std::uint64_t failures = 0;
    std::uint64_t unmappable = 0;
    std::uint64_t rejected_signature = 0;
    std::uint64_t rejected_replay = 0;
    std::uint64_t coalesced = 0;
    std::uint64_t ignored_events = 0;
    std::map<std::string, subscription, std::less<>> subscriptions;
    std::vector<std::string> missing_stages;
    std::optional<util::instant> tenant_checked_at;
    std::string tenant_error;

    util::counter* requests_total = nullptr;
    util::counter* errors_total = nullptr;
    util::counter* rejected_total = nullptr;

    static client_settings with_sensitive(client_settings c) {
        c.sensitive_headers.emplace_back("AccessKey");
        return c;
    }

    impl(settings& st, runtime_deps r)
        : s(st), rt(std::move(r)), http(rt.executor, with_sensitive(rt.http)) {
        reads.max_attempts = 3;
        reads.max_total = std::chrono::seconds(30);
        // No idempotency key at Karbon: a create is never resent inside one call; the outbox
        // looks it up (reconcile) before trying again.
        writes.max_attempts = 1;
        next_poll_at = rt.clock->now();
        next_check_at = next_poll_at;
        for (const auto& t : s.webhook_types) {
            subscriptions[t] = {};
        }
        if (rt.metrics != nullptr) {
            requests_total = &rt.metrics->get_counter("billsync_connector_requests_total",
                                                      "Vendor API requests by connector.",
                                                      {{"connector", st.name}});
            errors_total =
                &rt.metrics->get_counter("billsync_connector_errors_total",
                                         "Vendor API requests that failed, by connector.",
                                         {{"connector", st.name}});
            rejected_total = &rt.metrics->get_counter(
                "billsync_connector_webhooks_rejected_total",
                "Webhook deliveries a connector refused (bad signature or replay).",
                {{"connector", st.name}});
        }
    }

    std::uint64_t next_sequence() { return ++sequence; }

    void note_error(const std::string& message) {
        std::lock_guard lock(status_mutex);
        ++failures;
        last_error = message;
        last_error_at = rt.clock->now();
    }

    net::awaitable<http_result> attempt(http_request r) {
        auto permit = co_await rt.limiter->acquire(std::string(vendor), s.name);
        auto res = co_await http.send(std::move(r));
        if (res.ok()) {
            rt.limiter->observe(std::string(vendor), s.name, res.response);
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

    net::awaitable<api_result> call(http_request req, retry_policy policy) {
        req.headers.push_back({"Authorization", "Bearer " + s.bearer_token});
        req.headers.push_back({"AccessKey", s.access_key});
        req.headers.push_back({"Accept", "application/json"});
        retry_deps deps;
        deps.send = [this](http_request r) { return attempt(std::move(r)); };
        deps.time = rt.time;
        const auto method = req.method;
        const auto path = req.url.substr(s.base_url.size());
        auto res = co_await send_with_retry(std::move(req), policy, std::move(deps));
        api_result out;
        out.status = res.last.ok() ? res.last.response.status : 0;
        out.body = std::move(res.last.response.body);
        out.error = res.error;
        if (out.error && !out.not_found()) {
            if (out.status >= 400) {
                out.error->message += " " + error_text(out.body);
            }
            if (errors_total != nullptr) {
                errors_total->inc();
            }
            note_error(out.error->message);
            if (rt.log) {
                rt.log->warn(
                    "Karbon call failed connector={} method={} path={} status={} "
                    "error=\"{}\"",
                    s.name,
                    method,
                    path.substr(0, path.find('?')),
                    out.status,
                    out.error->message);
            }
        } else if (!out.error) {
            std::lock_guard lock(status_mutex);
            last_success = rt.clock->now();
        }
        co_return out;
    }

    net::awaitable<api_result> send(std::string method,
                                    std::string path,
                                    std::string body = {},
                                    bool write = false) {
        http_request req;
        req.method = std::move(method);
        req.url = s.base_url + path;
        if (!body.empty()) {
            req.body = std::move(body);
            req.headers.push_back({"Content-Type", "application/json"});
        }
        req.reconcilable = write;
        co_return co_await call(std::move(req), write ? writes : reads);
    }

    mk::mapping_options options(const state::store& st) const {
        mk::mapping_options o;
        o.system = s.name;
        o.time_zone = s.time_zone;
        o.resolve = state::canonical_ids(st, s.name);
        return o;
    }

    // Reads one record; nullopt object: 404 (deleted). `type` is the webhook's ResourceType.
    struct read_result {
        std::optional<resolve_outcome> failed;
        json object;           // null when deleted
        std::string resource;  // "Work", "Contact", "Organization"
    };

    static resolve_outcome failure_of(const api_result& r) {
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

    net::awaitable<read_result> read(std::string type, std::string key) {
        read_result out;
        std::vector<std::pair<std::string, std::string>> tries;
        if (type == "Work") {
            tries = {{"Work", "/v3/WorkItems/"}};
        } else if (type == "Invoice") {
            tries = {{"Invoice", "/v3/Invoices/"}};
        } else {
            // The Contact webhook covers organizations too: the key is one or the other.
            tries = {{"Contact", "/v3/Contacts/"}, {"Organization", "/v3/Organizations/"}};
        }
        out.resource = tries.front().first;
        for (const auto& [resource, prefix] : tries) {
            auto r = co_await send("GET", prefix + http::percent_encode(key));
            if (r.not_found()) {
                continue;
            }
            if (!r.ok()) {
                out.failed = failure_of(r);
                co_return out;
            }
            // Exact: an invoice's amounts are JSON numbers that must never become doubles.
            std::string error;
            auto j = mappings::parse_exact(r.body, error).value_or(json());
            if (!j.is_object()) {
                resolve_outcome f;
                f.k = resolve_outcome::kind::retry;
                f.detail = "unreadable Karbon answer";
                out.failed = f;
                co_return out;
            }
            out.resource = resource;
            out.object = std::move(j);
            co_return out;
        }
        co_return out;
    }
};

karbon_connector::karbon_connector(settings s, runtime_deps rt)
    : settings_(std::move(s)), impl_(std::make_unique<impl>(settings_, std::move(rt))) {}

karbon_connector::~karbon_connector() = default;

std::string karbon_connector::cursor_key() const { return settings_.name + "/sync"; }

// ---- intake ------------------------------------------------------------------------------------

verify_result karbon_connector::verify(const http::request& req) const {
    auto& im = *impl_;
    verify_result r;
    const auto reject = [&](std::string reason, bool replay) {
        {
            std::lock_guard lock(im.status_mutex);
            ++(replay ? im.rejected_replay : im.rejected_signature);
        }
        if (im.rejected_total != nullptr) {
            im.rejected_total->inc();
        }
        r.reason = std::move(reason);
        return r;
    };
    const auto check =
        verify_signature(settings_.signing_key, req.body, req.header_value(signature_header));
    if (check != signature_check::ok) {
        return reject(std::string(to_string(check)), false);
    }
    const auto parsed = parse_webhook(req.body);
    const auto now = im.rt.clock->now();
    if (parsed.ok()) {
        if (parsed.value->timestamp < now - settings_.replay_window) {
            return reject("TimeStamp " + util::format_rfc3339(parsed.value->timestamp) +
                              " is older than the replay window",
                          true);
        }
        std::lock_guard lock(im.status_mutex);
        const auto type = webhook_type_of(parsed.value->resource_type);
        if (auto it = im.subscriptions.find(type); it != im.subscriptions.end()) {
            it->second.last_delivery = now;
        }
    }
    r.accepted = true;
    r.dedup_key = "sha256:" + util::hex_encode(util::sha256(req.body));
    {
        std::lock_guard lock(im.coalesce_mutex);
        if (im.arrived.size() >= impl::coalesce_cap) {
            im.arrived.clear();  // only costs reads that could have been skipped
        }
        im.arrived[r.dedup_key] = im.next_sequence();
    }
    return r;
}

std::string karbon_connector::check_payload(std::string_view body) const {
    return parse_webhook(body).error;
}

// ---- resolve: fetch after notify ----------------------------------------------------------------

net::awaitable<resolve_outcome> karbon_connector::resolve(const state::inbox_event& e) {
    auto& im = *impl_;
    resolve_outcome out;
    if (e.kind == "invoice_keys") {
        // Invoices the sweep found changed: each read in full, as a delivery would be.
        const auto doc = json::parse(e.body, nullptr, false);
        const auto keys = doc.is_object() ? doc.find("keys") : doc.end();
        if (!doc.is_object() || keys == doc.end() || !keys->is_array()) {
            out.k = resolve_outcome::kind::permanent;
            out.detail = "invoice_keys event without keys";
            co_return out;
        }
        json resolved = json::array();
        for (const auto& k : *keys) {
            if (!k.is_string()) {
                continue;
            }
            auto got = co_await im.read("Invoice", k.get<std::string>());
            if (got.failed) {
                co_return *got.failed;
            }
            resolved.push_back(
                {{"type", got.resource}, {"key", k.get<std::string>()}, {"object", got.object}});
        }
        out.body = json{{"resolved", std::move(resolved)}}.dump();
        co_return out;
    }
    if (!e.kind.empty()) {
        co_return out;  // polled pages hold whole records already
    }
    const auto parsed = parse_webhook(e.body);
    if (!parsed.ok()) {
        out.k = resolve_outcome::kind::permanent;
        out.detail = parsed.error;
        co_return out;
    }
    const auto& n = *parsed.value;
    if (n.resource_type != "Work" && n.resource_type != "Contact" && n.resource_type != "Invoice") {
        // Notes, users, estimates…: not mapped by this connector.
        {
            std::lock_guard lock(im.status_mutex);
            ++im.ignored_events;
        }
        out.body = json{{"resolved", json::array()}}.dump();
        co_return out;
    }
    const auto read_key = n.resource_type + "/" + n.key;
    std::optional<std::uint64_t> arrival;
    {
        std::lock_guard lock(im.coalesce_mutex);
        if (auto it = im.arrived.find(e.dedup_key); it != im.arrived.end()) {
            arrival = it->second;
            im.arrived.erase(it);
        }
        if (auto it = im.read_at.find(read_key);
            arrival && it != im.read_at.end() && it->second > *arrival) {
            // Read after this delivery arrived: that read covered it (one read per burst).
            std::lock_guard status(im.status_mutex);
            ++im.coalesced;
            out.body = json{{"resolved", json::array()}}.dump();
            co_return out;
        }
    }
    const auto seq = im.next_sequence();
    auto got = co_await im.read(n.resource_type, n.key);
    if (got.failed) {
        co_return *got.failed;
    }
    {
        std::lock_guard lock(im.coalesce_mutex);
        if (im.read_at.size() >= impl::coalesce_cap) {
            im.read_at.clear();
        }
        auto& at = im.read_at[read_key];
        at = std::max(at, seq);
    }
    json item{{"type", got.resource}, {"key", n.key}, {"object", std::move(got.object)}};
    out.body = json{{"resolved", json::array({std::move(item)})}}.dump();
    co_return out;
}

// ---- process: records -> canonical entities
// ------------------------------------------------------

state::result<std::vector<mappings::change>> karbon_connector::process(const state::inbox_event& e,
                                                                       const state::store& st,
                                                                       state::batch& b) {
    using result_t = state::result<std::vector<mappings::change>>;
    auto& im = *impl_;
    std::string parse_error;
    const auto doc = mappings::parse_exact(e.body, parse_error).value_or(json());
    if (!doc.is_object()) {
        return result_t::failure(state::status::failure("unreadable event: not a JSON object"));
    }
    struct item {
        std::string type;
        std::string key;
        json object;  // null: deleted
    };
    std::vector<item> items;
    if (e.kind.empty() || e.kind == "invoice_keys") {
        auto it = doc.find("resolved");
        if (it == doc.end() || !it->is_array()) {
            return result_t::failure(
                state::status::failure("webhook event was not resolved before mapping"));
        }
        for (const auto& r : *it) {
            items.push_back({text_of(r, "type"), text_of(r, "key"), r.value("object", json())});
        }
    } else if (e.kind == "page") {
        const auto type = text_of(doc, "type");
        if (auto rows = doc.find("value"); rows != doc.end() && rows->is_array()) {
            for (const auto& row : *rows) {
                items.push_back({type, {}, row});
            }
        }
    } else {
        return result_t::failure(
            state::status::failure("unknown Karbon event kind '" + e.kind + "'"));
    }

    std::vector<mappings::change> changes;
    const auto opts = im.options(st);
    // Invoices (and their payments) from a connector that is not the invoices source are stored
    // as facts only: no change reaches the workflows, so they start no follow-up.
    const bool drive_invoices = settings_.invoices_source;
    const auto apply = [&](mappings::entity ent, bool drive = true) -> state::status {
        auto applied = state::apply(st, b, settings_.name, std::move(ent));
        if (!applied.ok()) {
            return applied.st;
        }
        if (applied.value && drive) {
            changes.push_back(std::move(*applied.value));
        }
        return state::status::success();
    };
    const auto skip = [&](const std::string& type, const std::string& why) {
        {
            std::lock_guard lock(im.status_mutex);
            ++im.unmappable;
        }
        if (im.rt.log) {
            im.rt.log->error("Karbon record skipped connector={} type={} error=\"{}\"",
                             settings_.name,
                             type,
                             why);
        }
    };
    for (const auto& x : items) {
        std::optional<mappings::entity> ent;
        if (x.object.is_null()) {
            if (x.key.empty()) {
                continue;
            }
            if (x.type == "Work") {
                ent.emplace(mk::deleted_work_item(x.key, opts));
            } else if (x.type == "Invoice") {
                if (auto st2 = apply(mk::deleted_invoice(x.key, opts), drive_invoices); !st2.ok) {
                    return result_t::failure(st2);
                }
                continue;
            } else {
                ent.emplace(mk::deleted_client(x.key, opts));
            }
        } else if (x.type == "Work") {
            if (auto a = mk::assignee_of(x.object, opts)) {
                if (auto st2 = apply(std::move(*a)); !st2.ok) {
                    return result_t::failure(st2);
                }
            }
            auto m = mk::map_work_item(x.object, opts);
            if (!m) {
                skip(x.type, m.error);
                continue;
            }
            ent.emplace(std::move(*m.value));
        } else if (x.type == "Contact" || x.type == "Organization") {
            auto m = x.type == "Contact" ? mk::map_contact(x.object, opts)
                                         : mk::map_organization(x.object, opts);
            if (!m) {
                skip(x.type, m.error);
                continue;
            }
            ent.emplace(std::move(*m.value));
        } else if (x.type == "Invoice") {
            auto m = mk::map_invoice(x.object, opts);
            if (!m) {
                skip(x.type, m.error);
                continue;
            }
            if (auto st2 = apply(std::move(m.value->inv), drive_invoices); !st2.ok) {
                return result_t::failure(st2);
            }
            for (auto& p : m.value->payments) {
                if (auto st2 = apply(std::move(p), drive_invoices); !st2.ok) {
                    return result_t::failure(st2);
                }
            }
            continue;
        } else {
            continue;
        }
        if (auto st2 = apply(std::move(*ent)); !st2.ok) {
            return result_t::failure(st2);
        }
    }
    return {state::status::success(), std::move(changes)};
}

// ---- subscriptions and tenant settings
// -----------------------------------------------------------

net::awaitable<void> karbon_connector::check_subscriptions() {
    auto& im = *impl_;
    const auto target = settings_.public_url + "/webhooks/" + settings_.name;
    bool recreated_any = false;
    for (const auto& type : settings_.webhook_types) {
        const auto path = "/v3/WebhookSubscriptions/" + http::percent_encode(type);
        auto cur = co_await im.send("GET", path);
        std::string problem;
        bool create = false;
        if (cur.not_found()) {
            create = true;  // never made, or cancelled by Karbon after 10 failed deliveries
        } else if (!cur.ok()) {
            problem = "cannot read the subscription: " + cur.error->message;
        } else {
            const auto j = json::parse(cur.body, nullptr, false);
            if (text_of(j, "TargetUrl") != target) {
                if (im.rt.log) {
                    im.rt.log->warn(
                        "Karbon webhook subscription points elsewhere; re-creating connector={} "
                        "type={}",
                        settings_.name,
                        type);
                }
                auto del = co_await im.send("DELETE", path);
                if (!del.ok() && !del.not_found()) {
                    problem = "cannot delete the subscription: " + del.error->message;
                } else {
                    create = true;
                }
            }
        }
        if (create) {
            const json body{{"TargetUrl", target},
                            {"WebhookType", type},
                            {"SigningKey", settings_.signing_key}};
            auto made = co_await im.send("POST", "/v3/WebhookSubscriptions", body.dump(), true);
            if (!made.ok()) {
                problem = "cannot create the subscription: " + made.error->message;
            } else {
                recreated_any = true;
                if (im.rt.log) {
                    im.rt.log->warn("Karbon webhook subscription created connector={} type={}",
                                    settings_.name,
                                    type);
                }
            }
        }
        std::lock_guard lock(im.status_mutex);
        auto& sub = im.subscriptions[type];
        sub.checked_at = im.rt.clock->now();
        sub.active = problem.empty();
        sub.error = problem;
        if (create && problem.empty()) {
            sub.recreated_at = sub.checked_at;
            ++sub.recreated;
        }
    }

    // Stage names the firm's rules use must exist in the tenant, or they would never match.
    auto tenant = co_await im.send("GET", "/v3/TenantSettings");
    if (tenant.ok()) {
        const auto j = json::parse(tenant.body, nullptr, false);
        std::set<std::string> known;
        if (auto ws = j.is_object() ? j.find("WorkStatuses") : j.end();
            j.is_object() && ws != j.end() && ws->is_array()) {
            for (const auto& w : *ws) {
                known.insert(text_of(w, "SecondaryStatusName"));
            }
        }
        std::vector<std::string> missing;
        for (const auto& stage : settings_.stages) {
            if (!known.contains(stage)) {
                missing.push_back(stage);
            }
        }
        bool changed = false;
        {
            std::lock_guard lock(im.status_mutex);
            changed = missing != im.missing_stages || !im.tenant_checked_at;
            im.missing_stages = missing;
            im.tenant_checked_at = im.rt.clock->now();
            im.tenant_error.clear();
        }
        if (changed && !missing.empty() && im.rt.log) {
            std::string names;
            for (const auto& m : missing) {
                names += (names.empty() ? "" : ", ") + m;
            }
            im.rt.log->error(
                "Karbon stages are not secondary statuses of the tenant; rules naming them never "
                "match connector={} stages=\"{}\"",
                settings_.name,
                names);
        }
    } else {
        std::lock_guard lock(im.status_mutex);
        im.tenant_error = tenant.error->message;
    }
    im.next_check_at = im.rt.clock->now() + settings_.subscription_check;
    if (recreated_any) {
        // Deliveries may have been lost while the subscription was gone: sweep now.
        im.next_poll_at = im.rt.clock->now();
    }
}

// ---- polling -----------------------------------------------------------------------------------

std::optional<util::instant> karbon_connector::next_poll() const {
    return std::min(impl_->next_poll_at, impl_->next_check_at);
}

net::awaitable<poll_outcome> karbon_connector::poll(const state::store& st) {
    poll_outcome out;
    auto& im = *impl_;
    auto now = im.rt.clock->now();
    if (now >= im.next_check_at) {
        co_await check_subscriptions();
        now = im.rt.clock->now();
    }
    if (now < im.next_poll_at) {
        co_return out;
    }
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
        c.started_at = now;
        c.since = now;
    }
    if (c.ph == sync_cursor::phase::sweep && c.step == 0 && c.next.empty()) {
        c.started_at = now;  // a new sweep begins
        c.done = 0;
        c.total = 0;
    }
    // Leave room for webhook reads: the sweep waits while fewer requests than the reserve are
    // left in the limiter's window.
    if (settings_.poll_reserve > 0) {
        const auto stats = im.rt.limiter->stats(std::string(vendor), settings_.name);
        if (!stats.available.empty() &&
            *std::min_element(stats.available.begin(), stats.available.end()) <
                settings_.poll_reserve) {
            im.next_poll_at = now + std::chrono::seconds(5);
            co_return out;
        }
    }
    const bool invoices =
        std::find(settings_.webhook_types.begin(), settings_.webhook_types.end(), "Invoice") !=
        settings_.webhook_types.end();
    if (c.step == invoice_step && (!invoices || c.ph == sync_cursor::phase::backfill)) {
        c.step = sync_steps;  // nothing to list (a cursor from another configuration): done
        c.next.clear();
    }
    if (c.step < sync_steps) {
        const auto page = c.next.empty() ? first_page(c.step, settings_.page_size) : c.next;
        auto r = co_await im.send("GET", page);
        if (!r.ok()) {
            fail("list failed: " + r.error->message);
            co_return out;
        }
        std::string parse_error;
        auto j = mappings::parse_exact(r.body, parse_error).value_or(json());
        if (!j.is_object() || !j.contains("value") || !j["value"].is_array()) {
            fail("list answer is not an OData page");
            co_return out;
        }
        if (c.next.empty()) {
            const auto count = j.find("@odata.count");
            if (count != j.end() && count->is_number_unsigned()) {
                c.total += count->get<std::uint64_t>();
            }
        }
        auto& rows = j["value"];
        bool reached_since = false;
        if (c.ph == sync_cursor::phase::sweep && c.step == completed_step) {
            // Completed since the last sweep began (CompletedDate is a date: a day of margin).
            const auto from = std::chrono::floor<std::chrono::days>(c.since) - std::chrono::days(1);
            json kept = json::array();
            for (auto& row : rows) {
                const auto done = mappings::parse_timestamp(text_of(row, "CompletedDate"));
                if (!done || *done >= from) {
                    kept.push_back(std::move(row));
                }
            }
            rows = std::move(kept);
        } else if (c.step == invoice_step) {
            // Newest first, stopping at the last sweep; an invoice whose stored copy is of the
            // same UpdatedAt (its delivery was read) costs no read.
            const auto ids = state::canonical_ids(st, settings_.name);
            json keys = json::array();
            for (const auto& row : rows) {
                const auto updated = text_of(row, "UpdatedAt");
                const auto t = mappings::parse_timestamp(updated);
                if (t && *t < c.since) {
                    reached_since = true;
                    break;
                }
                const auto key = text_of(row, "InvoiceKey");
                if (key.empty()) {
                    continue;
                }
                mappings::source_ref ref;
                ref.system = settings_.name;
                ref.id = key;
                auto have = state::get_entity(st, "invoice", ids(mk::invoice_type, ref));
                if (!have.ok()) {
                    fail("cannot read the stored invoice: " + have.st.message);
                    co_return out;
                }
                if (have.value) {
                    const auto stored_row = json::parse(*have.value, nullptr, false);
                    std::string error;
                    const auto inv = mappings::invoice_from_json(stored_row, error);
                    if (inv && !inv->deleted && inv->source.version == updated) {
                        continue;
                    }
                }
                keys.push_back(key);
            }
            c.done += keys.size();
            if (!keys.empty()) {
                out.events.push_back({"invoice_keys", json{{"keys", std::move(keys)}}.dump()});
            }
            rows = json::array();
        } else if (c.ph == sync_cursor::phase::sweep && c.step >= open_statuses.size()) {
            // Newest first: stop at the first record changed before the last sweep began.
            json kept = json::array();
            for (auto& row : rows) {
                const auto t = mappings::parse_timestamp(text_of(row, "LastModifiedDateTime"));
                if (t && *t < c.since) {
                    reached_since = true;
                    break;
                }
                kept.push_back(std::move(row));
            }
            rows = std::move(kept);
        }
        c.done += rows.size();
        if (!rows.empty()) {
            out.events.push_back(
                {"page", json{{"type", step_type(c.step)}, {"value", std::move(rows)}}.dump()});
        }
        const auto link = text_of(j, "@odata.nextLink");
        c.next = reached_since ? std::string() : path_of_link(link);
        if (c.next.empty()) {
            ++c.step;
            if (c.ph == sync_cursor::phase::backfill && c.step == completed_step) {
                ++c.step;  // a first connect takes open work only
            }
            if (c.step == invoice_step && (!invoices || c.ph == sync_cursor::phase::backfill)) {
                ++c.step;  // invoices are known from their first change after connecting
            }
        }
    }
    if (c.step >= sync_steps) {
        if (im.rt.log) {
            im.rt.log->info("Karbon {} finished connector={} records={}",
                            phase_name(c.ph),
                            settings_.name,
                            c.done);
        }
        const auto started = c.started_at;
        c = sync_cursor{};
        c.ph = sync_cursor::phase::sweep;
        c.started_at = started;
        c.since = started - settings_.sweep_overlap;
        im.next_poll_at = now + settings_.poll_interval;
    } else {
        im.next_poll_at = now;  // the next page at once
    }
    im.poll_failures = 0;
    out.more = c.step != 0 || !c.next.empty();
    out.cursors.emplace_back(cursor_key(), c.encode());
    {
        std::lock_guard lock(im.status_mutex);
        im.cursor = c;
    }
    co_return out;
}

// ---- actions -----------------------------------------------------------------------------------

namespace {

struct task_request {
    std::string title;  // keyed
    json body;
    std::string error;
};

task_request task_of(const state::action& a, const settings& s, util::instant now) {
    task_request t;
    const auto p = json::parse(a.payload, nullptr, false);
    if (!p.is_object()) {
        t.error = "payload is not a JSON object";
        return t;
    }
    const auto field = [&](std::string_view key, const std::string& fallback = {}) {
        auto v = text_of(p, key);
        return v.empty() ? fallback : v;
    };
    const auto title = field("title");
    const auto client_key = field("client_key");
    const auto assignee = field("assignee_email", s.task_assignee_email);
    if (title.empty() || client_key.empty() || assignee.empty()) {
        t.error =
            "task.create needs title, client_key and an assignee_email (payload or "
            "task_assignee_email)";
        return t;
    }
    t.title = keyed_title(title, a.id);
    const auto today = date_in_zone(now, s.time_zone);
    auto due = field("due_date");
    if (due.empty()) {
        due = date_in_zone(now + std::chrono::days(s.task_due_days), s.time_zone);
    }
    t.body = json{{"Title", t.title},
                  {"ClientKey", client_key},
                  {"ClientType", field("client_type")},
                  {"AssigneeEmailAddress", assignee},
                  {"StartDate", field("start_date", today)},
                  {"DueDate", due}};
    if (const auto wt = field("work_type", s.task_work_type); !wt.empty()) {
        t.body["WorkType"] = wt;
    }
    if (const auto d = field("description"); !d.empty()) {
        t.body["Description"] = d;
    }
    return t;
}

}  // namespace

net::awaitable<action_outcome> karbon_connector::perform(state::action a) {
    auto& im = *impl_;
    if (a.kind.starts_with("invoice.") || a.kind.starts_with("payment.")) {
        co_return make_outcome(action_outcome::kind::permanent,
                               "Karbon invoices are read-only facts: billsync never writes one ('" +
                                   a.kind + "' refused)");
    }
    if (a.kind != "task.create") {
        co_return make_outcome(action_outcome::kind::permanent,
                               "unknown Karbon action kind '" + a.kind + "'");
    }
    auto task = task_of(a, settings_, im.rt.clock->now());
    if (!task.error.empty()) {
        co_return make_outcome(action_outcome::kind::permanent, task.error);
    }
    if (task.body["ClientType"] == "") {
        // The sender knows the client only by its key: a contact or an organization, as Karbon
        // has it (a work item needs the type).
        const auto key = task.body["ClientKey"].get<std::string>();
        std::string type;
        for (const auto* resource : {"Contacts", "Organizations"}) {
            auto r = co_await im.send(
                "GET", std::string("/v3/") + resource + "/" + http::percent_encode(key));
            if (r.ok()) {
                type = std::string_view(resource) == "Contacts" ? "Contact" : "Organization";
                break;
            }
            if (!r.not_found()) {
                co_return make_outcome(action_outcome::kind::retry,
                                       "cannot look the client up: " + r.error->message);
            }
        }
        if (type.empty()) {
            co_return make_outcome(action_outcome::kind::permanent,
                                   "no Karbon contact or organization has the key '" + key + "'");
        }
        task.body["ClientType"] = type;
    }
    if (a.attempts > 0) {
        // An earlier attempt started (the outbox counts side effects started before this one):
        // it may have created the work item. Karbon has no idempotency key, so look first.
        auto found = co_await reconcile(a);
        if (found.k == reconcile_outcome::kind::happened) {
            co_return make_outcome(action_outcome::kind::done, found.detail);
        }
        if (found.k == reconcile_outcome::kind::undecided) {
            co_return make_outcome(action_outcome::kind::retry,
                                   "cannot look the work item up: " + found.detail);
        }
    }
    auto r = co_await im.send("POST", "/v3/WorkItems", task.body.dump(), true);
    if (!r.ok()) {
        action_outcome o;
        o.detail = r.error->message;
        switch (r.error->cond) {
            case condition::retryable:
            case condition::rate_limited:
            case condition::conflict:
                o.k = action_outcome::kind::retry;
                if (r.error->retry_after) {
                    o.retry_after = std::chrono::ceil<std::chrono::seconds>(*r.error->retry_after);
                }
                break;
            default:
                // Including 401: the credentials are static, so the operator must fix them.
                o.k = action_outcome::kind::permanent;
        }
        co_return o;
    }
    const auto j = json::parse(r.body, nullptr, false);
    auto o = make_outcome(action_outcome::kind::done, "WorkItem/" + text_of(j, "WorkItemKey"));
    mk::mapping_options opts;
    opts.system = settings_.name;
    opts.time_zone = settings_.time_zone;
    if (auto m = mk::map_work_item(j, opts)) {
        o.writes.emplace_back(std::move(*m.value));
    }
    co_return o;
}

net::awaitable<reconcile_outcome> karbon_connector::reconcile(state::action a) {
    auto& im = *impl_;
    reconcile_outcome out;
    const auto task = task_of(a, settings_, im.rt.clock->now());
    if (a.kind != "task.create" || !task.error.empty()) {
        out.k = reconcile_outcome::kind::absent;  // perform() dead-letters it
        co_return out;
    }
    auto r = co_await im.send(
        "GET",
        "/v3/WorkItems?$filter=" + http::percent_encode("Title eq " + odata_literal(task.title)) +
            "&$top=1");
    if (!r.ok()) {
        out.detail = r.error->message;
        co_return out;
    }
    const auto j = json::parse(r.body, nullptr, false);
    const auto rows = j.is_object() ? j.find("value") : j.end();
    if (j.is_object() && rows != j.end() && rows->is_array() && !rows->empty()) {
        out.k = reconcile_outcome::kind::happened;
        out.detail = "WorkItem/" + text_of(rows->front(), "WorkItemKey") + " (existing)";
    } else {
        out.k = reconcile_outcome::kind::absent;
    }
    co_return out;
}

// ---- status ------------------------------------------------------------------------------------

std::string karbon_connector::status_json() const {
    auto& im = *impl_;
    const auto now = im.rt.clock->now();
    const auto when = [](const std::optional<util::instant>& t) {
        return t ? json(util::format_rfc3339(*t)) : json(nullptr);
    };
    json j;
    const auto stats = im.rt.limiter->stats(std::string(vendor), settings_.name);
    j["rate_limit"] = {
        {"in_flight", stats.in_flight}, {"waiting", stats.waiting}, {"available", stats.available}};
    std::lock_guard lock(im.status_mutex);
    j["last_success"] = when(im.last_success);
    j["last_error"] = im.last_error_at ? json{{"at", util::format_rfc3339(*im.last_error_at)},
                                              {"message", im.last_error}}
                                       : json(nullptr);
    j["requests"] = im.requests;
    j["failures"] = im.failures;
    j["skipped_records"] = im.unmappable;
    j["webhooks"] = {{"rejected_signature", im.rejected_signature},
                     {"rejected_replay", im.rejected_replay},
                     {"coalesced_reads", im.coalesced},
                     {"ignored_events", im.ignored_events}};
    json subs = json::object();
    for (const auto& [type, sub] : im.subscriptions) {
        subs[type] = {{"active", sub.active},
                      {"checked_at", when(sub.checked_at)},
                      {"recreated_at", when(sub.recreated_at)},
                      {"recreated", sub.recreated},
                      {"last_delivery", when(sub.last_delivery)},
                      {"error", sub.error.empty() ? json(nullptr) : json(sub.error)}};
    }
    j["subscriptions"] = std::move(subs);
    j["tenant"] = {{"checked_at", when(im.tenant_checked_at)},
                   {"missing_stages", im.missing_stages},
                   {"error", im.tenant_error.empty() ? json(nullptr) : json(im.tenant_error)}};
    if (!im.missing_stages.empty()) {
        j["action_needed"] =
            "configured stages are not secondary statuses in Karbon: fix [connectors." +
            settings_.name + "] stages or the tenant's work statuses";
    }
    if (im.cursor) {
        const auto& c = *im.cursor;
        json cur{{"phase", std::string(phase_name(c.ph))},
                 {"step", c.step},
                 {"since", util::format_rfc3339(c.since)}};
        if (c.ph == sync_cursor::phase::backfill) {
            const auto elapsed =
                std::chrono::duration_cast<std::chrono::milliseconds>(now - c.started_at).count();
            const auto rate =
                elapsed > 0
                    ? static_cast<std::int64_t>(c.done * 1000 / static_cast<std::uint64_t>(elapsed))
                    : 0;
            cur["progress"] = {{"done", c.done}, {"total", c.total}, {"rate_per_s", rate}};
        }
        j["cursor"] = std::move(cur);
    } else {
        j["cursor"] = nullptr;
    }
    return j.dump();
}

}  // namespace billsync::connectors::karbon
