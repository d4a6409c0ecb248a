#include "sim/xero_simulator.hpp"

#include <algorithm>
#include <array>
#include <boost/asio/steady_timer.hpp>
#include <deque>
#include <map>
#include <mutex>
#include <utility>

#include "http/async_client.hpp"
#include "http/client.hpp"
#include "mappings/exact_json.hpp"
#include "mappings/model.hpp"
#include "mappings/money.hpp"
#include "util/crypto.hpp"

namespace billsync::simulators {

namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;

constexpr std::string_view api_prefix = "/api.xro/2.0/";
constexpr std::string_view admin_prefix = "/_sim/xero/";
constexpr std::array<std::string_view, 4> collections = {
    "Contacts", "Invoices", "Payments", "Items"};
// Keys Xero sends as JSON numbers; held as exact decimal text inside.
constexpr std::array<std::string_view, 12> numeric_keys = {"Total",
                                                           "UnitPrice",
                                                           "SubTotal",
                                                           "TotalTax",
                                                           "AmountDue",
                                                           "AmountPaid",
                                                           "AmountCredited",
                                                           "Amount",
                                                           "LineAmount",
                                                           "UnitAmount",
                                                           "Quantity",
                                                           "TaxAmount"};

json exact(const json& j) {
    std::string err;
    auto out = mappings::parse_exact(j.dump(), err);
    return out ? std::move(*out) : json::object();
}

void numbers_out(json& j) {
    if (j.is_object()) {
        for (auto& [k, v] : j.items()) {
            const bool numeric =
                std::find(numeric_keys.begin(), numeric_keys.end(), k) != numeric_keys.end();
            if (v.is_string() && numeric) {
                if (const auto t = mappings::normalize_decimal(v.get<std::string>())) {
                    v = json::parse(*t, nullptr, false);
                }
            } else {
                numbers_out(v);
            }
        }
    } else if (j.is_array()) {
        for (auto& v : j) {
            numbers_out(v);
        }
    }
}

std::string text_of(const json& j, std::string_view key) {
    const auto it = j.find(key);
    return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::optional<std::int64_t> cents(const json& j, std::string_view key) {
    const auto it = j.find(key);
    if (it == j.end()) {
        return std::nullopt;
    }
    const auto t = mappings::decimal_text(*it);
    return t ? mappings::parse_decimal(*t, 2, mappings::rounding::half_even) : std::nullopt;
}

std::string money_text(std::int64_t c) { return mappings::format_decimal(c, 2); }

std::int64_t ms_of(util::instant t) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

std::string ms_date(util::instant t) { return "/Date(" + std::to_string(ms_of(t)) + "+0000)/"; }

std::string iso_utc(util::instant t) {
    auto s = util::format_rfc3339(std::chrono::floor<std::chrono::seconds>(t));
    return s.substr(0, 19);
}

std::optional<util::instant> parse_modified_since(std::string_view v) {
    util::instant t{};
    if (util::parse_rfc3339(v, t)) {
        return t;
    }
    if (v.size() >= 19 && util::parse_rfc3339(std::string(v.substr(0, 19)) + "Z", t)) {
        return t;
    }
    return std::nullopt;
}

http::response xero_json(unsigned status, const json& body) {
    return http::response::json(status, body.dump());
}

http::response validation(std::string message) {
    return xero_json(400,
                     json{{"ErrorNumber", 10},
                          {"Type", "ValidationException"},
                          {"Message", "A validation exception occurred"},
                          {"Elements",
                           json::array({{{"ValidationErrors",
                                          json::array({{{"Message", std::move(message)}}})}}})}});
}

http::response not_found() {
    return xero_json(404,
                     json{{"Title", "Not Found"},
                          {"Status", 404},
                          {"Detail", "The resource you're looking for cannot be found"}});
}

std::vector<std::string> split(std::string_view s, char sep) {
    std::vector<std::string> out;
    while (!s.empty()) {
        const auto p = s.find(sep);
        out.emplace_back(s.substr(0, p));
        if (p == std::string_view::npos) {
            break;
        }
        s.remove_prefix(p + 1);
    }
    return out;
}

// where=Field=="value" AND Field2=="value2"
bool where_matches(const json& row, std::string_view where) {
    std::size_t pos = 0;
    while (pos < where.size()) {
        const auto eq = where.find("==\"", pos);
        if (eq == std::string_view::npos) {
            return false;
        }
        std::string field(where.substr(pos, eq - pos));
        field.erase(0, field.find_first_not_of(' '));
        field.erase(field.find_last_not_of(' ') + 1);
        std::string value;
        auto i = eq + 3;
        for (; i < where.size() && where[i] != '"'; ++i) {
            if (where[i] == '\\' && i + 1 < where.size()) {
                ++i;
            }
            value += where[i];
        }
        if (text_of(row, field) != value) {
            return false;
        }
        const auto next = where.find(" AND ", i);
        if (next == std::string_view::npos) {
            break;
        }
        pos = next + 5;
    }
    return true;
}

struct cached_write {
    std::string request;  // method, path and body the key was first used with
    unsigned status = 0;
    std::string body;
};

struct tenant_data {
    std::map<std::string, json, std::less<>> rows[4];
    std::deque<util::instant> minute;
    std::deque<util::instant> day;
    std::uint64_t next_number = 1;
};

}  // namespace

struct xero_simulator::state {
    explicit state(xero_sim_options o) : options(std::move(o)) {
        for (const auto& t : options.tenants) {
            tenants[t];
        }
    }
    xero_sim_options options;
    mutable std::mutex mutex;
    std::map<std::string, tenant_data, std::less<>> tenants;
    std::deque<util::instant> app_minute;
    std::map<std::string, cached_write, std::less<>> keys;  // tenant + "\n" + key
    std::vector<json> events;
    std::uint64_t serial = 0;
    std::uint64_t replays = 0;
    std::uint64_t creates = 0;
    std::chrono::milliseconds create_hold{0};
    std::uint64_t emails = 0;
    std::uint64_t rejected = 0;

