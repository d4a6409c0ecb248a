#include "daemon/tools.hpp"

#include <fmt/format.h>
#include <signal.h>

#include <deque>
#include <fstream>
#include <nlohmann/json.hpp>
#include <ostream>

#include "daemon/access.hpp"
#include "daemon/app_config.hpp"
#include "http/client.hpp"
#include "state/dead_letters.hpp"
#include "state/group_commit.hpp"
#include "state/inbox.hpp"
#include "state/keys.hpp"
#include "state/outbox.hpp"
#include "state/tables.hpp"
#include "state/timers.hpp"

namespace billsync::daemon {

namespace {

nlohmann::json to_json(const state::dead_letter& d, bool with_payload) {
    nlohmann::json j{{"id", d.id},
                     {"origin", d.origin},
                     {"connector", d.connector},
                     {"kind", d.kind},
                     {"error", d.error},
                     {"attempts", d.attempts},
                     {"at", util::format_rfc3339(d.at)}};
    if (with_payload) {
        j["payload"] = d.payload;
    }
    return j;
}

nlohmann::json to_json(const state::action& a) {
    return {{"id", a.id},
            {"connector", a.connector},
            {"kind", a.kind},
            {"state", state::to_string(a.state)},
            {"attempts", a.attempts},
            {"next_attempt_at", util::format_rfc3339(a.next_attempt_at)},
            {"last_error", a.last_error},
            {"result", a.result},
            {"payload", a.payload}};
}

nlohmann::json to_json(const state::inbox_event& e) {
    return {{"seq", e.seq},
            {"connector", e.connector},
            {"kind", e.kind},
            {"dedup_key", e.dedup_key},
            {"received_at", util::format_rfc3339(e.received_at)},
            {"attempts", e.attempts},
            {"last_error", e.last_error},
            {"bytes", e.body.size()}};
}

bool is_locked(const state::status& st) {
    return st.message.find("lock") != std::string::npos ||
           st.message.find("LOCK") != std::string::npos;
}

// retry/drop while the daemon runs: ask it, over its status listener.
int via_daemon(const app_config& cfg,
               const std::string& verb,
               const std::string& id,
               std::ostream& out,
               std::ostream& err) {
    const auto& d = cfg.daemon();
    const auto res = post_to_daemon(cfg, "/deadletters/" + verb, nlohmann::json{{"id", id}}.dump());
    if (res.status == 0) {
        err << fmt::format("the data dir is in use, and the daemon does not answer on {}: {}\n",
                           d.status.address.text(),
                           res.error);
        return exit_unavailable;
    }
    if (res.status == 404) {
        err << fmt::format("no dead letter {}\n", id);
        return exit_data;
    }
    if (res.status != 200) {
        err << fmt::format("the daemon answered {}: {}\n", res.status, res.body);
        return exit_unavailable;
    }
    out << fmt::format("{} {}\n", verb == "retry" ? "retried" : "dropped", id);
    return exit_ok;
}

}  // namespace

std::optional<app_config> load_quietly(const std::string& file, std::ostream& err) {
    config::diagnostics diags;
    auto cfg = load_app_config(file, diags);
    if (!cfg) {
        err << diags.render();
    }
    return cfg;
}

std::filesystem::path state_dir(const app_config& cfg) { return cfg.daemon().data_dir / "state"; }

std::unique_ptr<state::store> open_state_read_only(const app_config& cfg, std::ostream& err) {
    state::open_options opts;
    opts.read_only = true;
    opts.create_if_missing = false;
    auto opened = state::store::open(state_dir(cfg), opts);
    if (!opened.ok()) {
        err << fmt::format("cannot open {}: {}\n", state_dir(cfg).string(), opened.st.message);
        return nullptr;
    }
    return std::move(opened.value);
}

http::simple_response post_to_daemon(const app_config& cfg,
                                     const std::string& target,
                                     const std::string& body) {
    const auto& d = cfg.daemon();
    std::vector<http::header> headers{{"Content-Type", "application/json"}};
    if (d.status_token) {
        headers.push_back({"Authorization", "Bearer " + d.status_token->reveal()});
    } else {
        // Changes need a token even on loopback: the one the daemon wrote into its data dir.
        std::string error;
        const auto token = read_status_token(d.data_dir, error);
        if (token.empty()) {
            http::simple_response refused;
            refused.error = error;
            return refused;
        }
        headers.push_back({"Authorization", "Bearer " + token});
    }
    const auto [host, port] = status_endpoint(cfg);
    return http::fetch(host, port, "POST", target, headers, body);
}

std::pair<std::string, std::uint16_t> status_endpoint(const app_config& cfg) {
    const auto& d = cfg.daemon();
    std::string host = d.status.address.host;
    if (host == "0.0.0.0") {
        host = "127.0.0.1";
    } else if (host == "::") {
        host = "::1";
    }
    std::uint16_t port = d.status.address.port;
    // A running daemon records the ports it bound (port 0 in the file means "any").
    std::ifstream in(d.data_dir / runtime_file_name);
    const auto j = nlohmann::json::parse(in, nullptr, false);
    if (!j.is_discarded() && j.contains("status_port") && j.contains("pid") &&
        ::kill(j["pid"].get<int>(), 0) == 0) {
        port = j["status_port"].get<std::uint16_t>();
    }
    return {host, port};
}

int cmd_deadletters(const std::string& config_file,
                    const std::string& verb,
                    const std::string& id,
                    std::ostream& out,
                    std::ostream& err) {
    auto cfg = load_quietly(config_file, err);
    if (!cfg) {
        return exit_config;
    }
    if ((verb == "show" || verb == "retry" || verb == "drop") && id.empty()) {
        err << fmt::format("deadletters {} needs an ID\n", verb);
        return exit_usage;
    }
    const bool writes = verb == "retry" || verb == "drop";
    state::open_options opts;
    opts.read_only = !writes;
    opts.create_if_missing = false;
    auto opened = state::store::open(state_dir(*cfg), opts);
    if (!opened.ok()) {
        if (writes && is_locked(opened.st)) {
            return via_daemon(*cfg, verb, id, out, err);
        }
        err << fmt::format("cannot open {}: {}\n", state_dir(*cfg).string(), opened.st.message);
        return exit_unavailable;
    }
    auto& s = *opened.value;
    if (!writes) {
        std::vector<state::dead_letter> found;
        s.for_each(state::cf::dead_letters,
                   verb == "show" ? id : std::string(),
                   [&](std::string_view k, std::string_view v) {
                       state::dead_letter d;
                       if ((verb == "list" || k == id) && state::decode_dead_letter(v, d)) {
                           d.id = std::string(k);
                           found.push_back(std::move(d));
                       }
                       return verb == "list" || found.empty();
                   });
        if (verb == "show") {
            if (found.empty()) {
                err << fmt::format("no dead letter {}\n", id);
                return exit_data;
            }
            out << to_json(found.front(), true).dump(2) << "\n";
            return exit_ok;
        }
        for (const auto& d : found) {
            out << fmt::format("{}  {}  {}  attempts={}  {}\n",
                               util::format_rfc3339(d.at),
                               d.id,
                               d.connector,
                               d.attempts,
                               d.error);
        }
        out << fmt::format("{} dead letter{}\n", found.size(), found.size() == 1 ? "" : "s");
        return exit_ok;
    }
    state::group_commit committer(s);
    auto in = state::inbox::open(s, committer);
    auto ob = state::outbox::open(s);
    if (!in.ok() || !ob.ok()) {
        err << "cannot read the state: " << (in.ok() ? ob.st.message : in.st.message) << "\n";
        return exit_unavailable;
    }
    state::timers tm(s);
    state::dead_letters dl(s, *in.value, *ob.value, &tm);
    auto found = dl.get(id);
    if (!found.ok()) {
        err << found.st.message << "\n";
        return exit_unavailable;
    }
    if (!found.value) {
        err << fmt::format("no dead letter {}\n", id);
        return exit_data;
    }
    const auto st = verb == "retry" ? dl.retry(id) : dl.drop(id);
    committer.stop();
    if (!st.ok) {
        err << st.message << "\n";
        return exit_unavailable;
    }
    out << fmt::format("{} {}\n", verb == "retry" ? "retried" : "dropped", id);
    return exit_ok;
}

std::uint64_t stream_audit(const state::store& s,
                           std::optional<util::instant> since,
                           std::size_t limit,
                           bool json,
                           std::ostream& out) {
    const auto write = [&out, json](std::string_view key, std::string_view value) {
        const auto at = util::format_rfc3339(state::keys::to_instant(state::keys::read_be64(key)));
        if (!json) {
            out << at << "  " << value << "\n";
            return;
        }
        auto j = nlohmann::json::parse(value, nullptr, false);
        if (!j.is_object()) {
            j = nlohmann::json{{"line", std::string(value)}};
        }
        j["at"] = at;
        out << j.dump() << "\n";
    };
    std::uint64_t written = 0;
    if (since) {
        std::string from;
        state::keys::append_instant(from, *since);
        s.for_each_range(
            state::cf::audit, from, "", [&](std::string_view key, std::string_view value) {
                if (limit != 0 && written == limit) {
                    return false;
                }
                if (key.size() == 16) {
                    write(key, value);
                    ++written;
                }
                return true;
            });
        return written;
    }
    // The last `limit` lines, kept in a ring of that size while the log streams past.
    std::deque<std::pair<std::string, std::string>> ring;
    if (limit > 0) {
        s.for_each(state::cf::audit, "", [&](std::string_view key, std::string_view value) {
            if (key.size() != 16) {
                return true;
            }
            if (ring.size() == limit) {
                ring.pop_front();
            }
            ring.emplace_back(key, value);
            return true;
        });
    }
    for (const auto& [key, value] : ring) {
        write(key, value);
        ++written;
    }
    return written;
}

int cmd_inspect(const std::string& config_file,
                const std::string& key,
                std::ostream& out,
                std::ostream& err,
                const inspect_options& options) {
    auto cfg = load_quietly(config_file, err);
    if (!cfg) {
        return exit_config;
    }
    auto opened = open_state_read_only(*cfg, err);
    if (!opened) {
        return exit_unavailable;
    }
    const auto& s = *opened;
    const auto slash = key.find('/');
    const std::string head = key.substr(0, slash);
    const std::string rest = slash == std::string::npos ? std::string() : key.substr(slash + 1);
    auto not_found = [&] {
        err << fmt::format("nothing at {}\n", key);
        return exit_data;
    };
    auto last_n = [&](std::size_t dflt) {
        return rest.empty() ? dflt
                            : static_cast<std::size_t>(std::strtoull(rest.c_str(), nullptr, 10));
    };

    if (head == "counts") {
        nlohmann::json j = nlohmann::json::object();
        for (std::size_t i = 0; i < state::cf_count; ++i) {
            const auto family = static_cast<state::cf>(i);
            std::uint64_t n = 0;
            s.for_each(family, "", [&n](std::string_view, std::string_view) {
                ++n;
                return true;
            });
            j[std::string(state::cf_name(family))] = n;
        }
        out << j.dump(2) << "\n";
        return exit_ok;
    }
    if (head == "outbox" && !rest.empty()) {
        // Read directly: opening the outbox table would recover in-flight actions (a write).
        auto v = s.get(state::cf::outbox, "a/" + rest);
        state::action a;
        if (!v.ok() || !v.value || !state::decode_action(*v.value, a)) {
            return not_found();
        }
        a.id = rest;
        out << to_json(a).dump(2) << "\n";
        return exit_ok;
    }
    if (head == "inbox" && !rest.empty()) {
        nlohmann::json list = nlohmann::json::array();
        s.for_each(state::cf::inbox,
                   rest + std::string(1, '\0'),
                   [&](std::string_view k, std::string_view v) {
                       state::inbox_event e;
                       if (state::decode_event(v, e)) {
                           e.connector = rest;
                           e.seq = state::keys::read_be64(k.substr(rest.size() + 1));
                           list.push_back(to_json(e));
                       }
                       return list.size() < 1000;
                   });
        out << list.dump(2) << "\n";
        return exit_ok;
    }
    if (head == "entity") {
        const auto type_end = rest.find('/');
        if (type_end == std::string::npos) {
            err << "usage: inspect entity/<type>/<id>\n";
            return exit_usage;
        }
        auto v = state::get_entity(s, rest.substr(0, type_end), rest.substr(type_end + 1));
        if (!v.ok() || !v.value) {
            return not_found();
        }
        out << nlohmann::json::parse(*v.value, nullptr, false).dump(2) << "\n";
        return exit_ok;
    }
    if (head == "timer" && !rest.empty()) {
        state::timers t(const_cast<state::store&>(s));
        auto v = t.get(rest);
        if (!v.ok() || !v.value) {
            return not_found();
        }
        out << nlohmann::json{{"name", v.value->name},
                              {"due", util::format_rfc3339(v.value->due)},
                              {"payload", v.value->payload}}
                   .dump(2)
            << "\n";
        return exit_ok;
    }
    if (head == "deadletter" && !rest.empty()) {
        auto v = s.get(state::cf::dead_letters, rest);
        state::dead_letter d;
        if (!v.ok() || !v.value || !state::decode_dead_letter(*v.value, d)) {
            return not_found();
        }
        d.id = rest;
        out << to_json(d, true).dump(2) << "\n";
        return exit_ok;
    }
    if (head == "cursor" && !rest.empty()) {
        auto v = state::get_cursor(s, rest);
        if (!v.ok() || !v.value) {
            return not_found();
        }
        out << *v.value << "\n";
        return exit_ok;
    }
    if (head == "audit") {
        const std::size_t limit = options.since && rest.empty() ? 0 : last_n(20);
        stream_audit(s, options.since, limit, options.json, out);
        return exit_ok;
    }
    if (head == "changes") {
        // The last n records, kept in a ring of n: memory never grows with the log.
        const auto n = last_n(20);
        std::deque<std::string> lines;
        s.for_each(state::cf::changes, "", [&lines, n](std::string_view, std::string_view v) {
            if (n == 0) {
                return false;
            }
            if (lines.size() == n) {
                lines.pop_front();
            }
            lines.emplace_back(v);
            return true;
        });
        for (const auto& line : lines) {
            out << line << "\n";
        }
        return exit_ok;
    }
    err << fmt::format(
        "unknown key '{}': try counts, inbox/<connector>, outbox/<id>, "
        "entity/<type>/<id>, timer/<name>, deadletter/<id>, cursor/<key>, audit, "
        "changes\n",
        key);
    return exit_usage;
}

}  // namespace billsync::daemon
