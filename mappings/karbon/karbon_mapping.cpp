#include "mappings/karbon/karbon_mapping.hpp"

#include <date/tz.h>

#include <algorithm>
#include <array>
#include <utility>

#include "mappings/exact_json.hpp"
#include "mappings/money.hpp"

namespace billsync::mappings::karbon {

namespace {

using nlohmann::json;

struct map_error {
    std::string message;
};

std::string text(const json& j, std::string_view key) {
    if (!j.is_object()) {
        return {};
    }
    const auto it = j.find(key);
    return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::string required_text(const json& j, std::string_view key) {
    auto s = text(j, key);
    if (s.empty()) {
        throw map_error{"missing or empty '" + std::string(key) + "'"};
    }
    return s;
}

std::optional<civil_date> date_field(const json& j,
                                     std::string_view key,
                                     const mapping_options& o) {
    if (!j.is_object()) {
        return std::nullopt;
    }
    const auto it = j.find(key);
    if (it == j.end() || it->is_null()) {
        return std::nullopt;
    }
    if (!it->is_string()) {
        throw map_error{"'" + std::string(key) + "' is not a date: " + it->dump()};
    }
    const auto s = it->get<std::string>();
    if (s.empty()) {
        return std::nullopt;
    }
    auto d = civil_date_of(s, o.time_zone);
    if (!d) {
        throw map_error{"'" + std::string(key) + "' is not a date: " + it->dump()};
    }
    return d;
}

std::string resolve(const mapping_options& o, std::string_view type, const source_ref& ref) {
    return o.resolve ? o.resolve(type, ref) : default_canonical_id(type, ref);
}

source_ref ref_to(const mapping_options& o, std::string id) {
    source_ref r;
    r.system = o.system;
    r.id = std::move(id);
    return r;
}

source_ref source_of(const json& j, std::string_view key_field, const mapping_options& o) {
    auto s = ref_to(o, required_text(j, key_field));
    const auto updated = text(j, "LastModifiedDateTime");
    if (!updated.empty()) {
        s.updated = parse_timestamp(updated);
        if (!s.updated) {
            throw map_error{"'LastModifiedDateTime' is not a timestamp: " + updated};
        }
        s.version = updated;
    }
    return s;
}

std::string trimmed(std::string_view s) {
    const auto b = s.find_first_not_of(" \t\r\n");
    if (b == std::string_view::npos) {
        return {};
    }
    return std::string(s.substr(b, s.find_last_not_of(" \t\r\n") - b + 1));
}

template <class F>
auto guarded(F&& fn) -> mapped<typename std::invoke_result_t<F>::value_type> {
    using T = typename std::invoke_result_t<F>::value_type;
    mapped<T> out;
    try {
        out.value = fn();
    } catch (const map_error& e) {
        out.error = e.message;
    }
    return out;
}

client client_of(const json& j, std::string_view key_field, const mapping_options& o) {
    if (!j.is_object()) {
        throw map_error{"not a JSON object"};
    }
    client c;
    c.source = source_of(j, key_field, o);
    c.id = resolve(o, client_type, c.source);
    c.display_name = text(j, "FullName");
    if (c.display_name.empty()) {
        c.display_name = text(j, "PreferredName");
    }
    c.client_code = trim_client_code(text(j, "UserDefinedIdentifier"));
    c.contact.billing_email = trimmed(text(j, "EmailAddress"));
    const auto phone = text(j, "PhoneNumber");
    if (!phone.empty()) {
        if (auto e164 = normalize_e164(phone, o.default_calling_code)) {
            c.contact.mobile = *e164;
        } else {
            c.contact.mobile_raw = phone;
        }
    }
    return c;
}

// An amount field in minor units of `currency`: an integer, an exact decimal text kept by
// parse_exact, or a string holding a decimal. Missing or null: nullopt when optional.
std::optional<std::int64_t> minor_of(const json& j,
                                     std::string_view key,
                                     std::string_view currency,
                                     bool required,
                                     rounding mode = rounding::reject) {
    const auto it = j.is_object() ? j.find(key) : j.end();
    if (!j.is_object() || it == j.end() || it->is_null()) {
        if (required) {
            throw map_error{"missing '" + std::string(key) + "'"};
        }
        return std::nullopt;
    }
    const auto t = mappings::decimal_text(*it);
    const auto minor = t ? parse_decimal(*t, minor_digits(currency), mode) : std::nullopt;
    if (!minor) {
        throw map_error{"'" + std::string(key) + "' is not a decimal amount in " +
                        std::string(currency) + ": " + it->dump()};
    }
    return minor;
}

money money_of(const json& j, std::string_view key, const std::string& currency, bool required) {
    return money{minor_of(j, key, currency, required).value_or(0), currency};
}

invoice_status invoice_status_of(std::string_view s) {
    if (s == "Draft") {
        return invoice_status::draft;
    }
    if (s == "Approved" || s == "AwaitingPayment" || s == "Awaiting Payment" || s == "Exported") {
        return invoice_status::open;
    }
    if (s == "Paid") {
        return invoice_status::paid;
    }
    if (s == "Voided") {
        return invoice_status::voided;
    }
    throw map_error{"'InvoiceStatus' is not a Karbon invoice status: " + std::string(s)};
}

line_item line_of(const json& l, const std::string& currency) {
    if (!l.is_object()) {
        throw map_error{"a 'LineItems' entry is not an object"};
    }
    line_item li;
    li.description = text(l, "Description");
    if (const auto q = l.find("Quantity"); q != l.end() && !q->is_null()) {
        auto t = mappings::decimal_text(*q);
        if (!t) {
            throw map_error{"'LineItems.Quantity' is not a decimal: " + q->dump()};
        }
        li.quantity = *t;
    }
    // A string in Karbon's schema; whole minor units (half to even below a cent).
    if (const auto p = l.find("UnitPrice"); p != l.end() && !p->is_null()) {
        const auto digits = minor_digits(currency);
        const auto t = p->is_string() ? mappings::normalize_decimal(trimmed(p->get<std::string>()))
                                      : mappings::decimal_text(*p);
        const auto minor = t ? parse_decimal(*t, digits, rounding::half_even) : std::nullopt;
        if (!minor) {
            throw map_error{"'LineItems.UnitPrice' is not a decimal amount in " + currency + ": " +
                            p->dump()};
        }
        li.unit_price = format_decimal(*minor, digits);
    }
    li.amount = money{minor_of(l, "Amount", currency, true).value_or(0), currency};
    li.item_ref = text(l, "BillableItemEntityKey");
    li.item_name = text(l, "BillableItemType");
    li.kind = li.amount.minor < 0 ? line_kind::discount : line_kind::item;
    if (li.kind == line_kind::discount) {
        li.amount.minor = -li.amount.minor;  // a discount is positive
    }
    return li;
}

// A row a 404 confirmed deleted: its identity and the flag, nothing else.
template <class T>
T deleted_row(std::string key, const mapping_options& o, std::string_view type) {
    T row;
    row.source = ref_to(o, std::move(key));
    row.id = resolve(o, type, row.source);
    row.deleted = true;
    return row;
}

}  // namespace

std::optional<std::string> primary_status(std::string_view s) {
    static constexpr std::array<std::array<std::string_view, 3>, 5> table = {{
        {"Planned", "Planned", "planned"},
        {"Ready To Start", "ReadyToStart", "ready_to_start"},
        {"In Progress", "InProgress", "in_progress"},
        {"Waiting", "Waiting", "waiting"},
        {"Completed", "Completed", "completed"},
    }};
    for (const auto& row : table) {
        if (s == row[0] || s == row[1]) {
            return std::string(row[2]);
        }
    }
    return std::nullopt;
}

std::optional<std::string> filter_spelling(std::string_view s) {
    static constexpr std::array<std::array<std::string_view, 2>, 5> table = {{
        {"planned", "Planned"},
        {"ready_to_start", "Ready To Start"},
        {"in_progress", "In Progress"},
        {"waiting", "Waiting"},
        {"completed", "Completed"},
    }};
    const auto canonical = primary_status(s);
    for (const auto& row : table) {
        if (canonical && *canonical == row[0]) {
            return std::string(row[1]);
        }
    }
    return std::nullopt;
}

std::optional<civil_date> civil_date_of(std::string_view text, std::string_view time_zone) {
    if (text.size() == 10) {
        return parse_civil_date(text);
    }
    const auto t = parse_timestamp(text);
    if (!t) {
        return std::nullopt;
    }
    const auto day = std::chrono::floor<std::chrono::days>(*t);
    if (*t == day) {
        return civil_date{day};  // a calendar date written as midnight UTC
    }
    try {
        const auto* zone = date::locate_zone(std::string(time_zone));
        const auto local = zone->to_local(*t);
        return civil_date{std::chrono::floor<std::chrono::days>(std::chrono::sys_days{} +
                                                                (local.time_since_epoch()))};
    } catch (const std::exception&) {
        return std::nullopt;
    }
}

mapped<work_item> map_work_item(const json& j, const mapping_options& o) {
    return guarded([&] {
        if (!j.is_object()) {
            throw map_error{"not a JSON object"};
        }
        work_item w;
        w.source = ref_to(o, required_text(j, "WorkItemKey"));
        w.id = resolve(o, work_item_type, w.source);
        w.title = text(j, "Title");
        const auto client_key = text(j, "ClientKey");
        if (!client_key.empty()) {
            w.client_id = resolve(o, client_type, ref_to(o, client_key));
        }
        w.work_type = text(j, "WorkType");
        const auto primary = text(j, "PrimaryStatus");
        if (!primary.empty()) {
            auto s = primary_status(primary);
            if (!s) {
                throw map_error{"'PrimaryStatus' is not a Karbon primary status: " + primary};
            }
            w.status = *s;
        }
        w.stage = text(j, "SecondaryStatus");
        if (auto a = assignee_of(j, o)) {
            w.assignee_id = a->id;
        }
        w.start_date = date_field(j, "StartDate", o);
        w.due_date = date_field(j, "DueDate", o);
        w.completed_date = date_field(j, "CompletedDate", o);
        return std::optional<work_item>(std::move(w));
    });
}

std::optional<staff> assignee_of(const json& j, const mapping_options& o) {
    const auto key = text(j, "AssigneeKey");
    if (key.empty()) {
        return std::nullopt;
    }
    staff s;
    s.source = ref_to(o, key);
    s.id = resolve(o, staff_type, s.source);
    s.name = text(j, "AssigneeName");
    s.email = trimmed(text(j, "AssigneeEmailAddress"));
    return s;
}

mapped<client> map_contact(const json& j, const mapping_options& o) {
    return guarded([&] { return std::optional<client>(client_of(j, "ContactKey", o)); });
}

mapped<client> map_organization(const json& j, const mapping_options& o) {
    return guarded([&] { return std::optional<client>(client_of(j, "OrganizationKey", o)); });
}

mapped<invoice_facts> map_invoice(const json& j, const mapping_options& o) {
    return guarded([&] {
        if (!j.is_object()) {
            throw map_error{"not a JSON object"};
        }
        invoice_facts f;
        auto& inv = f.inv;
        inv.source = ref_to(o, required_text(j, "InvoiceKey"));
        if (const auto updated = text(j, "UpdatedAt"); !updated.empty()) {
            inv.source.updated = parse_timestamp(updated);
            if (!inv.source.updated) {
                throw map_error{"'UpdatedAt' is not a timestamp: " + updated};
            }
            inv.source.version = updated;
        }
        inv.id = resolve(o, invoice_type, inv.source);
        inv.number = text(j, "InvoiceNumber");
        inv.currency = text(j, "CurrencyCode");
        if (inv.currency.size() != 3 || !std::all_of(inv.currency.begin(),
                                                     inv.currency.end(),
                                                     [](char c) { return c >= 'A' && c <= 'Z'; })) {
            throw map_error{"'CurrencyCode' is not an ISO 4217 code: '" + inv.currency + "'"};
        }
        const auto client_it = j.find("Client");
        if (client_it != j.end() && client_it->is_object()) {
            inv.client_ref = text(*client_it, "ClientKey");
        }
        if (inv.client_ref.empty()) {
            throw map_error{"missing 'Client.ClientKey'"};
        }
        inv.client_id = resolve(o, client_type, ref_to(o, inv.client_ref));
        inv.issue_date = date_field(j, "InvoiceDate", o);
        inv.due_date = date_field(j, "PaymentDueDate", o);
        inv.total = money_of(j, "InvoiceTotal", inv.currency, true);
        inv.balance = money_of(j, "TotalAmountDue", inv.currency, true);
        inv.status = invoice_status_of(text(j, "InvoiceStatus"));
        if (inv.status == invoice_status::open && inv.balance.minor == 0 && inv.total.minor > 0) {
            inv.status = invoice_status::paid;
        }
        if (const auto lines = j.find("LineItems"); lines != j.end() && lines->is_array()) {
            for (const auto& l : *lines) {
                inv.lines.push_back(line_of(l, inv.currency));
            }
        }
        inv.payment_link = text(j, "InvoiceMagicLink");
        if (!text(j, "InvoicePdfUrl").empty()) {
            inv.delivery = delivery_status::sent;  // present only once posted or sent
        }
        if (const auto pays = j.find("Payments"); pays != j.end() && pays->is_array()) {
            for (const auto& x : *pays) {
                if (!x.is_object()) {
                    throw map_error{"a 'Payments' entry is not an object"};
                }
                payment p;
                p.source = ref_to(o, text(x, "PaymentKey"));
                if (p.source.id.empty()) {
                    throw map_error{"missing 'Payments.PaymentKey'"};
                }
                p.id = resolve(o, payment_type, p.source);
                p.client_ref = inv.client_ref;
                p.client_id = inv.client_id;
                p.amount =
                    money{minor_of(x, "Amount", inv.currency, true).value_or(0), inv.currency};
                p.unapplied = money{0, inv.currency};
                p.date = date_field(x, "PaymentDate", o);
                p.reference = text(x, "PaymentReference");
                p.voided = text(x, "PaymentType") == "ManualPaymentReversed";
                payment_application a;
                a.invoice_id = inv.id;
                a.invoice_ref = inv.source.id;
                a.amount = p.amount;
                p.applied.push_back(std::move(a));
                f.payments.push_back(std::move(p));
            }
        }
        return std::optional<invoice_facts>(std::move(f));
    });
}

invoice deleted_invoice(std::string key, const mapping_options& o) {
    return deleted_row<invoice>(std::move(key), o, invoice_type);
}

work_item deleted_work_item(std::string key, const mapping_options& o) {
    return deleted_row<work_item>(std::move(key), o, work_item_type);
}

client deleted_client(std::string key, const mapping_options& o) {
    return deleted_row<client>(std::move(key), o, client_type);
}

}  // namespace billsync::mappings::karbon
