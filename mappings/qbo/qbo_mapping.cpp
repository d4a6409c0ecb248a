#include "mappings/qbo/qbo_mapping.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <set>
#include <utility>

#include "mappings/entity.hpp"
#include "mappings/json_fields.hpp"
#include "mappings/qbo/qbo_time_activity.hpp"

namespace billsync::mappings::qbo {

namespace {

using fields::member;
using fields::nested_text;
using fields::text;
using fields::trim;
using nlohmann::json;

struct map_error {
    std::string message;
};

char lower(char c) noexcept {
    return static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
}

bool iequals(std::string_view a, std::string_view b) noexcept {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return lower(x) == lower(y);
           });
}

bool istarts_with(std::string_view s, std::string_view prefix) noexcept {
    return s.size() >= prefix.size() && iequals(s.substr(0, prefix.size()), prefix);
}

std::string required_text(const json& j, std::string_view key) {
    auto s = text(j, key);
    if (s.empty()) {
        throw map_error{"missing or empty '" + std::string(key) + "'"};
    }
    return s;
}

money amount_of(const json& j,
                std::string_view key,
                std::string_view currency,
                const mapping_options& o,
                bool required = true) {
    const json* v = member(j, key);
    if (v == nullptr || v->is_null()) {
        if (required) {
            throw map_error{"missing '" + std::string(key) + "'"};
        }
        return money{0, std::string(currency)};
    }
    auto m = parse_amount(*v, currency, o.money_rounding);
    if (!m) {
        throw map_error{"'" + std::string(key) + "' is not an exact amount in " +
                        std::string(currency) + ": " + v->dump()};
    }
    return *m;
}

std::optional<civil_date> date_of(const json& j, std::string_view key) {
    const json* v = member(j, key);
    if (v == nullptr || v->is_null()) {
        return std::nullopt;
    }
    // QBO dates are "YYYY-MM-DD"; some responses add an offset ("2026-01-31-08:00").
    const std::string s = v->is_string() ? v->get<std::string>() : std::string();
    const std::string_view sv(s);
    const auto d = parse_civil_date(sv.substr(0, std::min<std::size_t>(sv.size(), 10)));
    const bool offset_ok = sv.size() == 16 && (sv[10] == '+' || sv[10] == '-') && sv[13] == ':';
    if (!d || (sv.size() != 10 && !offset_ok)) {
        throw map_error{"'" + std::string(key) + "' is not a date: " + v->dump()};
    }
    return d;
}

source_ref source_of(const json& j, const mapping_options& o) {
    source_ref s;
    s.system = o.system;
    s.account = o.realm_id;
    s.id = required_text(j, "Id");
    s.version = text(j, "SyncToken");
    const std::string updated = nested_text(j, "MetaData", "LastUpdatedTime");
    if (!updated.empty()) {
        s.updated = parse_timestamp(updated);
        if (!s.updated) {
            throw map_error{"'MetaData.LastUpdatedTime' is not a timestamp: " + updated};
        }
    }
    return s;
}

std::string resolve(const mapping_options& o, std::string_view type, const source_ref& ref) {
    return o.resolve ? o.resolve(type, ref) : mappings::default_canonical_id(type, ref);
}

source_ref ref_to(const mapping_options& o, std::string id) {
    source_ref r;
    r.system = o.system;
    r.account = o.realm_id;
    r.id = std::move(id);
    return r;
}

std::string currency_of(const json& j, const mapping_options& o) {
    auto c = nested_text(j, "CurrencyRef", "value");
    if (c.empty()) {
        c = o.home_currency;
    }
    const bool iso = c.size() == 3 && std::all_of(c.begin(), c.end(), [](char ch) {
                         return ch >= 'A' && ch <= 'Z';
                     });
    if (!iso) {
        throw map_error{"'CurrencyRef.value' is not an ISO 4217 code: " + c};
    }
    return c;
}

bool is_deleted(const json& j) { return iequals(text(j, "status"), "Deleted"); }

bool voided_note(const json& j) { return istarts_with(trim(text(j, "PrivateNote")), "Voided"); }

