#include "mappings/model.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <utility>

namespace billsync::mappings {

namespace {

using nlohmann::json;

bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }

// Reads exactly n digits at text[pos]; false when any is not a digit.
bool read_digits(std::string_view text, std::size_t pos, std::size_t n, int& out) noexcept {
    if (pos + n > text.size()) {
        return false;
    }
    int v = 0;
    for (std::size_t i = pos; i < pos + n; ++i) {
        if (!is_digit(text[i])) {
            return false;
        }
        v = v * 10 + (text[i] - '0');
    }
    out = v;
    return true;
}

template <typename Enum, std::size_t N>
std::optional<Enum> from_names(const std::array<std::string_view, N>& names,
                               std::string_view s) noexcept {
    for (std::size_t i = 0; i < N; ++i) {
        if (names[i] == s) {
            return static_cast<Enum>(i);
        }
    }
    return std::nullopt;
}

template <typename Enum, std::size_t N>
std::string_view name_of(const std::array<std::string_view, N>& names, Enum e) noexcept {
    const auto i = static_cast<std::size_t>(e);
    return i < N ? names[i] : std::string_view("unknown");
}

constexpr std::array<std::string_view, 4> invoice_status_names = {"draft", "open", "paid", "void"};
constexpr std::array<std::string_view, 4> delivery_status_names = {
    "not_sent", "sent", "delivered", "failed"};
constexpr std::array<std::string_view, 4> line_kind_names = {
    "item", "discount", "description", "other"};
constexpr std::array<std::string_view, 12> invoice_change_names = {"created",
                                                                   "deleted",
                                                                   "voided",
                                                                   "reopened",
                                                                   "status_changed",
                                                                   "amount_changed",
                                                                   "balance_to_zero",
                                                                   "partial_payment",
                                                                   "balance_increased",
                                                                   "due_date_later",
                                                                   "due_date_earlier",
                                                                   "delivery_changed"};
constexpr std::array<std::string_view, 10> client_change_names = {"created",
                                                                  "deleted",
                                                                  "name_changed",
                                                                  "contact_changed",
                                                                  "payment_plan_changed",
                                                                  "retainer_changed",
                                                                  "active_changed",
                                                                  "tags_changed",
                                                                  "currency_changed",
                                                                  "code_changed"};

// ---- JSON helpers ----------------------------------------------------------------------------

struct decode_error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

json money_json(const money& m) { return json{{"minor", m.minor}, {"currency", m.currency}}; }

json date_json(const std::optional<civil_date>& d) {
    return d ? json(format_civil_date(*d)) : json(nullptr);
}

json source_json(const source_ref& s) {
    return json{{"system", s.system},
                {"account", s.account},
                {"id", s.id},
                {"version", s.version},
                {"updated", s.updated ? json(format_timestamp(*s.updated)) : json(nullptr)}};
}

const json& field(const json& j, std::string_view key) {
    const auto it = j.find(key);
    if (it == j.end()) {
        throw decode_error("missing '" + std::string(key) + "'");
    }
    return *it;
}

std::string str(const json& j, std::string_view key) {
    const auto& v = field(j, key);
    if (!v.is_string()) {
        throw decode_error("'" + std::string(key) + "' must be a string");
    }
    return v.get<std::string>();
}

bool boolean(const json& j, std::string_view key) {
    const auto& v = field(j, key);
    if (!v.is_boolean()) {
        throw decode_error("'" + std::string(key) + "' must be a boolean");
    }
    return v.get<bool>();
}

money money_of(const json& j, std::string_view key) {
    const auto& v = field(j, key);
    if (!v.is_object() || !v.contains("minor") || !v["minor"].is_number_integer()) {
        throw decode_error("'" + std::string(key) + "' must be {minor, currency}");
    }
    return money{v["minor"].get<std::int64_t>(), str(v, "currency")};
}

std::optional<civil_date> date_of(const json& j, std::string_view key) {
    const auto& v = field(j, key);
    if (v.is_null()) {
        return std::nullopt;
    }
    if (!v.is_string()) {
        throw decode_error("'" + std::string(key) + "' must be a date string or null");
    }
    auto d = parse_civil_date(v.get<std::string>());
    if (!d) {
        throw decode_error("'" + std::string(key) + "' is not a YYYY-MM-DD date");
    }
    return d;
}

template <typename Enum>
Enum enum_of(const json& j,
             std::string_view key,
             std::optional<Enum> (*parse)(std::string_view) noexcept) {
    auto e = parse(str(j, key));
    if (!e) {
        throw decode_error("'" + std::string(key) + "' has an unknown value");
    }
    return *e;
}

source_ref source_of(const json& j) {
    const auto& s = field(j, "source");
    source_ref out;
    out.system = str(s, "system");
    out.account = str(s, "account");
    out.id = str(s, "id");
    out.version = str(s, "version");
    const auto& u = field(s, "updated");
    if (!u.is_null()) {
        if (!u.is_string()) {
            throw decode_error("'updated' must be a timestamp string or null");
        }
        out.updated = parse_timestamp(u.get<std::string>());
        if (!out.updated) {
            throw decode_error("'updated' is not a timestamp");
        }
    }
    return out;
}

template <typename T, typename Fn>
std::optional<T> decode(const json& j, std::string& error, Fn fn) {
    try {
        if (!j.is_object()) {
            throw decode_error("not a JSON object");
        }
        return fn();
    } catch (const std::exception& e) {  // decode_error and nlohmann::json::exception
        error = e.what();
        return std::nullopt;
    }
}

std::string flag(bool b) { return b ? "true" : "false"; }

}  // namespace

