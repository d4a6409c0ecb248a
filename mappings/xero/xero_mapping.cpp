#include "mappings/xero/xero_mapping.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <set>
#include <utility>

#include "mappings/json_fields.hpp"

namespace billsync::mappings::xero {

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

std::string required_text(const json& j, std::string_view key) {
    auto s = text(j, key);
    if (s.empty()) {
        throw map_error{"missing or empty '" + std::string(key) + "'"};
    }
    return s;
}

// "Payment plan" -> "paymentplan": group names compared without case, spaces, '-' or '_'.
std::string squash(std::string_view s) {
    std::string out;
    for (const char c : s) {
        if (c != ' ' && c != '-' && c != '_') {
            out.push_back(lower(c));
        }
    }
    return out;
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

// A date-only field, preferring its ISO sibling ("DueDateString") over the /Date()/ form.
std::optional<civil_date> date_of(const json& j, std::string_view key) {
    for (const auto& k : {std::string(key) + "String", std::string(key)}) {
        const json* v = member(j, k);
        if (v == nullptr || v->is_null()) {
            continue;
        }
        const std::string s = v->is_string() ? v->get<std::string>() : std::string();
        auto d = parse_xero_date(s);
        if (!d) {
            throw map_error{"'" + k + "' is not a date: " + v->dump()};
        }
        return d;
    }
    return std::nullopt;
}

source_ref source_of(const json& j, std::string_view id_key, const mapping_options& o) {
    source_ref s;
    s.system = o.system;
    s.account = o.tenant_id;
    s.id = required_text(j, id_key);
    const std::string updated = text(j, "UpdatedDateUTC");
    if (!updated.empty()) {
        s.updated = parse_ms_date(updated);
        if (!s.updated) {
            s.updated = parse_timestamp(updated);
        }
        if (!s.updated) {
            throw map_error{"'UpdatedDateUTC' is not a timestamp: " + updated};
        }
        s.version = std::to_string(
            std::chrono::duration_cast<std::chrono::milliseconds>(s.updated->time_since_epoch())
                .count());
    }
    return s;
}

std::string resolve(const mapping_options& o, std::string_view type, const source_ref& ref) {
    return o.resolve ? o.resolve(type, ref) : default_canonical_id(type, ref);
}

source_ref ref_to(const mapping_options& o, std::string id) {
    source_ref r;
    r.system = o.system;
    r.account = o.tenant_id;
    r.id = std::move(id);
    return r;
}

std::string currency_of(const json& j, const mapping_options& o) {
    auto c = text(j, "CurrencyCode");
    if (c.empty()) {
        c = o.home_currency;
    }
    const bool iso = c.size() == 3 && std::all_of(c.begin(), c.end(), [](char ch) {
                         return ch >= 'A' && ch <= 'Z';
                     });
    if (!iso) {
        throw map_error{"'CurrencyCode' is not an ISO 4217 code: " + c};
    }
    return c;
}

std::string decimal_or_throw(const json& v, std::string_view key) {
    auto t = mappings::decimal_text(v);
    if (!t) {
        throw map_error{"'" + std::string(key) + "' is not a decimal: " + v.dump()};
    }
    return *t;
}

line_item map_line(const json& l,
                   std::string_view currency,
                   std::string_view amount_types,
                   const mapping_options& o) {
    line_item li;
    li.description = text(l, "Description");
    li.item_ref = text(l, "ItemCode");
    li.item_name = li.item_ref;
    li.amount = amount_of(l, "LineAmount", currency, o, false);
    if (amount_types == "Exclusive") {
        li.amount.minor += amount_of(l, "TaxAmount", currency, o, false).minor;
    }
    if (const json* q = member(l, "Quantity"); q != nullptr && !q->is_null()) {
        li.quantity = decimal_or_throw(*q, "Quantity");
    }
    if (const json* p = member(l, "UnitAmount"); p != nullptr && !p->is_null()) {
        li.unit_price = decimal_or_throw(*p, "UnitAmount");
    }
    if (li.amount.minor < 0) {
        li.kind = line_kind::discount;
        li.amount.minor = -li.amount.minor;
    } else if (li.quantity.empty() && li.unit_price.empty() && li.amount.minor == 0) {
        li.kind = line_kind::description;
    } else {
        li.kind = line_kind::item;
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

// The object itself, or the first element of its envelope ({"Invoices": [{...}]}).
const json& object_or_throw(const json& j, std::string_view collection, std::string_view id_key) {
    if (member(j, id_key) != nullptr) {
        return j;
    }
    if (const json* rows = rows_of(j, collection); rows != nullptr && rows->size() == 1) {
        return rows->front();
    }
    throw map_error{"not a single " + std::string(collection) + " object"};
}

bool parse_int(std::string_view s, std::int64_t& v) {
    const auto r = std::from_chars(s.data(), s.data() + s.size(), v);
    return r.ec == std::errc() && r.ptr == s.data() + s.size();
}

// "/Date(ms±hhmm)/": the milliseconds and the offset in minutes.
bool split_ms_date(std::string_view t, std::int64_t& ms, std::int64_t& offset_min) {
    constexpr std::string_view head = "/Date(";
    constexpr std::string_view tail = ")/";
    if (!t.starts_with(head) || !t.ends_with(tail)) {
        return false;
    }
    auto inner = t.substr(head.size(), t.size() - head.size() - tail.size());
    offset_min = 0;
    // The sign of the offset is the first '+' or '-' after a leading '-' of the number.
    const auto sign = inner.find_first_of("+-", 1);
    if (sign != std::string_view::npos) {
        const auto off = inner.substr(sign + 1);
        std::int64_t hh = 0;
        std::int64_t mm = 0;
        if (off.size() != 4 || !parse_int(off.substr(0, 2), hh) ||
            !parse_int(off.substr(2, 2), mm) || hh > 14 || mm > 59) {
            return false;
        }
        offset_min = (hh * 60 + mm) * (inner[sign] == '-' ? -1 : 1);
        inner = inner.substr(0, sign);
    }
    // Far beyond any real date: refuse rather than overflow.
    constexpr std::int64_t bound = 253'402'300'800'000;  // year 10000
    return !inner.empty() && inner.size() <= 16 && parse_int(inner, ms) && ms > -bound &&
           ms < bound;
}

}  // namespace

std::optional<instant> parse_ms_date(std::string_view text) noexcept {
    std::int64_t ms = 0;
    std::int64_t offset = 0;
    if (!split_ms_date(text, ms, offset)) {
        return std::nullopt;
    }
    return instant(std::chrono::milliseconds(ms));
}

std::optional<civil_date> parse_xero_date(std::string_view text) noexcept {
    if (text.size() == 10) {
        return parse_civil_date(text);
    }
    if (text.size() == 19 && text[10] == 'T' && text.substr(11) == "00:00:00") {
        return parse_civil_date(text.substr(0, 10));
    }
    std::int64_t ms = 0;
    std::int64_t offset = 0;
    if (!split_ms_date(text, ms, offset)) {
        return std::nullopt;
    }
    const auto local = std::chrono::sys_time<std::chrono::milliseconds>(
        std::chrono::milliseconds(ms) + std::chrono::minutes(offset));
    const auto day = std::chrono::floor<std::chrono::days>(local);
    if (local != day) {
        return std::nullopt;  // a date-only field holds a whole day
    }
    return civil_date{day};
}

std::string format_modified_since(instant t) {
    const auto secs = std::chrono::floor<std::chrono::seconds>(t);
    const auto day = std::chrono::floor<std::chrono::days>(secs);
    const std::chrono::hh_mm_ss hms(secs - day);
    char buf[32];
    const civil_date d{day};
    std::snprintf(buf,
                  sizeof buf,
                  "%04d-%02u-%02uT%02d:%02d:%02d",
                  static_cast<int>(d.year()),
                  static_cast<unsigned>(d.month()),
                  static_cast<unsigned>(d.day()),
                  static_cast<int>(hms.hours().count()),
                  static_cast<int>(hms.minutes().count()),
                  static_cast<int>(hms.seconds().count()));
    return buf;
}

std::optional<money> parse_amount(const json& v, std::string_view currency, rounding mode) {
    const auto t = mappings::decimal_text(v);
    if (!t) {
        return std::nullopt;
    }
    const auto minor = parse_decimal(*t, minor_digits(currency), mode);
    if (!minor) {
        return std::nullopt;
    }
    return money{*minor, std::string(currency)};
}

const json* rows_of(const json& doc, std::string_view collection) {
    const json* rows = member(doc, collection);
    return rows != nullptr && rows->is_array() ? rows : nullptr;
}

std::string error_message(std::string_view body) {
    const auto j = json::parse(body, nullptr, false);
    if (!j.is_object()) {
        return {};
    }
    if (const json* els = member(j, "Elements"); els != nullptr && els->is_array()) {
        for (const auto& el : *els) {
            if (const json* ves = member(el, "ValidationErrors");
                ves != nullptr && ves->is_array()) {
                for (const auto& ve : *ves) {
                    if (auto m = text(ve, "Message"); !m.empty()) {
                        return m;
                    }
                }
            }
        }
    }
    if (auto m = text(j, "Message"); !m.empty()) {
        return m;
    }
    return text(j, "Detail");
}

bool is_sales_invoice(const json& inv) { return text(inv, "Type") == "ACCREC"; }

bool is_sales_payment(const json& p) {
    const auto type = text(p, "PaymentType");
    if (!type.empty()) {
        return type == "ACCRECPAYMENT";
    }
    return nested_text(p, "Invoice", "Type") == "ACCREC";
}

mapped<invoice> map_invoice(const json& j, const mapping_options& o) {
    return guarded<invoice>("Invoice", [&] {
        const json& obj = object_or_throw(j, "Invoices", "InvoiceID");
        invoice inv;
        inv.source = source_of(obj, "InvoiceID", o);
        inv.id = resolve(o, "invoice", inv.source);
        const std::string status = text(obj, "Status");
        if (status == "DELETED") {
            inv.deleted = true;
            return inv;
        }
        if (!is_sales_invoice(obj)) {
            throw map_error{"Type '" + text(obj, "Type") + "' is not a sales invoice (ACCREC)"};
        }
        inv.currency = currency_of(obj, o);
        inv.number = text(obj, "InvoiceNumber");
        inv.client_ref = nested_text(obj, "Contact", "ContactID");
        if (inv.client_ref.empty()) {
            throw map_error{"missing 'Contact.ContactID'"};
        }
        inv.client_id = resolve(o, "client", ref_to(o, inv.client_ref));
        inv.issue_date = date_of(obj, "Date");
        inv.due_date = date_of(obj, "DueDate");
        inv.total = amount_of(obj, "Total", inv.currency, o);
        inv.balance = amount_of(obj, "AmountDue", inv.currency, o);
        const std::string amount_types = text(obj, "LineAmountTypes");
        if (!amount_types.empty() && amount_types != "Exclusive" && amount_types != "Inclusive" &&
            amount_types != "NoTax") {
            throw map_error{"'LineAmountTypes' is not Exclusive, Inclusive or NoTax: " +
                            amount_types};
        }
        if (const json* lines = member(obj, "LineItems"); lines != nullptr && lines->is_array()) {
            for (const auto& l : *lines) {
                inv.lines.push_back(map_line(l, inv.currency, amount_types, o));
            }
        }
        if (const json* sent = member(obj, "SentToContact");
            sent != nullptr && sent->is_boolean()) {
            inv.delivery = sent->get<bool>() ? delivery_status::sent : delivery_status::not_sent;
        }
        inv.billing_email = trim(nested_text(obj, "Contact", "EmailAddress"));
        inv.payment_link = text(obj, "OnlineInvoiceUrl");
        if (status == "VOIDED") {
            inv.status = invoice_status::voided;
        } else if (status == "DRAFT" || status == "SUBMITTED") {
            inv.status = invoice_status::draft;
        } else if (status == "PAID" || (inv.balance.minor == 0 && inv.total.minor > 0)) {
            inv.status = invoice_status::paid;
        } else {
            inv.status = invoice_status::open;
        }
        return inv;
    });
}

mapped<ledger_item> map_item(const json& j, const mapping_options& o) {
    return guarded<ledger_item>("Item", [&] {
        const json& obj = object_or_throw(j, "Items", "ItemID");
        ledger_item i;
        i.source = source_of(obj, "ItemID", o);
        i.id = resolve(o, "ledger_item", i.source);
        i.code = trim(text(obj, "Code"));
        if (i.code.empty()) {
            throw map_error{"missing 'Code'"};
        }
        i.name = trim(text(obj, "Name"));
        const json* sold = member(obj, "IsSold");
        const bool is_sold = sold == nullptr || !sold->is_boolean() || sold->get<bool>();
        // Xero items have no active flag: an item no longer sold is what billsync can bill with.
        i.active = is_sold;
        const json* sales = member(obj, "SalesDetails");
        const json* price =
            sales != nullptr && sales->is_object() ? member(*sales, "UnitPrice") : nullptr;
        if (is_sold && price != nullptr && !price->is_null()) {
            const auto exact = mappings::decimal_text(*price);
            if (!exact) {
                throw map_error{"'SalesDetails.UnitPrice' is not a decimal number: " +
                                price->dump()};
            }
            i.unit_price_text = *exact;
            // Item prices are in the organisation's base currency.
            if (auto minor =
                    parse_decimal(*exact, minor_digits(o.home_currency), o.money_rounding)) {
                i.unit_price = money{*minor, o.home_currency};
            }
        }
        return i;
    });
}

mapped<client> map_contact(const json& j, const mapping_options& o) {
    return guarded<client>("Contact", [&] {
        const json& obj = object_or_throw(j, "Contacts", "ContactID");
        client c;
        c.source = source_of(obj, "ContactID", o);
        c.id = resolve(o, "client", c.source);
        c.display_name = trim(text(obj, "Name"));
        if (c.display_name.empty()) {
            throw map_error{"missing 'Name'"};
        }
        c.client_code = trim_client_code(text(obj, "ContactNumber"));
        c.contact.billing_email = trim(text(obj, "EmailAddress"));
        if (const json* phones = member(obj, "Phones"); phones != nullptr && phones->is_array()) {
            for (const auto& p : *phones) {
                if (text(p, "PhoneType") != "MOBILE" || trim(text(p, "PhoneNumber")).empty()) {
                    continue;
                }
                const auto country = trim(text(p, "PhoneCountryCode"));
                std::string raw = country.empty() ? std::string() : "+" + country + " ";
                raw += trim(text(p, "PhoneAreaCode"));
                raw += (raw.empty() || raw.back() == ' ' ? "" : " ") + trim(text(p, "PhoneNumber"));
                c.contact.mobile_raw = trim(raw);
                if (auto e164 = normalize_e164(c.contact.mobile_raw, o.default_calling_code)) {
                    c.contact.mobile = *e164;
                }
                break;
            }
        }
        std::set<std::string> tags;
        if (const json* groups = member(obj, "ContactGroups");
            groups != nullptr && groups->is_array()) {
            for (const auto& g : *groups) {
                if (auto name = squash(text(g, "Name")); !name.empty()) {
                    tags.insert(std::move(name));
                }
            }
        }
        c.tags.assign(tags.begin(), tags.end());
        const auto has = [&tags](const std::string& tag) {
            return !tag.empty() && tags.contains(squash(tag));
        };
        c.payment_plan = has(o.payment_plan_tag);
        c.retainer = has(o.retainer_tag);
        c.contact.sms_consent = has(o.sms_consent_tag) && !c.contact.mobile.empty();
        const auto status = text(obj, "ContactStatus");
        c.active = (status.empty() || status == "ACTIVE") && text(obj, "MergedToContactID").empty();
        c.currency = text(obj, "DefaultCurrency");
        if (c.currency.empty()) {
            c.currency = o.home_currency;
        }
        return c;
    });
}

mapped<payment> map_payment(const json& j, const mapping_options& o) {
    return guarded<payment>("Payment", [&] {
        const json& obj = object_or_throw(j, "Payments", "PaymentID");
        payment p;
        p.source = source_of(obj, "PaymentID", o);
        p.id = resolve(o, "payment", p.source);
        if (!is_sales_payment(obj)) {
            throw map_error{"PaymentType '" + text(obj, "PaymentType") +
                            "' is not a receivable payment"};
        }
        const json* inv = member(obj, "Invoice");
        if (inv == nullptr || !inv->is_object()) {
            throw map_error{"missing 'Invoice'"};
        }
        const std::string currency = currency_of(*inv, o);
        p.client_ref = nested_text(*inv, "Contact", "ContactID");
        if (!p.client_ref.empty()) {
            p.client_id = resolve(o, "client", ref_to(o, p.client_ref));
        }
        p.amount = amount_of(obj, "Amount", currency, o);
        p.unapplied = money{0, currency};
        p.date = date_of(obj, "Date");
        p.reference = text(obj, "Reference");
        p.voided = text(obj, "Status") == "DELETED";
        payment_application a;
        a.invoice_ref = required_text(*inv, "InvoiceID");
        a.invoice_id = resolve(o, "invoice", ref_to(o, a.invoice_ref));
        a.amount = p.voided ? money{0, currency} : p.amount;
        p.applied.push_back(std::move(a));
        return p;
    });
}

}  // namespace billsync::mappings::xero