// "P.O. Number" -> "ponumber".
std::string squash(std::string_view s) {
    std::string out;
    for (const char c : s) {
        if (c != ' ' && c != '.' && c != '#' && c != '_' && c != '-') {
            out.push_back(lower(c));
        }
    }
    return out;
}

std::vector<std::string> hashtags(std::string_view notes) {
    std::set<std::string> tags;
    for (std::size_t i = 0; i < notes.size(); ++i) {
        if (notes[i] != '#' || (i > 0 && !std::isspace(static_cast<unsigned char>(notes[i - 1])) &&
                                notes[i - 1] != ',' && notes[i - 1] != '(')) {
            continue;
        }
        std::string tag;
        std::size_t k = i + 1;
        for (; k < notes.size(); ++k) {
            const char c = notes[k];
            if (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_') {
                tag.push_back(lower(c));
            } else {
                break;
            }
        }
        if (!tag.empty()) {
            tags.insert(std::move(tag));
        }
        i = k - 1;
    }
    return {tags.begin(), tags.end()};
}

line_item map_line(const json& l, std::string_view currency, const mapping_options& o) {
    line_item li;
    const std::string type = text(l, "DetailType");
    li.description = text(l, "Description");
    li.amount = amount_of(l, "Amount", currency, o, false);
    const json* detail = nullptr;
    if (type == "SalesItemLineDetail" || type == "GroupLineDetail") {
        li.kind = line_kind::item;
        detail = member(l, type);
    } else if (type == "DiscountLineDetail") {
        li.kind = line_kind::discount;
    } else if (type == "DescriptionOnly" || type == "DescriptionLineDetail") {
        li.kind = line_kind::description;
    } else {
        li.kind = line_kind::other;
    }
    if (detail != nullptr) {
        const json* ref = member(*detail, "ItemRef");
        if (ref == nullptr) {
            ref = member(*detail, "GroupItemRef");
        }
        if (ref != nullptr) {
            li.item_ref = text(*ref, "value");
            li.item_name = text(*ref, "name");
        }
        if (const json* q = member(*detail, "Qty"); q != nullptr && !q->is_null()) {
            auto t = decimal_text(*q);
            if (!t) {
                throw map_error{"'Qty' is not a decimal: " + q->dump()};
            }
            li.quantity = *t;
        }
        if (const json* p = member(*detail, "UnitPrice"); p != nullptr && !p->is_null()) {
            auto t = decimal_text(*p);
            if (!t) {
                throw map_error{"'UnitPrice' is not a decimal: " + p->dump()};
            }
            li.unit_price = *t;
        }
    }
    return li;
}

template <typename T, typename Fn>
mapped<T> guarded(std::string_view entity, Fn fn) {
    mapped<T> out;
    try {
        out.value = fn();
    } catch (const map_error& e) {
        out.error = std::string(entity) + ": " + e.message;
    } catch (const std::exception& e) {  // nlohmann type errors on hostile shapes
        out.error = std::string(entity) + ": " + e.what();
    }
    return out;
}

const json& object_or_throw(const json& j, std::string_view entity) {
    const json* obj = entity_object(j, entity);
    if (obj == nullptr) {
        throw map_error{"not a " + std::string(entity) + " object"};
    }
    return *obj;
}

template <typename T>
mapped<T> from_body(std::string_view body,
                    const mapping_options& o,
                    mapped<T> (*fn)(const json&, const mapping_options&)) {
    std::string error;
    auto j = parse_exact(body, error);
    if (!j) {
        mapped<T> out;
        out.error = error;
        return out;
    }
    return fn(*j, o);
}

}  // namespace

const json* entity_object(const json& j, std::string_view entity_name) {
    if (const json* inner = member(j, entity_name); inner != nullptr && inner->is_object()) {
        return inner;
    }
    return member(j, "Id") != nullptr ? &j : nullptr;
}

std::optional<money> parse_amount(const json& v, std::string_view currency, rounding mode) {
    const auto t = decimal_text(v);
    if (!t) {
        return std::nullopt;
    }
    const auto minor = parse_decimal(*t, minor_digits(currency), mode);
    if (!minor) {
        return std::nullopt;
    }
    return money{*minor, std::string(currency)};
}