// ---- phone numbers ---------------------------------------------------------------------------

std::optional<std::string> normalize_e164(std::string_view text,
                                          std::string_view default_calling_code) {
    std::string digits;
    bool international = false;
    bool seen_digit = false;
    for (std::size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        if (is_digit(c)) {
            digits.push_back(c);
            seen_digit = true;
        } else if (c == '+' && !seen_digit && !international) {
            international = true;
        } else if (c != ' ' && c != '-' && c != '.' && c != '(' && c != ')' && c != '/' &&
                   c != '\t') {
            return std::nullopt;  // letters, extensions ("x12"), stray symbols
        }
        if (digits.size() > 20) {
            return std::nullopt;
        }
    }
    if (!international && digits.starts_with("00")) {
        international = true;
        digits.erase(0, 2);
    }
    if (!international) {
        if (default_calling_code.empty() ||
            !std::all_of(default_calling_code.begin(), default_calling_code.end(), is_digit)) {
            return std::nullopt;
        }
        if (default_calling_code == "1") {
            if (digits.size() == 11 && digits[0] == '1') {
                digits.erase(0, 1);
            }
            if (digits.size() != 10) {
                return std::nullopt;
            }
        } else if (digits.starts_with("0")) {
            digits.erase(0, 1);
        }
        digits.insert(0, default_calling_code);
    }
    if (digits.size() < 7 || digits.size() > 15 || digits[0] == '0') {
        return std::nullopt;
    }
    if (digits[0] == '1' && digits.size() != 11) {
        return std::nullopt;  // NANP numbers are +1 and ten digits
    }
    return "+" + digits;
}

// ---- client codes ----------------------------------------------------------------------------

std::string trim_client_code(std::string_view text) {
    const auto blank = [](char c) {
        return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
    };
    while (!text.empty() && blank(text.front())) {
        text.remove_prefix(1);
    }
    while (!text.empty() && blank(text.back())) {
        text.remove_suffix(1);
    }
    return std::string(text);
}

std::string client_code_key(std::string_view code) {
    auto out = trim_client_code(code);
    for (auto& c : out) {
        if (c >= 'A' && c <= 'Z') {
            c = static_cast<char>(c - 'A' + 'a');
        }
    }
    return out;
}

// ---- names -----------------------------------------------------------------------------------