    util::instant now() const {
        return options.now
                   ? options.now()
                   : std::chrono::time_point_cast<util::duration>(std::chrono::system_clock::now());
    }

    std::string new_id() {
        char buf[40];
        std::snprintf(buf,
                      sizeof buf,
                      "%08llx-0000-4000-8000-%012llx",
                      static_cast<unsigned long long>(0x5e40),
                      static_cast<unsigned long long>(++serial));
        return buf;
    }

    std::size_t index(std::string_view collection) const {
        return static_cast<std::size_t>(
            std::find(collections.begin(), collections.end(), collection) - collections.begin());
    }

    void queue_event(const std::string& tenant,
                     std::string_view category,
                     const std::string& id,
                     bool created) {
        const auto collection = category == "CONTACT" ? "Contacts" : "Invoices";
        events.push_back(
            json{{"resourceUrl",
                  "https://api.xero.com/api.xro/2.0/" + std::string(collection) + "/" + id},
                 {"resourceId", id},
                 {"eventDateUtc", iso_utc(now()) + ".000"},
                 {"eventType", created ? "CREATE" : "UPDATE"},
                 {"eventCategory", std::string(category)},
                 {"tenantId", tenant},
                 {"tenantType", "ORGANISATION"}});
    }

    json render(const json& row) const {
        json out;
        for (const auto& [k, v] : row.items()) {
            if (!k.starts_with('_')) {
                out[k] = v;
            }
        }
        numbers_out(out);
        return out;
    }

    void touch(json& row) {
        const auto t = now();
        row["UpdatedDateUTC"] = ms_date(t);
        row["_updated_ms"] = ms_of(t);
    }

    // Recomputes an invoice's amounts from its lines and payments.
    void amounts(json& inv) {
        const auto total = inv.value("_total", std::int64_t{0});
        const auto paid = inv.value("_paid", std::int64_t{0});
        inv["SubTotal"] = money_text(total);
        inv["TotalTax"] = "0";
        inv["Total"] = money_text(total);
        inv["AmountPaid"] = money_text(paid);
        inv["AmountDue"] = money_text(total - paid);
        if (inv.value("Status", "") == "AUTHORISED" && total > 0 && paid >= total) {
            inv["Status"] = "PAID";
            inv["FullyPaidOnDate"] = ms_date(now());
        }
    }

    // A new invoice from fields; nullopt with `error` when refused.
    std::optional<json> make_invoice(tenant_data& td,
                                     const std::string& tenant,
                                     json fields,
                                     std::string_view default_status,
                                     std::string& error) {
        json inv = exact(fields);
        inv.erase("InvoiceID");
        const auto contact_id = inv.contains("Contact") && inv["Contact"].is_object()
                                    ? text_of(inv["Contact"], "ContactID")
                                    : std::string();
        const auto contact = td.rows[0].find(contact_id);
        if (contact == td.rows[0].end()) {
            error = "The contact could not be found (ContactID '" + contact_id + "')";
            return std::nullopt;
        }
        inv["Contact"] = json{{"ContactID", contact_id},
                              {"Name", text_of(contact->second, "Name")},
                              {"EmailAddress", text_of(contact->second, "EmailAddress")}};
        if (text_of(inv, "Type").empty()) {
            inv["Type"] = "ACCREC";
        }
        if (text_of(inv, "Status").empty()) {
            inv["Status"] = std::string(default_status);
        }
        const auto st = text_of(inv, "Status");
        if (st != "DRAFT" && st != "SUBMITTED" && st != "AUTHORISED") {
            error = "Invoice Status '" + st + "' cannot be set on a new invoice";
            return std::nullopt;
        }
        if (text_of(inv, "InvoiceNumber").empty()) {
            // Xero's next number, past any number a user already gave an invoice.
            const auto taken = [&td](const std::string& number) {
                return std::any_of(td.rows[1].begin(), td.rows[1].end(), [&](const auto& row) {
                    return text_of(row.second, "InvoiceNumber") == number &&
                           text_of(row.second, "Type") == "ACCREC";
                });
            };
            std::string number;
            do {
                char buf[24];
                std::snprintf(buf,
                              sizeof buf,
                              "INV-%04llu",
                              static_cast<unsigned long long>(td.next_number++));
                number = buf;
            } while (taken(number));
            inv["InvoiceNumber"] = number;
        } else {
            for (const auto& [id, other] : td.rows[1]) {
                if (text_of(other, "InvoiceNumber") == text_of(inv, "InvoiceNumber") &&
                    text_of(other, "Type") == "ACCREC") {
                    error = "Invoice # must be unique.";
                    return std::nullopt;
                }
            }
        }
        if (text_of(inv, "LineAmountTypes").empty()) {
            inv["LineAmountTypes"] = "NoTax";
        }
        if (text_of(inv, "CurrencyCode").empty()) {
            inv["CurrencyCode"] = "USD";
        }
        std::int64_t total = 0;
        if (inv.contains("LineItems") && inv["LineItems"].is_array()) {
            for (auto& l : inv["LineItems"]) {
                auto amount = cents(l, "LineAmount");
                if (!amount && !l.contains("UnitAmount") && !l.contains("Quantity") &&
                    !text_of(l, "Description").empty()) {
                    amount = 0;  // a description-only line (a note) carries no amount
                }
                if (!amount) {
                    const auto unit = cents(l, "UnitAmount");
                    const auto qty = l.contains("Quantity") && l["Quantity"].is_number_integer()
                                         ? l["Quantity"].get<std::int64_t>()
                                         : 1;
                    amount = unit ? std::optional(*unit * qty) : std::nullopt;
                }
                if (!amount) {
                    error = "A line item needs a LineAmount or a UnitAmount";
                    return std::nullopt;
                }
                l["LineAmount"] = money_text(*amount);
                total += *amount;
            }
        }
        for (const auto* key : {"Date", "DueDate"}) {
            const auto d = text_of(inv, key);
            if (d.empty()) {
                continue;
            }
            const auto civil = mappings::parse_civil_date(d.substr(0, 10));
            if (!civil) {
                error = std::string(key) + " is not a date";
                return std::nullopt;
            }
            const auto ms = ms_of(util::instant(std::chrono::sys_days(*civil)));
            inv[key] = "/Date(" + std::to_string(ms) + "+0000)/";
            inv[std::string(key) + "String"] = d.substr(0, 10) + "T00:00:00";
        }
        inv["InvoiceID"] = new_id();
        inv["_total"] = total;
        inv["_paid"] = 0;
        inv["SentToContact"] = false;
        inv["HasErrors"] = false;
        inv["Payments"] = json::array();
        amounts(inv);
        touch(inv);
        inv["_created_ms"] = inv["_updated_ms"];
        td.rows[1][text_of(inv, "InvoiceID")] = inv;
        queue_event(tenant, "INVOICE", text_of(inv, "InvoiceID"), true);
        return inv;
    }