mapped<invoice> map_invoice(const json& j, const mapping_options& o) {
    return guarded<invoice>("Invoice", [&] {
        const json& obj = object_or_throw(j, "Invoice");
        invoice inv;
        inv.source = source_of(obj, o);
        inv.id = resolve(o, "invoice", inv.source);
        if (is_deleted(obj)) {
            inv.deleted = true;
            return inv;
        }
        inv.currency = currency_of(obj, o);
        inv.number = text(obj, "DocNumber");
        inv.client_ref = nested_text(obj, "CustomerRef", "value");
        if (inv.client_ref.empty()) {
            throw map_error{"missing 'CustomerRef.value'"};
        }
        inv.client_id = resolve(o, "client", ref_to(o, inv.client_ref));
        inv.issue_date = date_of(obj, "TxnDate");
        inv.due_date = date_of(obj, "DueDate");
        inv.total = amount_of(obj, "TotalAmt", inv.currency, o);
        inv.balance = amount_of(obj, "Balance", inv.currency, o);
        if (const json* lines = member(obj, "Line"); lines != nullptr && lines->is_array()) {
            for (const auto& l : *lines) {
                if (text(l, "DetailType") == "SubTotalLineDetail") {
                    continue;  // a computed echo of the lines above it
                }
                inv.lines.push_back(map_line(l, inv.currency, o));
            }
        }
        if (const json* fields = member(obj, "CustomField");
            fields != nullptr && fields->is_array()) {
            for (const auto& f : *fields) {
                const auto name = squash(text(f, "Name"));
                const bool is_po = std::any_of(
                    o.po_field_names.begin(), o.po_field_names.end(), [&](const std::string& n) {
                        return squash(n) == name;
                    });
                if (is_po && !name.empty()) {
                    inv.po_number = trim(text(f, "StringValue"));
                    break;
                }
            }
        }
        const std::string email_status = text(obj, "EmailStatus");
        inv.delivery =
            email_status == "EmailSent" ? delivery_status::sent : delivery_status::not_sent;
        inv.billing_email = trim(nested_text(obj, "BillEmail", "Address"));
        inv.payment_link = text(obj, "InvoiceLink");
        if (o.void_hint || voided_note(obj)) {
            inv.status = invoice_status::voided;
        } else if (inv.balance.minor == 0 && inv.total.minor > 0) {
            inv.status = invoice_status::paid;
        } else {
            inv.status = invoice_status::open;
        }
        return inv;
    });
}

mapped<client> map_customer(const json& j, const mapping_options& o) {
    return guarded<client>("Customer", [&] {
        const json& obj = object_or_throw(j, "Customer");
        client c;
        c.source = source_of(obj, o);
        c.id = resolve(o, "client", c.source);
        if (is_deleted(obj)) {
            c.deleted = true;
            return c;
        }
        c.display_name = text(obj, "DisplayName");
        if (c.display_name.empty()) {
            throw map_error{"missing 'DisplayName'"};
        }
        c.contact.billing_email = trim(nested_text(obj, "PrimaryEmailAddr", "Address"));
        c.contact.mobile_raw = trim(nested_text(obj, "Mobile", "FreeFormNumber"));
        if (!c.contact.mobile_raw.empty()) {
            if (auto e164 = normalize_e164(c.contact.mobile_raw, o.default_calling_code)) {
                c.contact.mobile = *e164;
            }
        }
        c.tags = hashtags(text(obj, "Notes"));
        const auto has = [&c](const std::string& tag) {
            return !tag.empty() && std::binary_search(c.tags.begin(), c.tags.end(), tag);
        };
        c.payment_plan = has(o.payment_plan_tag);
        c.retainer = has(o.retainer_tag);
        c.contact.sms_consent = has(o.sms_consent_tag) && !c.contact.mobile.empty();
        if (const json* active = member(obj, "Active"); active != nullptr && active->is_boolean()) {
            c.active = active->get<bool>();
        }
        c.currency = nested_text(obj, "CurrencyRef", "value");
        if (c.currency.empty()) {
            c.currency = o.home_currency;
        }
        return c;
    });
}

