#include "connectors/qbo/qbo_webhook.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <exception>
#include <utility>

#include "mappings/exact_json.hpp"
#include "util/crypto.hpp"

namespace billsync::connectors::qbo {

namespace {

using nlohmann::json;

char lower(char c) noexcept {
    return static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
}

bool iequals(std::string_view a, std::string_view b) noexcept {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return lower(x) == lower(y);
           });
}

std::string_view trim(std::string_view s) noexcept {
    while (!s.empty() &&
           (s.front() == ' ' || s.front() == '\t' || s.front() == '\r' || s.front() == '\n')) {
        s.remove_prefix(1);
    }
    while (!s.empty() &&
           (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n')) {
        s.remove_suffix(1);
    }
    return s;
}

// QBO's spelling of the entity names CloudEvents types carry in lower case.
constexpr std::array<std::string_view, 36> entity_names = {"Account",
                                                           "Attachable",
                                                           "Bill",
                                                           "BillPayment",
                                                           "Budget",
                                                           "Class",
                                                           "CompanyInfo",
                                                           "CreditCardPayment",
                                                           "CreditMemo",
                                                           "Currency",
                                                           "Customer",
                                                           "Department",
                                                           "Deposit",
                                                           "Employee",
                                                           "Estimate",
                                                           "Invoice",
                                                           "Item",
                                                           "JournalCode",
                                                           "JournalEntry",
                                                           "Payment",
                                                           "PaymentMethod",
                                                           "Preferences",
                                                           "Purchase",
                                                           "PurchaseOrder",
                                                           "RecurringTransaction",
                                                           "RefundReceipt",
                                                           "SalesReceipt",
                                                           "TaxAgency",
                                                           "TaxCode",
                                                           "TaxRate",
                                                           "Term",
                                                           "TimeActivity",
                                                           "Transfer",
                                                           "Vendor",
                                                           "VendorCredit",
                                                           "ExchangeRate"};

std::string qbo_entity_spelling(std::string_view name) {
    for (const auto e : entity_names) {
        if (iequals(e, name)) {
            return std::string(e);
        }
    }
    return std::string(name);
}

operation operation_of(std::string_view s) noexcept {
    struct spelling {
        std::string_view a, b;
        operation op;
    };
    static constexpr std::array<spelling, 6> table = {{
        {"create", "created", operation::created},
        {"update", "updated", operation::updated},
        {"delete", "deleted", operation::deleted},
        {"merge", "merged", operation::merged},
        {"void", "voided", operation::voided},
        {"emailed", "email", operation::emailed},
    }};
    for (const auto& t : table) {
        if (iequals(s, t.a) || iequals(s, t.b)) {
            return t.op;
        }
    }
    return operation::unknown;
}

// A string (or integer) member as text; nullopt when absent, null, or of another type.
std::optional<std::string> text(const json& j, std::string_view key) {
    if (!j.is_object()) {
        return std::nullopt;
    }
    const auto it = j.find(key);
    if (it == j.end()) {
        return std::nullopt;
    }
    if (it->is_string()) {
        return it->get<std::string>();
    }
    if (it->is_number_integer()) {
        return it->dump();
    }
    return std::nullopt;
}

void percent_encode(std::string& out, std::string_view s) {
    static constexpr std::string_view hex = "0123456789ABCDEF";
    for (const char c : s) {
        const auto u = static_cast<unsigned char>(c);
        if (c == '%' || c == ':' || u < 0x21 || u > 0x7e) {
            out.push_back('%');
            out.push_back(hex[u >> 4]);
            out.push_back(hex[u & 0x0f]);
        } else {
            out.push_back(c);
        }
    }
}

class builder {
public:
    builder(webhook_parse& out, const std::vector<std::string>& realms, const webhook_limits& lim)
        : out_(out), realms_(realms), limits_(lim) {}

    // A member that must be a short non-empty string; records a problem otherwise.
    std::optional<std::string> field(const json& j, std::string_view key, std::string_view where) {
        auto v = text(j, key);
        if (!v || v->empty()) {
            problem(where, "no '" + std::string(key) + "'");
            return std::nullopt;
        }
        if (v->size() > limits_.max_field_bytes) {
            problem(where, "'" + std::string(key) + "' is too long");
            return std::nullopt;
        }
        return v;
    }

    // Optional short member; too long counts as absent.
    std::string optional_field(const json& j, std::string_view key) {
        auto v = text(j, key);
        return v && v->size() <= limits_.max_field_bytes ? *v : std::string();
    }

    bool add(qbo_event e, std::string_view where, std::string_view time_text) {
        // QBO ids are decimal digits; anything else would reach a request path unencoded.
        if (e.entity_id.empty() || !std::all_of(e.entity_id.begin(), e.entity_id.end(), [](char c) {
                return c >= '0' && c <= '9';
            })) {
            problem(where, "entity id is not a QBO id (digits only); event dropped");
            return true;
        }
        if (out_.events.size() >= limits_.max_events) {
            out_.error =
                "delivery holds more than " + std::to_string(limits_.max_events) + " events";
            return false;
        }
        if (!time_text.empty()) {
            e.last_updated = mappings::parse_timestamp(time_text);
            if (!e.last_updated) {
                problem(where, "unparseable time '" + std::string(time_text) + "' (event kept)");
            }
        }
        e.realm_known = realms_.empty() ||
                        std::find(realms_.begin(), realms_.end(), e.realm_id) != realms_.end();
        e.entity_known = entity_handled(e.entity_name);
        e.time_text = std::string(time_text);
        e.dedup_key = dedup_key(e);
        out_.events.push_back(std::move(e));
        return true;
    }

    void problem(std::string_view where, std::string what) {
        if (out_.problems.size() < 100) {
            out_.problems.push_back(std::string(where) + ": " + std::move(what));
        }
    }

    const webhook_limits& limits() const noexcept { return limits_; }

private:
    webhook_parse& out_;
    const std::vector<std::string>& realms_;
    const webhook_limits& limits_;
};

void parse_classic(const json& root, builder& b, webhook_parse& out) {
    const auto it = root.find("eventNotifications");
    if (it == root.end() || !it->is_array()) {
        out.error = "classic payload without an 'eventNotifications' array";
        return;
    }
    std::size_t n = 0;
    for (const auto& note : *it) {
        const std::string where = "eventNotifications[" + std::to_string(n++) + "]";
        if (!note.is_object()) {
            b.problem(where, "not an object");
            continue;
        }
        const auto realm = b.field(note, "realmId", where);
        if (!realm) {
            continue;
        }
        const auto dce = note.find("dataChangeEvent");
        const json* entities = nullptr;
        if (dce != note.end() && dce->is_object()) {
            const auto e = dce->find("entities");
            if (e != dce->end() && e->is_array()) {
                entities = &*e;
            }
        }
        if (entities == nullptr) {
            b.problem(where, "no 'dataChangeEvent.entities' array");
            continue;
        }
        std::size_t k = 0;
        for (const auto& ent : *entities) {
            const std::string at = where + ".entities[" + std::to_string(k++) + "]";
            if (!ent.is_object()) {
                b.problem(at, "not an object");
                continue;
            }
            const auto name = b.field(ent, "name", at);
            const auto id = b.field(ent, "id", at);
            if (!name || !id) {
                continue;
            }
            qbo_event e;
            e.realm_id = *realm;
            e.entity_name = qbo_entity_spelling(*name);
            e.entity_id = *id;
            e.operation_text = b.optional_field(ent, "operation");
            e.op = operation_of(e.operation_text);
            e.deleted_id = b.optional_field(ent, "deletedId");
            if (!b.add(std::move(e), at, b.optional_field(ent, "lastUpdated"))) {
                return;
            }
        }
    }
}

void parse_cloudevents(const json& root, builder& b) {
    std::size_t n = 0;
    for (const auto& ev : root) {
        const std::string where = "[" + std::to_string(n++) + "]";
        if (!ev.is_object()) {
            b.problem(where, "not an object");
            continue;
        }
        const auto id = b.field(ev, "id", where);
        const auto realm = b.field(ev, "intuitaccountid", where);
        const auto entity_id = b.field(ev, "intuitentityid", where);
        const auto type = b.field(ev, "type", where);
        if (!id || !realm || !entity_id || !type) {
            continue;
        }
        // "qbo.<entity>.<operation>.v<N>"
        std::vector<std::string_view> parts;
        std::string_view rest = *type;
        while (parts.size() < 8) {
            const auto dot = rest.find('.');
            parts.push_back(rest.substr(0, dot));
            if (dot == std::string_view::npos) {
                break;
            }
            rest.remove_prefix(dot + 1);
        }
        if (parts.size() < 3 || !iequals(parts[0], "qbo") || parts[1].empty()) {
            b.problem(where, "type '" + *type + "' is not qbo.<entity>.<operation>");
            continue;
        }
        qbo_event e;
        e.realm_id = *realm;
        e.entity_name = qbo_entity_spelling(parts[1]);
        e.entity_id = *entity_id;
        e.operation_text = std::string(parts[2]);
        e.op = operation_of(parts[2]);
        e.event_id = *id;
        if (!b.add(std::move(e), where, b.optional_field(ev, "time"))) {
            return;
        }
    }
}

}  // namespace

