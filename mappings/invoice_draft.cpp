#include "mappings/invoice_draft.hpp"

#include <algorithm>
#include <limits>

#include "mappings/money.hpp"
#include "util/crypto.hpp"

namespace billsync::mappings {

namespace {

using json = nlohmann::json;

bool is_plain_decimal(std::string_view s) {
    std::size_t i = 0;
    if (i < s.size() && s[i] == '-') {
        ++i;
    }
    std::size_t int_digits = 0;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
        ++i;
        ++int_digits;
    }
    if (int_digits == 0) {
        return false;
    }
    if (i == s.size()) {
        return true;
    }
    if (s[i] != '.') {
        return false;
    }
    ++i;
    std::size_t frac_digits = 0;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
        ++i;
        ++frac_digits;
    }
    return frac_digits > 0 && i == s.size();
}

// "001.500" -> "1.5"; "2.0" -> "2". Input is a plain non-negative decimal.
std::string normalise(std::string_view s) {
    std::string out(s);
    if (out.find('.') != std::string::npos) {
        while (out.back() == '0') {
            out.pop_back();
        }
        if (out.back() == '.') {
            out.pop_back();
        }
    }
    const auto first = out.find_first_not_of('0');
    if (first == std::string::npos || out[first] == '.') {
        out.erase(0, first == std::string::npos ? out.size() - 1 : first - 1);
    } else {
        out.erase(0, first);
    }
    return out;
}

struct fixed {
    std::int64_t units = 0;  // quantity x 10^decimals
    int decimals = 0;
};

std::optional<fixed> parse_fixed(std::string_view s) {
    fixed f;
    bool frac = false;
    for (const char c : s) {
        if (c == '.') {
            frac = true;
            continue;
        }
        if (__builtin_mul_overflow(f.units, 10, &f.units) ||
            __builtin_add_overflow(f.units, c - '0', &f.units)) {
            return std::nullopt;
        }
        f.decimals += frac ? 1 : 0;
    }
    return f;
}

std::optional<std::int64_t> pow10(int n) {
    std::int64_t p = 1;
    for (int i = 0; i < n; ++i) {
        if (__builtin_mul_overflow(p, 10, &p)) {
            return std::nullopt;
        }
    }
    return p;
}

std::string text_field(const json& j, std::string_view key, std::string& error, bool required) {
    const auto it = j.find(key);
    if (it == j.end() || it->is_null()) {
        if (required) {
            error = "\"" + std::string(key) + "\" is missing";
        }
        return {};
    }
    if (!it->is_string()) {
        error = "\"" + std::string(key) + "\" is not a string";
        return {};
    }
    auto v = it->get<std::string>();
    if (required && v.empty()) {
        error = "\"" + std::string(key) + "\" is empty";
    }
    return v;
}

// An integer amount in minor units; nullopt with error for floats, strings, negatives, overflow.
std::optional<std::int64_t> amount_field(const json& j, std::string_view key, std::string& error) {
    const auto it = j.find(key);
    const auto name = "\"" + std::string(key) + "\"";
    if (it == j.end() || it->is_null()) {
        error = name + " is missing";
        return std::nullopt;
    }
    if (it->is_number_unsigned()) {
        const auto v = it->get<std::uint64_t>();
        if (v > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
            error = name + " is too large";
            return std::nullopt;
        }
        return static_cast<std::int64_t>(v);
    }
    if (!it->is_number_integer()) {
        error = name + " is not an integer amount in minor units";
        return std::nullopt;
    }
    const auto v = it->get<std::int64_t>();
    if (v < 0) {
        error = name + " is negative";
        return std::nullopt;
    }
    return v;
}

}  // namespace

std::int64_t invoice_draft::total_minor() const noexcept {
    std::int64_t t = 0;
    for (const auto& l : lines) {
        t += l.amount_minor;
    }
    return t;
}

