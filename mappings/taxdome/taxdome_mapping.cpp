#include "mappings/taxdome/taxdome_mapping.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <functional>
#include <nlohmann/json.hpp>
#include <set>

#include "mappings/json_depth.hpp"

namespace billsync::mappings::taxdome {

namespace {

using nlohmann::json;

struct trigger {
    std::string_view event;
    record_kind kind;
    bool deleted;
};

constexpr std::array<trigger, 6> triggers{{
    {"New Account", record_kind::account, false},
    {"Update Account", record_kind::account, false},
    {"Delete Account", record_kind::account, true},
    {"New Contact", record_kind::contact, false},
    {"Updated Contact", record_kind::contact, false},
    {"Deleted Contact", record_kind::contact, true},
}};

constexpr std::array<std::string_view, 8> known_keys{
    "event", "id", "name", "account_id", "emails", "phones", "tags", "relayed_at"};

std::string trim(std::string_view s) {
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front())) != 0) {
        s.remove_prefix(1);
    }
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back())) != 0) {
        s.remove_suffix(1);
    }
    return std::string(s);
}

// "a, b;c" -> {"a", "b", "c"} (empty items dropped).
std::vector<std::string> split_list(std::string_view text) {
    std::vector<std::string> out;
    std::size_t start = 0;
    for (std::size_t i = 0; i <= text.size(); ++i) {
        if (i == text.size() || text[i] == ',' || text[i] == ';' || text[i] == '\n') {
            auto item = trim(text.substr(start, i - start));
            if (!item.empty()) {
                out.push_back(std::move(item));
            }
            start = i + 1;
        }
    }
    return out;
}

bool plausible_email(std::string_view e) {
    const auto at = e.find('@');
    return at != std::string_view::npos && at > 0 && at + 1 < e.size() &&
           e.find('@', at + 1) == std::string_view::npos &&
           e.find('.', at + 1) != std::string_view::npos &&
           std::none_of(e.begin(), e.end(), [](char c) {
               return std::isspace(static_cast<unsigned char>(c)) != 0 || c == '<' || c == '>';
           });
}

bool valid_id(std::string_view id) {
    return !id.empty() && id.size() <= 64 && std::all_of(id.begin(), id.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-' || c == '_';
    });
}

}  // namespace

const std::vector<std::string_view>& events() {
    static const std::vector<std::string_view> list = [] {
        std::vector<std::string_view> out;
        for (const auto& t : triggers) {
            out.push_back(t.event);
        }
        return out;
    }();
    return list;
}

std::optional<relay> parse_relay(std::string_view body, std::string& error) {
    if (auto deep = json_depth_error(body, 8); !deep.empty()) {
        error = std::move(deep);
        return std::nullopt;
    }
    const auto j = json::parse(body, nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
        error = "the body is not a JSON object (set the Zap's payload type to json)";
        return std::nullopt;
    }
    for (const auto& [key, value] : j.items()) {
        if (std::find(known_keys.begin(), known_keys.end(), key) == known_keys.end()) {
            error = "unknown field '" + key +
                    "' (fields: event, id, name, account_id, emails, phones, tags, relayed_at)";
            return std::nullopt;
        }
        if (!value.is_string()) {
            error = "field '" + key + "' must be a string";
            return std::nullopt;
        }
    }
    auto text = [&j](const char* key) {
        const auto it = j.find(key);
        return it == j.end() ? std::string() : trim(it->get<std::string>());
    };
    relay r;
    r.event = text("event");
    const auto t = std::find_if(
        triggers.begin(), triggers.end(), [&](const trigger& x) { return x.event == r.event; });
    if (t == triggers.end()) {
        std::string names;
        for (const auto& x : triggers) {
            names += names.empty() ? "" : ", ";
            names += x.event;
        }
        error = r.event.empty() ? "field 'event' is missing or empty (one of: " + names + ")"
                                : "field 'event' is '" + r.event + "', not one of: " + names;
        return std::nullopt;
    }
    r.kind = t->kind;
    r.deleted = t->deleted;
    r.id = text("id");
    if (!valid_id(r.id)) {
        error = r.id.empty() ? "field 'id' (the TaxDome record id) is missing or empty"
                             : "field 'id' must be 1-64 letters, digits, '-' or '_'";
        return std::nullopt;
    }
    r.name = text("name");
    if (r.name.empty() && !r.deleted) {
        error = "field 'name' is missing or empty (required for '" + r.event + "')";
        return std::nullopt;
    }
    if (r.name.size() > 500) {
        error = "field 'name' is longer than 500 characters";
        return std::nullopt;
    }
    r.account_id = text("account_id");
    if (!r.account_id.empty() && !valid_id(r.account_id)) {
        error = "field 'account_id' must be 1-64 letters, digits, '-' or '_'";
        return std::nullopt;
    }
    if (r.kind == record_kind::account && !r.account_id.empty() && r.account_id != r.id) {
        error = "field 'account_id' is for contact events; an account event has only 'id'";
        return std::nullopt;
    }
    for (auto& e : split_list(text("emails"))) {
        if (!plausible_email(e)) {
            error = "field 'emails' holds '" + e + "', which is not an email address";
            return std::nullopt;
        }
        std::transform(e.begin(), e.end(), e.begin(), [](char c) {
            return static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        });
        r.emails.push_back(std::move(e));
    }
    r.phones = split_list(text("phones"));
    std::set<std::string> tags;
    for (auto& tag : split_list(text("tags"))) {
        std::string norm;
        for (const char c : tag) {
            const auto u = static_cast<unsigned char>(c);
            norm.push_back(std::isspace(u) != 0 ? '-' : static_cast<char>(std::tolower(u)));
        }
        tags.insert(std::move(norm));
    }
    r.tags.assign(tags.begin(), tags.end());
    const auto when = text("relayed_at");
    if (when.empty()) {
        error = "field 'relayed_at' is missing or empty (map it to the Zap's current UTC time)";
        return std::nullopt;
    }
    const auto parsed = parse_timestamp(when);
    if (!parsed) {
        error = "field 'relayed_at' is '" + when + "', not an RFC 3339 time with a zone";
        return std::nullopt;
    }
    r.relayed_at = *parsed;
    return r;
}

client to_client(const relay& r,
                 std::string_view system,
                 const std::function<std::string(const source_ref&)>& canonical_id,
                 std::string_view default_calling_code) {
    client c;
    c.source.system = std::string(system);
    c.source.id = r.kind == record_kind::contact ? "contact-" + r.id : r.id;
    c.source.updated = r.relayed_at;
    c.source.version = format_timestamp(r.relayed_at);
    c.id = canonical_id(c.source);
    c.display_name = r.name;
    c.deleted = r.deleted;
    std::string emails;
    for (const auto& e : r.emails) {
        emails += emails.empty() ? "" : ", ";
        emails += e;
    }
    c.contact.billing_email = std::move(emails);
    for (const auto& p : r.phones) {
        if (auto e164 = normalize_e164(p, default_calling_code)) {
            c.contact.mobile = std::move(*e164);
            break;
        }
        if (c.contact.mobile_raw.empty()) {
            c.contact.mobile_raw = p;
        }
    }
    if (!c.contact.mobile.empty()) {
        c.contact.mobile_raw.clear();
    }
    c.tags = r.tags;
    const auto has = [&c](std::string_view tag) {
        return std::binary_search(c.tags.begin(), c.tags.end(), tag);
    };
    c.payment_plan = has("payment-plan");
    c.retainer = has("retainer");
    return c;
}

}  // namespace billsync::mappings::taxdome