std::string_view to_string(signature_check c) noexcept {
    switch (c) {
        case signature_check::ok:
            return "ok";
        case signature_check::missing_signature:
            return "missing intuit-signature header";
        case signature_check::malformed:
            return "malformed intuit-signature";
        case signature_check::mismatch:
            return "signature mismatch";
        case signature_check::no_verifier_token:
            return "no verifier token configured";
    }
    return "unknown";
}

std::string_view to_string(operation op) noexcept {
    switch (op) {
        case operation::created:
            return "Create";
        case operation::updated:
            return "Update";
        case operation::deleted:
            return "Delete";
        case operation::merged:
            return "Merge";
        case operation::voided:
            return "Void";
        case operation::emailed:
            return "Emailed";
        case operation::unknown:
            break;
    }
    return "Unknown";
}

signature_check verify_signature(std::string_view verifier_token,
                                 std::string_view raw_body,
                                 std::string_view header_value) {
    if (verifier_token.empty()) {
        return signature_check::no_verifier_token;
    }
    const auto given_text = trim(header_value);
    if (given_text.empty()) {
        return signature_check::missing_signature;
    }
    // Every MAC is computed, whatever the header holds, so timing says nothing about it.
    const auto expected = util::hmac_sha256(verifier_token, raw_body);
    if (given_text.size() > 128) {
        return signature_check::malformed;
    }
    const auto given = util::base64_decode(given_text);
    if (!given || given->size() != expected.size()) {
        return given ? signature_check::mismatch : signature_check::malformed;
    }
    return util::constant_time_equal(*given, expected) ? signature_check::ok
                                                       : signature_check::mismatch;
}