mapped<payment> map_payment(const json& j, const mapping_options& o) {
    return guarded<payment>("Payment", [&] {
        const json& obj = object_or_throw(j, "Payment");
        payment p;
        p.source = source_of(obj, o);
        p.id = resolve(o, "payment", p.source);
        if (is_deleted(obj)) {
            p.deleted = true;
            return p;
        }
        const std::string currency = currency_of(obj, o);
        p.client_ref = nested_text(obj, "CustomerRef", "value");
        if (p.client_ref.empty()) {
            throw map_error{"missing 'CustomerRef.value'"};
        }
        p.client_id = resolve(o, "client", ref_to(o, p.client_ref));
        p.amount = amount_of(obj, "TotalAmt", currency, o);
        p.unapplied = amount_of(obj, "UnappliedAmt", currency, o, false);
        p.date = date_of(obj, "TxnDate");
        p.reference = text(obj, "PaymentRefNum");
        p.voided = voided_note(obj);
        if (const json* lines = member(obj, "Line"); lines != nullptr && lines->is_array()) {
            for (const auto& l : *lines) {
                const money amount = amount_of(l, "Amount", currency, o, false);
                const json* linked = member(l, "LinkedTxn");
                if (linked == nullptr || !linked->is_array()) {
                    continue;
                }
                // QBO links one transaction per line; should a line name several invoices, the
                // amount goes to the first (it cannot be split without guessing).
                bool first = true;
                for (const auto& t : *linked) {
                    if (text(t, "TxnType") != "Invoice") {
                        continue;
                    }
                    payment_application a;
                    a.invoice_ref = required_text(t, "TxnId");
                    a.invoice_id = resolve(o, "invoice", ref_to(o, a.invoice_ref));
                    a.amount = first ? amount : money{0, currency};
                    first = false;
                    p.applied.push_back(std::move(a));
                }
            }
        }
        return p;
    });
}

mapped<staff> map_employee(const json& j, const mapping_options& o) {
    return guarded<staff>("Employee", [&] {
        const json& obj = object_or_throw(j, "Employee");
        staff s;
        s.source = source_of(obj, o);
        s.id = resolve(o, "staff", s.source);
        s.name = trim(text(obj, "DisplayName"));
        if (s.name.empty()) {
            const auto given = trim(text(obj, "GivenName"));
            const auto family = trim(text(obj, "FamilyName"));
            s.name = given.empty() ? family : family.empty() ? given : given + " " + family;
        }
        s.email = trim(nested_text(obj, "PrimaryEmailAddr", "Address"));
        std::transform(s.email.begin(), s.email.end(), s.email.begin(), lower);
        const json* active = member(obj, "Active");
        s.active = active == nullptr || !active->is_boolean() || active->get<bool>();
        if (is_deleted(obj)) {
            s.active = false;
        }
        return s;
    });
}

mapped<ledger_item> map_item(const json& j, const mapping_options& o) {
    return guarded<ledger_item>("Item", [&] {
        const json& obj = object_or_throw(j, "Item");
        ledger_item i;
        i.source = source_of(obj, o);
        i.id = resolve(o, "ledger_item", i.source);
        i.code = i.source.id;
        if (is_deleted(obj)) {
            i.deleted = true;
            i.active = false;
            return i;
        }
        i.name = trim(text(obj, "Name"));
        const json* active = member(obj, "Active");
        i.active = active == nullptr || !active->is_boolean() || active->get<bool>();
        if (const json* price = member(obj, "UnitPrice"); price != nullptr && !price->is_null()) {
            const auto exact = decimal_text(*price);
            if (!exact) {
                throw map_error{"'UnitPrice' is not a decimal number: " + price->dump()};
            }
            i.unit_price_text = *exact;
            // Items carry no currency: their prices are in the company's home currency.
            if (auto minor =
                    parse_decimal(*exact, minor_digits(o.home_currency), o.money_rounding)) {
                i.unit_price = money{*minor, o.home_currency};
            }
        }
        return i;
    });
}

