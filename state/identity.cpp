#include "state/identity.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <utility>

#include "state/keys.hpp"
#include "state/tables.hpp"

namespace billsync::state::identity {

namespace {

using nlohmann::json;

std::string member_key(std::string_view client) { return "m/" + std::string(client); }
std::string party_key(std::string_view party) { return "p/" + std::string(party); }
std::string code_key(std::string_view code, std::string_view client) {
    return "c/" + keys::join(code, client);
}
std::string email_key(std::string_view email, std::string_view client) {
    return "e/" + keys::join(email, client);
}
std::string domain_key(std::string_view domain, std::string_view name, std::string_view client) {
    return "d/" + keys::join(keys::join(domain, name), client);
}
std::string name_key(std::string_view name, std::string_view client) {
    return "n/" + keys::join(name, client);
}
std::string exception_key(std::string_view client) { return "x/" + std::string(client); }
// An open exception of `client` that names `candidate`: re-checked when the candidate changes.
std::string dependent_key(std::string_view candidate, std::string_view client) {
    return "xc/" + keys::join(candidate, client);
}
std::string decided_key(std::string_view client) { return "o/" + std::string(client); }

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

result<std::optional<std::string>> read(const store& s, batch* b, std::string_view key) {
    return b != nullptr ? s.get(*b, cf::xref, key) : s.get(cf::xref, key);
}

// The stored canonical client (nullopt when absent or unreadable).
std::optional<mappings::client> load_client(const store& s, batch* b, std::string_view id) {
    auto row = b != nullptr ? get_entity(s, *b, "client", id) : get_entity(s, "client", id);
    if (!row.ok() || !row.value) {
        return std::nullopt;
    }
    std::string error;
    return mappings::client_from_json(json::parse(*row.value, nullptr, false), error);
}

std::string system_of(const store& s, batch* b, std::string_view client) {
    auto c = load_client(s, b, client);
    return c ? c->source.system : std::string();
}

member member_from(std::string_view client, const json& j) {
    member m;
    m.client = std::string(client);
    m.system = j.value("system", "");
    m.how = j.value("how", "");
    m.at = j.value("at", "");
    return m;
}

json to_json(const member& m) {
    return {{"client", m.client}, {"system", m.system}, {"how", m.how}, {"at", m.at}};
}

// The stored members of a party of two or more (empty: none stored).
result<std::vector<member>> stored_members(const store& s, batch* b, std::string_view party) {
    auto row = read(s, b, party_key(party));
    if (!row.ok()) {
        return result<std::vector<member>>::failure(row.st);
    }
    std::vector<member> out;
    if (row.value) {
        const auto j = json::parse(*row.value, nullptr, false);
        if (j.is_array()) {
            for (const auto& m : j) {
                if (m.is_object()) {
                    out.push_back(member_from(m.value("client", ""), m));
                }
            }
        }
    }
    return {status::success(), std::move(out)};
}

void write_party(batch& b, std::string_view party, const std::vector<member>& members) {
    if (members.size() < 2) {
        b.del(cf::xref, party_key(party));
        for (const auto& m : members) {
            b.del(cf::xref, member_key(m.client));
        }
        return;
    }
    json list = json::array();
    for (const auto& m : members) {
        list.push_back(to_json(m));
        b.put(cf::xref, member_key(m.client), party);
    }
    b.put(cf::xref, party_key(party), dump(list));
}

// Takes `client` out of the party `party` whose members are `list`: the others stay together (a
// party named after the client is named after the first of the others). Returns the party the
// others are in.
std::string leave(batch& b,
                  const std::string& party,
                  std::vector<member> list,
                  std::string_view client) {
    std::erase_if(list, [&](const member& m) { return m.client == client; });
    std::string rest = party;
    if (party == client && list.size() >= 2) {
        b.del(cf::xref, party_key(party));
        rest = list.front().client;
    }
    write_party(b, rest, list);
    b.del(cf::xref, member_key(client));
    return rest;
}

bool decided(const store& s, batch* b, std::string_view client) {
    auto row = read(s, b, decided_key(client));
    return row.ok() && row.value.has_value();
}

// Canonical clients listed under an index prefix, as the batch leaves them (a client changed
// earlier in the same batch is seen with its new keys).
std::vector<std::string> indexed(const store& s, batch& b, const std::string& prefix) {
    std::vector<std::string> out;
    (void)s.for_each(b, cf::xref, prefix, [&](std::string_view key, std::string_view) {
        out.emplace_back(key.substr(prefix.size()));
        return true;
    });
    return out;
}

// Removes the open exception of `client`, if any, with its dependent rows.
status clear_exception(const store& s, batch& b, std::string_view client) {
    auto row = read(s, &b, exception_key(client));
    if (!row.ok()) {
        return row.st;
    }
    if (!row.value) {
        return status::success();
    }
    const auto j = json::parse(*row.value, nullptr, false);
    if (j.is_object()) {
        if (const auto it = j.find("candidates"); it != j.end() && it->is_array()) {
            for (const auto& c : *it) {
                if (c.is_string()) {
                    b.del(cf::xref, dependent_key(c.get<std::string>(), client));
                }
            }
        }
    }
    b.del(cf::xref, exception_key(client));
    return status::success();
}

std::string domain_of(std::string_view email) {
    const auto at = email.rfind('@');
    return at == std::string_view::npos ? std::string() : std::string(email.substr(at + 1));
}

void index_rows(const mappings::client& c, const std::function<void(const std::string&)>& fn) {
    if (c.deleted) {
        return;
    }
    if (const auto code = mappings::client_code_key(c.client_code); !code.empty()) {
        fn(code_key(code, c.id));
    }
    const auto name = normalize_name(c.display_name);
    std::set<std::string> domains;
    for (const auto& e : emails_of(c.contact.billing_email)) {
        fn(email_key(e, c.id));
        if (const auto d = domain_of(e); !d.empty() && !public_mail_domain(d)) {
            domains.insert(d);
        }
    }
    if (!name.empty()) {
        fn(name_key(name, c.id));
        for (const auto& d : domains) {
            fn(domain_key(d, name, c.id));
        }
    }
}

struct candidate_set {
    std::set<std::string> parties;
    std::set<std::string> clients;
};

// The parties of `found` that could take a client of `system`: none of their members is from
// that system already.
status candidates(const store& s,
                  batch& b,
                  std::string_view self,
                  std::string_view system,
                  const std::vector<std::string>& found,
                  candidate_set& out) {
    for (const auto& other : found) {
        if (other == self) {
            continue;
        }
        auto party = party_of(s, &b, other);
        if (!party.ok()) {
            return party.st;
        }
        auto members = members_of(s, &b, other);
        if (!members.ok()) {
            return members.st;
        }
        const bool taken = std::any_of(members.value.begin(),
                                       members.value.end(),
                                       [&](const member& m) { return m.system == system; });
        if (!taken) {
            out.parties.insert(party.value);
            out.clients.insert(other);
        }
    }
    return status::success();
}

std::string stamp(std::optional<util::instant> t) {
    return t ? util::format_rfc3339(*t) : std::string();
}

status record_exception(const store& s,
                        batch& b,
                        std::string_view client,
                        std::string_view kind,
                        std::string reason,
                        const std::set<std::string>& candidates,
                        std::optional<util::instant> now) {
    if (auto st = clear_exception(s, b, client); !st.ok) {
        return st;
    }
    for (const auto& c : candidates) {
        b.put(cf::xref, dependent_key(c, client), "");
    }
    json j{{"kind", kind},
           {"reason", std::move(reason)},
           {"candidates", json(std::vector<std::string>(candidates.begin(), candidates.end()))},
           {"at", stamp(now)}};
    b.put(cf::xref, exception_key(client), dump(j));
    return status::success();
}

// Puts `client` (standing alone) into the party of `other`.
status join(const store& s,
            batch& b,
            std::string_view client,
            std::string_view system,
            std::string_view other,
            std::string_view how,
            std::optional<util::instant> now) {
    auto party = party_of(s, &b, other);
    if (!party.ok()) {
        return party.st;
    }
    auto members = members_of(s, &b, other);
    if (!members.ok()) {
        return members.st;
    }
    auto list = std::move(members.value);
    list.push_back({std::string(client), std::string(system), std::string(how), stamp(now)});
    write_party(b, party.value, list);
    if (auto st = clear_exception(s, b, client); !st.ok) {
        return st;
    }
    // Members that waited for a counterpart in this system have one now, and a member in a party
    // keeps no automatic exception (one that named this client is answered by the link).
    for (const auto& m : list) {
        auto row = read(s, &b, exception_key(m.client));
        if (!row.ok()) {
            return row.st;
        }
        if (row.value) {
            const auto j = json::parse(*row.value, nullptr, false);
            if (!j.is_object() || j.value("kind", "") != "missing" ||
                j.value("system", "") == system) {
                if (auto st = clear_exception(s, b, m.client); !st.ok) {
                    return st;
                }
            }
        }
    }
    return status::success();
}

// Drops an automatic exception of `client` that its latest match no longer supports (a
// "missing" one stays: a workflow still waits on it).
status drop_stale_exception(const store& s, batch& b, std::string_view client) {
    auto row = read(s, &b, exception_key(client));
    if (!row.ok()) {
        return row.st;
    }
    if (row.value) {
        const auto j = json::parse(*row.value, nullptr, false);
        if (!j.is_object() || j.value("kind", "") != "missing") {
            return clear_exception(s, b, client);
        }
    }
    return status::success();
}

// What the client code says: nothing (no code, or no other client has it), one party to join,
// or an exception already recorded.
struct code_verdict {
    bool recorded = false;          // an exception was written
    std::string party;              // the one party the code names; empty: none
    std::set<std::string> holders;  // the other clients with the code
};

status match_code(const store& s,
                  batch& b,
                  const mappings::client& c,
                  const std::string& code,
                  std::optional<util::instant> now,
                  code_verdict& out) {
    std::set<std::string> parties;
    std::string duplicate;  // a holder from the client's own system
    std::string taken_by;   // a holder's party member from the client's own system
    std::string taken_holder;
    for (const auto& other : indexed(s, b, "c/" + keys::join(code, ""))) {
        if (other == c.id) {
            continue;
        }
        auto party = party_of(s, &b, other);
        if (!party.ok()) {
            return party.st;
        }
        auto members = members_of(s, &b, other);
        if (!members.ok()) {
            return members.st;
        }
        for (const auto& m : members.value) {
            if (m.system != c.source.system) {
                continue;
            }
            if (m.client == other) {
                duplicate = other;
            } else if (taken_by.empty()) {
                taken_by = m.client;
                taken_holder = other;
            }
        }
        parties.insert(party.value);
        out.holders.insert(other);
    }
    const auto shown = "its client code '" + c.client_code + "'";
    if (parties.size() > 1) {
        out.recorded = true;
        return record_exception(s,
                                b,
                                c.id,
                                "ambiguous",
                                shown + " is on clients of " + std::to_string(parties.size()) +
                                    " different parties, and a client code names one client; "
                                    "correct the code where it is wrong, or link it by hand",
                                out.holders,
                                now);
    }
    if (!duplicate.empty()) {
        out.recorded = true;
        return record_exception(s,
                                b,
                                c.id,
                                "ambiguous",
                                shown + " is also on " + duplicate + ", another client in '" +
                                    c.source.system +
                                    "'; correct the duplicate code there, or link it by hand",
                                out.holders,
                                now);
    }
    if (!taken_by.empty()) {
        out.recorded = true;
        return record_exception(s,
                                b,
                                c.id,
                                "code_conflict",
                                shown + " names " + taken_holder + ", which is linked to " +
                                    taken_by + " in '" + c.source.system +
                                    "' already; correct the code where it is wrong, or link it "
                                    "by hand",
                                out.holders,
                                now);
    }
    if (parties.size() == 1) {
        out.party = *parties.begin();
    }
    return status::success();
}

// The client codes carried by the members of `party_client`'s party, by client_code_key.
result<std::map<std::string, std::string>> codes_of_party(const store& s,
                                                          batch& b,
                                                          std::string_view party_client) {
    using out_t = result<std::map<std::string, std::string>>;
    auto members = members_of(s, &b, party_client);
    if (!members.ok()) {
        return out_t::failure(members.st);
    }
    std::map<std::string, std::string> codes;
    for (const auto& m : members.value) {
        if (auto other = load_client(s, &b, m.client)) {
            if (auto code = mappings::client_code_key(other->client_code); !code.empty()) {
                codes.emplace(std::move(code), other->client_code);
            }
        }
    }
    return {status::success(), std::move(codes)};
}

status match(const store& s,
             batch& b,
             const mappings::client& c,
             std::optional<util::instant> now) {
    const auto& system = c.source.system;
    const auto code = mappings::client_code_key(c.client_code);
    code_verdict by_code;
    if (!code.empty()) {
        if (auto st = match_code(s, b, c, code, now, by_code); !st.ok || by_code.recorded) {
            return st;
        }
    }
    const auto name = normalize_name(c.display_name);
    // The index prefixes of each kind of key, strongest first.
    std::vector<std::string> by_email;
    std::vector<std::string> by_domain;
    for (const auto& e : emails_of(c.contact.billing_email)) {
        by_email.push_back("e/" + keys::join(e, ""));
        if (const auto d = domain_of(e); !name.empty() && !d.empty() && !public_mail_domain(d)) {
            by_domain.push_back("d/" + keys::join(keys::join(d, name), ""));
        }
    }
    const auto collect = [&](const std::vector<std::string>& prefixes, candidate_set& found) {
        for (const auto& prefix : prefixes) {
            if (auto st = candidates(s, b, c.id, system, indexed(s, b, prefix), found); !st.ok) {
                return st;
            }
        }
        return status::success();
    };
    struct strong_key {
        const std::vector<std::string>& prefixes;
        std::string_view how;   // recorded with the link
        std::string_view what;  // for people, in an exception
    };
    for (const auto& key :
         {strong_key{by_email, "email", "its billing email matches"},
          strong_key{by_domain, "domain_name", "its email domain and name match"}}) {
        candidate_set found;
        if (auto st = collect(key.prefixes, found); !st.ok) {
            return st;
        }
        if (found.parties.empty()) {
            continue;
        }
        if (!by_code.party.empty()) {
            // The strongest email key that matches anything must agree with the code.
            if (found.parties.contains(by_code.party)) {
                break;
            }
            auto both = by_code.holders;
            both.insert(found.clients.begin(), found.clients.end());
            return record_exception(
                s,
                b,
                c.id,
                "code_conflict",
                "its client code '" + c.client_code + "' names " + *by_code.holders.begin() +
                    ", but " + std::string(key.what) + " " +
                    (found.clients.size() == 1 ? "another client" : "other clients") +
                    "; correct the code or the email where it is wrong, "
                    "or link it by hand",
                both,
                now);
        }
        if (found.parties.size() == 1) {
            const auto& other = *found.clients.begin();
            if (!code.empty()) {
                auto codes = codes_of_party(s, b, other);
                if (!codes.ok()) {
                    return codes.st;
                }
                if (!codes.value.empty() && !codes.value.contains(code)) {
                    return record_exception(
                        s,
                        b,
                        c.id,
                        "code_conflict",
                        std::string(key.what) + " " + other + ", but the client codes differ ('" +
                            c.client_code + "' here, '" + codes.value.begin()->second +
                            "' there, compared without case); correct the code where it is "
                            "wrong, or link it by hand",
                        found.clients,
                        now);
                }
            }
            return join(s, b, c.id, system, other, key.how, now);
        }
        return record_exception(s,
                                b,
                                c.id,
                                "ambiguous",
                                std::string(key.what) + " clients of " +
                                    std::to_string(found.parties.size()) +
                                    " different parties; link it by hand",
                                found.clients,
                                now);
    }
    if (!by_code.party.empty()) {
        return join(s, b, c.id, system, *by_code.holders.begin(), "client_code", now);
    }
    if (name.empty()) {
        return drop_stale_exception(s, b, c.id);
    }
    candidate_set by_name;
    if (auto st = collect({"n/" + keys::join(name, "")}, by_name); !st.ok) {
        return st;
    }
    if (!by_name.parties.empty()) {
        return record_exception(s,
                                b,
                                c.id,
                                "name_only",
                                "its name matches, but no billing email or company domain "
                                "confirms it; link it by hand, or unlink to keep it apart",
                                by_name.clients,
                                now);
    }
    return drop_stale_exception(s, b, c.id);
}

// Whether two clients' own keys tie them, as automatic matching links: the same client code, a
// billing email in common, or a company mail domain in common plus the same name.
bool tied(const mappings::client& a, const mappings::client& b) {
    if (a.deleted || b.deleted) {
        return false;
    }
    if (const auto code = mappings::client_code_key(a.client_code);
        !code.empty() && code == mappings::client_code_key(b.client_code)) {
        return true;
    }
    const auto ea = emails_of(a.contact.billing_email);
    const auto eb = emails_of(b.contact.billing_email);
    for (const auto& e : ea) {
        if (std::find(eb.begin(), eb.end(), e) != eb.end()) {
            return true;
        }
    }
    const auto name = normalize_name(a.display_name);
    if (name.empty() || name != normalize_name(b.display_name)) {
        return false;
    }
    for (const auto& e : ea) {
        const auto d = domain_of(e);
        if (d.empty() || public_mail_domain(d)) {
            continue;
        }
        for (const auto& f : eb) {
            if (domain_of(f) == d) {
                return true;
            }
        }
    }
    return false;
}

// After a client left the party `party` (a code change, a delete, an unlink): every other member
// linked automatically must still be tied by its own keys to the party's first client or to a
// client linked by hand, directly or through other members. One that was tied only through the
// client that left leaves too (a party never holds together on a link that is gone) and is
// matched again like a new client.
status resettle(const store& s,
                batch& b,
                const std::string& party,
                std::optional<util::instant> now) {
    auto members = stored_members(s, &b, party);
    if (!members.ok() || members.value.empty()) {
        return members.st;
    }
    const auto& list = members.value;
    std::vector<std::optional<mappings::client>> rows;
    std::vector<bool> kept(list.size(), false);
    for (std::size_t i = 0; i < list.size(); ++i) {
        rows.push_back(load_client(s, &b, list[i].client));
        kept[i] = i == 0 || list[i].how == "manual" || decided(s, &b, list[i].client);
    }
    for (bool grew = true; grew;) {
        grew = false;
        for (std::size_t i = 0; i < list.size(); ++i) {
            for (std::size_t j = 0; j < list.size() && !kept[i] && rows[i]; ++j) {
                if (kept[j] && rows[j] && tied(*rows[i], *rows[j])) {
                    kept[i] = true;
                    grew = true;
                }
            }
        }
    }
    if (std::all_of(kept.begin(), kept.end(), [](bool k) { return k; })) {
        return status::success();
    }
    std::vector<member> stay;
    for (std::size_t i = 0; i < list.size(); ++i) {
        if (kept[i]) {
            stay.push_back(list[i]);
        } else {
            b.del(cf::xref, member_key(list[i].client));
        }
    }
    write_party(b, party, stay);
    for (std::size_t i = 0; i < list.size(); ++i) {
        if (!kept[i] && rows[i] && !rows[i]->deleted) {
            if (auto st = match(s, b, *rows[i], now); !st.ok) {
                return st;
            }
        }
    }
    return status::success();
}

// A client in a party (linked automatically) whose client code changed. The link stays while the
// new code agrees with the party: no client outside it carries the code, and its other members
// carry that code or none (a blank code is no code: nothing speaks against the link). Otherwise
// the client leaves the party and is matched again like a new client; when that finds nothing,
// the code that contradicts its former party is a code_conflict exception, so a party never
// comes apart unseen.
status on_code_change(const store& s,
                      batch& b,
                      const std::string& party,
                      const mappings::client& c,
                      std::optional<util::instant> now) {
    const auto code = mappings::client_code_key(c.client_code);
    if (code.empty()) {
        return status::success();
    }
    auto members = stored_members(s, &b, party);
    if (!members.ok()) {
        return members.st;
    }
    std::set<std::string> inside;
    std::string other_code;    // another code a member carries
    std::string other_holder;  // that member
    for (const auto& m : members.value) {
        inside.insert(m.client);
        if (m.client == c.id || !other_code.empty()) {
            continue;
        }
        if (auto other = load_client(s, &b, m.client)) {
            if (const auto k = mappings::client_code_key(other->client_code);
                !k.empty() && k != code) {
                other_code = other->client_code;
                other_holder = m.client;
            }
        }
    }
    const auto holders = indexed(s, b, "c/" + keys::join(code, ""));
    const bool outside = std::any_of(holders.begin(), holders.end(), [&](const std::string& h) {
        return h != c.id && !inside.contains(h);
    });
    if (other_code.empty() && !outside) {
        return status::success();  // the code agrees with the party
    }
    const auto rest = leave(b, party, std::move(members.value), c.id);
    if (auto st = resettle(s, b, rest, now); !st.ok) {
        return st;
    }
    if (auto st = match(s, b, c, now); !st.ok || other_code.empty()) {
        return st;
    }
    auto joined = read(s, &b, member_key(c.id));
    auto pending = read(s, &b, exception_key(c.id));
    if (!joined.ok() || !pending.ok()) {
        return !joined.ok() ? joined.st : pending.st;
    }
    if (joined.value || pending.value) {
        return status::success();  // matched again: a new party, or an exception saying why not
    }
    return record_exception(s,
                            b,
                            c.id,
                            "code_conflict",
                            "its client code changed to '" + c.client_code + "', but " +
                                other_holder + " of the party it was linked to carries '" +
                                other_code +
                                "' (compared without case), so it left that party; correct the "
                                "code where it is wrong, or link it by hand",
                            {other_holder},
                            now);
}

// Matches again the clients whose open automatic exception names `changed` (its keys, its party
// or its existence changed, so what the exception said may no longer hold). One level: what a
// re-match changes does not re-check further clients. A client in a party, decided by hand,
// deleted, or waiting as "missing" is left alone.
status recheck_dependents(const store& s,
                          batch& b,
                          std::string_view changed,
                          std::optional<util::instant> now) {
    for (const auto& d : indexed(s, b, "xc/" + keys::join(changed, ""))) {
        if (d == changed || decided(s, &b, d)) {
            continue;
        }
        auto row = read(s, &b, exception_key(d));
        auto joined = read(s, &b, member_key(d));
        if (!row.ok() || !joined.ok()) {
            return !row.ok() ? row.st : joined.st;
        }
        if (!row.value || joined.value) {
            continue;
        }
        const auto j = json::parse(*row.value, nullptr, false);
        if (j.is_object() && j.value("kind", "") == "missing") {
            continue;
        }
        const auto c = load_client(s, &b, d);
        if (!c || c->deleted) {
            continue;
        }
        if (auto st = clear_exception(s, b, d); !st.ok) {
            return st;
        }
        if (auto st = match(s, b, *c, now); !st.ok) {
            return st;
        }
    }
    return status::success();
}

// A deleted client leaves its party (the others stay together) and keeps no automatic
// exception; a workflow's "missing" one stays, for the operator to see what waited on it.
status on_delete(const store& s, batch& b, const mappings::client& c) {
    auto party = read(s, &b, member_key(c.id));
    if (!party.ok()) {
        return party.st;
    }
    if (party.value) {
        auto members = stored_members(s, &b, *party.value);
        if (!members.ok()) {
            return members.st;
        }
        const auto rest = leave(b, *party.value, std::move(members.value), c.id);
        if (auto st = resettle(s, b, rest, c.source.updated); !st.ok) {
            return st;
        }
    }
    return drop_stale_exception(s, b, c.id);
}

// Where a written client belongs: a client in a party stays there unless its code changed; a
// client standing alone is matched.
status place(const store& s,
             batch& b,
             const mappings::client* before,
             const mappings::client& after) {
    if (decided(s, &b, after.id)) {
        return status::success();
    }
    auto party = read(s, &b, member_key(after.id));
    if (!party.ok()) {
        return party.st;
    }
    if (party.value) {
        // Linked already: a later edit does not move it, unless its client code changed.
        const auto was =
            before != nullptr ? mappings::client_code_key(before->client_code) : std::string();
        if (was == mappings::client_code_key(after.client_code)) {
            return status::success();
        }
        return on_code_change(s, b, *party.value, after, after.source.updated);
    }
    return match(s, b, after, after.source.updated);
}

}  // namespace

std::vector<std::string> emails_of(std::string_view billing_email) {
    std::vector<std::string> out;
    std::string current;
    auto flush = [&] {
        if (current.find('@') != std::string::npos && current.front() != '@' &&
            current.back() != '@') {
            out.push_back(current);
        }
        current.clear();
    };
    for (const char ch : billing_email) {
        if (ch == ',' || ch == ';' || std::isspace(static_cast<unsigned char>(ch)) != 0) {
            flush();
        } else {
            current.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(ch))));
        }
    }
    flush();
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
    return out;
}

