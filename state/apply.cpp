#include "state/apply.hpp"

#include <nlohmann/json.hpp>
#include <string>
#include <type_traits>
#include <utility>

#include "state/entity_index.hpp"
#include "state/identity.hpp"
#include "state/tables.hpp"

namespace billsync::state {

namespace {

using mappings::change;
using nlohmann::json;
using apply_result = result<std::optional<change>>;

json parse_row(const std::optional<std::string>& row) {
    if (!row) {
        return json();
    }
    auto j = json::parse(*row, nullptr, false);
    return j.is_object() ? j : json::object();
}

std::uint64_t version_in(const json& row) {
    if (!row.is_object()) {
        return 0;
    }
    const auto it = row.find("version");
    return it != row.end() && it->is_number_unsigned() ? it->get<std::uint64_t>() : 1;
}

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

// How a sourced entity is read back, and what its change lists.
template <class T>
std::optional<T> decode(const json& j, std::string& error) {
    if constexpr (std::is_same_v<T, mappings::client>) {
        return mappings::client_from_json(j, error);
    } else if constexpr (std::is_same_v<T, mappings::invoice>) {
        return mappings::invoice_from_json(j, error);
    } else if constexpr (std::is_same_v<T, mappings::payment>) {
        return mappings::payment_from_json(j, error);
    } else if constexpr (std::is_same_v<T, mappings::staff>) {
        return mappings::staff_from_json(j, error);
    } else if constexpr (std::is_same_v<T, mappings::work_item>) {
        return mappings::work_item_from_json(j, error);
    } else if constexpr (std::is_same_v<T, mappings::ledger_item>) {
        return mappings::ledger_item_from_json(j, error);
    } else {
        static_assert(std::is_same_v<T, mappings::time_entry>);
        return mappings::time_entry_from_json(j, error);
    }
}

template <class T>
json diff_list(const T* before, const T& after) {
    json list = json::array();
    if constexpr (std::is_same_v<T, mappings::client> || std::is_same_v<T, mappings::invoice>) {
        for (const auto& d : mappings::diff(before, after)) {
            list.push_back(mappings::to_json(d));
        }
    }
    return list;
}

template <class T>
bool unchanged(const T* before, const T& after) {
    if constexpr (std::is_same_v<T, mappings::client> || std::is_same_v<T, mappings::invoice>) {
        return mappings::diff(before, after).empty();
    } else {
        return before != nullptr && *before == after;
    }
}

// Ledger and practice entities: versioned, ordered by the vendor's update time, diffed.
template <class T>
apply_result apply_sourced(const store& s, batch& b, std::string_view source, T x) {
    const auto type = mappings::entity_type_of(x);
    if constexpr (std::is_same_v<T, mappings::client>) {
        if (x.source.system.empty()) {
            x.source.system = std::string(source);  // the identity map groups clients by system
        }
    }
    auto existing = get_entity(s, b, type, x.id);
    if (!existing.ok()) {
        return apply_result::failure(existing.st);
    }
    std::optional<T> before;
    std::uint64_t version = 0;
    if (existing.value) {
        const auto j = parse_row(existing.value);
        std::string error;
        before = decode<T>(j, error);
        version = j.value("version", std::uint64_t{0});
    }
    bool deleted = false;
    if constexpr (requires { x.deleted; }) {
        deleted = x.deleted;
        if (x.deleted) {
            if (!before || before->deleted) {
                return {status::success(), std::nullopt};
            }
            auto after = *before;  // a delete keeps the last known fields
            after.deleted = true;
            x = std::move(after);
        }
    }
    if (!deleted && before && x.source.updated && before->source.updated &&
        *x.source.updated < *before->source.updated) {
        return {status::success(), std::nullopt};  // an older copy (out-of-order delivery)
    }
    if (unchanged(before ? &*before : nullptr, x)) {
        return {status::success(), std::nullopt};
    }
    auto fields = mappings::to_json(x);
    auto stored = fields;
    stored["version"] = version + 1;
    auto row = dump(stored);
    put_entity(b, type, x.id, row);
    entity_index::update(b, type, x.id, existing.value, row);
    if (!x.source.id.empty()) {
        const auto& system = x.source.system.empty() ? std::string(source) : x.source.system;
        put_xref(b, system, mappings::identity_key(type, x.source), x.id);
    }
    if constexpr (std::is_same_v<T, mappings::client>) {
        if (auto st = identity::on_client(s, b, before ? &*before : nullptr, x); !st.ok) {
            return apply_result::failure(st);
        }
    }
    const auto what = !before   ? change::op::created
                      : deleted ? change::op::deleted
                                : change::op::updated;
    auto changes = diff_list(before ? &*before : nullptr, x);
    auto c = mappings::make_change(std::move(x), version + 1, what, std::string(source));
    c.fields_json = dump(json{{"entity", std::move(fields)}, {"changes", std::move(changes)}});
    return {status::success(), std::move(c)};
}

// The change of an entity stored at `version` (0: new) and now at version + 1.
template <class T>
change next_version(T x, std::uint64_t version, std::string_view source) {
    return mappings::make_change(std::move(x),
                                 version + 1,
                                 version == 0 ? change::op::created : change::op::updated,
                                 std::string(source));
}

apply_result apply_suppression(const store& s,
                               batch& b,
                               std::string_view source,
                               mappings::suppression x) {
    const auto id = x.id();
    auto existing = get_entity(s, b, "suppression", id);
    if (!existing.ok()) {
        return apply_result::failure(existing.st);
    }
    const auto row = parse_row(existing.value);
    const auto version = version_in(row);
    if (version > 0 && row.value("opted_out", !x.opted_out) == x.opted_out) {
        return {status::success(), std::nullopt};
    }
    // Suppression rows are flat (channel, address, opted_out, reason, at): the form the
    // workflows read; version and source ride along.
    auto stored = mappings::to_json(x);
    stored["version"] = version + 1;
    stored["source"] = source;
    put_entity(b, "suppression", id, dump(stored));
    return {status::success(), next_version(std::move(x), version, source)};
}

// Rows of messages and records: {"version", "source", "fields"}.
void put_row(batch& b,
             std::string_view type,
             std::string_view id,
             std::uint64_t version,
             std::string_view source,
             json fields) {
    put_entity(b,
               type,
               id,
               dump(json{{"version", version}, {"source", source}, {"fields", std::move(fields)}}));
}

apply_result apply_message_status(const store& s,
                                  batch& b,
                                  std::string_view source,
                                  mappings::message_status x) {
    const auto type = mappings::entity_type_of(x);
    auto existing = get_entity(s, b, type, x.delivery_id);
    if (!existing.ok()) {
        return apply_result::failure(existing.st);
    }
    const auto row = parse_row(existing.value);
    const auto version = existing.value ? version_in(row) : 0;
    json fields = row.is_object() ? row.value("fields", json::object()) : json::object();
    if (!fields.is_object()) {
        fields = json::object();
    }
    if (version == 0 || x.progress > 0) {
        // Rows written before progress was kept have none: any progress moves them.
        const auto stored_progress = fields.value("progress", 0);
        if (version > 0 && x.progress <= stored_progress) {
            return {status::success(), std::nullopt};  // never backwards; a final status stays
        }
        auto engagement = fields.value("last_engagement", std::string());
        fields = mappings::to_json(x);
        if (x.progress == 0) {
            engagement = x.status;
        }
        if (!engagement.empty()) {
            fields["last_engagement"] = engagement;
        }
    } else if (!x.status.empty()) {
        fields["last_engagement"] = x.status;  // opened, clicked: beside the status
    } else {
        return {status::success(), std::nullopt};
    }
    put_row(b, type, x.delivery_id, version + 1, source, std::move(fields));
    return {status::success(), next_version(std::move(x), version, source)};
}

apply_result apply_inbound(const store& s,
                           batch& b,
                           std::string_view source,
                           mappings::inbound_message x) {
    const auto type = mappings::entity_type_of(x);
    auto existing = get_entity(s, b, type, x.id);
    if (!existing.ok()) {
        return apply_result::failure(existing.st);
    }
    if (existing.value) {
        return {status::success(), std::nullopt};  // the same message, delivered again
    }
    put_row(b, type, x.id, 1, source, mappings::to_json(x));
    return {status::success(),
            mappings::make_change(std::move(x), 1, change::op::created, std::string(source))};
}

apply_result apply_record(const store& s,
                          batch& b,
                          std::string_view source,
                          mappings::generic::record x) {
    auto existing = get_entity(s, b, "record", x.id);
    if (!existing.ok()) {
        return apply_result::failure(existing.st);
    }
    auto fields = json::parse(x.fields_json, nullptr, false);
    std::uint64_t version = 0;
    if (existing.value) {
        const auto row = parse_row(existing.value);
        if (row.value("fields", json()) == fields) {
            return {status::success(), std::nullopt};  // identical, under another dedup key
        }
        version = row.value("version", std::uint64_t{0});
    }
    put_row(b, "record", x.id, version + 1, source, std::move(fields));
    // Canonical record ids are "<connector>/<id>": the remote key is the id the sender gave.
    auto remote = std::string_view(x.id);
    if (remote.starts_with(source) && remote.size() > source.size() &&
        remote[source.size()] == '/') {
        remote.remove_prefix(source.size() + 1);
    }
    mappings::source_ref ref;
    ref.id = std::string(remote);
    put_xref(b, source, mappings::identity_key("record", ref), x.id);
    return {status::success(), next_version(std::move(x), version, source)};
}

template <class... Fs>
struct overloaded : Fs... {
    using Fs::operator()...;
};

}  // namespace

std::uint64_t stored_version(const std::optional<std::string>& row) {
    return row ? version_in(parse_row(row)) : 0;
}

result<std::optional<mappings::change>> apply(const store& s,
                                              batch& b,
                                              std::string_view source,
                                              mappings::entity e) {
    return std::visit(
        overloaded{
            [&](mappings::suppression& x) { return apply_suppression(s, b, source, std::move(x)); },
            [&](mappings::message_status& x) {
                return apply_message_status(s, b, source, std::move(x));
            },
            [&](mappings::inbound_message& x) { return apply_inbound(s, b, source, std::move(x)); },
            [&](mappings::generic::record& x) { return apply_record(s, b, source, std::move(x)); },
            [&](auto& x) { return apply_sourced(s, b, source, std::move(x)); },
        },
        e);
}

}  // namespace billsync::state