mapped<time_entry> map_time_activity(const json& j, const mapping_options& o) {
    return guarded<time_entry>("TimeActivity", [&] {
        const json& obj = object_or_throw(j, "TimeActivity");
        time_entry t;
        t.source = source_of(obj, o);
        t.id = resolve(o, "time_entry", t.source);
        if (is_deleted(obj)) {
            t.deleted = true;
            return t;
        }
        t.date = date_of(obj, "TxnDate");
        if (!t.date) {
            throw map_error{"missing 'TxnDate'"};
        }
        if (iequals(text(obj, "NameOf"), "Vendor")) {
            const auto v = nested_text(obj, "VendorRef", "value");
            if (v.empty()) {
                throw map_error{"NameOf Vendor without 'VendorRef.value'"};
            }
            t.staff_id = resolve(o, "vendor", ref_to(o, v));
        } else {
            const auto e = nested_text(obj, "EmployeeRef", "value");
            if (e.empty()) {
                throw map_error{"missing 'EmployeeRef.value'"};
            }
            t.staff_id = resolve(o, "staff", ref_to(o, e));
        }
        if (const auto c = nested_text(obj, "CustomerRef", "value"); !c.empty()) {
            t.client_id = resolve(o, "client", ref_to(o, c));
        }
        t.service = nested_text(obj, "ItemRef", "name");
        const json* hours = member(obj, "Hours");
        const json* minutes = member(obj, "Minutes");
        if (hours != nullptr || minutes != nullptr) {
            const auto whole = [](const json* v, std::string_view key) -> std::int64_t {
                if (v == nullptr || v->is_null()) {
                    return 0;
                }
                if (!v->is_number_integer() || v->get<std::int64_t>() < 0) {
                    throw map_error{"'" + std::string(key) + "' is not a whole number"};
                }
                return v->get<std::int64_t>();
            };
            t.minutes = whole(hours, "Hours") * 60 + whole(minutes, "Minutes");
        } else {
            const auto start = parse_timestamp(text(obj, "StartTime"));
            const auto end = parse_timestamp(text(obj, "EndTime"));
            if (!start || !end || *end < *start) {
                throw map_error{"neither 'Hours'/'Minutes' nor a 'StartTime'/'EndTime' span"};
            }
            t.minutes = std::chrono::duration_cast<std::chrono::minutes>(*end - *start).count();
        }
        const auto status = text(obj, "BillableStatus");
        t.billable = !iequals(status, "NotBillable");
        t.billed = iequals(status, "HasBeenBilled");
        if (const json* rate = member(obj, "HourlyRate"); rate != nullptr && !rate->is_null()) {
            t.hourly_rate = amount_of(obj, "HourlyRate", o.home_currency, o);
        }
        const auto description = text(obj, "Description");
        t.external_reference = key_in_description(description);
        // QBO has no approval: recorded time counts as approved, except billsync's own draft
        // nobody has saved since billsync created it (SyncToken still 0, or unknown).
        const bool untouched_draft =
            !t.external_reference.empty() && (t.source.version.empty() || t.source.version == "0");
        t.locked = t.billed || !untouched_draft;
        t.notes = description;
        if (!t.external_reference.empty()) {
            const auto marker = time_ref_marker(t.external_reference);
            if (const auto at = t.notes.rfind(marker); at != std::string::npos) {
                t.notes.erase(at, marker.size());
            }
            t.notes = trim(t.notes);
        }
        return t;
    });
}

mapped<invoice> map_invoice(std::string_view body, const mapping_options& o) {
    return from_body<invoice>(body, o, &map_invoice);
}
mapped<client> map_customer(std::string_view body, const mapping_options& o) {
    return from_body<client>(body, o, &map_customer);
}
mapped<payment> map_payment(std::string_view body, const mapping_options& o) {
    return from_body<payment>(body, o, &map_payment);
}

// ---- faults ----------------------------------------------------------------------------------

std::string_view to_string(fault_kind k) noexcept {
    switch (k) {
        case fault_kind::rate_limited:
            return "rate_limited";
        case fault_kind::auth:
            return "auth";
        case fault_kind::conflict:
            return "conflict";
        case fault_kind::duplicate:
            return "duplicate";
        case fault_kind::not_found:
            return "not_found";
        case fault_kind::invalid_request:
            return "invalid_request";
        case fault_kind::permanent:
            return "permanent";
        case fault_kind::retryable:
            return "retryable";
    }
    return "unknown";
}