std::string normalize_name(std::string_view name) {
    std::vector<std::string> words;
    std::string word;
    auto flush = [&] {
        if (!word.empty()) {
            words.push_back(std::move(word));
            word.clear();
        }
    };
    for (const char ch : name) {
        const auto u = static_cast<unsigned char>(ch);
        if (std::isalnum(u) != 0 || u >= 0x80) {
            word.push_back(static_cast<char>(std::tolower(u)));
        } else if (ch == '&') {
            flush();
            words.emplace_back("and");
        } else if (ch == '\'') {
            continue;  // "O'Brien" -> "obrien"
        } else {
            flush();
        }
    }
    flush();
    static constexpr std::array<std::string_view, 16> suffixes{"llc",
                                                               "inc",
                                                               "ltd",
                                                               "co",
                                                               "corp",
                                                               "pllc",
                                                               "pc",
                                                               "llp",
                                                               "lp",
                                                               "plc",
                                                               "company",
                                                               "corporation",
                                                               "incorporated",
                                                               "limited",
                                                               "pty",
                                                               "gmbh"};
    while (words.size() > 1 &&
           std::find(suffixes.begin(), suffixes.end(), words.back()) != suffixes.end()) {
        words.pop_back();
    }
    if (words.size() > 1 && words.front() == "the") {
        words.erase(words.begin());
    }
    std::string out;
    for (const auto& w : words) {
        if (!out.empty()) {
            out.push_back(' ');
        }
        out += w;
    }
    return out;
}