std::string_view to_string(invoice_status s) noexcept { return name_of(invoice_status_names, s); }
std::string_view to_string(delivery_status s) noexcept { return name_of(delivery_status_names, s); }
std::string_view to_string(line_kind k) noexcept { return name_of(line_kind_names, k); }
std::string_view to_string(invoice_change_kind k) noexcept {
    return name_of(invoice_change_names, k);
}
std::string_view to_string(client_change_kind k) noexcept {
    return name_of(client_change_names, k);
}
std::optional<invoice_status> invoice_status_from(std::string_view s) noexcept {
    return from_names<invoice_status>(invoice_status_names, s);
}
std::optional<delivery_status> delivery_status_from(std::string_view s) noexcept {
    return from_names<delivery_status>(delivery_status_names, s);
}
std::optional<line_kind> line_kind_from(std::string_view s) noexcept {
    return from_names<line_kind>(line_kind_names, s);
}

// ---- dates and times -------------------------------------------------------------------------

std::optional<civil_date> parse_civil_date(std::string_view text) noexcept {
    int y = 0;
    int m = 0;
    int d = 0;
    if (text.size() != 10 || text[4] != '-' || text[7] != '-' || !read_digits(text, 0, 4, y) ||
        !read_digits(text, 5, 2, m) || !read_digits(text, 8, 2, d)) {
        return std::nullopt;
    }
    const civil_date date{std::chrono::year(y),
                          std::chrono::month(static_cast<unsigned>(m)),
                          std::chrono::day(static_cast<unsigned>(d))};
    if (!date.ok()) {
        return std::nullopt;
    }
    return date;
}

std::string format_civil_date(civil_date d) {
    char buf[16];
    std::snprintf(buf,
                  sizeof buf,
                  "%04d-%02u-%02u",
                  static_cast<int>(d.year()),
                  static_cast<unsigned>(d.month()),
                  static_cast<unsigned>(d.day()));
    return buf;
}

std::optional<instant> parse_timestamp(std::string_view text) noexcept {
    if (text.size() < 20) {
        return std::nullopt;
    }
    const auto date = parse_civil_date(text.substr(0, 10));
    if (!date) {
        return std::nullopt;
    }
    int hh = 0;
    int mm = 0;
    int ss = 0;
    const char t = text[10];
    if ((t != 'T' && t != 't' && t != ' ') || !read_digits(text, 11, 2, hh) || text[13] != ':' ||
        !read_digits(text, 14, 2, mm) || text[16] != ':' || !read_digits(text, 17, 2, ss) ||
        hh > 23 || mm > 59 || ss > 60) {
        return std::nullopt;
    }
    std::size_t pos = 19;
    std::int64_t micros = 0;
    if (pos < text.size() && text[pos] == '.') {
        ++pos;
        std::size_t n = 0;
        while (pos < text.size() && is_digit(text[pos])) {
            if (n < 6) {
                micros = micros * 10 + (text[pos] - '0');
            }
            ++n;
            ++pos;
        }
        if (n == 0) {
            return std::nullopt;
        }
        for (; n < 6; ++n) {
            micros *= 10;
        }
    }
    if (pos >= text.size()) {
        return std::nullopt;
    }
    int offset_minutes = 0;
    const char z = text[pos];
    if (z == 'Z' || z == 'z') {
        ++pos;
    } else if (z == '+' || z == '-') {
        int oh = 0;
        int om = 0;
        const auto rest = text.substr(pos + 1);
        if (rest.size() == 5 && rest[2] == ':' && read_digits(rest, 0, 2, oh) &&
            read_digits(rest, 3, 2, om)) {
            pos += 6;
        } else if (rest.size() == 4 && read_digits(rest, 0, 2, oh) && read_digits(rest, 2, 2, om)) {
            pos += 5;
        } else {
            return std::nullopt;
        }
        if (oh > 23 || om > 59) {
            return std::nullopt;
        }
        offset_minutes = (oh * 60 + om) * (z == '-' ? -1 : 1);
    } else {
        return std::nullopt;
    }
    if (pos != text.size()) {
        return std::nullopt;
    }
    using namespace std::chrono;
    const auto local = sys_days(*date) + hours(hh) + minutes(mm) + seconds(ss);
    return time_point_cast<microseconds>(local) + microseconds(micros) - minutes(offset_minutes);
}