    // Xero's refusal of a contact name another contact (other than `self`) already has.
    static bool name_taken(const tenant_data& td,
                           const std::string& name,
                           const std::string& self,
                           std::string& error) {
        for (const auto& [id, other] : td.rows[0]) {
            if (id != self && text_of(other, "Name") == name) {
                error = "The contact name " + name +
                        " is already assigned to another contact. The contact name must be "
                        "unique across all active contacts.";
                return true;
            }
        }
        return false;
    }

    // An item as a user saves it in Xero: Code required and unique (a second save of a Code
    // edits that item), Name, IsSold (default true), SalesDetails.UnitPrice. No webhook: Xero
    // sends none for items.
    std::optional<json> save_item(tenant_data& td, json fields, std::string& error) {
        json f = exact(fields);
        const auto code = text_of(f, "Code");
        if (code.empty()) {
            error = "Item code must be specified.";
            return std::nullopt;
        }
        if (f.contains("SalesDetails") && f["SalesDetails"].is_object() &&
            f["SalesDetails"].contains("UnitPrice") &&
            !mappings::decimal_text(f["SalesDetails"]["UnitPrice"])) {
            error = "Sales unit price must be a number.";
            return std::nullopt;
        }
        json* row = nullptr;
        for (auto& [id, other] : td.rows[3]) {
            if (text_of(other, "Code") == code) {
                row = &other;
            }
        }
        if (row == nullptr) {
            json fresh{{"ItemID", new_id()}, {"Code", code}, {"IsSold", true}};
            row = &td.rows[3][text_of(fresh, "ItemID")];
            *row = std::move(fresh);
        }
        for (const auto& [k, v] : f.items()) {
            if (k != "ItemID") {
                (*row)[k] = v;
            }
        }
        touch(*row);
        return *row;
    }

    std::optional<json> make_contact(tenant_data& td,
                                     const std::string& tenant,
                                     json fields,
                                     std::string& error) {
        json c = exact(fields);
        if (text_of(c, "Name").empty()) {
            error = "The contact name must be specified.";
            return std::nullopt;
        }
        if (name_taken(td, text_of(c, "Name"), "", error)) {
            return std::nullopt;
        }
        c["ContactID"] = new_id();
        if (text_of(c, "ContactStatus").empty()) {
            c["ContactStatus"] = "ACTIVE";
        }
        touch(c);
        td.rows[0][text_of(c, "ContactID")] = c;
        queue_event(tenant, "CONTACT", text_of(c, "ContactID"), true);
        return c;
    }

    // A contact's fields changed (POST /Contacts/{id}, or POST /Contacts naming a ContactID):
    // ContactNumber (the firm's client code), Name, EmailAddress… as given; a Name another
    // contact has is refused, as on create.
    std::optional<json> update_contact(tenant_data& td,
                                       const std::string& tenant,
                                       const std::string& id,
                                       const json& fields,
                                       std::string& error) {
        auto it = td.rows[0].find(id);
        if (it == td.rows[0].end()) {
            error = "not found";
            return std::nullopt;
        }
        json change = exact(fields);
        change.erase("ContactID");
        if (const auto name = text_of(change, "Name");
            !name.empty() && name_taken(td, name, id, error)) {
            return std::nullopt;
        }
        auto& c = it->second;
        c.update(change);
        touch(c);
        queue_event(tenant, "CONTACT", id, false);
        return c;
    }