bool public_mail_domain(std::string_view domain) noexcept {
    static constexpr std::array<std::string_view, 22> providers{
        "aol.com",   "comcast.net",    "gmail.com",   "googlemail.com", "gmx.com",
        "gmx.net",   "hotmail.co.uk",  "hotmail.com", "icloud.com",     "live.com",
        "mac.com",   "mail.com",       "me.com",      "msn.com",        "outlook.com",
        "proton.me", "protonmail.com", "yahoo.co.uk", "yahoo.com",      "ymail.com",
        "zoho.com",  "fastmail.com"};
    return std::find(providers.begin(), providers.end(), domain) != providers.end();
}

status on_client(const store& s,
                 batch& b,
                 const mappings::client* before,
                 const mappings::client& after) {
    std::set<std::string> old_rows;
    std::set<std::string> new_rows;
    if (before != nullptr) {
        index_rows(*before, [&](const std::string& k) { old_rows.insert(k); });
    }
    index_rows(after, [&](const std::string& k) { new_rows.insert(k); });
    for (const auto& k : old_rows) {
        if (!new_rows.contains(k)) {
            b.del(cf::xref, k);
        }
    }
    for (const auto& k : new_rows) {
        b.put(cf::xref, k, "");  // also when unchanged: rows written before the index existed
    }
    const bool deleted_now = after.deleted && (before == nullptr || !before->deleted);
    if (after.deleted) {
        if (auto st = deleted_now ? on_delete(s, b, after) : status::success(); !st.ok) {
            return st;
        }
    } else if (auto st = place(s, b, before, after); !st.ok) {
        return st;
    }
    if (old_rows == new_rows && !deleted_now) {
        return status::success();
    }
    // Its keys changed (or it is gone): exceptions of other clients that named it are matched
    // again, so correcting one side of a conflict clears the other's exception.
    return recheck_dependents(s, b, after.id, after.source.updated);
}

