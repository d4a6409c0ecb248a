#include "state/tables.hpp"

#include "state/entity_scan.hpp"
#include "state/keys.hpp"

namespace billsync::state {

namespace {

std::string xref_remote_key(std::string_view system, std::string_view remote) {
    return "r/" + keys::join(system, remote);
}

std::string xref_local_key(std::string_view local, std::string_view system) {
    return "l/" + keys::join(local, system);
}

}  // namespace

result<std::optional<std::string>> get_cursor(const store& s, std::string_view key) {
    return s.get(cf::cursors, key);
}

void put_cursor(batch& b, std::string_view key, std::string_view value) {
    b.put(cf::cursors, key, value);
}

result<std::optional<std::string>> get_token(const store& s, std::string_view key) {
    return s.get(cf::tokens, key);
}

void put_token(batch& b, std::string_view key, std::string_view value) {
    b.put(cf::tokens, key, value);
}

void delete_token(batch& b, std::string_view key) { b.del(cf::tokens, key); }

result<std::optional<std::string>> get_entity(const store& s,
                                              std::string_view type,
                                              std::string_view id) {
    return s.get(cf::entities, keys::join(type, id));
}

result<std::optional<std::string>> get_entity(const store& s,
                                              batch& b,
                                              std::string_view type,
                                              std::string_view id) {
    return s.get(b, cf::entities, keys::join(type, id));
}

void put_entity(batch& b, std::string_view type, std::string_view id, std::string_view value) {
    b.put(cf::entities, keys::join(type, id), value);
}

void delete_entity(batch& b, std::string_view type, std::string_view id) {
    b.del(cf::entities, keys::join(type, id));
}

status for_each_entity_with_prefix(
    const store& s,
    std::string_view type,
    std::string_view id_prefix,
    const std::function<bool(std::string_view, std::string_view)>& fn) {
    const std::string prefix = keys::join(type, "");
    return s.for_each(cf::entities,
                      prefix + std::string(id_prefix),
                      [&](std::string_view key, std::string_view value) {
                          return fn(key.substr(prefix.size()), value);
                      });
}

status for_each_entity(const store& s,
                       std::string_view type,
                       const std::function<bool(std::string_view, std::string_view)>& fn) {
    const std::string prefix = keys::join(type, "");
    return s.for_each(cf::entities, prefix, [&](std::string_view key, std::string_view value) {
        return fn(key.substr(prefix.size()), value);
    });
}

void put_xref(batch& b, std::string_view system, std::string_view remote, std::string_view local) {
    b.put(cf::xref, xref_remote_key(system, remote), local);
    b.put(cf::xref, xref_local_key(local, system), remote);
}

result<std::optional<std::string>> local_id(const store& s,
                                            std::string_view system,
                                            std::string_view remote) {
    return s.get(cf::xref, xref_remote_key(system, remote));
}

result<std::optional<std::string>> remote_id(const store& s,
                                             std::string_view local,
                                             std::string_view system) {
    return s.get(cf::xref, xref_local_key(local, system));
}

result<std::optional<std::string>> remote_id(const store& s,
                                             batch& b,
                                             std::string_view local,
                                             std::string_view system) {
    return s.get(b, cf::xref, xref_local_key(local, system));
}

mappings::id_resolver canonical_ids(const store& s, std::string system) {
    return
        [&s, system = std::move(system)](std::string_view type, const mappings::source_ref& ref) {
            auto found = local_id(s, system, mappings::identity_key(type, ref));
            if (found.ok() && found.value) {
                return *found.value;
            }
            return mappings::default_canonical_id(type, ref);
        };
}

result<std::vector<identity_link>> links_of(const store& s, std::string_view local) {
    const auto prefix = xref_local_key(local, "");
    std::vector<identity_link> out;
    auto st = s.for_each(cf::xref, prefix, [&](std::string_view key, std::string_view value) {
        out.push_back({std::string(key.substr(prefix.size())), std::string(value)});
        return true;
    });
    if (!st.ok) {
        return result<std::vector<identity_link>>::failure(std::move(st));
    }
    return {status::success(), std::move(out)};
}

// --- change_log ------------------------------------------------------------------------------

result<std::unique_ptr<change_log>> change_log::open(store& s) {
    std::unique_ptr<change_log> log(new change_log(s));
    auto last = s.last(cf::changes, "");
    if (!last.ok()) {
        return result<std::unique_ptr<change_log>>::failure(std::move(last.st));
    }
    if (last.value && last.value->first.size() == 8) {
        log->next_ = keys::read_be64(last.value->first) + 1;
    }
    return {status::success(), std::move(log)};
}

std::uint64_t change_log::append(batch& b, std::string_view record) {
    const std::uint64_t seq = next_.fetch_add(1);
    b.put(cf::changes, keys::be64(seq), record);
    return seq;
}

void change_log::remove(batch& b, std::uint64_t seq) { b.del(cf::changes, keys::be64(seq)); }

result<std::vector<std::pair<std::uint64_t, std::string>>> change_log::read(
    std::uint64_t from, std::size_t limit) const {
    std::vector<std::pair<std::uint64_t, std::string>> out;
    if (limit == 0) {
        return {};
    }
    auto st = store_.for_each_range(
        cf::changes, keys::be64(from), "", [&](std::string_view key, std::string_view value) {
            if (key.size() == 8) {
                out.emplace_back(keys::read_be64(key), std::string(value));
            }
            return out.size() < limit;
        });
    if (!st.ok) {
        return result<std::vector<std::pair<std::uint64_t, std::string>>>::failure(std::move(st));
    }
    return {status::success(), std::move(out)};
}

// --- audit_log -------------------------------------------------------------------------------

result<std::unique_ptr<audit_log>> audit_log::open(store& s) {
    std::unique_ptr<audit_log> log(new audit_log(s));
    // The seq only separates entries of the same microsecond, so continuing after the last
    // key's seq keeps keys unique (barring a clock step back onto the very same microsecond).
    auto last = s.last(cf::audit, "");
    if (!last.ok()) {
        return result<std::unique_ptr<audit_log>>::failure(std::move(last.st));
    }
    if (last.value && last.value->first.size() == 16) {
        log->next_ = keys::read_be64(std::string_view(last.value->first).substr(8)) + 1;
    }
    return {status::success(), std::move(log)};
}

void audit_log::append(batch& b, util::instant at, std::string_view json_line) {
    std::string key;
    key.reserve(16);
    keys::append_instant(key, at);
    keys::append_be64(key, next_.fetch_add(1));
    b.put(cf::audit, key, json_line);
}

result<std::vector<audit_entry>> audit_log::read(util::instant from, std::size_t limit) const {
    std::vector<audit_entry> out;
    if (limit == 0) {
        return {};
    }
    std::string start;
    keys::append_instant(start, from);
    auto st = store_.for_each_range(
        cf::audit, start, "", [&](std::string_view key, std::string_view value) {
            if (key.size() == 16) {
                out.push_back({keys::to_instant(keys::read_be64(key)),
                               keys::read_be64(key.substr(8)),
                               std::string(value)});
            }
            return out.size() < limit;
        });
    if (!st.ok) {
        return result<std::vector<audit_entry>>::failure(std::move(st));
    }
    return {status::success(), std::move(out)};
}

}  // namespace billsync::state
