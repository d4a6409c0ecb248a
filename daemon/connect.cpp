#include "daemon/connect.hpp"

#include <fmt/format.h>
#include <spdlog/logger.h>
#include <spdlog/sinks/null_sink.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_future.hpp>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <system_error>

#include "connectors/builtin.hpp"
#include "connectors/runtime/oauth2.hpp"
#include "daemon/app_config.hpp"
#include "http/router.hpp"
#include "http/server.hpp"
#include "state/store.hpp"
#include "util/crypto.hpp"

namespace billsync::daemon {

namespace {

namespace oauth2 = connectors::oauth2;
using json = nlohmann::json;

constexpr int exit_ok = 0;
constexpr int exit_unavailable = 69;
constexpr int exit_config = 78;
constexpr std::uint16_t default_redirect_port = 8765;

// What the browser brought back to the redirect listener.
struct callback_state {
    std::string account_param;
    std::string expected_state;
    bool done = false;
    std::string code;
    std::string account;  // the rules' account_redirect_param, when they name one
    std::string error;    // the authorization server's error, or ours
    std::shared_ptr<net::steady_timer> wake;
};

http::response page(unsigned status, const std::string& text) {
    http::response r;
    r.status = status;
    r.content_type = "text/html; charset=utf-8";
    r.body = "<!doctype html><title>billsync</title><p>" + text + "</p>";
    return r;
}

net::awaitable<http::response> handle_callback(callback_state* st, http::request req) {
    if (st->done) {
        co_return page(410, "This sign-in has already completed. You can close this window.");
    }
    const auto q = oauth2::parse_form(req.query);
    const auto get = [&q](const std::string& k) {
        const auto it = q.find(k);
        return it == q.end() ? std::string() : it->second;
    };
    if (!util::constant_time_equal(get("state"), st->expected_state)) {
        // A stale tab or a forged request: refuse it and keep waiting for the real one.
        co_return page(400,
                       "The sign-in state does not match. Start again from the URL printed "
                       "by billsync connect.");
    }
    if (!get("error").empty()) {
        st->error = "the authorization server answered " + get("error") +
                    (get("error_description").empty() ? "" : ": " + get("error_description"));
    } else if (get("code").empty()) {
        st->error = "the redirect carried no authorization code";
    } else {
        st->code = get("code");
        if (!st->account_param.empty()) {
            st->account = get(st->account_param);
        }
    }
    st->done = true;
    st->wake->cancel();
    co_return st->error.empty() ? page(200, "billsync is connected. You can close this window.")
                                : page(400, "billsync could not connect: " + st->error);
}

struct flow_result {
    int code = exit_ok;
    std::string message;  // the error, or what was connected
};

struct flow_input {
    connect_options o;
    oauth2::vendor_rules rules;
    std::string client_id;
    std::string client_secret;
    std::string redirect_uri;
    std::string verifier;
    callback_state* cb = nullptr;
    connectors::https_client* http = nullptr;
    connectors::token_store* tokens = nullptr;
};

// The kinds `billsync connect` works for, for messages: "harvest, qbo, xero".
std::string oauth2_kind_list() {
    std::string out;
    const auto& kinds = connectors::builtin_kinds();
    for (const auto k : kinds.kinds()) {
        if (kinds.uses_oauth2(k)) {
            out += (out.empty() ? "" : ", ") + std::string(k);
        }
    }
    return out;
}

std::string setting_or(const connectors::connector_settings& s,
                       std::string_view key,
                       const std::string& fallback) {
    const auto* v = s.value(key);
    return v != nullptr && !v->empty() ? *v : fallback;
}

net::awaitable<flow_result> run_flow(flow_input in) {
    in.cb->wake->expires_after(in.o.wait);
    co_await in.cb->wake->async_wait(as_tuple_awaitable);
    if (!in.cb->done) {
        co_return flow_result{
            exit_unavailable,
            fmt::format("no answer from the browser within {} s", in.o.wait.count())};
    }
    if (!in.cb->error.empty()) {
        co_return flow_result{exit_unavailable, in.cb->error};
    }
    std::vector<std::pair<std::string, std::string>> form;
    form.emplace_back("grant_type", "authorization_code");
    form.emplace_back("code", in.cb->code);
    form.emplace_back("redirect_uri", in.redirect_uri);
    if (in.rules.pkce) {
        form.emplace_back("code_verifier", in.verifier);
    }
    oauth2::client_identity client{
        in.rules.token_url, in.client_id, in.client_secret, in.rules.client_secret_in_body};
    const auto timeout = in.o.http.total_timeout;
    const auto t = co_await oauth2::request_token(*in.http, client, std::move(form), timeout);
    if (!t.ok()) {
        co_return flow_result{exit_unavailable, "exchanging the code failed: " + t.error.message};
    }
    const util::system_clock system;
    const util::clock& clock = in.o.clock != nullptr ? *in.o.clock : system;
    const auto now = clock.now();

    oauth2::credential c;
    c.vendor = in.rules.vendor;
    c.access_token = t.tokens->access_token;
    c.access_expires_at =
        now + (t.tokens->expires_in > std::chrono::seconds(0) ? t.tokens->expires_in
                                                              : std::chrono::seconds(1800));
    c.refresh_token = t.tokens->refresh_token;
    if (t.tokens->refresh_expires_in) {
        c.refresh_expires_at = now + *t.tokens->refresh_expires_in;
    }
    c.scope = t.tokens->scope.empty() ? in.rules.scope : t.tokens->scope;
    c.connected_at = now;
    c.refreshed_at = now;
    if (c.refresh_token.empty()) {
        co_return flow_result{exit_unavailable,
                              "the token endpoint issued no refresh token (is offline_access in "
                              "the scope?)"};
    }

    if (!in.rules.account_redirect_param.empty()) {
        if (in.cb->account.empty()) {
            co_return flow_result{exit_unavailable,
                                  "the redirect carried no " + in.rules.account_redirect_param};
        }
        c.account = in.cb->account;
    } else {
        connectors::http_request req;
        req.url = in.rules.connections_url;
        req.headers.push_back({"Authorization", "Bearer " + c.access_token});
        req.headers.push_back({"Accept", "application/json"});
        const auto res = co_await in.http->send(std::move(req));
        if (!res.ok() || res.response.status != 200) {
            co_return flow_result{
                exit_unavailable,
                "reading the connections (tenants) failed: " +
                    (res.ok() ? "status " + std::to_string(res.response.status) : res.error)};
        }
        if (in.rules.parse_connections != nullptr) {
            c.tenants = in.rules.parse_connections(res.response.body);
        }
        if (c.tenants.empty()) {
            co_return flow_result{
                exit_unavailable,
                "the grant reaches no " + in.rules.display_name + " " + in.rules.account_label};
        }
        // The configured account, else the only one: never a guess among several.
        const std::string configured = setting_or(in.o.settings, in.rules.account_setting, "");
        std::string reachable;
        for (const auto& tn : c.tenants) {
            reachable += (reachable.empty() ? "" : ", ") + tn.id +
                         (tn.name.empty() ? "" : " \"" + tn.name + "\"");
            if (tn.id == configured) {
                c.account = tn.id;
            }
        }
        if (!configured.empty() && c.account.empty()) {
            co_return flow_result{
                exit_unavailable,
                fmt::format("the grant does not reach {} {} = \"{}\" of [connectors.{}]; it "
                            "reaches {}",
                            in.rules.display_name,
                            in.rules.account_setting,
                            configured,
                            in.o.settings.name,
                            reachable)};
        }
        if (c.account.empty() && c.tenants.size() > 1) {
            co_return flow_result{
                exit_unavailable,
                fmt::format("the grant reaches several {} {}s ({}): set {} in [connectors.{}] "
                            "to the one to use and run billsync connect again",
                            in.rules.display_name,
                            in.rules.account_label,
                            reachable,
                            in.rules.account_setting,
                            in.o.settings.name)};
        }
        if (c.account.empty()) {
            c.account = c.tenants.front().id;
        }
    }
    c.id = in.rules.vendor + "/" + c.account;
    if (auto st = oauth2::store_credential(*in.tokens, c); !st) {
        co_return flow_result{exit_unavailable, "storing the tokens failed: " + st.message};
    }

    std::string msg = fmt::format("Connected {} ({}) as credential {}; tokens stored {} in {}\n",
                                  in.o.settings.name,
                                  in.rules.account_label + " " + c.account,
                                  c.id,
                                  in.tokens->sealing() ? "sealed" : "UNSEALED",
                                  (in.o.data_dir / "state").string());
    for (const auto& tn : c.tenants) {
        msg += fmt::format("  {} {} \"{}\" {}\n", in.rules.account_label, tn.id, tn.name, tn.type);
    }
    const std::string& key = in.rules.account_setting;
    const std::string configured = setting_or(in.o.settings, key, "");
    if (!key.empty() && configured != c.account) {
        msg +=
            fmt::format("Set {} = \"{}\" in [connectors.{}]\n", key, c.account, in.o.settings.name);
    }
    co_return flow_result{exit_ok, std::move(msg)};
}

// The flow, then the redirect listener's shutdown, so the loop drains and run() returns.
net::awaitable<flow_result> run_then_close(flow_input in, http::server* listener) {
    auto r = co_await run_flow(std::move(in));
    co_await listener->shutdown(std::chrono::milliseconds(500));
    co_return r;
}

}  // namespace

int run_connect(connect_options o, std::ostream& out, std::ostream& err) {
    const auto* kind = connectors::builtin_kinds().find(o.settings.kind);
    if (kind == nullptr || !kind->oauth2) {
        err << fmt::format("billsync connect: connector kind '{}' has no OAuth2 flow ({})\n",
                           o.settings.kind,
                           oauth2_kind_list());
        return exit_config;
    }
    auto rules = kind->oauth2;
    rules->authorize_url = setting_or(o.settings, "authorize_url", rules->authorize_url);
    rules->token_url = o.settings.token_url.empty() ? rules->token_url : o.settings.token_url;
    rules->connections_url = setting_or(o.settings, "connections_url", rules->connections_url);
    rules->revoke_url = setting_or(o.settings, "revoke_url", rules->revoke_url);
    rules->scope = setting_or(o.settings, "scope", rules->scope);
    const auto* client_id = o.settings.value("client_id");
    const auto* client_secret = o.settings.find_secret("client_secret");
    if (client_id == nullptr || client_secret == nullptr) {
        err << fmt::format("billsync connect: [connectors.{}] needs client_id and client_secret\n",
                           o.settings.name);
        return exit_config;
    }
    std::uint16_t port = default_redirect_port;
    if (o.redirect_port) {
        port = *o.redirect_port;
    } else if (const auto* p = o.settings.value("redirect_port")) {
        try {
            const auto n = std::stoul(*p);
            if (n > 65535) {
                throw std::out_of_range("port");
            }
            port = static_cast<std::uint16_t>(n);
        } catch (const std::exception&) {
            err << fmt::format("billsync connect: redirect_port '{}' is not a port\n", *p);
            return exit_config;
        }
    }

    if (std::error_code ec; !std::filesystem::exists(o.data_dir, ec)) {
        std::filesystem::create_directories(o.data_dir, ec);
        std::filesystem::permissions(o.data_dir, std::filesystem::perms::owner_all, ec);
        if (ec) {
            err << fmt::format("billsync connect: cannot create data_dir {}: {}\n",
                               o.data_dir.string(),
                               ec.message());
            return exit_unavailable;
        }
    }
    auto opened = state::store::open(o.data_dir / "state");
    if (!opened.ok()) {
        err << fmt::format(
            "billsync connect: cannot open the state store in {} ({}); if the daemon is running, "
            "stop it first\n",
            (o.data_dir / "state").string(),
            opened.st.message);
        return exit_unavailable;
    }
    connectors::token_store tokens(*opened.value, o.key);
    if (auto sealed = tokens.reseal_plain(); !sealed.ok()) {
        err << "warning: cannot seal tokens stored before secrets_key was set: "
            << sealed.st.message << "\n";
    }
    if (!o.key) {
        err << "warning: no [daemon] secrets_key: tokens are stored unsealed; keep data_dir "
               "private (chmod 700)\n";
    }

    net::io_context ioc;
    callback_state cb;
    cb.expected_state = oauth2::random_token(24);
    cb.account_param = rules->account_redirect_param;
    cb.wake = std::make_shared<net::steady_timer>(ioc);

    http::router routes;
    routes.add("GET", "/callback", [st = &cb](http::request req) {
        return handle_callback(st, std::move(req));
    });
    auto quiet = std::make_shared<spdlog::logger>("connect",
                                                  std::make_shared<spdlog::sinks::null_sink_mt>());
    http::server listener(ioc.get_executor(), "connect", {}, routes.as_handler(), quiet);
    if (auto e = listener.listen(o.redirect_host, port); !e.empty()) {
        err << fmt::format("billsync connect: cannot listen on {}:{} for the redirect: {}\n",
                           o.redirect_host,
                           port,
                           e);
        return exit_unavailable;
    }
    listener.start();

    flow_input in;
    in.rules = *rules;
    in.client_id = *client_id;
    in.client_secret = client_secret->reveal();
    in.redirect_uri = fmt::format("http://{}:{}/callback", o.redirect_host, listener.port());
    in.verifier = oauth2::random_token(48);
    std::vector<std::pair<std::string, std::string>> q = {
        {"response_type", "code"},
        {"client_id", in.client_id},
        {"redirect_uri", in.redirect_uri},
    };
    if (!rules->scope.empty()) {  // none: what the vendor's application settings allow
        q.emplace_back("scope", rules->scope);
    }
    q.emplace_back("state", cb.expected_state);
    if (rules->pkce) {
        q.emplace_back("code_challenge", oauth2::pkce_challenge_s256(in.verifier));
        q.emplace_back("code_challenge_method", "S256");
    }
    const std::string url = rules->authorize_url +
                            (rules->authorize_url.find('?') == std::string::npos ? "?" : "&") +
                            oauth2::form_encode(q);
    out << fmt::format(
        "Open this URL in a browser and approve billsync's access to {}:\n\n  {}\n\n"
        "Waiting for the redirect to {} (up to {} s)...\n",
        rules->display_name,
        url,
        in.redirect_uri,
        o.wait.count());
    out.flush();

    // A section's `contact` names the operator in the User-Agent where the vendor requires one
    // ("billsync (<contact>)", as the connector sends it).
    if (const auto* contact = o.settings.value("contact");
        contact != nullptr && !contact->empty()) {
        o.http.user_agent = "billsync (" + *contact + ")";
    }
    connectors::https_client client(ioc.get_executor(), o.http);
    in.cb = &cb;
    in.http = &client;
    in.tokens = &tokens;
    if (o.on_authorize_url) {
        o.on_authorize_url(url);
    }
    in.o = std::move(o);

    auto done = net::co_spawn(ioc, run_then_close(std::move(in), &listener), net::use_future);
    ioc.run();
    flow_result r;
    try {
        r = done.get();
    } catch (const std::exception& e) {
        r = {exit_unavailable, e.what()};
    }
    if (r.code != exit_ok) {
        err << "billsync connect: " << r.message << '\n';
        return r.code;
    }
    out << r.message;
    return exit_ok;
}

int cmd_connect(const std::string& config_file,
                const std::string& vendor,
                std::ostream& out,
                std::ostream& err) {
    config::diagnostics diags;
    auto cfg = load_app_config(config_file, diags);
    err << diags.render();
    if (!cfg) {
        return exit_config;
    }
    // A connector's name, else a kind that exactly one connector has.
    const connectors::connector_settings* chosen = nullptr;
    std::vector<std::string> candidates;
    for (const auto& c : cfg->connectors) {
        if (c.name == vendor) {
            chosen = &c;
            break;
        }
        if (c.kind == vendor) {
            candidates.push_back(c.name);
            chosen = &c;
        }
    }
    if (chosen == nullptr) {
        err << fmt::format(
            "billsync connect: {} has no connector named '{}' and no connector of kind '{}'\n",
            config_file,
            vendor,
            vendor);
        return exit_config;
    }
    if (chosen->name != vendor && candidates.size() > 1) {
        std::string names;
        for (const auto& n : candidates) {
            names += (names.empty() ? "" : ", ") + n;
        }
        err << fmt::format(
            "billsync connect: several {} connectors ({}); name the one to connect\n",
            vendor,
            names);
        return exit_config;
    }
    if (!connectors::builtin_kinds().uses_oauth2(chosen->kind)) {
        err << fmt::format(
            "billsync connect: [connectors.{}] is of kind '{}', which has no OAuth2 flow ({})\n",
            chosen->name,
            chosen->kind,
            oauth2_kind_list());
        return exit_config;
    }
    connect_options o;
    o.settings = *chosen;
    o.data_dir = cfg->daemon().data_dir;
    if (const auto& k = cfg->daemon().secrets_key) {
        std::string error;
        o.key = connectors::parse_secrets_key(k->reveal(), error);
        if (!o.key) {
            err << fmt::format(
                "billsync connect: [daemon] secrets_key ({}): {}\n", k->reference(), error);
            return exit_config;
        }
    }
    return run_connect(std::move(o), out, err);
}

}  // namespace billsync::daemon