status index_all(const store& s, batch& b) {
    return for_each_entity(s, "client", [&](std::string_view, std::string_view value) {
        std::string error;
        if (auto c = mappings::client_from_json(json::parse(value, nullptr, false), error)) {
            index_rows(*c, [&](const std::string& k) { b.put(cf::xref, k, ""); });
        }
        return true;
    });
}

result<std::string> party_of(const store& s, batch* b, std::string_view client) {
    auto row = read(s, b, member_key(client));
    if (!row.ok()) {
        return result<std::string>::failure(row.st);
    }
    return {status::success(), row.value ? *row.value : std::string(client)};
}

result<std::vector<member>> members_of(const store& s, batch* b, std::string_view client) {
    auto party = party_of(s, b, client);
    if (!party.ok()) {
        return result<std::vector<member>>::failure(party.st);
    }
    auto stored = stored_members(s, b, party.value);
    if (!stored.ok() || !stored.value.empty()) {
        return stored;
    }
    std::vector<member> alone{{std::string(client), system_of(s, b, client), "", ""}};
    return {status::success(), std::move(alone)};
}

result<std::optional<std::string>> counterpart(const store& s,
                                               batch* b,
                                               std::string_view client,
                                               std::string_view system) {
    auto members = members_of(s, b, client);
    if (!members.ok()) {
        return result<std::optional<std::string>>::failure(members.st);
    }
    for (const auto& m : members.value) {
        if (m.system == system) {
            return {status::success(), m.client};
        }
    }
    return {status::success(), std::nullopt};
}