std::string format_timestamp(instant t) {
    using namespace std::chrono;
    const auto day = floor<days>(t);
    const auto tod = t - day;
    const auto h = duration_cast<hours>(tod);
    const auto m = duration_cast<minutes>(tod - h);
    const auto s = duration_cast<seconds>(tod - h - m);
    const auto us = tod - h - m - s;
    char buf[40];
    std::snprintf(buf,
                  sizeof buf,
                  "T%02d:%02d:%02d.%06lldZ",
                  static_cast<int>(h.count()),
                  static_cast<int>(m.count()),
                  static_cast<int>(s.count()),
                  static_cast<long long>(us.count()));
    return format_civil_date(civil_date(day)) + buf;
}

// ---- storage form ----------------------------------------------------------------------------

json to_json(const client& c) {
    return json{{"id", c.id},
                {"display_name", c.display_name},
                {"client_code", c.client_code},
                {"contact",
                 {{"billing_email", c.contact.billing_email},
                  {"mobile", c.contact.mobile},
                  {"mobile_raw", c.contact.mobile_raw},
                  {"sms_consent", c.contact.sms_consent}}},
                {"tags", c.tags},
                {"payment_plan", c.payment_plan},
                {"retainer", c.retainer},
                {"active", c.active},
                {"deleted", c.deleted},
                {"currency", c.currency},
                {"source", source_json(c.source)}};
}

json to_json(const invoice& i) {
    json lines = json::array();
    for (const auto& l : i.lines) {
        lines.push_back(json{{"kind", to_string(l.kind)},
                             {"description", l.description},
                             {"quantity", l.quantity},
                             {"unit_price", l.unit_price},
                             {"amount", money_json(l.amount)},
                             {"item_ref", l.item_ref},
                             {"item_name", l.item_name}});
    }
    return json{{"id", i.id},
                {"number", i.number},
                {"client_id", i.client_id},
                {"client_ref", i.client_ref},
                {"issue_date", date_json(i.issue_date)},
                {"due_date", date_json(i.due_date)},
                {"currency", i.currency},
                {"total", money_json(i.total)},
                {"balance", money_json(i.balance)},
                {"status", to_string(i.status)},
                {"deleted", i.deleted},
                {"po_number", i.po_number},
                {"lines", std::move(lines)},
                {"delivery", to_string(i.delivery)},
                {"billing_email", i.billing_email},
                {"payment_link", i.payment_link},
                {"source", source_json(i.source)}};
}

json to_json(const payment& p) {
    json applied = json::array();
    for (const auto& a : p.applied) {
        applied.push_back(json{{"invoice_id", a.invoice_id},
                               {"invoice_ref", a.invoice_ref},
                               {"amount", money_json(a.amount)}});
    }
    return json{{"id", p.id},
                {"client_id", p.client_id},
                {"client_ref", p.client_ref},
                {"amount", money_json(p.amount)},
                {"unapplied", money_json(p.unapplied)},
                {"date", date_json(p.date)},
                {"reference", p.reference},
                {"applied", std::move(applied)},
                {"voided", p.voided},
                {"deleted", p.deleted},
                {"source", source_json(p.source)}};
}

std::optional<client> client_from_json(const json& j, std::string& error) {
    return decode<client>(j, error, [&] {
        client c;
        c.id = str(j, "id");
        c.display_name = str(j, "display_name");
        if (j.contains("client_code")) {  // rows stored before client codes have none
            c.client_code = str(j, "client_code");
        }
        const auto& k = field(j, "contact");
        c.contact.billing_email = str(k, "billing_email");
        c.contact.mobile = str(k, "mobile");
        c.contact.mobile_raw = str(k, "mobile_raw");
        c.contact.sms_consent = boolean(k, "sms_consent");
        c.tags = field(j, "tags").get<std::vector<std::string>>();
        c.payment_plan = boolean(j, "payment_plan");
        c.retainer = boolean(j, "retainer");
        c.active = boolean(j, "active");
        c.deleted = boolean(j, "deleted");
        c.currency = str(j, "currency");
        c.source = source_of(j);
        return c;
    });
}