    std::optional<json> make_payment(tenant_data& td,
                                     const std::string& tenant,
                                     json fields,
                                     std::string& error) {
        json p = exact(fields);
        const auto inv_id = p.contains("Invoice") && p["Invoice"].is_object()
                                ? text_of(p["Invoice"], "InvoiceID")
                                : std::string();
        auto inv = td.rows[1].find(inv_id);
        if (inv == td.rows[1].end()) {
            error = "Invoice could not be found";
            return std::nullopt;
        }
        const auto amount = cents(p, "Amount");
        if (!amount || *amount <= 0) {
            error = "Payment amount must be greater than zero";
            return std::nullopt;
        }
        auto& i = inv->second;
        if (text_of(i, "Status") != "AUTHORISED") {
            error = "Payments can only be made against Authorised documents";
            return std::nullopt;
        }
        const auto due = i.value("_total", std::int64_t{0}) - i.value("_paid", std::int64_t{0});
        if (*amount > due) {
            error = "Payment amount exceeds the amount outstanding on this document";
            return std::nullopt;
        }
        p["PaymentID"] = new_id();
        p["Amount"] = money_text(*amount);
        p["Status"] = "AUTHORISED";
        p["PaymentType"] = text_of(i, "Type") == "ACCREC" ? "ACCRECPAYMENT" : "ACCPAYPAYMENT";
        const auto d = text_of(p, "Date");
        const auto civil = mappings::parse_civil_date(d.size() >= 10 ? d.substr(0, 10) : d);
        p["Date"] = ms_date(civil ? util::instant(std::chrono::sys_days(*civil)) : now());
        p["Invoice"] = json{{"InvoiceID", inv_id},
                            {"InvoiceNumber", text_of(i, "InvoiceNumber")},
                            {"Type", text_of(i, "Type")},
                            {"CurrencyCode", text_of(i, "CurrencyCode")},
                            {"Contact", {{"ContactID", text_of(i["Contact"], "ContactID")}}}};
        touch(p);
        i["_paid"] = i.value("_paid", std::int64_t{0}) + *amount;
        i["Payments"].push_back(json{{"PaymentID", text_of(p, "PaymentID")},
                                     {"Amount", text_of(p, "Amount")},
                                     {"Date", text_of(p, "Date")}});
        amounts(i);
        touch(i);
        td.rows[2][text_of(p, "PaymentID")] = p;
        queue_event(tenant, "INVOICE", inv_id, false);
        return p;
    }

    // Status changes and plain field updates of one invoice.
    std::optional<json> update_invoice(tenant_data& td,
                                       const std::string& tenant,
                                       const std::string& id,
                                       const json& fields,
                                       std::string& error) {
        auto it = td.rows[1].find(id);
        if (it == td.rows[1].end()) {
            error = "not found";
            return std::nullopt;
        }
        auto& inv = it->second;
        const auto from = text_of(inv, "Status");
        const auto to = text_of(fields, "Status");
        if (!to.empty() && to != from) {
            const bool ok = (to == "VOIDED" && (from == "AUTHORISED") &&
                             inv.value("_paid", std::int64_t{0}) == 0) ||
                            (to == "DELETED" && (from == "DRAFT" || from == "SUBMITTED")) ||
                            (to == "AUTHORISED" && (from == "DRAFT" || from == "SUBMITTED")) ||
                            (to == "SUBMITTED" && from == "DRAFT");
            if (!ok) {
                error = "Invoice Status cannot change from " + from + " to " + to;
                return std::nullopt;
            }
            inv["Status"] = to;
        }
        for (const auto* key : {"Reference", "DueDate", "Date"}) {
            if (fields.contains(key) && fields[key].is_string()) {
                inv[key] = fields[key];
            }
        }
        touch(inv);
        queue_event(tenant, "INVOICE", id, false);
        return inv;
    }