result<std::string> authoritative(const store& s,
                                  batch* b,
                                  std::string_view client,
                                  std::string_view owner) {
    if (owner.empty()) {
        return {status::success(), std::string(client)};
    }
    auto found = counterpart(s, b, client, owner);
    if (!found.ok()) {
        return result<std::string>::failure(found.st);
    }
    return {status::success(), found.value ? *found.value : std::string(client)};
}

result<std::vector<exception_info>> exceptions(const store& s) {
    std::vector<exception_info> out;
    auto st = s.for_each(cf::xref, "x/", [&](std::string_view key, std::string_view value) {
        const auto j = json::parse(value, nullptr, false);
        if (!j.is_object()) {
            return true;
        }
        exception_info e;
        e.client = std::string(key.substr(2));
        e.kind = j.value("kind", "");
        e.reason = j.value("reason", "");
        if (const auto it = j.find("candidates"); it != j.end() && it->is_array()) {
            for (const auto& c : *it) {
                if (c.is_string()) {
                    e.candidates.push_back(c.get<std::string>());
                }
            }
        }
        e.needed_by = j.value("needed_by", "");
        e.system = j.value("system", "");
        e.at = j.value("at", "");
        out.push_back(std::move(e));
        return true;
    });
    if (!st.ok) {
        return result<std::vector<exception_info>>::failure(std::move(st));
    }
    return {status::success(), std::move(out)};
}

