#include "daemon/identities.hpp"

#include <fmt/format.h>

#include <functional>
#include <ostream>

#include "daemon/app_config.hpp"
#include "daemon/tools.hpp"
#include "state/identity.hpp"

namespace billsync::daemon {

namespace {

using json = nlohmann::json;
namespace id = state::identity;

// The stored client's row (an empty object when absent or unreadable).
json client_row(const state::store& s, const std::string& client) {
    auto row = state::get_entity(s, "client", client);
    if (!row.ok() || !row.value) {
        return json::object();
    }
    auto j = json::parse(*row.value, nullptr, false);
    return j.is_object() ? j : json::object();
}

// A client as the operator sees it: id, name and the firm's client code (null when unknown).
json client_json(const state::store& s, const std::string& client) {
    const auto row = client_row(s, client);
    const auto code = row.value("client_code", "");
    return {{"client", client},
            {"name", row.value("display_name", "")},
            {"client_code", code.empty() ? json(nullptr) : json(code)}};
}

// ` code SMI001` after a client's name in the text listing (nothing when it has none).
std::string code_text(const json& c) {
    const auto it = c.find("client_code");
    return it != c.end() && it->is_string() ? fmt::format(" code {}", it->get<std::string>())
                                            : std::string();
}

// "<canonical id>" or "<connector>:<vendor id>" -> canonical id, or an error answer.
std::optional<std::string> resolve(const state::store& s,
                                   const json& body,
                                   const char* field,
                                   http::response& error) {
    if (!body.is_object() || !body.contains(field) || !body[field].is_string() ||
        body[field].get<std::string>().empty()) {
        error = http::response::error(
            400, "bad_request", fmt::format("expected a JSON object with a string '{}'", field));
        return std::nullopt;
    }
    const auto ref = body[field].get<std::string>();
    auto found = id::find_client(s, ref);
    if (!found.ok()) {
        error = http::response::error(503, "unavailable", found.st.message);
        return std::nullopt;
    }
    if (!found.value) {
        error = http::response::error(
            404,
            "not_found",
            fmt::format("no client '{}' (give a canonical id or <connector>:<vendor id>)", ref));
        return std::nullopt;
    }
    return found.value;
}

}  // namespace

json identities_json(const state::store& s, bool with_parties) {
    json out{{"exceptions", json::array()}, {"parties", json::array()}};
    if (auto ex = id::exceptions(s); ex.ok()) {
        for (const auto& e : ex.value) {
            json candidates = json::array();
            for (const auto& c : e.candidates) {
                candidates.push_back(client_json(s, c));
            }
            json item = client_json(s, e.client);
            item["kind"] = e.kind;
            item["reason"] = e.reason;
            item["candidates"] = std::move(candidates);
            item["since"] = e.at.empty() ? json(nullptr) : json(e.at);
            if (e.kind == "missing") {
                item["system"] = e.system;
                item["needed_by"] = e.needed_by;
            }
            out["exceptions"].push_back(std::move(item));
        }
    }
    if (!with_parties) {
        return out;
    }
    if (auto ps = id::parties(s); ps.ok()) {
        for (const auto& [party, members] : ps.value) {
            json list = json::array();
            for (const auto& m : members) {
                json item = client_json(s, m.client);
                item["system"] = m.system;
                item["how"] = m.how.empty() ? json(nullptr) : json(m.how);
                item["since"] = m.at.empty() ? json(nullptr) : json(m.at);
                list.push_back(std::move(item));
            }
            out["parties"].push_back({{"party", party}, {"members", std::move(list)}});
        }
    }
    return out;
}

http::response identities_command(
    std::string_view verb,
    const std::string& body,
    const state::store& s,
    state::batch& b,
    state::audit_log& audit,
    util::instant now,
    const std::function<state::status(const std::vector<std::string>&)>& commit) {
    const auto args = json::parse(body, nullptr, false);
    http::response error;
    json line{{"rule", "identities"}, {"decision", std::string(verb)}, {"by", "operator"}};
    json answer;
    std::vector<std::string> changed;
    if (verb == "link") {
        const auto a = resolve(s, args, "a", error);
        if (!a) {
            return error;
        }
        const auto other = resolve(s, args, "b", error);
        if (!other) {
            return error;
        }
        auto d = id::link(s, b, *a, *other, now);
        if (!d.ok()) {
            return http::response::error(503, "unavailable", d.st.message);
        }
        if (!d.value.ok) {
            return http::response::error(409, "conflict", d.value.error);
        }
        line["client"] = *a;
        line["other"] = *other;
        changed = {*a, *other};
        line["cause"] = "linked by hand";
        answer = {{"party", d.value.party}};
    } else if (verb == "unlink") {
        const auto c = resolve(s, args, "client", error);
        if (!c) {
            return error;
        }
        auto d = id::unlink(s, b, *c, now);
        if (!d.ok()) {
            return http::response::error(503, "unavailable", d.st.message);
        }
        line["client"] = *c;
        changed = {*c};
        line["cause"] = "unlinked by hand; automatic matching leaves it alone from now on";
        answer = {{"client", *c}};
    } else {
        return http::response::error(
            404, "not_found", fmt::format("no identities command '{}' (link, unlink)", verb));
    }
    audit.append(b, now, line.dump());
    if (auto st = commit(changed); !st.ok) {
        return http::response::error(503, "unavailable", st.message);
    }
    if (auto m = id::members_of(s, nullptr, answer.value("party", answer.value("client", "")));
        m.ok()) {
        json list = json::array();
        for (const auto& x : m.value) {
            list.push_back({{"client", x.client}, {"system", x.system}});
        }
        answer["members"] = std::move(list);
    }
    return http::response::json(200, answer.dump(2));
}

void print_identities(const json& j, std::ostream& out) {
    const auto& ex = j["exceptions"];
    out << fmt::format("Identity exceptions waiting for a person: {}\n", ex.size());
    for (const auto& e : ex) {
        out << fmt::format("  {} \"{}\"{} [{}]: {}\n",
                           e.value("client", ""),
                           e.value("name", ""),
                           code_text(e),
                           e.value("kind", ""),
                           e.value("reason", ""));
        if (e.value("kind", "") == "missing") {
            out << fmt::format("      needed by {}\n", e.value("needed_by", ""));
        }
        for (const auto& c : e["candidates"]) {
            out << fmt::format("      candidate {} \"{}\"{}\n",
                               c.value("client", ""),
                               c.value("name", ""),
                               code_text(c));
        }
    }
    const auto& ps = j["parties"];
    out << fmt::format("Linked clients (one client known in several systems): {}\n", ps.size());
    for (const auto& p : ps) {
        out << fmt::format("  {}\n", p.value("party", ""));
        for (const auto& m : p["members"]) {
            out << fmt::format("      {:<12} {} \"{}\"{}{}\n",
                               m.value("system", ""),
                               m.value("client", ""),
                               m.value("name", ""),
                               code_text(m),
                               m["how"].is_string()
                                   ? fmt::format(" (by {})", m["how"].get<std::string>())
                                   : std::string());
        }
    }
    if (!ex.empty()) {
        out << "Resolve with: billsync identities link <client> <client> | unlink <client>\n";
    }
}

int cmd_identities(const std::string& config_file,
                   const std::string& verb,
                   const std::vector<std::string>& args,
                   bool as_json,
                   std::ostream& out,
                   std::ostream& err) {
    auto cfg = load_quietly(config_file, err);
    if (!cfg) {
        return exit_config;
    }
    if (verb == "list") {
        auto opened = open_state_read_only(*cfg, err);
        if (!opened) {
            return exit_unavailable;
        }
        const auto j = identities_json(*opened);
        if (as_json) {
            out << j.dump(2) << "\n";
            return exit_ok;
        }
        print_identities(j, out);
        return exit_ok;
    }
    json body;
    if (verb == "link" && args.size() == 2) {
        body = {{"a", args[0]}, {"b", args[1]}};
    } else if (verb == "unlink" && args.size() == 1) {
        body = {{"client", args[0]}};
    } else {
        err << "usage: billsync identities list [--json] | link CLIENT OTHER | unlink CLIENT "
               "(a client is a canonical id or <connector>:<vendor id>)\n";
        return exit_usage;
    }
    const auto res = post_to_daemon(*cfg, "/identities/" + verb, body.dump());
    if (res.status == 0) {
        err << fmt::format("the daemon does not answer on {}: {} ({} needs the running daemon)\n",
                           cfg->daemon().status.address.text(),
                           res.error,
                           verb);
        return exit_unavailable;
    }
    const auto j = json::parse(res.body, nullptr, false);
    if (res.status != 200) {
        err << (j.is_object() ? j.value("message", res.body) : res.body) << "\n";
        return res.status == 404 ? exit_data : res.status == 409 ? exit_data : exit_unavailable;
    }
    if (as_json) {
        out << res.body << "\n";
        return exit_ok;
    }
    if (verb == "unlink") {
        out << fmt::format(
            "Unlinked {}: it stands alone now, and automatic matching leaves it alone\n",
            j.value("client", ""));
        return exit_ok;
    }
    const auto& members = j.contains("members") ? j["members"] : json::array();
    out << fmt::format(
        "Linked: party {} now has {} members\n", j.value("party", ""), members.size());
    for (const auto& m : members) {
        out << fmt::format("  {:<12} {}\n", m.value("system", ""), m.value("client", ""));
    }
    return exit_ok;
}

}  // namespace billsync::daemon