parsed_invoice_draft parse_invoice_draft(const json& p) {
    parsed_invoice_draft out;
    auto fail = [&](std::string why) {
        out.error = std::move(why);
        return std::move(out);
    };
    if (!p.is_object()) {
        return fail("the payload is not a JSON object");
    }
    invoice_draft d;
    std::string error;
    d.key = text_field(p, "key", error, true);
    if (!error.empty()) {
        return fail(error);
    }
    d.client_ref = text_field(p, "client_ref", error, true);
    if (!error.empty()) {
        return fail(error);
    }
    d.currency = text_field(p, "currency", error, true);
    if (!error.empty()) {
        return fail(error);
    }
    if (d.currency.size() != 3 || !std::all_of(d.currency.begin(), d.currency.end(), [](char c) {
            return c >= 'A' && c <= 'Z';
        })) {
        return fail("\"currency\" is not an ISO 4217 code (three capital letters)");
    }
    const auto issue = text_field(p, "issue_date", error, true);
    if (!error.empty()) {
        return fail(error);
    }
    const auto issue_date = parse_civil_date(issue);
    if (!issue_date) {
        return fail("\"issue_date\" is not a YYYY-MM-DD date");
    }
    d.issue_date = *issue_date;
    const auto due = text_field(p, "due_date", error, false);
    if (!error.empty()) {
        return fail(error);
    }
    if (!due.empty()) {
        d.due_date = parse_civil_date(due);
        if (!d.due_date) {
            return fail("\"due_date\" is not a YYYY-MM-DD date");
        }
        if (*d.due_date < d.issue_date) {
            return fail("\"due_date\" is before \"issue_date\"");
        }
    }
    d.po_number = text_field(p, "po_number", error, false);
    if (!error.empty()) {
        return fail(error);
    }
    d.memo = text_field(p, "memo", error, false);
    if (!error.empty()) {
        return fail(error);
    }
    const auto lines = p.find("lines");
    if (lines == p.end() || !lines->is_array() || lines->empty()) {
        return fail("\"lines\" is missing or empty");
    }
    std::int64_t total = 0;
    for (std::size_t i = 0; i < lines->size(); ++i) {
        const auto& lj = (*lines)[i];
        const auto where = "lines[" + std::to_string(i) + "]";
        if (!lj.is_object()) {
            return fail(where + " is not an object");
        }
        invoice_draft_line l;
        l.description = text_field(lj, "description", error, false);
        l.item_ref = text_field(lj, "item_ref", error, false);
        l.account_code = text_field(lj, "account_code", error, false);
        l.tax_code = text_field(lj, "tax_code", error, false);
        if (!error.empty()) {
            return fail(where + ": " + error);
        }
        if (l.description.empty() && l.item_ref.empty()) {
            return fail(where + " has neither a description nor an item_ref");
        }
        const auto amount = amount_field(lj, "amount_minor", error);
        if (!amount) {
            return fail(where + ": " + error);
        }
        l.amount_minor = *amount;
        if (__builtin_add_overflow(total, *amount, &total)) {
            return fail("the invoice total overflows");
        }
        if (lj.contains("unit_amount_minor") && !lj["unit_amount_minor"].is_null()) {
            const auto unit = amount_field(lj, "unit_amount_minor", error);
            if (!unit) {
                return fail(where + ": " + error);
            }
            l.unit_amount_minor = *unit;
        }
        if (const auto q = lj.find("quantity"); q != lj.end() && !q->is_null()) {
            std::string text;
            if (q->is_string()) {
                text = q->get<std::string>();
            } else if (q->is_number_integer()) {
                text = q->dump();
            } else {
                return fail(where + ": \"quantity\" is not exact decimal text");
            }
            if (!is_plain_decimal(text) || text.front() == '-' || text.size() > 30) {
                return fail(where + ": \"quantity\" is not a plain decimal (\"1.5\")");
            }
            l.quantity = normalise(text);
            if (l.quantity == "0") {
                return fail(where + ": \"quantity\" is zero");
            }
        }
        d.lines.push_back(std::move(l));
    }
    out.value = std::move(d);
    return out;
}

parsed_invoice_draft parse_invoice_draft(std::string_view payload) {
    const auto j = json::parse(payload, nullptr, false);
    if (j.is_discarded()) {
        parsed_invoice_draft out;
        out.error = "the payload is not JSON";
        return out;
    }
    return parse_invoice_draft(j);
}

line_pricing price_line(const invoice_draft_line& l,
                        int currency_digits,
                        int max_quantity_decimals) {
    line_pricing out;
    out.quantity = l.quantity;
    out.description = l.description;
    const auto q = parse_fixed(l.quantity);
    const auto scale = q ? pow10(q->decimals) : std::nullopt;
    std::int64_t target = 0;  // amount x 10^decimals
    bool exact = q && scale && q->decimals <= max_quantity_decimals && q->units > 0 &&
                 !__builtin_mul_overflow(l.amount_minor, *scale, &target);
    if (exact) {
        if (l.unit_amount_minor) {
            out.unit_minor = *l.unit_amount_minor;
            std::int64_t product = 0;
            exact =
                !__builtin_mul_overflow(q->units, out.unit_minor, &product) && product == target;
        } else {
            exact = target % q->units == 0;
            out.unit_minor = exact ? target / q->units : 0;
        }
    }
    if (exact) {
        return out;
    }
    out.collapsed = true;
    out.quantity = "1";
    out.unit_minor = l.amount_minor;
    if (l.quantity != "1") {
        std::string note = l.quantity;
        if (l.unit_amount_minor) {
            note += " x " + format_decimal(*l.unit_amount_minor, currency_digits);
        }
        out.description += out.description.empty() ? note : " (" + note + ")";
    }
    return out;
}

std::string key_marker(std::string_view key) {
    return "billsync:" + util::hex_encode(util::sha256(key)).substr(0, 20);
}

namespace {

void dump_into(std::string& out,
               const json& j,
               std::initializer_list<std::string_view> keys,
               bool numeric) {
    if (numeric && j.is_string() && is_plain_decimal(j.get_ref<const std::string&>())) {
        out += j.get_ref<const std::string&>();
        return;
    }
    if (j.is_object()) {
        out += '{';
        bool first = true;
        for (const auto& [k, v] : j.items()) {
            out += first ? "" : ",";
            first = false;
            out += json(k).dump();
            out += ':';
            dump_into(out, v, keys, std::find(keys.begin(), keys.end(), k) != keys.end());
        }
        out += '}';
        return;
    }
    if (j.is_array()) {
        out += '[';
        bool first = true;
        for (const auto& v : j) {
            out += first ? "" : ",";
            first = false;
            dump_into(out, v, keys, false);
        }
        out += ']';
        return;
    }
    out += j.dump();
}

}  // namespace

std::string dump_exact(const json& j, std::initializer_list<std::string_view> numeric_keys) {
    std::string out;
    dump_into(out, j, numeric_keys, false);
    return out;
}

}  // namespace billsync::mappings