status need_counterpart(const store& s,
                        batch& b,
                        std::string_view client,
                        std::string_view system,
                        std::string_view needed_by,
                        util::instant now) {
    auto row = read(s, &b, exception_key(client));
    if (!row.ok()) {
        return row.st;
    }
    if (row.value) {
        return status::success();  // already waiting (or ambiguous: the operator sees that)
    }
    json j{
        {"kind", "missing"},
        {"reason", "no client in '" + std::string(system) + "' is linked to it; link it by hand"},
        {"candidates", json::array()},
        {"system", system},
        {"needed_by", needed_by},
        {"at", util::format_rfc3339(now)}};
    b.put(cf::xref, exception_key(client), dump(j));
    return status::success();
}

result<std::optional<std::string>> find_client(const store& s, std::string_view ref) {
    using out_t = result<std::optional<std::string>>;
    auto direct = get_entity(s, "client", ref);
    if (!direct.ok()) {
        return out_t::failure(direct.st);
    }
    if (direct.value) {
        return {status::success(), std::string(ref)};
    }
    const auto colon = ref.find(':');
    if (colon == std::string_view::npos || colon == 0 || colon + 1 == ref.size()) {
        return {status::success(), std::nullopt};
    }
    const auto system = ref.substr(0, colon);
    const auto id = ref.substr(colon + 1);
    // Vendor keys are "[<account>/]client/<id>" under the connector's name.
    const auto prefix = "r/" + keys::join(system, "");
    const auto tail = "client/" + std::string(id);
    std::optional<std::string> found;
    auto st = s.for_each(cf::xref, prefix, [&](std::string_view key, std::string_view value) {
        const auto remote = key.substr(prefix.size());
        if (remote == tail || (remote.size() > tail.size() && remote.ends_with(tail) &&
                               remote[remote.size() - tail.size() - 1] == '/')) {
            found = std::string(value);
            return false;
        }
        return true;
    });
    if (!st.ok) {
        return out_t::failure(std::move(st));
    }
    return {status::success(), std::move(found)};
}

