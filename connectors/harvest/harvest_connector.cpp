#include "connectors/harvest/harvest_connector.hpp"

#include <spdlog/logger.h>

#include <algorithm>
#include <mutex>
#include <nlohmann/json.hpp>

#include "connectors/harvest/harvest_kind.hpp"
#include "connectors/runtime/https_client.hpp"
#include "connectors/runtime/rate_limit.hpp"
#include "connectors/runtime/retry.hpp"
#include "http/message.hpp"
#include "mappings/entity.hpp"
#include "mappings/exact_json.hpp"
#include "mappings/harvest/harvest_mapping.hpp"
#include "state/apply.hpp"
#include "state/tables.hpp"
#include "util/metrics.hpp"

namespace billsync::connectors::harvest {

namespace {

using json = nlohmann::json;
namespace mh = mappings::harvest;

std::string text_of(const json& j, std::string_view key) {
    if (!j.is_object()) {
        return {};
    }
    auto it = j.find(key);
    return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::optional<util::instant> instant_of(std::string_view s) {
    if (auto p = mappings::parse_timestamp(s)) {
        return *p;
    }
    return std::nullopt;
}

// "2026-01-05T18:00:00Z": the form Harvest and Airbyte use for updated_since.
std::string seconds_text(util::instant t) {
    return util::format_rfc3339(std::chrono::floor<std::chrono::seconds>(t));
}

bool iequal(std::string_view a, std::string_view b) { return http::iequals(a, b); }

action_outcome outcome(action_outcome::kind k, std::string detail) {
    action_outcome o;
    o.k = k;
    o.detail = std::move(detail);
    return o;
}

// A failed call as an action outcome: transient conditions retry (with the server's wait), the
// rest are permanent. A 401 with a Personal Access Token too (it has nothing to refresh: the
// operator must store a new one, then replay the dead letter); with OAuth2 the call refreshed
// once already, so the action waits (retry) for `billsync connect` to store a new grant.
action_outcome failed(const harvest_connector::api_result& r,
                      std::string_view what,
                      bool refreshable) {
    action_outcome o;
    o.detail = std::string(what) + ": " + r.error->message;
    switch (r.error->cond) {
        case condition::auth_expired:
        case condition::auth_revoked:
            if (!refreshable) {
                o.k = action_outcome::kind::permanent;
                break;
            }
            [[fallthrough]];
        case condition::retryable:
        case condition::rate_limited:
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

// Harvest's message ({"message": …}, or OAuth's error_description) appended to the default
// classification.
std::optional<call_error> classify_harvest(const http_result& r) {
    auto e = classify(r);
    if (e && r.ok() && r.response.status >= 400) {
        const auto j = json::parse(r.response.body, nullptr, false);
        auto m = text_of(j, "message");
        if (m.empty()) {
            m = text_of(j, "error_description");
        }
        e->message = "Harvest HTTP " + std::to_string(r.response.status) +
                     (m.empty() ? std::string() : ": " + m.substr(0, 200));
    }
    return e;
}

// Why an entry must not be edited; empty when it may be.
std::string frozen_reason(const json& entry) {
    if (entry.value("is_billed", false)) {
        return "it is billed";
    }
    if (entry.value("is_closed", false)) {
        return "it is closed (approved)";
    }
    if (entry.value("is_locked", false)) {
        const auto why = text_of(entry, "locked_reason");
        return "it is locked" + (why.empty() ? std::string() : " (" + why + ")");
    }
    return {};
}

// The number at the end of an identity-map remote key ("123456/client/5735774" -> "5735774").
std::string last_segment(std::string_view ref) {
    const auto slash = ref.rfind('/');
    return std::string(slash == std::string_view::npos ? ref : ref.substr(slash + 1));
}

bool all_digits(std::string_view s) {
    return !s.empty() &&
           std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// "3.5", "12": digits with at most one '.' between digits (inserted into JSON as a number).
bool plain_decimal(std::string_view s) {
    const auto dot = s.find('.');
    if (dot == std::string_view::npos) {
        return all_digits(s);
    }
    return all_digits(s.substr(0, dot)) && all_digits(s.substr(dot + 1));
}

}  // namespace

const std::vector<std::string>& polled_resources() {
    // Clients and users before the projects and entries that name them.
    static const std::vector<std::string> r = {
        "clients", "users", "projects", "tasks", "time_entries"};
    return r;
}

// ---- cursor ------------------------------------------------------------------------------------

std::string sync_cursor::encode() const {
    json res = json::object();
    for (std::size_t i = 0; i < resources.size() && i < polled_resources().size(); ++i) {
        const auto& r = resources[i];
        res[polled_resources()[i]] = {{"since", r.since},
                                      {"pass_max", r.pass_max},
                                      {"seen", r.seen},
                                      {"done", r.done},
                                      {"total", r.total}};
    }
    return json{{"phase", backfill ? "backfill" : "incremental"},
                {"step", step},
                {"next", next},
                {"started_at", started_at},
                {"resources", std::move(res)}}
        .dump();
}

std::optional<sync_cursor> sync_cursor::decode(std::string_view text) {
    const auto j = json::parse(text, nullptr, false);
    if (!j.is_object() || !j.contains("resources") || !j["resources"].is_object()) {
        return std::nullopt;
    }
    sync_cursor c;
    const auto phase = text_of(j, "phase");
    if (phase != "backfill" && phase != "incremental") {
        return std::nullopt;
    }
    c.backfill = phase == "backfill";
    c.step = j.value("step", 0u);
    if (c.step >= polled_resources().size()) {
        return std::nullopt;
    }
    c.next = text_of(j, "next");
    c.started_at = text_of(j, "started_at");
    for (std::size_t i = 0; i < polled_resources().size(); ++i) {
        const auto it = j["resources"].find(polled_resources()[i]);
        if (it == j["resources"].end() || !it->is_object()) {
            continue;
        }
        auto& r = c.resources[i];
        r.since = text_of(*it, "since");
        r.pass_max = text_of(*it, "pass_max");
        r.done = it->value("done", std::uint64_t{0});
        r.total = it->value("total", std::uint64_t{0});
        if (auto s = it->find("seen"); s != it->end() && s->is_array()) {
            for (const auto& k : *s) {
                if (k.is_string()) {
                    r.seen.insert(k.get<std::string>());
                }
            }
        }
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
    if (const auto* v = s.value("account_id")) {
        out.account_id = *v;
    }
    if (const auto* v = s.find_secret("access_token")) {
        out.access_token = v->reveal();
    }
    out.use_oauth2 = uses_oauth2(s);
    if (out.use_oauth2) {
        out.client.token_url = s.token_url.empty() ? oauth2_rules().token_url : s.token_url;
        out.client.client_id = *s.value("client_id");
        out.client.secret_in_body = oauth2_rules().client_secret_in_body;
        if (const auto* v = s.find_secret("client_secret")) {
            out.client.client_secret = v->reveal();
        }
        const auto* scope = s.value("scope");
        out.required_scope = scope != nullptr ? *scope : oauth2_rules().scope;
    }
    if (const auto* v = s.value("contact")) {
        out.contact = *v;
    }
    if (const auto* v = s.value("currency")) {
        out.currency = *v;
    }
    if (const auto* v = s.value("poll_interval_s")) {
        out.poll_interval = std::chrono::seconds(std::stoll(*v));
    }
    if (const auto* v = s.value("overlap_s")) {
        out.overlap = std::chrono::seconds(std::stoll(*v));
    }
    if (const auto* v = s.value("page_size")) {
        out.per_page = static_cast<std::uint32_t>(std::stoul(*v));
    }
    return out;
}

// ---- the connector -----------------------------------------------------------------------------

// The client settings with Harvest's User-Agent as the default, so the token endpoint gets it too.
client_settings with_user_agent(client_settings c, const settings& s) {
    c.user_agent = s.user_agent();
    return c;
}

struct harvest_connector::impl {
    settings& s;
    runtime_deps rt;
    https_client http;
    std::unique_ptr<oauth2::token_manager> tokens;  // OAuth2 only
    retry_policy reads;
    util::instant next_poll_at{};
    std::uint32_t poll_failures = 0;

    mutable std::mutex status_mutex;
    std::optional<sync_cursor> cursor;
    std::optional<util::instant> last_success;
    std::optional<util::instant> last_error_at;
    std::string last_error;
    std::uint64_t requests = 0;
    std::uint64_t failures = 0;
    std::uint64_t unmappable = 0;
    std::uint64_t duplicates_dropped = 0;
    std::set<std::string> missing_tasks;  // "project/task" a draft named but Harvest lacks

    util::counter* requests_total = nullptr;
    util::counter* errors_total = nullptr;

    impl(settings& st, runtime_deps r)
        : s(st), rt(std::move(r)), http(rt.executor, with_user_agent(rt.http, st)) {
        if (st.use_oauth2) {
            tokens = std::make_unique<oauth2::token_manager>(
                oauth2::manager_settings{
                    .connector = st.name,
                    .credential_id = credential_id(),
                    .vendor = "harvest",
                    .client = st.client,
                    .refresh_margin = st.refresh_margin,
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
                });
        }
        reads.max_attempts = 3;
        reads.max_total = std::chrono::seconds(60);
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

    void note_error(const std::string& message) {
        std::lock_guard lock(status_mutex);
        ++failures;
        last_error = message;
        last_error_at = rt.clock->now();
    }

    net::awaitable<http_result> attempt(http_request r) {
        auto permit = co_await rt.limiter->acquire("harvest", s.account_id);
        auto res = co_await http.send(std::move(r));
        if (res.ok()) {
            rt.limiter->observe("harvest", s.account_id, res.response);
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

    std::string credential_id() const { return "harvest/" + s.account_id; }

    bool paused() const {
        if (!tokens) {
            return false;
        }
        const auto st = tokens->state();
        return st == oauth2::credential_state::reconnect_needed ||
               st == oauth2::credential_state::not_connected;
    }

    // A fresh access token was refused too: Harvest no longer accepts the grant for this account.
    // Recorded with the credential (as an invalid_grant is), so it survives a restart and only
    // `billsync connect` clears it; the manager reloads it and reports reconnect_needed.
    void mark_reconnect_needed() {
        if (rt.tokens == nullptr) {
            return;
        }
        auto cred = oauth2::load_credential(*rt.tokens, credential_id());
        if (cred.ok() && cred.value && !cred.value->reconnect_needed) {
            cred.value->reconnect_needed = true;
            cred.value->reconnect_reason = "401 after refresh";
            if (auto w = oauth2::store_credential(*rt.tokens, *cred.value); !w && rt.log) {
                rt.log->warn("Cannot record reconnect_needed credential={} error=\"{}\"",
                             credential_id(),
                             w.message);
            }
        }
        tokens->reload();
    }

    // One call with the credentials in headers; GETs are retried per policy (429: after its
    // Retry-After), writes are not (the caller looks them up before any resend). With OAuth2 a
    // 401 refreshes the token once and sends again; a second 401 means reconnect needed.
    net::awaitable<api_result> call(std::string method, std::string url, std::string body = {}) {
        http_request req;
        req.method = std::move(method);
        req.url = std::move(url);
        req.headers = {{"Harvest-Account-Id", s.account_id},
                       {"User-Agent", s.user_agent()},
                       {"Accept", "application/json"}};
        if (!body.empty()) {
            req.headers.push_back({"Content-Type", "application/json"});
            req.body = std::move(body);
        }
        const auto m = req.method;
        api_result out;
        for (int auth_try = 0; auth_try < 2; ++auth_try) {
            std::string token = s.access_token;
            if (tokens) {
                auto tok = co_await tokens->access_token();
                if (!tok.ok()) {
                    out = api_result{};
                    out.error = tok.error;
                    break;
                }
                token = std::move(tok.token);
            }
            auto with = req;
            with.headers.push_back({"Authorization", "Bearer " + token});
            retry_deps deps;
            deps.send = [this](http_request r) { return attempt(std::move(r)); };
            deps.time = rt.time;
            deps.classify = classify_harvest;
            auto res = co_await send_with_retry(std::move(with), reads, std::move(deps));
            out = api_result{};
            out.status = res.last.ok() ? res.last.response.status : 0;
            out.body = std::move(res.last.response.body);
            out.error = res.error;
            if (!tokens || !out.error || out.error->cond != condition::auth_expired) {
                break;
            }
            if (auth_try == 0) {
                tokens->invalidate(token);
                continue;
            }
            mark_reconnect_needed();
            out.error->cond = condition::auth_revoked;
            out.error->message +=
                "; reconnect needed: run `billsync connect " + s.name + " --config FILE`";
            if (rt.log) {
                rt.log->error(
                    "Harvest refused a freshly refreshed access token connector={} "
                    "credential={}: reconnect needed; run `billsync connect {} --config FILE`",
                    s.name,
                    credential_id(),
                    s.name);
            }
        }
        if (out.error) {
            if (errors_total != nullptr) {
                errors_total->inc();
            }
            note_error(out.error->message);
            if (rt.log) {
                rt.log->warn("Harvest call failed connector={} method={} status={} error=\"{}\"",
                             s.name,
                             m,
                             out.status,
                             out.error->message);
            }
        } else {
            std::lock_guard lock(status_mutex);
            last_success = rt.clock->now();
        }
        co_return out;
    }

    mh::mapping_options options(const state::store& st) const {
        mh::mapping_options o;
        o.system = s.name;
        o.account_id = s.account_id;
        o.currency = s.currency;
        o.resolve = state::canonical_ids(st, s.name);
        return o;
    }
};

harvest_connector::harvest_connector(settings s, runtime_deps rt)
    : settings_(std::move(s)), impl_(std::make_unique<impl>(settings_, std::move(rt))) {}

harvest_connector::~harvest_connector() = default;

verify_result harvest_connector::verify(const http::request& /*req*/) const {
    verify_result r;
    r.reason = "Harvest sends no webhooks";
    return r;
}

std::string harvest_connector::check_payload(std::string_view /*body*/) const {
    return "Harvest sends no webhooks";
}

// ---- process -----------------------------------------------------------------------------------

state::result<std::vector<mappings::change>> harvest_connector::process(const state::inbox_event& e,
                                                                        const state::store& st,
                                                                        state::batch& b) {
    using result_t = state::result<std::vector<mappings::change>>;
    if (e.kind != "page") {
        return result_t::failure(
            state::status::failure("unknown Harvest event kind '" + e.kind + "'"));
    }
    std::string error;
    auto doc = mappings::parse_exact(e.body, error);
    if (!doc || !doc->is_object()) {
        return result_t::failure(state::status::failure("unreadable event: " + error));
    }
    const auto resource = text_of(*doc, "resource");
    const auto rows = doc->find("rows");
    if (rows == doc->end() || !rows->is_array()) {
        return result_t::failure(state::status::failure("event has no rows"));
    }
    const auto opts = impl_->options(st);
    std::vector<mappings::change> changes;
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
        if (resource == "clients") {
            take(mh::map_client(row, opts));
        } else if (resource == "users") {
            take(mh::map_user(row, opts));
        } else if (resource == "time_entries") {
            take(mh::map_time_entry(row, opts));
        } else if (resource == "projects") {
            // No canonical project entity: the project is linked into the identity map.
            auto p = mh::map_project(row, opts);
            if (p) {
                state::put_xref(b,
                                settings_.name,
                                mappings::identity_key("project", p.value->source),
                                p.value->engagement_id);
                continue;
            }
            why = p.error;
        } else {
            continue;  // tasks: read for /status and lookups, nothing canonical
        }
        if (!entity) {
            {
                std::lock_guard lock(impl_->status_mutex);
                ++impl_->unmappable;
            }
            if (impl_->rt.log) {
                impl_->rt.log->error("Harvest object skipped connector={} resource={} error=\"{}\"",
                                     settings_.name,
                                     resource,
                                     why);
            }
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
    // Entries a re-read found gone: deletes (the apply step keeps their last known fields).
    if (const auto gone = doc->find("deleted");
        resource == "time_entries" && gone != doc->end() && gone->is_array()) {
        for (const auto& id : *gone) {
            const auto text = mh::id_text(id);
            if (text.empty()) {
                continue;
            }
            auto applied = state::apply(st, b, settings_.name, mh::deleted_time_entry(text, opts));
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

std::optional<util::instant> harvest_connector::next_poll() const {
    if (impl_->paused()) {
        // Nothing to poll with; `billsync connect` and a reload bring it back.
        return impl_->next_poll_at + settings_.poll_interval;
    }
    return impl_->next_poll_at;
}

oauth2::token_manager* harvest_connector::tokens() noexcept { return impl_->tokens.get(); }

void harvest_connector::reload_credentials() {
    if (impl_->tokens) {
        impl_->tokens->reload();
        impl_->next_poll_at = impl_->rt.clock->now();
    }
}

net::awaitable<poll_outcome> harvest_connector::poll(const state::store& st) {
    poll_outcome out;
    auto& im = *impl_;
    const auto now = im.rt.clock->now();
    auto fail = [&](std::string message) {
        ++im.poll_failures;
        const auto backoff =
            std::chrono::seconds(15LL << std::min<std::uint32_t>(im.poll_failures, 6));
        im.next_poll_at = now + std::min<std::chrono::seconds>(backoff, settings_.poll_interval);
        out.error = std::move(message);
        if (im.rt.log) {
            im.rt.log->error(
                "Harvest poll failed connector={} error=\"{}\"", settings_.name, out.error);
        }
    };
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
        c = std::move(*decoded);
    } else {
        c.started_at = seconds_text(now);
    }
    const auto& resource = polled_resources()[c.step];
    auto& rc = c.resources[c.step];
    std::string url;
    if (c.next.empty()) {
        url =
            settings_.base_url + "/" + resource + "?per_page=" + std::to_string(settings_.per_page);
        if (auto since = instant_of(rc.since)) {
            url +=
                "&updated_since=" + http::percent_encode(seconds_text(*since - settings_.overlap));
        }
    } else {
        // Follow links.next exactly, but only to the configured API: the token goes with it.
        if (!c.next.starts_with(settings_.base_url + "/")) {
            fail("links.next points outside base_url; not followed: " + c.next.substr(0, 120));
            co_return out;
        }
        url = c.next;
    }
    auto r = co_await im.call("GET", url);
    if (!r.ok()) {
        fail("GET " + resource + " failed: " + r.error->message);
        co_return out;
    }
    std::string error;
    const auto doc = mappings::parse_exact(r.body, error);
    const json* rows = nullptr;
    if (doc && doc->is_object()) {
        if (auto it = doc->find(resource); it != doc->end() && it->is_array()) {
            rows = &*it;
        }
    }
    if (rows == nullptr) {
        fail("GET " + resource + ": the answer has no '" + resource + "' list");
        co_return out;
    }
    if (c.next.empty()) {
        rc.done = 0;
        rc.total = doc->value("total_entries", std::uint64_t{0});
    }
    json kept = json::array();
    auto pass_max = instant_of(rc.pass_max);
    const auto pass_max_before = pass_max;
    std::vector<std::pair<std::string, std::optional<util::instant>>> added;  // this page's keys
    std::uint64_t dropped = 0;
    for (const auto& row : *rows) {
        const auto id = mh::id_text(row.value("id", json()));
        const auto updated = text_of(row, "updated_at");
        const auto key = id + "@" + updated;
        if (!rc.seen.insert(key).second) {
            ++dropped;  // the overlap brought it again, unchanged
            continue;
        }
        const auto t = instant_of(updated);
        if (t && (!pass_max || *t > *pass_max)) {
            pass_max = *t;
        }
        added.emplace_back(key, t);
        kept.push_back(row);
    }
    rc.done += rows->size();
    if (pass_max) {
        rc.pass_max = seconds_text(*pass_max);
    }
    // Only rows within the overlap of the newest can come again. The whole set is walked only
    // when the newest moved; otherwise only this page's rows can be below the floor (so a pass
    // over rows that share one updated_at, as after a bulk import, costs no walk per page).
    if (pass_max) {
        const auto floor = *pass_max - settings_.overlap;
        if (pass_max != pass_max_before) {
            for (auto it = rc.seen.begin(); it != rc.seen.end();) {
                const auto at = it->find('@');
                const auto t =
                    at == std::string::npos ? std::nullopt : instant_of(it->substr(at + 1));
                it = !t || *t < floor ? rc.seen.erase(it) : std::next(it);
            }
        } else {
            for (const auto& [key, t] : added) {
                if (!t || *t < floor) {
                    rc.seen.erase(key);
                }
            }
        }
    }
    if (!kept.empty()) {
        out.events.push_back(
            {"page", json{{"resource", resource}, {"rows", std::move(kept)}}.dump()});
    }
    std::string next;
    if (auto links = doc->find("links"); links != doc->end() && links->is_object()) {
        next = text_of(*links, "next");
    }
    c.next = next;
    if (next.empty()) {
        if (!rc.pass_max.empty()) {
            rc.since = rc.pass_max;
        }
        ++c.step;
    }
    out.more = true;
    if (c.step >= polled_resources().size()) {
        if (c.backfill && im.rt.log) {
            im.rt.log->info("Harvest backfill finished connector={}", settings_.name);
        }
        c.step = 0;
        c.backfill = false;
        c.started_at = seconds_text(now);
        out.more = false;
    }
    {
        std::lock_guard lock(im.status_mutex);
        im.duplicates_dropped += dropped;
        im.cursor = c;
    }
    im.poll_failures = 0;
    im.next_poll_at = out.more ? now : now + settings_.poll_interval;
    out.cursors.emplace_back(cursor_key(), c.encode());
    co_return out;
}

// ---- actions -----------------------------------------------------------------------------------

std::string harvest_connector::serial_key(const state::action& a) const {
    if (a.kind == "time_entry.create") {
        return {};
    }
    const auto p = json::parse(a.payload, nullptr, false);
    const auto id = p.is_object() ? mh::id_text(p.value("id", json())) : std::string();
    return id.empty() ? std::string() : "time_entry/" + id;
}

namespace {

// The entry with this external reference, from a list answer; nullptr when none.
const json* entry_with_reference(const json& doc, const std::string& key) {
    if (!doc.is_object() || !doc.contains("time_entries") || !doc["time_entries"].is_array()) {
        return nullptr;
    }
    for (const auto& e : doc["time_entries"]) {
        const auto ext = e.value("external_reference", json());
        if (ext.is_object() && text_of(ext, "id") == key) {
            return &e;
        }
    }
    return nullptr;
}

}  // namespace

net::awaitable<action_outcome> harvest_connector::perform(state::action a) {
    auto& im = *impl_;
    const auto p = json::parse(a.payload, nullptr, false);
    if (!p.is_object()) {
        co_return outcome(action_outcome::kind::permanent, "payload is not a JSON object");
    }
    const auto base = settings_.base_url;
    if (a.kind == "time_entry.create") {
        const auto key = text_of(p, "key");
        if (key.empty()) {
            co_return outcome(action_outcome::kind::permanent, "payload has no \"key\"");
        }
        // Never a second entry: an earlier attempt may have created it.
        auto found = co_await im.call(
            "GET", base + "/time_entries?external_reference_id=" + http::percent_encode(key));
        if (!found.ok()) {
            co_return failed(found, "external reference lookup", settings_.use_oauth2);
        }
        const auto listed = json::parse(found.body, nullptr, false);
        if (const auto* e = entry_with_reference(listed, key)) {
            co_return outcome(action_outcome::kind::done,
                              "time_entry/" + mh::id_text(e->value("id", json())) + " (existing)");
        }
        const auto client = last_segment(text_of(p, "client_ref"));
        const auto user = last_segment(text_of(p, "user_ref"));
        // The project: an id, or a name among the client's active projects.
        auto project = text_of(p, "project");
        if (!all_digits(project)) {
            auto r = co_await im.call(
                "GET", base + "/projects?is_active=true&client_id=" + http::percent_encode(client));
            if (!r.ok()) {
                co_return failed(r, "project lookup", settings_.use_oauth2);
            }
            const auto j = json::parse(r.body, nullptr, false);
            std::string id;
            if (j.is_object() && j.contains("projects") && j["projects"].is_array()) {
                for (const auto& x : j["projects"]) {
                    if (iequal(text_of(x, "name"), project)) {
                        id = mh::id_text(x.value("id", json()));
                    }
                }
            }
            if (id.empty()) {
                {
                    std::lock_guard lock(im.status_mutex);
                    im.missing_tasks.insert("client " + client + ": project '" + project + "'");
                }
                co_return outcome(
                    action_outcome::kind::permanent,
                    "Harvest client " + client + " has no active project named '" + project + "'");
            }
            project = id;
        }
        // The task must be assigned to the project; its assignment says whether it bills.
        const auto task_name = text_of(p, "task");
        auto r = co_await im.call(
            "GET", base + "/projects/" + project + "/task_assignments?is_active=true");
        if (!r.ok()) {
            co_return failed(r, "task assignment lookup", settings_.use_oauth2);
        }
        const auto j = json::parse(r.body, nullptr, false);
        std::string task;
        bool billable = true;
        if (j.is_object() && j.contains("task_assignments") && j["task_assignments"].is_array()) {
            for (const auto& x : j["task_assignments"]) {
                const auto t = x.value("task", json::object());
                if (mh::id_text(t.value("id", json())) == task_name ||
                    iequal(text_of(t, "name"), task_name)) {
                    task = mh::id_text(t.value("id", json()));
                    billable = x.value("billable", true);
                }
            }
        }
        if (task.empty()) {
            {
                std::lock_guard lock(im.status_mutex);
                im.missing_tasks.insert("project " + project + ": task '" + task_name + "'");
            }
            co_return outcome(
                action_outcome::kind::permanent,
                "task '" + task_name + "' is not assigned to Harvest project " + project);
        }
        if (!p.value("billable", true) && billable) {
            co_return outcome(action_outcome::kind::permanent,
                              "the draft is non-billable but task '" + task_name +
                                  "' bills on Harvest project " + project +
                                  " (Harvest takes billability from the task assignment)");
        }
        json body{{"project_id", std::stoll(project)},
                  {"task_id", std::stoll(task)},
                  {"spent_date", text_of(p, "spent_date")},
                  {"notes", text_of(p, "notes")},
                  {"external_reference",
                   {{"id", key},
                    {"group_id", text_of(p, "group_id")},
                    {"account_id", settings_.account_id},
                    {"permalink", text_of(p, "permalink")}}}};
        if (!user.empty()) {
            body["user_id"] = std::stoll(user);
        }
        // Hours always go along (without them Harvest starts a timer); as exact decimal text.
        const auto hours = text_of(p, "hours");
        if (!plain_decimal(hours)) {
            co_return outcome(action_outcome::kind::permanent,
                              "payload has no \"hours\" as plain decimal text");
        }
        auto text = body.dump();
        text.pop_back();
        text += ",\"hours\":" + hours + "}";
        auto created = co_await im.call("POST", base + "/time_entries", std::move(text));
        if (!created.ok()) {
            co_return failed(created, "create time entry", settings_.use_oauth2);
        }
        // The entry reaches the canonical model with the next poll, through the identity map.
        const auto entry = json::parse(created.body, nullptr, false);
        co_return outcome(
            action_outcome::kind::done,
            "time_entry/" +
                (entry.is_object() ? mh::id_text(entry.value("id", json())) : std::string()));
    }
    if (a.kind == "time_entry.update" || a.kind == "time_entry.delete") {
        const auto id = mh::id_text(p.value("id", json()));
        if (id.empty()) {
            co_return outcome(action_outcome::kind::permanent, "payload has no \"id\"");
        }
        auto cur = co_await im.call("GET", base + "/time_entries/" + id);
        if (!cur.ok() && cur.error->cond == condition::not_found) {
            co_return outcome(a.kind == "time_entry.delete" ? action_outcome::kind::done
                                                            : action_outcome::kind::permanent,
                              "time entry " + id + " no longer exists");
        }
        if (!cur.ok()) {
            co_return failed(cur, "read time entry", settings_.use_oauth2);
        }
        const auto entry = json::parse(cur.body, nullptr, false);
        if (const auto why = frozen_reason(entry); !why.empty()) {
            co_return outcome(action_outcome::kind::permanent,
                              "time entry " + id + " is left alone: " + why +
                                  "; billsync never edits locked, closed or billed entries");
        }
        if (const auto expected = text_of(p, "updated_at");
            !expected.empty() && text_of(entry, "updated_at") != expected) {
            co_return outcome(
                action_outcome::kind::permanent,
                "time entry " + id + " was changed in Harvest since billsync wrote it; left alone");
        }
        if (a.kind == "time_entry.delete") {
            auto r = co_await im.call("DELETE", base + "/time_entries/" + id);
            if (!r.ok() && r.error->cond != condition::not_found) {
                co_return failed(r, "delete time entry", settings_.use_oauth2);
            }
            co_return outcome(action_outcome::kind::done, "time_entry/" + id + " deleted");
        }
        json body = json::object();
        for (const auto* k : {"notes", "spent_date"}) {
            if (p.contains(k) && p[k].is_string()) {
                body[k] = p[k];
            }
        }
        auto text = body.dump();
        if (const auto hours = text_of(p, "hours"); plain_decimal(hours)) {
            text.pop_back();
            text += std::string(body.empty() ? "" : ",") + "\"hours\":" + hours + "}";
        }
        auto r = co_await im.call("PATCH", base + "/time_entries/" + id, std::move(text));
        if (!r.ok()) {
            co_return failed(r, "update time entry", settings_.use_oauth2);
        }
        co_return outcome(action_outcome::kind::done, "time_entry/" + id + " updated");
    }
    co_return outcome(action_outcome::kind::permanent,
                      "unknown Harvest action kind '" + a.kind + "'");
}

net::awaitable<reconcile_outcome> harvest_connector::reconcile(state::action a) {
    reconcile_outcome out;
    const auto p = json::parse(a.payload, nullptr, false);
    const auto key = p.is_object() ? text_of(p, "key") : std::string();
    if (a.kind != "time_entry.create" || key.empty()) {
        // Updates and deletes re-read the entry before acting: performing again is safe.
        out.k = reconcile_outcome::kind::absent;
        co_return out;
    }
    auto r = co_await impl_->call(
        "GET",
        settings_.base_url + "/time_entries?external_reference_id=" + http::percent_encode(key));
    if (!r.ok()) {
        out.detail = r.error->message;
        co_return out;
    }
    const auto doc = json::parse(r.body, nullptr, false);
    if (const auto* e = entry_with_reference(doc, key)) {
        out.k = reconcile_outcome::kind::happened;
        out.detail = "time_entry/" + mh::id_text(e->value("id", json())) + " (existing)";
    } else {
        out.k = reconcile_outcome::kind::absent;
    }
    co_return out;
}

// ---- re-reads ----------------------------------------------------------------------------------

net::awaitable<resolve_outcome> harvest_connector::refresh(std::string entity_type,
                                                           mappings::source_ref ref) {
    resolve_outcome out;
    if (entity_type != "time_entry" || !all_digits(ref.id) ||
        (!ref.account.empty() && ref.account != settings_.account_id)) {
        co_return out;  // not ours to re-read: use what is stored
    }
    const auto retry = [&](const api_result& r, std::string_view what) {
        out.k = resolve_outcome::kind::retry;
        out.detail = std::string(what) + ": " + r.error->message;
        if (r.error->retry_after) {
            out.retry_after = std::chrono::ceil<std::chrono::seconds>(*r.error->retry_after);
        }
    };
    auto r = co_await impl_->call("GET", settings_.base_url + "/time_entries/" + ref.id);
    if (r.ok()) {
        std::string error;
        auto row = mappings::parse_exact(r.body, error);
        if (!row || !row->is_object() || mh::id_text(row->value("id", json())) != ref.id) {
            out.k = resolve_outcome::kind::retry;
            out.detail = "unreadable Harvest time entry " + ref.id + ": " + error;
            co_return out;
        }
        out.body =
            json{{"resource", "time_entries"}, {"rows", json::array({std::move(*row)})}}.dump();
        co_return out;
    }
    if (r.error->cond != condition::not_found) {
        retry(r, "re-read time entry " + ref.id);
        co_return out;
    }
    // A wrong or missing account also answers 404: the entry counts as deleted only while the
    // account itself answers.
    auto company = co_await impl_->call("GET", settings_.base_url + "/company");
    if (!company.ok()) {
        retry(company, "time entry " + ref.id + " answered 404 and the account does not answer");
        co_return out;
    }
    out.body = json{{"resource", "time_entries"},
                    {"rows", json::array()},
                    {"deleted", json::array({ref.id})}}
                   .dump();
    co_return out;
}

// ---- status ------------------------------------------------------------------------------------

std::string harvest_connector::status_json() const {
    auto& im = *impl_;
    json j;
    j["account_id"] = settings_.account_id;
    j["auth"] = settings_.use_oauth2 ? "oauth2" : "personal_access_token";
    std::vector<std::string> missing;  // required scopes the stored grant lacks
    if (im.tokens) {
        const auto state = im.tokens->state();
        j["credential"] = std::string(oauth2::to_string(state));
        if (im.rt.tokens != nullptr) {
            auto cred = oauth2::load_credential(*im.rt.tokens, im.tokens->credential_id());
            if (cred.ok() && cred.value) {
                j["token_expires_at"] = util::format_rfc3339(cred.value->access_expires_at);
                j["scope"] = cred.value->scope;
                missing = oauth2::missing_scopes(cred.value->scope, settings_.required_scope);
            }
        }
        const auto connect = "run `billsync connect " + settings_.name + " --config FILE`";
        if (state == oauth2::credential_state::reconnect_needed) {
            j["reconnect_needed"] = true;
            j["polling"] = "paused";
            j["action_needed"] = connect;
        } else if (state == oauth2::credential_state::not_connected) {
            j["polling"] = "paused";
            j["action_needed"] =
                settings_.account_id.empty()
                    ? connect + ", then set account_id in [connectors." + settings_.name + "]"
                    : connect;
        }
        if (!missing.empty()) {
            j["reconsent_needed"] = true;
            j["missing_scopes"] = missing;
            if (!j.contains("action_needed")) {
                j["action_needed"] = oauth2::reconsent_action(settings_.name, missing);
            }
        }
    }
    const auto stats = im.rt.limiter->stats("harvest", settings_.account_id);
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
    j["overlap_duplicates_dropped"] = im.duplicates_dropped;
    j["missing_in_harvest"] = im.missing_tasks;
    if (im.cursor) {
        const auto& c = *im.cursor;
        json res = json::object();
        for (std::size_t i = 0; i < polled_resources().size(); ++i) {
            const auto& r = c.resources[i];
            res[polled_resources()[i]] = {
                {"since", r.since.empty() ? json(nullptr) : json(r.since)},
                {"done", r.done},
                {"total", r.total}};
        }
        j["cursor"] = {{"phase", c.backfill ? "backfill" : "incremental"},
                       {"resource", polled_resources()[c.step]},
                       {"resources", std::move(res)}};
    } else {
        j["cursor"] = nullptr;
    }
    return j.dump();
}

}  // namespace billsync::connectors::harvest