std::optional<invoice> invoice_from_json(const json& j, std::string& error) {
    return decode<invoice>(j, error, [&] {
        invoice i;
        i.id = str(j, "id");
        i.number = str(j, "number");
        i.client_id = str(j, "client_id");
        i.client_ref = str(j, "client_ref");
        i.issue_date = date_of(j, "issue_date");
        i.due_date = date_of(j, "due_date");
        i.currency = str(j, "currency");
        i.total = money_of(j, "total");
        i.balance = money_of(j, "balance");
        i.status = enum_of<invoice_status>(j, "status", &invoice_status_from);
        i.deleted = boolean(j, "deleted");
        i.po_number = str(j, "po_number");
        const auto& lines = field(j, "lines");
        if (!lines.is_array()) {
            throw decode_error("'lines' must be an array");
        }
        for (const auto& l : lines) {
            line_item li;
            li.kind = enum_of<line_kind>(l, "kind", &line_kind_from);
            li.description = str(l, "description");
            li.quantity = str(l, "quantity");
            li.unit_price = str(l, "unit_price");
            li.amount = money_of(l, "amount");
            li.item_ref = str(l, "item_ref");
            li.item_name = str(l, "item_name");
            i.lines.push_back(std::move(li));
        }
        i.delivery = enum_of<delivery_status>(j, "delivery", &delivery_status_from);
        i.billing_email = str(j, "billing_email");
        i.payment_link = str(j, "payment_link");
        i.source = source_of(j);
        return i;
    });
}

std::optional<payment> payment_from_json(const json& j, std::string& error) {
    return decode<payment>(j, error, [&] {
        payment p;
        p.id = str(j, "id");
        p.client_id = str(j, "client_id");
        p.client_ref = str(j, "client_ref");
        p.amount = money_of(j, "amount");
        p.unapplied = money_of(j, "unapplied");
        p.date = date_of(j, "date");
        p.reference = str(j, "reference");
        const auto& applied = field(j, "applied");
        if (!applied.is_array()) {
            throw decode_error("'applied' must be an array");
        }
        for (const auto& a : applied) {
            p.applied.push_back(
                {str(a, "invoice_id"), str(a, "invoice_ref"), money_of(a, "amount")});
        }
        p.voided = boolean(j, "voided");
        p.deleted = boolean(j, "deleted");
        p.source = source_of(j);
        return p;
    });
}

// ---- messaging and practice entities --------------------------------------------------------

std::string_view to_string(channel c) noexcept { return c == channel::sms ? "sms" : "email"; }

std::optional<channel> channel_from(std::string_view s) noexcept {
    if (s == "sms") {
        return channel::sms;
    }
    if (s == "email") {
        return channel::email;
    }
    return std::nullopt;
}

std::string suppression::id() const {
    std::string out(to_string(via));
    out += ':';
    out += address;
    return out;
}

json to_json(const suppression& s) {
    return json{{"channel", to_string(s.via)},
                {"address", s.address},
                {"opted_out", s.opted_out},
                {"reason", s.reason},
                {"at", s.at}};
}

std::optional<suppression> suppression_from_json(const json& j, std::string& error) {
    return decode<suppression>(j, error, [&] {
        suppression s;
        const auto via = channel_from(str(j, "channel"));
        if (!via) {
            throw decode_error("'channel' must be \"sms\" or \"email\"");
        }
        s.via = *via;
        s.address = str(j, "address");
        s.opted_out = boolean(j, "opted_out");
        // Rows written before reasons and times were kept lack them.
        s.reason = j.contains("reason") ? str(j, "reason") : std::string();
        s.at = j.contains("at") ? str(j, "at") : std::string();
        return s;
    });
}