result<decision> link(
    const store& s, batch& b, std::string_view a, std::string_view bclient, util::instant now) {
    using out_t = result<decision>;
    if (a == bclient) {
        return {status::success(), decision{false, "a client cannot be linked to itself", {}}};
    }
    auto pa = party_of(s, &b, a);
    auto pb = party_of(s, &b, bclient);
    auto ma = members_of(s, &b, a);
    auto mb = members_of(s, &b, bclient);
    for (const auto* st : {&pa.st, &pb.st, &ma.st, &mb.st}) {
        if (!st->ok) {
            return out_t::failure(*st);
        }
    }
    if (pa.value == pb.value) {
        return {status::success(), decision{true, {}, pa.value}};
    }
    for (const auto& x : ma.value) {
        for (const auto& y : mb.value) {
            if (x.system == y.system) {
                return {status::success(),
                        decision{false,
                                 "both parties already have a client in '" + x.system + "' (" +
                                     x.client + " and " + y.client +
                                     "); merge the duplicate there first, or unlink one",
                                 {}}};
            }
        }
    }
    auto list = std::move(ma.value);
    const auto at = util::format_rfc3339(now);
    for (auto& m : mb.value) {
        m.how = "manual";
        m.at = at;
        list.push_back(std::move(m));
    }
    b.del(cf::xref, party_key(pb.value));
    write_party(b, pa.value, list);
    for (const auto& m : list) {
        if (auto st = clear_exception(s, b, m.client); !st.ok) {
            return out_t::failure(std::move(st));
        }
    }
    b.put(cf::xref, decided_key(a), "manual");
    b.put(cf::xref, decided_key(bclient), "manual");
    // Exceptions that named a member may no longer hold: two candidate parties are one now.
    for (const auto& m : list) {
        if (auto st = recheck_dependents(s, b, m.client, now); !st.ok) {
            return out_t::failure(std::move(st));
        }
    }
    return {status::success(), decision{true, {}, pa.value}};
}