std::optional<fault> parse_fault(const json& j) {
    // Keys are matched case-insensitively: the API says "Fault"/"Error"/"Message", the OAuth
    // gateway "fault"/"error"/"message".
    const auto find = [](const json& obj, std::string_view key) -> const json* {
        if (!obj.is_object()) {
            return nullptr;
        }
        for (auto it = obj.begin(); it != obj.end(); ++it) {
            if (iequals(it.key(), key)) {
                return &*it;
            }
        }
        return nullptr;
    };
    const auto str = [&find](const json& obj, std::string_view key) -> std::string {
        const json* v = find(obj, key);
        if (v == nullptr) {
            return {};
        }
        return v->is_string() ? v->get<std::string>() : v->is_number() ? v->dump() : std::string();
    };
    const json* f = find(j, "Fault");
    if (f == nullptr || !f->is_object()) {
        return std::nullopt;
    }
    fault out;
    out.type = str(*f, "type");
    out.time = str(j, "time");
    if (const json* errors = find(*f, "Error"); errors != nullptr) {
        const auto add = [&](const json& e) {
            out.errors.push_back(
                {str(e, "code"), str(e, "Message"), str(e, "Detail"), str(e, "element")});
        };
        if (errors->is_array()) {
            for (const auto& e : *errors) {
                add(e);
            }
        } else if (errors->is_object()) {
            add(*errors);
        }
    }
    return out;
}

std::optional<fault> parse_fault(std::string_view body) {
    std::string error;
    const auto j = parse_exact(body, error);
    if (!j) {
        return std::nullopt;
    }
    return parse_fault(*j);
}

std::optional<fault_kind> classify_code(std::string_view code) noexcept {
    while (code.size() > 1 && code.front() == '0') {
        code.remove_prefix(1);
    }
    int n = 0;
    if (code.empty() || code.size() > 6) {
        return std::nullopt;
    }
    for (const char c : code) {
        if (c < '0' || c > '9') {
            return std::nullopt;
        }
        n = n * 10 + (c - '0');
    }
    switch (n) {
        case 3001:
            return fault_kind::rate_limited;
        case 120:
        case 100:
        case 401:
        case 3100:
        case 3200:
            return fault_kind::auth;
        case 5010:
            return fault_kind::conflict;
        case 6140:
        case 6240:
            return fault_kind::duplicate;
        case 610:
            return fault_kind::not_found;
        case 10000:
            return fault_kind::retryable;  // "An application error has occurred"
        default:
            break;
    }
    if (n >= 2000 && n <= 2999) {
        return fault_kind::invalid_request;
    }
    if (n == 500 || (n >= 5000 && n <= 6999)) {
        return fault_kind::permanent;
    }
    return std::nullopt;
}

fault_kind classify(const fault& f, unsigned http_status) noexcept {
    static constexpr std::array<fault_kind, 8> precedence = {fault_kind::auth,
                                                             fault_kind::rate_limited,
                                                             fault_kind::conflict,
                                                             fault_kind::duplicate,
                                                             fault_kind::not_found,
                                                             fault_kind::invalid_request,
                                                             fault_kind::permanent,
                                                             fault_kind::retryable};
    std::array<bool, 8> seen{};
    for (const auto& e : f.errors) {
        auto k = classify_code(e.code);
        if (!k && iequals(e.message, "ThrottleExceeded")) {
            k = fault_kind::rate_limited;
        }
        if (k) {
            seen[static_cast<std::size_t>(*k)] = true;
        }
    }
    for (const auto k : precedence) {
        if (seen[static_cast<std::size_t>(k)]) {
            return k;
        }
    }
    if (http_status == 429) {
        return fault_kind::rate_limited;
    }
    if (http_status == 401 || http_status == 403 || iequals(f.type, "AuthenticationFault") ||
        iequals(f.type, "AuthorizationFault")) {
        return fault_kind::auth;
    }
    if (http_status >= 500 || iequals(f.type, "SystemFault")) {
        return fault_kind::retryable;
    }
    if (iequals(f.type, "ValidationFault")) {
        return fault_kind::invalid_request;
    }
    return http_status == 0 ? fault_kind::retryable : fault_kind::permanent;
}

}  // namespace billsync::mappings::qbo