json to_json(const message_status& m) {
    return json{{"channel", to_string(m.via)},
                {"delivery_id", m.delivery_id},
                {"status", m.status},
                {"progress", m.progress},
                {"failed", m.failed},
                {"provider_id", m.provider_id},
                {"reason", m.reason},
                {"address", m.address}};
}

json to_json(const inbound_message& m) {
    return json{{"channel", to_string(m.via)},
                {"id", m.id},
                {"from", m.from},
                {"to", m.to},
                {"subject", m.subject},
                {"text", m.text},
                {"keyword", m.keyword},
                {"in_reply_to", m.in_reply_to},
                {"references", m.references},
                {"sender_verified", m.sender_verified}};
}

json to_json(const staff& s) {
    return json{{"id", s.id},
                {"name", s.name},
                {"email", s.email},
                {"role", s.role},
                {"active", s.active},
                {"source", source_json(s.source)}};
}

json to_json(const work_item& w) {
    return json{{"id", w.id},
                {"client_id", w.client_id},
                {"title", w.title},
                {"work_type", w.work_type},
                {"status", w.status},
                {"stage", w.stage},
                {"assignee_id", w.assignee_id},
                {"start_date", date_json(w.start_date)},
                {"due_date", date_json(w.due_date)},
                {"completed_date", date_json(w.completed_date)},
                {"deleted", w.deleted},
                {"source", source_json(w.source)}};
}

json to_json(const time_entry& t) {
    return json{{"id", t.id},
                {"staff_id", t.staff_id},
                {"client_id", t.client_id},
                {"engagement_id", t.engagement_id},
                {"service", t.service},
                {"date", date_json(t.date)},
                {"minutes", t.minutes},
                {"billable", t.billable},
                {"hourly_rate", t.hourly_rate ? money_json(*t.hourly_rate) : json()},
                {"notes", t.notes},
                {"locked", t.locked},
                {"billed", t.billed},
                {"external_reference", t.external_reference},
                {"deleted", t.deleted},
                {"source", source_json(t.source)}};
}

json to_json(const ledger_item& i) {
    return json{{"id", i.id},
                {"code", i.code},
                {"name", i.name},
                {"unit_price", i.unit_price ? money_json(*i.unit_price) : json()},
                {"unit_price_text", i.unit_price_text},
                {"active", i.active},
                {"deleted", i.deleted},
                {"source", source_json(i.source)}};
}

std::optional<ledger_item> ledger_item_from_json(const json& j, std::string& error) {
    return decode<ledger_item>(j, error, [&] {
        ledger_item i;
        i.id = str(j, "id");
        i.code = str(j, "code");
        i.name = str(j, "name");
        if (!field(j, "unit_price").is_null()) {
            i.unit_price = money_of(j, "unit_price");
        }
        i.unit_price_text = str(j, "unit_price_text");
        i.active = boolean(j, "active");
        i.deleted = boolean(j, "deleted");
        i.source = source_of(j);
        return i;
    });
}

std::optional<staff> staff_from_json(const json& j, std::string& error) {
    return decode<staff>(j, error, [&] {
        staff s;
        s.id = str(j, "id");
        s.name = str(j, "name");
        s.email = str(j, "email");
        s.role = str(j, "role");
        s.active = boolean(j, "active");
        s.source = source_of(j);
        return s;
    });
}

std::optional<work_item> work_item_from_json(const json& j, std::string& error) {
    return decode<work_item>(j, error, [&] {
        work_item w;
        w.id = str(j, "id");
        w.client_id = str(j, "client_id");
        w.title = str(j, "title");
        w.work_type = str(j, "work_type");
        w.status = str(j, "status");
        w.stage = str(j, "stage");
        w.assignee_id = str(j, "assignee_id");
        w.start_date = date_of(j, "start_date");
        w.due_date = date_of(j, "due_date");
        w.completed_date = date_of(j, "completed_date");
        w.deleted = boolean(j, "deleted");
        w.source = source_of(j);
        return w;
    });
}