result<decision> unlink(const store& s, batch& b, std::string_view client, util::instant now) {
    using out_t = result<decision>;
    auto party = party_of(s, &b, client);
    auto members = members_of(s, &b, client);
    if (!party.ok() || !members.ok()) {
        return out_t::failure(!party.ok() ? party.st : members.st);
    }
    const auto rest = leave(b, party.value, std::move(members.value), client);
    if (auto st = clear_exception(s, b, client); !st.ok) {
        return out_t::failure(std::move(st));
    }
    b.put(cf::xref, decided_key(client), "manual");
    if (rest != client) {
        if (auto st = resettle(s, b, rest, now); !st.ok) {
            return out_t::failure(std::move(st));
        }
    }
    if (auto st = recheck_dependents(s, b, client, now); !st.ok) {
        return out_t::failure(std::move(st));
    }
    return {status::success(), decision{true, {}, std::string(client)}};
}

result<std::vector<std::pair<std::string, std::vector<member>>>> parties(const store& s) {
    std::vector<std::pair<std::string, std::vector<member>>> out;
    auto st = s.for_each(cf::xref, "p/", [&](std::string_view key, std::string_view value) {
        const auto j = json::parse(value, nullptr, false);
        std::vector<member> list;
        if (j.is_array()) {
            for (const auto& m : j) {
                if (m.is_object()) {
                    list.push_back(member_from(m.value("client", ""), m));
                }
            }
        }
        out.emplace_back(std::string(key.substr(2)), std::move(list));
        return true;
    });
    if (!st.ok) {
        return result<std::vector<std::pair<std::string, std::vector<member>>>>::failure(
            std::move(st));
    }
    return {status::success(), std::move(out)};
}

}  // namespace billsync::state::identity