    // Per-tenant and app-wide windows; nullopt when the call may go on.
    std::optional<http::response> limit(tenant_data& td) {
        const auto t = now();
        const auto scale = options.scale > 0 ? options.scale : 1.0;
        const auto minute =
            std::chrono::duration_cast<util::duration>(std::chrono::duration<double>(60.0 / scale));
        const auto day = std::chrono::duration_cast<util::duration>(
            std::chrono::duration<double>(86'400.0 / scale));
        auto trim = [&](std::deque<util::instant>& q, util::duration w) {
            while (!q.empty() && q.front() + w <= t) {
                q.pop_front();
            }
        };
        trim(td.minute, minute);
        trim(td.day, day);
        trim(app_minute, minute);
        auto refuse =
            [&](std::string_view problem, const std::deque<util::instant>& q, util::duration w) {
                ++rejected;
                const auto wait = std::chrono::ceil<std::chrono::seconds>(q.front() + w - t);
                auto r = xero_json(429,
                                   json{{"Title", "Too Many Requests"},
                                        {"Status", 429},
                                        {"Detail", "You have exceeded the rate limit"}});
                r.headers.push_back(
                    {"Retry-After", std::to_string(std::max<long long>(1, wait.count()))});
                r.headers.push_back({"X-Rate-Limit-Problem", std::string(problem)});
                return r;
            };
        if (options.enforce_limits) {
            if (td.day.size() >= options.day_limit) {
                return refuse("day", td.day, day);
            }
            if (td.minute.size() >= options.minute_limit) {
                return refuse("minute", td.minute, minute);
            }
            if (app_minute.size() >= options.app_minute_limit) {
                return refuse("appminute", app_minute, minute);
            }
        }
        td.minute.push_back(t);
        td.day.push_back(t);
        app_minute.push_back(t);
        return std::nullopt;
    }

    void remaining(const tenant_data& td, http::response& r) const {
        auto left = [](std::uint32_t cap, std::size_t used) {
            return std::to_string(used >= cap ? 0 : cap - used);
        };
        r.headers.push_back({"X-DayLimit-Remaining", left(options.day_limit, td.day.size())});
        r.headers.push_back({"X-MinLimit-Remaining", left(options.minute_limit, td.minute.size())});
        r.headers.push_back(
            {"X-AppMinLimit-Remaining", left(options.app_minute_limit, app_minute.size())});
    }

    json envelope(std::string_view collection,
                  json rows,
                  std::size_t page,
                  std::size_t size,
                  std::size_t total) const {
        json out{{"Id", "sim"},
                 {"Status", "OK"},
                 {"ProviderName", "billsync-sim"},
                 {"DateTimeUTC", ms_date(now())}};
        if (size > 0) {
            out["pagination"] = {{"page", page},
                                 {"pageSize", size},
                                 {"pageCount", (total + size - 1) / size},
                                 {"itemCount", total}};
        }
        out[std::string(collection)] = std::move(rows);
        return out;
    }

    http::response list(tenant_data& td, std::string_view collection, const http::request& req) {
        const auto& rows = td.rows[index(collection)];
        const auto ims = req.header_value("If-Modified-Since");
        std::optional<std::int64_t> since;
        if (!ims.empty()) {
            const auto t = parse_modified_since(ims);
            if (!t) {
                return validation("If-Modified-Since is not a date");
            }
            since = ms_of(*t);
        }
        const auto ids = http::query_param(req.query, "IDs");
        const auto numbers = http::query_param(req.query, "InvoiceNumbers");
        const auto where = http::query_param(req.query, "where");
        std::vector<const json*> hits;
        const auto id_list = split(ids, ',');
        const auto number_list = split(numbers, ',');
        for (const auto& [id, row] : rows) {
            if (since && row.value("_updated_ms", std::int64_t{0}) <= *since) {
                continue;
            }
            if (!ids.empty() && std::find(id_list.begin(), id_list.end(), id) == id_list.end()) {
                continue;
            }
            if (!numbers.empty() &&
                std::find(number_list.begin(), number_list.end(), text_of(row, "InvoiceNumber")) ==
                    number_list.end()) {
                continue;
            }
            if (!where.empty() && !where_matches(row, where)) {
                continue;
            }
            hits.push_back(&row);
        }
        // By UpdatedDateUTC, ties in id order (the map's); std::sort on (time, position) rather
        // than std::stable_sort, whose temporary buffer clang flags as deprecated in libstdc++ 12.
        std::vector<std::pair<std::int64_t, std::size_t>> order;
        order.reserve(hits.size());
        for (std::size_t i = 0; i < hits.size(); ++i) {
            order.emplace_back(hits[i]->value("_updated_ms", std::int64_t{0}), i);
        }
        std::sort(order.begin(), order.end());
        std::vector<const json*> sorted;
        sorted.reserve(hits.size());
        for (const auto& [ms, i] : order) {
            sorted.push_back(hits[i]);
        }
        hits = std::move(sorted);
        const auto page_text = http::query_param(req.query, "page");
        const auto size_text = http::query_param(req.query, "pageSize");
        std::size_t page = 0;
        std::size_t size = 0;
        // Items are never paged: every item in one answer, whatever is asked.
        if ((!page_text.empty() || !size_text.empty()) && collection != "Items") {
            page = page_text.empty() ? 1 : std::stoul(page_text);
            size = size_text.empty() ? 100 : std::min<std::size_t>(1000, std::stoul(size_text));
            page = std::max<std::size_t>(1, page);
            size = std::max<std::size_t>(1, size);
        }
        json out = json::array();
        const auto begin = size == 0 ? 0 : (page - 1) * size;
        const auto end = size == 0 ? hits.size() : std::min(hits.size(), begin + size);
        for (auto i = begin; i < end; ++i) {
            out.push_back(render(*hits[i]));
        }
        return xero_json(200, envelope(collection, std::move(out), page, size, hits.size()));
    }
};

xero_simulator::xero_simulator(xero_sim_options o)
    : st_(std::make_unique<state>(std::move(o))), oauth_([this] {
          auto oo = st_->options.oauth;
          oo.mode = oauth2_mode::xero;
          if (!oo.now) {
              state* s = st_.get();
              oo.now = [s] { return s->now(); };
          }
          const auto defaults = oauth2_server_options{}.tenants;
          const bool default_tenants =
              oo.tenants.size() == defaults.size() &&
              std::equal(
                  oo.tenants.begin(),
                  oo.tenants.end(),
                  defaults.begin(),
                  [](const oauth2_tenant& a, const oauth2_tenant& b) { return a.id == b.id; });
          if (default_tenants) {
              oo.tenants.clear();
              for (const auto& t : st_->options.tenants) {
                  oo.tenants.push_back({t, "Sim Org " + t.substr(0, 4)});
              }
          }
          return oo;
      }()) {}

xero_simulator::~xero_simulator() = default;

std::string_view xero_simulator::name() const noexcept { return "xero"; }

oauth2_server& xero_simulator::oauth() { return oauth_; }

void xero_simulator::configure(sim_server& server) {
    if (!st_->options.enforce_limits || st_->options.max_concurrent == 0) {
        return;
    }
    rate_limit_rule rule;
    rule.path_prefix = std::string(api_prefix);
    rule.max_concurrent = st_->options.max_concurrent;
    rule.key = [](const http::request& req) {
        return std::string(req.header_value("xero-tenant-id"));
    };
    rule.reject = [](const limit_hit&) {
        auto r = xero_json(429,
                           json{{"Title", "Too Many Requests"},
                                {"Status", 429},
                                {"Detail", "Too many concurrent requests"}});
        r.headers.push_back({"Retry-After", "1"});
        r.headers.push_back({"X-Rate-Limit-Problem", "concurrent"});
        return r;
    };
    server.add_limit(std::move(rule));
}

void xero_simulator::add_routes(http::router& r) {
    oauth_.add_routes(r);
    auto api_h = [this](http::request req) { return api_held(std::move(req)); };
    auto admin_h = [this](http::request req) { return admin(std::move(req)); };
    for (const auto* method : {"GET", "PUT", "POST"}) {
        r.add_prefix(method, std::string(api_prefix), "/api.xro/2.0/:any", api_h);
    }
    r.add_prefix("POST", std::string(admin_prefix), "/_sim/xero/:any", admin_h);
}

net::awaitable<http::response> xero_simulator::api_held(http::request req) {
    const bool create = req.method == "PUT" && req.path.ends_with("/Invoices");
    auto resp = co_await api(std::move(req));
    std::chrono::milliseconds hold{0};
    if (create) {
        std::lock_guard lock(st_->mutex);
        hold = st_->create_hold;
    }
    if (hold.count() > 0) {
        net::steady_timer t(co_await net::this_coro::executor);
        t.expires_after(hold);
        (void)co_await t.async_wait(as_tuple_awaitable);
    }
    co_return resp;
}

void xero_simulator::hold_create_answers(std::chrono::milliseconds hold) {
    std::lock_guard lock(st_->mutex);
    st_->create_hold = hold;
}

net::awaitable<http::response> xero_simulator::api(http::request req) {
    state* s = st_.get();
    const auto bearer = req.header_value("Authorization");
    if (!bearer.starts_with("Bearer ") || !oauth_.access_token_valid(bearer.substr(7))) {
        auto r = xero_json(401,
                           json{{"Type", nullptr},
                                {"Title", "Unauthorized"},
                                {"Status", 401},
                                {"Detail", "TokenExpired: token expired or invalid"}});
        r.headers.push_back({"WWW-Authenticate", R"(Bearer error="invalid_token")"});
        co_return r;
    }
    std::lock_guard lock(s->mutex);
    const std::string tenant(req.header_value("xero-tenant-id"));
    auto td_it = s->tenants.find(tenant);
    if (tenant.empty() || td_it == s->tenants.end()) {
        co_return xero_json(403,
                            json{{"Type", nullptr},
                                 {"Title", "Forbidden"},
                                 {"Status", 403},
                                 {"Detail", "AuthenticationUnsuccessful"}});
    }
    auto& td = td_it->second;
    if (auto refused = s->limit(td)) {
        s->remaining(td, *refused);
        co_return *refused;
    }
    auto finish = [&](http::response r) {
        s->remaining(td, r);
        return r;
    };
    const auto parts = split(std::string_view(req.path).substr(api_prefix.size()), '/');
    if (parts.empty() ||
        std::find(collections.begin(), collections.end(), parts[0]) == collections.end()) {
        co_return finish(not_found());
    }
    const std::string collection = parts[0];
    const auto idx = s->index(collection);

    // Writes: the Idempotency-Key cache first.
    const std::string key(req.header_value("Idempotency-Key"));
    const std::string fingerprint = req.method + " " + req.path + "\n" + req.body;
    if (req.method != "GET" && !key.empty()) {
        if (key.size() > 128) {
            co_return finish(validation("Idempotency-Key is longer than 128 characters"));
        }
        const auto cached = s->keys.find(tenant + "\n" + key);
        if (cached != s->keys.end()) {
            if (cached->second.request != fingerprint) {
                co_return finish(
                    validation("Idempotency Key: " + key + " is used with a different request."));
            }
            ++s->replays;
            auto r = cached->second.status == 204
                         ? http::response::text(204, "")
                         : http::response::json(cached->second.status, cached->second.body);
            co_return finish(std::move(r));
        }
    }
    auto remember = [&](http::response r) {
        if (req.method != "GET" && !key.empty() && r.status < 500) {
            s->keys[tenant + "\n" + key] = cached_write{fingerprint, r.status, r.body};
        }
        return finish(std::move(r));
    };
    const bool summarize = http::query_param(req.query, "summarizeErrors") != "false";

    if (req.method == "GET") {
        if (parts.size() == 1) {
            co_return finish(s->list(td, collection, req));
        }
        const auto it = td.rows[idx].find(parts[1]);
        if (it == td.rows[idx].end()) {
            co_return finish(not_found());
        }
        if (parts.size() == 3 && parts[2] == "OnlineInvoice" && collection == "Invoices") {
            const auto status = text_of(it->second, "Status");
            if (text_of(it->second, "Type") != "ACCREC" ||
                (status != "AUTHORISED" && status != "PAID")) {
                co_return finish(
                    validation("Online invoices are only available for approved "
                               "sales invoices"));
            }
            co_return finish(xero_json(
                200,
                json{{"OnlineInvoices",
                      json::array(
                          {{{"OnlineInvoiceUrl", s->options.online_invoice_base + parts[1]}}})}}));
        }
        if (parts.size() != 2) {
            co_return finish(not_found());
        }
        co_return finish(
            xero_json(200, s->envelope(collection, json::array({s->render(it->second)}), 0, 0, 0)));
    }

    std::string perr;
    auto body = mappings::parse_exact(req.body.empty() ? "{}" : req.body, perr);
    if (!body || !body->is_object()) {
        co_return finish(validation("The request body is not JSON"));
    }
    // POST /Invoices/{id}/Email
    if (req.method == "POST" && collection == "Invoices" && parts.size() == 3 &&
        parts[2] == "Email") {
        auto it = td.rows[1].find(parts[1]);
        if (it == td.rows[1].end()) {
            co_return remember(not_found());
        }
        auto& inv = it->second;
        if (text_of(inv, "Type") != "ACCREC" || text_of(inv, "Status") != "AUTHORISED" ||
            text_of(inv["Contact"], "EmailAddress").empty()) {
            co_return remember(validation(
                "Invoices can only be emailed when approved and the contact has an email address"));
        }
        ++s->emails;
        inv["SentToContact"] = true;
        s->touch(inv);
        s->queue_event(tenant, "INVOICE", parts[1], false);
        co_return remember(http::response::text(204, ""));
    }
    const auto* items = body->contains(collection) && (*body)[collection].is_array()
                            ? &(*body)[collection]
                            : nullptr;
    json list = items != nullptr ? *items : json::array({*body});
    json saved = json::array();
    std::string first_error;
    for (const auto& item : list) {
        std::string error;
        std::optional<json> row;
        if (parts.size() == 2 && req.method == "POST" && collection == "Invoices") {
            row = s->update_invoice(td, tenant, parts[1], item, error);
            if (!row && error == "not found") {
                co_return remember(not_found());
            }
        } else if (parts.size() == 1 && collection == "Invoices") {
            row = s->make_invoice(td, tenant, item, "DRAFT", error);
            if (row) {
                ++s->creates;
            }
        } else if (collection == "Contacts" && req.method == "POST" &&
                   (parts.size() == 2 || !text_of(item, "ContactID").empty())) {
            row = s->update_contact(
                td, tenant, parts.size() == 2 ? parts[1] : text_of(item, "ContactID"), item, error);
            if (!row && error == "not found") {
                co_return remember(not_found());
            }
        } else if (parts.size() == 1 && collection == "Contacts") {
            row = s->make_contact(td, tenant, item, error);
        } else if (parts.size() == 1 && collection == "Payments") {
            row = s->make_payment(td, tenant, item, error);
        } else if (parts.size() == 1 && collection == "Items") {
            row = s->save_item(td, item, error);
        } else {
            co_return remember(not_found());
        }
        if (row) {
            saved.push_back(s->render(*row));
        } else {
            first_error = first_error.empty() ? error : first_error;
            auto failed = item;
            failed["HasErrors"] = true;
            failed["ValidationErrors"] = json::array({{{"Message", error}}});
            numbers_out(failed);
            saved.push_back(std::move(failed));
        }
    }
    if (!first_error.empty() && summarize) {
        co_return remember(validation(first_error));
    }
    co_return remember(xero_json(200, s->envelope(collection, std::move(saved), 0, 0, 0)));
}

net::awaitable<http::response> xero_simulator::admin(http::request req) {
    const auto parts = split(std::string_view(req.path).substr(admin_prefix.size()), '/');
    auto body = json::parse(req.body.empty() ? "{}" : req.body, nullptr, false);
    if (!body.is_object()) {
        co_return http::response::error(400, "bad_request", "body is not a JSON object");
    }
    if (parts.size() == 1 && (parts[0] == "deliver" || parts[0] == "itr")) {
        const auto url = body.value("url", std::string());
        json statuses = json::array();
        if (parts[0] == "deliver") {
            for (auto st : deliver(url)) {
                statuses.push_back(st);
            }
        } else {
            for (const auto& a : intent_to_receive(url)) {
                statuses.push_back(a.status);
            }
        }
        co_return http::response::json(200, json{{"statuses", statuses}}.dump());
    }
    if (parts.size() == 2) {
        json out;
        if (parts[1] == "contact") {
            out = add_contact(parts[0], body);
        } else if (parts[1] == "invoice") {
            out = add_invoice(parts[0], body);
        } else if (parts[1] == "payment") {
            out = add_payment(parts[0], body);
        } else if (parts[1] == "item") {
            out = save_item(parts[0], body);
        } else {
            co_return http::response::error(404, "not_found", "unknown admin route");
        }
        co_return http::response::json(out.contains("error") ? 400 : 200, out.dump());
    }
    co_return http::response::error(404, "not_found", "unknown admin route");
}

namespace {
template <typename Fn>
json business(std::mutex& m, Fn fn) {
    std::lock_guard lock(m);
    std::string error;
    auto row = fn(error);
    return row ? *row : json{{"error", error}};
}
}  // namespace

nlohmann::json xero_simulator::add_contact(const std::string& tenant, nlohmann::json fields) {
    state* s = st_.get();
    return business(s->mutex, [&](std::string& error) -> std::optional<json> {
        auto row = s->make_contact(s->tenants[tenant], tenant, std::move(fields), error);
        return row ? std::optional(s->render(*row)) : std::nullopt;
    });
}

nlohmann::json xero_simulator::save_item(const std::string& tenant, nlohmann::json fields) {
    state* s = st_.get();
    return business(s->mutex, [&](std::string& error) -> std::optional<json> {
        auto row = s->save_item(s->tenants[tenant], std::move(fields), error);
        return row ? std::optional(s->render(*row)) : std::nullopt;
    });
}

nlohmann::json xero_simulator::update_contact(const std::string& tenant,
                                              const std::string& id,
                                              const nlohmann::json& fields) {
    state* s = st_.get();
    return business(s->mutex, [&](std::string& error) -> std::optional<json> {
        auto row = s->update_contact(s->tenants[tenant], tenant, id, fields, error);
        return row ? std::optional(s->render(*row)) : std::nullopt;
    });
}

nlohmann::json xero_simulator::add_invoice(const std::string& tenant, nlohmann::json fields) {
    state* s = st_.get();
    return business(s->mutex, [&](std::string& error) -> std::optional<json> {
        auto row =
            s->make_invoice(s->tenants[tenant], tenant, std::move(fields), "AUTHORISED", error);
        return row ? std::optional(s->render(*row)) : std::nullopt;
    });
}

nlohmann::json xero_simulator::add_payment(const std::string& tenant, nlohmann::json fields) {
    state* s = st_.get();
    return business(s->mutex, [&](std::string& error) -> std::optional<json> {
        auto row = s->make_payment(s->tenants[tenant], tenant, std::move(fields), error);
        return row ? std::optional(s->render(*row)) : std::nullopt;
    });
}

nlohmann::json xero_simulator::void_invoice(const std::string& tenant, const std::string& id) {
    state* s = st_.get();
    return business(s->mutex, [&](std::string& error) -> std::optional<json> {
        auto row =
            s->update_invoice(s->tenants[tenant], tenant, id, json{{"Status", "VOIDED"}}, error);
        return row ? std::optional(s->render(*row)) : std::nullopt;
    });
}

std::optional<nlohmann::json> xero_simulator::get(const std::string& tenant,
                                                  std::string_view collection,
                                                  const std::string& id) const {
    std::lock_guard lock(st_->mutex);
    const auto t = st_->tenants.find(tenant);
    if (t == st_->tenants.end()) {
        return std::nullopt;
    }
    const auto& rows = t->second.rows[st_->index(collection)];
    const auto it = rows.find(id);
    return it == rows.end() ? std::nullopt : std::optional(st_->render(it->second));
}

std::size_t xero_simulator::count(const std::string& tenant, std::string_view collection) const {
    std::lock_guard lock(st_->mutex);
    const auto t = st_->tenants.find(tenant);
    return t == st_->tenants.end() ? 0 : t->second.rows[st_->index(collection)].size();
}

std::vector<xero_simulator::listed> xero_simulator::list(const std::string& tenant,
                                                         std::string_view collection) const {
    std::lock_guard lock(st_->mutex);
    std::vector<listed> out;
    const auto t = st_->tenants.find(tenant);
    if (t == st_->tenants.end()) {
        return out;
    }
    for (const auto& [id, row] : t->second.rows[st_->index(collection)]) {
        listed l;
        l.object = st_->render(row);
        if (const auto ms = row.find("_created_ms"); ms != row.end() && ms->is_number_integer()) {
            l.created = util::instant(std::chrono::milliseconds(ms->get<std::int64_t>()));
        }
        out.push_back(std::move(l));
    }
    return out;
}

xero_delivery xero_simulator::sign(std::string body) const {
    xero_delivery d;
    d.signature = util::base64_encode(util::hmac_sha256(st_->options.webhook_key, body));
    d.body = std::move(body);
    return d;
}

std::vector<xero_delivery> xero_simulator::take_deliveries(std::size_t events_per_delivery) {
    std::vector<json> events;
    std::uint64_t serial = 0;
    {
        std::lock_guard lock(st_->mutex);
        events.swap(st_->events);
        serial = st_->serial;
    }
    std::vector<xero_delivery> out;
    const auto per = std::max<std::size_t>(1, events_per_delivery);
    for (std::size_t i = 0; i < events.size(); i += per) {
        json batch = json::array();
        for (auto k = i; k < std::min(events.size(), i + per); ++k) {
            batch.push_back(events[k]);
        }
        const auto n = batch.size();
        json body{{"events", std::move(batch)},
                  {"firstEventSequence", i + 1},
                  {"lastEventSequence", i + n},
                  {"entropy",
                   util::hex_encode(util::sha256(std::to_string(serial) + ":" + std::to_string(i)))
                       .substr(0, 20)}};
        out.push_back(sign(body.dump()));
    }
    return out;
}

namespace {
unsigned post(const std::string& url, const xero_delivery& d, std::string* body = nullptr) {
    const auto target = http::parse_url(url);
    if (!target || target->scheme != "http") {
        return 0;
    }
    const auto r =
        http::fetch(target->host,
                    target->port,
                    "POST",
                    target->target,
                    {{"Content-Type", "application/json"}, {"x-xero-signature", d.signature}},
                    d.body);
    if (body != nullptr) {
        *body = r.body;
    }
    return r.status;
}
}  // namespace

std::vector<unsigned> xero_simulator::deliver(const std::string& url,
                                              std::size_t events_per_delivery) {
    std::vector<unsigned> out;
    for (const auto& d : take_deliveries(events_per_delivery)) {
        out.push_back(post(url, d));
    }
    return out;
}

std::vector<xero_simulator::itr_answer> xero_simulator::intent_to_receive(const std::string& url,
                                                                          std::size_t n) {
    std::vector<itr_answer> out;
    for (std::size_t wrong = 0; wrong < 2; ++wrong) {
        for (std::size_t i = 0; i < n; ++i) {
            const json body{
                {"events", json::array()},
                {"firstEventSequence", 0},
                {"lastEventSequence", 0},
                {"entropy",
                 util::hex_encode(util::sha256(std::to_string(wrong * 100 + i))).substr(0, 20)}};
            auto d = sign(body.dump());
            if (wrong == 1) {
                // One character off, as Xero's own check does.
                d.signature[0] = d.signature[0] == 'A' ? 'B' : 'A';
            }
            itr_answer a;
            a.status = post(url, d, &a.body);
            out.push_back(std::move(a));
        }
    }
    return out;
}

std::size_t xero_simulator::pending_events() const {
    std::lock_guard lock(st_->mutex);
    return st_->events.size();
}

std::uint64_t xero_simulator::idempotent_replays() const {
    std::lock_guard lock(st_->mutex);
    return st_->replays;
}

std::uint64_t xero_simulator::invoices_created() const {
    std::lock_guard lock(st_->mutex);
    return st_->creates;
}

std::uint64_t xero_simulator::emails_sent() const {
    std::lock_guard lock(st_->mutex);
    return st_->emails;
}

std::uint64_t xero_simulator::rejections() const {
    std::lock_guard lock(st_->mutex);
    return st_->rejected;
}

}  // namespace billsync::simulators