std::optional<time_entry> time_entry_from_json(const json& j, std::string& error) {
    return decode<time_entry>(j, error, [&] {
        time_entry t;
        t.id = str(j, "id");
        t.staff_id = str(j, "staff_id");
        t.client_id = str(j, "client_id");
        t.engagement_id = str(j, "engagement_id");
        t.service = str(j, "service");
        t.date = date_of(j, "date");
        const auto& minutes = field(j, "minutes");
        if (!minutes.is_number_integer()) {
            throw decode_error("'minutes' must be an integer");
        }
        t.minutes = minutes.get<std::int64_t>();
        t.billable = boolean(j, "billable");
        if (!field(j, "hourly_rate").is_null()) {
            t.hourly_rate = money_of(j, "hourly_rate");
        }
        t.notes = str(j, "notes");
        t.locked = boolean(j, "locked");
        // Absent in rows stored by builds before the flag existed.
        t.billed = j.contains("billed") && boolean(j, "billed");
        t.external_reference = str(j, "external_reference");
        t.deleted = boolean(j, "deleted");
        t.source = source_of(j);
        return t;
    });
}

// ---- change derivation -----------------------------------------------------------------------

std::vector<invoice_change> diff(const invoice* before, const invoice& after) {
    std::vector<invoice_change> out;
    const auto whole = [](invoice_change_kind k, const invoice* b, const invoice* a) {
        invoice_change c;
        c.kind = k;
        if (b != nullptr) {
            c.balance_before = b->balance;
            c.total_before = b->total;
            c.due_before = b->due_date;
            c.status_before = b->status;
            c.delivery_before = b->delivery;
        }
        if (a != nullptr) {
            c.balance_after = a->balance;
            c.total_after = a->total;
            c.due_after = a->due_date;
            c.status_after = a->status;
            c.delivery_after = a->delivery;
        }
        return c;
    };
    if (before == nullptr || (before->deleted && !after.deleted)) {
        if (!after.deleted) {
            out.push_back(whole(invoice_change_kind::created, nullptr, &after));
        }
        return out;
    }
    const invoice& b = *before;
    if (after.deleted) {
        if (!b.deleted) {
            out.push_back(whole(invoice_change_kind::deleted, &b, nullptr));
        }
        return out;
    }

    const bool same_currency = b.currency == after.currency;
    const bool voided =
        after.status == invoice_status::voided && b.status != invoice_status::voided;
    const bool was_closed = b.status == invoice_status::paid || b.status == invoice_status::voided;
    const bool reopened = was_closed && (after.status == invoice_status::open ||
                                         after.status == invoice_status::draft);
    const bool balance_zeroed = same_currency && b.balance.minor > 0 && after.balance.minor == 0;
    if (voided) {
        out.push_back(whole(invoice_change_kind::voided, &b, &after));
    } else if (reopened) {
        out.push_back(whole(invoice_change_kind::reopened, &b, &after));
    } else if (b.status != after.status &&
               !(after.status == invoice_status::paid && balance_zeroed)) {
        auto c = invoice_change{};
        c.kind = invoice_change_kind::status_changed;
        c.status_before = b.status;
        c.status_after = after.status;
        out.push_back(c);
    }
    if (!voided) {
        if (b.total != after.total) {
            auto c = invoice_change{};
            c.kind = invoice_change_kind::amount_changed;
            c.total_before = b.total;
            c.total_after = after.total;
            out.push_back(c);
        }
        if (same_currency && b.balance.minor != after.balance.minor && !reopened) {
            auto c = invoice_change{};
            c.balance_before = b.balance;
            c.balance_after = after.balance;
            c.status_before = b.status;
            c.status_after = after.status;
            const std::int64_t drop = b.balance.minor - after.balance.minor;
            const std::int64_t total_drop = b.total.minor - after.total.minor;
            if (balance_zeroed) {
                c.kind = invoice_change_kind::balance_to_zero;
                out.push_back(c);
            } else if (drop < 0) {
                c.kind = invoice_change_kind::balance_increased;
                out.push_back(c);
            } else if (drop > total_drop) {
                // Only the part of the drop not explained by a smaller total was paid.
                c.kind = invoice_change_kind::partial_payment;
                out.push_back(c);
            }
        }
    }
    if (b.due_date && after.due_date && *b.due_date != *after.due_date) {
        auto c = invoice_change{};
        c.kind = *after.due_date > *b.due_date ? invoice_change_kind::due_date_later
                                               : invoice_change_kind::due_date_earlier;
        c.due_before = b.due_date;
        c.due_after = after.due_date;
        out.push_back(c);
    }
    if (b.delivery != after.delivery) {
        auto c = invoice_change{};
        c.kind = invoice_change_kind::delivery_changed;
        c.delivery_before = b.delivery;
        c.delivery_after = after.delivery;
        out.push_back(c);
    }
    return out;
}

