#include "daemon/workflows/operator.hpp"

#include <fmt/format.h>

#include <charconv>
#include <ostream>

#include "daemon/app_config.hpp"
#include "daemon/tools.hpp"
#include "daemon/workflows/builtin.hpp"
#include "workflows/followup/followup_rule.hpp"
#include "workflows/followup/views.hpp"

namespace billsync::daemon {

namespace {

using json = nlohmann::json;

bool is_builtin(std::string_view name) {
    for (const auto& f : builtin_rules()) {
        if (f.name == name) {
            return true;
        }
    }
    return false;
}

std::string builtin_names() {
    std::string out;
    for (const auto& f : builtin_rules()) {
        out += out.empty() ? "" : ", ";
        out += f.name;
    }
    return out;
}

// The answer for a rule that is not on: known but off (409) or unknown (404).
http::response not_on(std::string_view name) {
    if (is_builtin(name)) {
        return http::response::error(409, "disabled", fmt::format("the {} workflow is off", name));
    }
    return http::response::error(
        404, "not_found", fmt::format("no workflow named '{}' ({})", name, builtin_names()));
}

http::response to_http(const workflows::operator_answer& a) {
    if (a.status != 200) {
        return http::response::error(a.status, a.error, a.message);
    }
    return http::response::json(200, a.body.dump(2));
}

}  // namespace

json workflows_json(const workflows::engine& e) {
    json list = json::array();
    for (const auto& r : e.rules()) {
        json verbs = json::array();
        for (const auto& v : r->verbs()) {
            verbs.push_back({{"verb", v.name},
                             {"args", v.args},
                             {"changes_state", v.changes_state},
                             {"help", v.help}});
        }
        list.push_back({{"rule", std::string(r->name())}, {"verbs", std::move(verbs)}});
    }
    return list;
}

http::response workflow_view(const workflows::engine& e,
                             std::string_view rule_and_path,
                             const state::store& s) {
    const auto slash = rule_and_path.find('/');
    const auto name = rule_and_path.substr(0, slash);
    const auto path = slash == std::string_view::npos
                          ? std::string()
                          : http::percent_decode(rule_and_path.substr(slash + 1));
    const auto* r = e.find(name);
    if (r == nullptr) {
        return not_on(name);
    }
    return to_http(r->view(path, s));
}

http::response followups_response(const workflows::engine& e,
                                  std::string_view query,
                                  const state::store& s) {
    std::size_t limit = followups_default_limit;
    if (const auto text = http::query_param(query, "limit"); !text.empty()) {
        std::size_t n = 0;
        const auto* end = text.data() + text.size();
        const auto [p, ec] = std::from_chars(text.data(), end, n);
        if (ec != std::errc() || p != end || n < 1 || n > followups_max_limit) {
            return http::response::error(
                400,
                "bad_request",
                fmt::format("limit must be a whole number from 1 to {}", followups_max_limit));
        }
        limit = n;
    }
    const auto* r = dynamic_cast<const workflows::followup::followup_rule*>(e.find("followup"));
    if (r == nullptr) {
        return not_on("followup");
    }
    return http::response::json(200,
                                workflows::followup::followups_page(
                                    s, r->plan().config(), limit, http::query_param(query, "after"))
                                    .dump());
}

http::response workflow_command(const workflows::engine& e,
                                std::string_view rule,
                                std::string_view verb,
                                const std::string& body,
                                workflows::context& ctx,
                                const command_deps& deps) {
    const auto* r = e.find(rule);
    if (r == nullptr) {
        return not_on(rule);
    }
    const auto args = json::parse(body, nullptr, false);
    const auto a = r->command(verb, args, ctx);
    if (a.status != 200) {
        return to_http(a);
    }
    if (auto st = deps.commit(); !st.ok) {
        return http::response::error(503, "unavailable", st.message);
    }
    if (a.then_view.empty()) {
        return http::response::json(200, a.body.is_null() ? "{}" : a.body.dump(2));
    }
    const auto shown = r->view(a.then_view, deps.store);
    return http::response::json(200, shown.status == 200 ? shown.body.dump(2) : std::string("{}"));
}

int cmd_workflow(const std::string& config_file,
                 const std::string& rule,
                 const std::string& verb,
                 const std::vector<std::string>& args,
                 workflows::cli_output format,
                 std::ostream& out,
                 std::ostream& err) {
    auto cfg = load_quietly(config_file, err);
    if (!cfg) {
        return exit_config;
    }
    // Nothing is contacted: every enabled connector counts as available, as in the daemon.
    auto built = make_rules(*cfg, rule_deps_for(*cfg, enabled_connectors(*cfg), nullptr));
    const workflows::engine e(std::move(built.rules));
    const auto* r = e.find(rule);
    if (r == nullptr) {
        for (const auto& [name, why] : built.failed) {
            if (name == rule) {
                err << fmt::format("the {} workflow cannot run: {}\n", rule, why);
                return exit_config;
            }
        }
        if (is_builtin(rule)) {
            err << fmt::format("the {} workflow is off in {}\n", rule, config_file);
            return exit_config;
        }
        err << fmt::format("no workflow named '{}' ({})\n", rule, builtin_names());
        return exit_usage;
    }
    const workflows::verb_spec* spec = nullptr;
    const auto verbs = r->verbs();
    for (const auto& v : verbs) {
        if (v.name == verb) {
            spec = &v;
        }
    }
    if (spec == nullptr) {
        err << fmt::format("workflow {} has no verb '{}'; verbs:\n", rule, verb);
        for (const auto& v : verbs) {
            err << fmt::format("  {} {} {}  {}\n", rule, v.name, v.args, v.help);
        }
        return exit_usage;
    }
    if (spec->changes_state) {
        const auto body = r->cli_request(verb, args, err);
        if (!body) {
            return exit_usage;
        }
        const auto res = post_to_daemon(*cfg, "/workflows/" + rule + "/" + verb, body->dump());
        if (res.status == 0) {
            err << fmt::format(
                "the daemon does not answer on {}: {} ({} needs the running daemon)\n",
                cfg->daemon().status.address.text(),
                res.error,
                verb);
            return exit_unavailable;
        }
        if (res.status == 404) {
            const auto j = json::parse(res.body, nullptr, false);
            err << (j.is_object() ? j.value("message", res.body) : res.body) << "\n";
            return exit_data;
        }
        if (res.status != 200) {
            err << fmt::format("the daemon answered {}: {}\n", res.status, res.body);
            return exit_unavailable;
        }
        out << res.body << "\n";
        return exit_ok;
    }
    auto opened = open_state_read_only(*cfg, err);
    if (!opened) {
        return exit_unavailable;
    }
    switch (r->cli_view(verb, args, *opened, format, out, err)) {
        case workflows::cli_result::ok:
            return exit_ok;
        case workflows::cli_result::usage:
            return exit_usage;
        case workflows::cli_result::not_found:
            return exit_data;
    }
    return exit_ok;
}

}  // namespace billsync::daemon