bool entity_handled(std::string_view name) noexcept {
    return name == "Customer" || name == "Invoice" || name == "Payment" || name == "Item" ||
           name == "TimeActivity";
}

std::string dedup_key(const qbo_event& e) {
    std::string key;
    if (e.event_id) {
        key = "qbo:ce:";
        percent_encode(key, *e.event_id);
        return key;
    }
    key = "qbo:classic:";
    for (const auto* part : {&e.realm_id, &e.entity_name, &e.entity_id}) {
        percent_encode(key, *part);
        key += ':';
    }
    if (e.op == operation::unknown) {
        percent_encode(key, e.operation_text);
    } else {
        key += to_string(e.op);
    }
    key += ':';
    if (e.last_updated) {
        key += mappings::format_timestamp(*e.last_updated);
    } else {
        percent_encode(key, e.time_text);
    }
    return key;
}

webhook_parse parse_webhook(std::string_view body,
                            const std::vector<std::string>& known_realms,
                            const webhook_limits& limits) {
    webhook_parse out;
    try {
        const auto start = body.find_first_not_of(" \t\r\n");
        if (start == std::string_view::npos) {
            out.error = "empty body";
            return out;
        }
        if (body[start] == '{') {
            out.format = webhook_format::classic;
        } else if (body[start] == '[') {
            out.format = webhook_format::cloudevents;
        } else {
            out.error = "body is neither a classic object nor a CloudEvents array";
            return out;
        }
        mappings::json_limits jl;
        jl.max_bytes = limits.max_body_bytes;
        jl.max_depth = limits.max_depth;
        std::string error;
        const auto root = mappings::parse_exact(body, error, jl);
        if (!root) {
            out.error = error;
            return out;
        }
        builder b(out, known_realms, limits);
        if (out.format == webhook_format::classic) {
            parse_classic(*root, b, out);
        } else {
            parse_cloudevents(*root, b);
        }
    } catch (const std::exception& e) {
        out.events.clear();
        out.error = std::string("cannot parse webhook: ") + e.what();
    }
    return out;
}

}  // namespace billsync::connectors::qbo