std::vector<client_change> diff(const client* before, const client& after) {
    std::vector<client_change> out;
    if (before == nullptr || (before->deleted && !after.deleted)) {
        if (!after.deleted) {
            out.push_back({client_change_kind::created, "", "", after.display_name});
        }
        return out;
    }
    const client& b = *before;
    if (after.deleted) {
        if (!b.deleted) {
            out.push_back({client_change_kind::deleted, "", b.display_name, ""});
        }
        return out;
    }
    const auto add = [&out](client_change_kind k,
                            std::string_view name,
                            const std::string& was,
                            const std::string& now) {
        if (was != now) {
            out.push_back({k, std::string(name), was, now});
        }
    };
    add(client_change_kind::name_changed, "display_name", b.display_name, after.display_name);
    add(client_change_kind::contact_changed,
        "billing_email",
        b.contact.billing_email,
        after.contact.billing_email);
    add(client_change_kind::contact_changed, "mobile", b.contact.mobile, after.contact.mobile);
    add(client_change_kind::contact_changed,
        "sms_consent",
        flag(b.contact.sms_consent),
        flag(after.contact.sms_consent));
    add(client_change_kind::payment_plan_changed,
        "payment_plan",
        flag(b.payment_plan),
        flag(after.payment_plan));
    add(client_change_kind::retainer_changed, "retainer", flag(b.retainer), flag(after.retainer));
    add(client_change_kind::active_changed, "active", flag(b.active), flag(after.active));
    const auto joined = [](const std::vector<std::string>& tags) {
        std::string text;
        for (const auto& t : tags) {
            text += (text.empty() ? "" : ",") + t;
        }
        return text;
    };
    add(client_change_kind::tags_changed, "tags", joined(b.tags), joined(after.tags));
    add(client_change_kind::currency_changed, "currency", b.currency, after.currency);
    add(client_change_kind::code_changed, "client_code", b.client_code, after.client_code);
    return out;
}

json to_json(const invoice_change& c) {
    json j{{"kind", to_string(c.kind)}};
    const auto put_money = [&j](const char* key, const std::optional<money>& m) {
        if (m) {
            j[key] = money_json(*m);
        }
    };
    put_money("balance_before", c.balance_before);
    put_money("balance_after", c.balance_after);
    put_money("total_before", c.total_before);
    put_money("total_after", c.total_after);
    if (c.due_before) {
        j["due_before"] = format_civil_date(*c.due_before);
    }
    if (c.due_after) {
        j["due_after"] = format_civil_date(*c.due_after);
    }
    if (c.status_before) {
        j["status_before"] = to_string(*c.status_before);
    }
    if (c.status_after) {
        j["status_after"] = to_string(*c.status_after);
    }
    if (c.delivery_before) {
        j["delivery_before"] = to_string(*c.delivery_before);
    }
    if (c.delivery_after) {
        j["delivery_after"] = to_string(*c.delivery_after);
    }
    return j;
}

json to_json(const client_change& c) {
    return json{
        {"kind", to_string(c.kind)}, {"field", c.field}, {"before", c.before}, {"after", c.after}};
}

}  // namespace billsync::mappings
