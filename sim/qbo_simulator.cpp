#include "sim/qbo_simulator.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <boost/asio/steady_timer.hpp>
#include <cctype>
#include <map>
#include <mutex>
#include <set>
#include <tuple>
#include <utility>

#include "http/async_client.hpp"
#include "http/client.hpp"
#include "mappings/exact_json.hpp"
#include "mappings/model.hpp"
#include "mappings/money.hpp"
#include "sim/simulators.hpp"
#include "util/crypto.hpp"

namespace billsync::simulators {

namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;

constexpr std::string_view company_prefix = "/v3/company/";
constexpr std::string_view admin_prefix = "/_sim/qbo/";

// ---- entity kinds ------------------------------------------------------------------------------

enum class kind : std::uint8_t { customer, invoice, payment, employee, item, timeactivity };
constexpr std::size_t kind_count = 6;
constexpr std::array<kind, kind_count> all_kinds = {
    kind::customer, kind::invoice, kind::payment, kind::employee, kind::item, kind::timeactivity};

std::string_view entity_name(kind k) {
    switch (k) {
        case kind::customer:
            return "Customer";
        case kind::invoice:
            return "Invoice";
        case kind::payment:
            return "Payment";
        case kind::employee:
            return "Employee";
        case kind::item:
            return "Item";
        case kind::timeactivity:
            return "TimeActivity";
    }
    return "Customer";
}

std::optional<kind> kind_of(std::string_view s) {
    for (const auto k : all_kinds) {
        if (http::iequals(s, entity_name(k))) {
            return k;
        }
    }
    return std::nullopt;
}

std::size_t index_of(kind k) { return static_cast<std::size_t>(k); }

std::string lower(std::string_view s) {
    std::string out(s);
    for (auto& c : out) {
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    return out;
}

// ---- time --------------------------------------------------------------------------------------

constexpr std::chrono::hours company_offset{-8};

// "2026-01-05T01:00:00.123-08:00": the company's zone, as QBO renders MetaData and "time".
std::string qbo_time(util::instant t) {
    auto s = util::format_rfc3339(t + company_offset);
    if (!s.empty() && s.back() == 'Z') {
        s.pop_back();
    }
    return s + "-08:00";
}

std::string utc_date(util::instant t) {
    return mappings::format_civil_date(
        std::chrono::year_month_day{std::chrono::floor<std::chrono::days>(t)});
}

// ---- exact JSON and money ----------------------------------------------------------------------

// Any JSON (tests pass doubles) -> the exact DOM (non-integers as their decimal text).
json exact(const json& j) {
    std::string err;
    auto out = mappings::parse_exact(j.dump(), err);
    return out ? std::move(*out) : json::object();
}

int digits_of(const json& doc) {
    std::string currency = "USD";
    if (const auto it = doc.find("CurrencyRef");
        it != doc.end() && it->is_object() && it->contains("value") && (*it)["value"].is_string()) {
        currency = (*it)["value"].get<std::string>();
    }
    return mappings::minor_digits(currency);
}

std::optional<std::int64_t> cents_of(const json& v, int digits) {
    const auto text = mappings::decimal_text(v);
    if (!text) {
        return std::nullopt;
    }
    return mappings::parse_decimal(*text, digits, mappings::rounding::reject);
}

std::int64_t field_cents(const json& doc, std::string_view key, int digits) {
    const auto it = doc.find(key);
    if (it == doc.end()) {
        return 0;
    }
    return cents_of(*it, digits).value_or(0);
}

json money_value(std::int64_t cents, int digits) {
    return json(mappings::format_decimal(cents, digits));
}

// Keys whose values QBO sends as numbers; the exact DOM holds them as text.
bool numeric_key(std::string_view k) {
    static constexpr std::array<std::string_view, 14> keys = {"Amount",
                                                              "TotalAmt",
                                                              "Balance",
                                                              "UnappliedAmt",
                                                              "UnitPrice",
                                                              "Qty",
                                                              "ExchangeRate",
                                                              "HomeTotalAmt",
                                                              "HomeBalance",
                                                              "TotalTax",
                                                              "TaxPercent",
                                                              "DiscountPercent",
                                                              "Hours",
                                                              "HourlyRate"};
    return std::find(keys.begin(), keys.end(), k) != keys.end();
}

void numbers_out(json& j) {
    if (j.is_object()) {
        for (auto& [k, v] : j.items()) {
            if (v.is_string() && numeric_key(k)) {
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

bool flag(const json& doc, std::string_view key, bool fallback) {
    const auto it = doc.find(key);
    return it != doc.end() && it->is_boolean() ? it->get<bool>() : fallback;
}

std::string text_of(const json& doc, std::string_view key) {
    const auto it = doc.find(key);
    if (it == doc.end()) {
        return {};
    }
    if (it->is_string()) {
        return it->get<std::string>();
    }
    if (it->is_number_integer()) {
        return it->dump();
    }
    return {};
}

std::string ref_of(const json& doc, std::string_view key) {
    const auto it = doc.find(key);
    if (it == doc.end() || !it->is_object()) {
        return {};
    }
    return text_of(*it, "value");
}

std::optional<std::uint64_t> parse_id(std::string_view s) {
    if (s.empty() || s.size() > 18) {
        return std::nullopt;
    }
    std::uint64_t v = 0;
    for (const char c : s) {
        if (c < '0' || c > '9') {
            return std::nullopt;
        }
        v = v * 10 + static_cast<std::uint64_t>(c - '0');
    }
    return v;
}

// ---- faults ------------------------------------------------------------------------------------

struct reply {
    unsigned status = 200;
    json body;  // {"Invoice": {...}} or {"Fault": {...}} (no "time": added on the way out)
    bool ok() const { return status == 200; }
};

reply fault(unsigned status,
            std::string code,
            std::string message,
            std::string detail,
            std::string type = "ValidationFault") {
    return {status,
            json{{"Fault",
                  {{"Error",
                    json::array({{{"Message", std::move(message)},
                                  {"Detail", std::move(detail)},
                                  {"code", std::move(code)},
                                  {"element", ""}}})},
                   {"type", std::move(type)}}}}};
}

reply not_found(kind k, const std::string& id) {
    return fault(400,
                 "610",
                 "Object Not Found",
                 "Object Not Found : Something you're trying to use has been made inactive. Check "
                 "the fields with accounts, customers, items, vendors or employees. (" +
                     std::string(entity_name(k)) + " " + id + ")");
}

reply missing_param(std::string what) {
    return fault(400,
                 "2020",
                 "Required param missing, need to supply the required value for the API",
                 "Required parameter " + what + " is missing in the request");
}

reply invalid_ref(std::string what) {
    return fault(400, "2500", "Invalid Reference Id", "Invalid Reference Id : " + what);
}

reply business(std::string detail) {
    return fault(400,
                 "6000",
                 "A business validation error has occurred while processing your request",
                 "Business Validation Error: " + detail);
}

reply stale(const std::string& sent, std::uint64_t current) {
    return fault(400,
                 "5010",
                 "Stale Object Error",
                 "Stale Object Error : You and another user were working on the same thing. "
                 "Please try again later. (SyncToken " +
                     sent + ", current " + std::to_string(current) + ")");
}

reply query_error(std::string detail) {
    return fault(400, "4000", "Error parsing query", "QueryParserError: " + detail);
}

// ---- query language ----------------------------------------------------------------------------

enum class ftype : std::uint8_t { id, text, money, date, time, boolean };

struct field_def {
    std::string_view name;
    ftype type;
    // customer, invoice, payment, employee, item, timeactivity
    std::array<bool, kind_count> on;
};

constexpr std::array<field_def, 12> query_fields = {{
    {"Id", ftype::id, {true, true, true, true, true, true}},
    {"DisplayName", ftype::text, {true, false, false, true, false, false}},
    {"Name", ftype::text, {false, false, false, false, true, false}},
    {"DocNumber", ftype::text, {false, true, false, false, false, false}},
    {"Balance", ftype::money, {true, true, false, false, false, false}},
    {"TotalAmt", ftype::money, {false, true, true, false, false, false}},
    {"TxnDate", ftype::date, {false, true, true, false, false, true}},
    {"DueDate", ftype::date, {false, true, false, false, false, false}},
    {"Active", ftype::boolean, {true, false, false, true, true, false}},
    {"CustomerRef", ftype::id, {false, true, true, false, false, true}},
    {"MetaData.LastUpdatedTime", ftype::time, {true, true, true, true, true, true}},
    {"MetaData.CreateTime", ftype::time, {true, true, true, true, true, true}},
}};

// A comparable value: numbers (ids, cents, days, microseconds, booleans) or lower-cased text.
struct qvalue {
    bool is_text = false;
    std::int64_t n = 0;
    std::string s;
};

int compare(const qvalue& a, const qvalue& b) {
    if (a.is_text) {
        return a.s < b.s ? -1 : a.s == b.s ? 0 : 1;
    }
    return a.n < b.n ? -1 : a.n == b.n ? 0 : 1;
}

enum class qop : std::uint8_t { eq, ne, lt, gt, le, ge, like, in };

struct condition {
    const field_def* field = nullptr;
    qop op = qop::eq;
    std::vector<qvalue> values;  // one, or several for IN
};

struct query {
    bool count = false;
    kind entity = kind::customer;
    std::vector<condition> where;
    const field_def* order = nullptr;
    bool descending = false;
    std::int64_t start = 1;
    std::int64_t max = 100;
};

struct token {
    enum class type : std::uint8_t { word, text, number, symbol, end } t = type::end;
    std::string s;
};

class query_parser {
public:
    explicit query_parser(std::string_view text) : text_(text) {}

    std::optional<query> parse(std::string& error) {
        if (!lex(error)) {
            return std::nullopt;
        }
        query q;
        if (!keyword("SELECT")) {
            return fail(error, "expected SELECT");
        }
        if (symbol("*")) {
        } else if (keyword("COUNT")) {
            if (!symbol("(") || !symbol("*") || !symbol(")")) {
                return fail(error, "expected COUNT(*)");
            }
            q.count = true;
        } else {
            return fail(error, "expected * or COUNT(*) after SELECT");
        }
        if (!keyword("FROM")) {
            return fail(error, "expected FROM");
        }
        if (peek().t != token::type::word) {
            return fail(error, "expected an entity after FROM");
        }
        const auto k = kind_of(peek().s);
        if (!k) {
            return fail(error, "unknown entity '" + peek().s + "'");
        }
        q.entity = *k;
        ++pos_;
        if (keyword("WHERE")) {
            do {
                condition c;
                if (!parse_condition(q.entity, c, error)) {
                    return std::nullopt;
                }
                q.where.push_back(std::move(c));
            } while (keyword("AND"));
            if (is_keyword("OR")) {
                return fail(error, "OR is not supported");
            }
        }
        if (keyword("ORDERBY") || (keyword("ORDER") && keyword("BY"))) {
            q.order = field(q.entity, error);
            if (q.order == nullptr) {
                return std::nullopt;
            }
            if (keyword("DESC")) {
                q.descending = true;
            } else {
                keyword("ASC");
            }
        }
        for (int i = 0; i < 2; ++i) {
            if (keyword("STARTPOSITION")) {
                if (!integer(q.start) || q.start < 1) {
                    return fail(error, "STARTPOSITION needs a positive integer");
                }
            } else if (keyword("MAXRESULTS")) {
                if (!integer(q.max) || q.max < 1) {
                    return fail(error, "MAXRESULTS needs a positive integer");
                }
                q.max = std::min<std::int64_t>(q.max, 1000);
            }
        }
        if (peek().t != token::type::end) {
            return fail(error, "unexpected '" + peek().s + "'");
        }
        return q;
    }

private:
    std::optional<query> fail(std::string& error, std::string what) {
        error = std::move(what);
        return std::nullopt;
    }

    bool lex(std::string& error) {
        std::size_t i = 0;
        const auto n = text_.size();
        auto is_word = [](char c) {
            return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_' || c == '.';
        };
        while (i < n) {
            const char c = text_[i];
            if (std::isspace(static_cast<unsigned char>(c)) != 0) {
                ++i;
            } else if (c == '\'') {
                std::string s;
                ++i;
                bool closed = false;
                while (i < n) {
                    if (text_[i] == '\\' && i + 1 < n) {
                        s += text_[i + 1];
                        i += 2;
                    } else if (text_[i] == '\'') {
                        ++i;
                        closed = true;
                        break;
                    } else {
                        s += text_[i++];
                    }
                }
                if (!closed) {
                    error = "unterminated string";
                    return false;
                }
                tokens_.push_back({token::type::text, std::move(s)});
            } else if (std::isdigit(static_cast<unsigned char>(c)) != 0 ||
                       (c == '-' && i + 1 < n &&
                        std::isdigit(static_cast<unsigned char>(text_[i + 1])) != 0)) {
                std::string s(1, c);
                ++i;
                while (i < n && (std::isdigit(static_cast<unsigned char>(text_[i])) != 0 ||
                                 text_[i] == '.')) {
                    s += text_[i++];
                }
                tokens_.push_back({token::type::number, std::move(s)});
            } else if (is_word(c)) {
                std::string s;
                while (i < n && is_word(text_[i])) {
                    s += text_[i++];
                }
                tokens_.push_back({token::type::word, std::move(s)});
            } else if (c == '<' || c == '>' || c == '!') {
                std::string s(1, c);
                ++i;
                if (i < n && (text_[i] == '=' || (c == '<' && text_[i] == '>'))) {
                    s += text_[i++];
                }
                if (s == "!") {
                    error = "unexpected '!'";
                    return false;
                }
                tokens_.push_back({token::type::symbol, s == "<>" ? "!=" : std::move(s)});
            } else if (c == '=' || c == '*' || c == '(' || c == ')' || c == ',') {
                tokens_.push_back({token::type::symbol, std::string(1, c)});
                ++i;
            } else {
                error = "unexpected character '" + std::string(1, c) + "'";
                return false;
            }
        }
        return true;
    }

    const token& peek() const {
        static const token end{token::type::end, "end of query"};
        return pos_ < tokens_.size() ? tokens_[pos_] : end;
    }
    bool is_keyword(std::string_view k) const {
        return peek().t == token::type::word && http::iequals(peek().s, k);
    }
    bool keyword(std::string_view k) {
        if (!is_keyword(k)) {
            return false;
        }
        ++pos_;
        return true;
    }
    bool symbol(std::string_view s) {
        if (peek().t != token::type::symbol || peek().s != s) {
            return false;
        }
        ++pos_;
        return true;
    }
    bool integer(std::int64_t& out) {
        if (peek().t != token::type::number) {
            return false;
        }
        const auto v = parse_id(peek().s);
        if (!v || *v > 1'000'000'000) {
            return false;
        }
        out = static_cast<std::int64_t>(*v);
        ++pos_;
        return true;
    }

    const field_def* field(kind k, std::string& error) {
        if (peek().t != token::type::word) {
            error = "expected a property, found '" + peek().s + "'";
            return nullptr;
        }
        for (const auto& f : query_fields) {
            if (http::iequals(f.name, peek().s) && f.on[index_of(k)]) {
                ++pos_;
                return &f;
            }
        }
        error = "property '" + peek().s + "' is not queryable on " + std::string(entity_name(k));
        return nullptr;
    }

    bool literal(const field_def& f, bool like, qvalue& out, std::string& error) {
        const token t = peek();
        ++pos_;
        const auto bad = [&](std::string_view what) {
            error = "invalid " + std::string(what) + " '" + t.s + "' for " + std::string(f.name);
            return false;
        };
        if (t.t == token::type::end || t.t == token::type::symbol) {
            error = "expected a value for " + std::string(f.name);
            return false;
        }
        if (like) {
            if (t.t != token::type::text) {
                return bad("pattern");
            }
            out.is_text = true;
            out.s = lower(t.s);
            return true;
        }
        switch (f.type) {
            case ftype::id: {
                const auto v = parse_id(t.s);
                if (!v || t.t == token::type::word) {
                    return bad("id");
                }
                out.n = static_cast<std::int64_t>(*v);
                return true;
            }
            case ftype::text:
                if (t.t != token::type::text) {
                    return bad("string (quote it)");
                }
                out.is_text = true;
                out.s = lower(t.s);
                return true;
            case ftype::money: {
                const auto v = mappings::parse_decimal(t.s, 2, mappings::rounding::reject);
                if (!v || t.t == token::type::word) {
                    return bad("amount");
                }
                out.n = *v;
                return true;
            }
            case ftype::date: {
                const auto d = mappings::parse_civil_date(t.s);
                if (!d || t.t != token::type::text) {
                    return bad("date");
                }
                out.n = std::chrono::sys_days(*d).time_since_epoch().count();
                return true;
            }
            case ftype::time: {
                if (t.t != token::type::text) {
                    return bad("date-time (quote it)");
                }
                if (const auto ts = mappings::parse_timestamp(t.s)) {
                    out.n = ts->time_since_epoch().count();
                    return true;
                }
                if (const auto d = mappings::parse_civil_date(t.s)) {
                    out.n = util::instant(std::chrono::sys_days(*d)).time_since_epoch().count();
                    return true;
                }
                return bad("date-time");
            }
            case ftype::boolean:
                if (http::iequals(t.s, "true")) {
                    out.n = 1;
                    return true;
                }
                if (http::iequals(t.s, "false")) {
                    out.n = 0;
                    return true;
                }
                return bad("boolean");
        }
        return bad("value");
    }

    bool parse_condition(kind k, condition& c, std::string& error) {
        c.field = field(k, error);
        if (c.field == nullptr) {
            return false;
        }
        static constexpr std::array<std::pair<std::string_view, qop>, 6> ops = {{
            {"=", qop::eq},
            {"!=", qop::ne},
            {"<", qop::lt},
            {">", qop::gt},
            {"<=", qop::le},
            {">=", qop::ge},
        }};
        bool found = false;
        for (const auto& [s, op] : ops) {
            if (symbol(s)) {
                c.op = op;
                found = true;
                break;
            }
        }
        if (!found) {
            if (keyword("LIKE")) {
                if (c.field->type != ftype::text) {
                    error = "LIKE needs a string property, not " + std::string(c.field->name);
                    return false;
                }
                c.op = qop::like;
            } else if (keyword("IN")) {
                c.op = qop::in;
            } else {
                error = "expected an operator after " + std::string(c.field->name) + ", found '" +
                        peek().s + "'";
                return false;
            }
        }
        if (c.op == qop::in) {
            if (!symbol("(")) {
                error = "expected ( after IN";
                return false;
            }
            do {
                qvalue v;
                if (!literal(*c.field, false, v, error)) {
                    return false;
                }
                c.values.push_back(std::move(v));
            } while (symbol(","));
            if (!symbol(")")) {
                error = "expected ) to close IN";
                return false;
            }
            return true;
        }
        qvalue v;
        if (!literal(*c.field, c.op == qop::like, v, error)) {
            return false;
        }
        c.values.push_back(std::move(v));
        return true;
    }

    std::string_view text_;
    std::vector<token> tokens_;
    std::size_t pos_ = 0;
};

// '%' matches any run of characters; both sides lower-cased.
bool like_match(std::string_view s, std::string_view p) {
    std::size_t si = 0, pi = 0, star = std::string_view::npos, mark = 0;
    while (si < s.size()) {
        if (pi < p.size() && p[pi] == '%') {
            star = pi++;
            mark = si;
        } else if (pi < p.size() && p[pi] == s[si]) {
            ++pi;
            ++si;
        } else if (star != std::string_view::npos) {
            pi = star + 1;
            si = ++mark;
        } else {
            return false;
        }
    }
    while (pi < p.size() && p[pi] == '%') {
        ++pi;
    }
    return pi == p.size();
}

}  // namespace

// ---- state -------------------------------------------------------------------------------------

struct qbo_simulator::state {
    struct record {
        json doc;  // exact DOM without Id, SyncToken and MetaData
        std::uint64_t sync = 0;
        util::instant created{};
        util::instant updated{};
        bool deleted = false;
    };
    struct realm_data {
        std::array<std::map<std::uint64_t, record>, kind_count> tables;
        std::array<std::uint64_t, kind_count> next_id{1, 1, 1, 1, 1, 1};
        std::uint64_t next_doc = 1001;
        std::map<std::string, std::pair<unsigned, std::string>, std::less<>> requestids;
    };
    struct event {
        std::string realm;
        kind entity = kind::customer;
        std::uint64_t id = 0;
        std::string op;  // classic spelling: Create, Update, Delete, Void, Emailed
        util::instant at{};
    };

    explicit state(qbo_sim_options o) : options(std::move(o)) {
        for (const auto& r : options.realms) {
            realms[r];
        }
    }

    qbo_sim_options options;
    mutable std::mutex mutex;
    std::map<std::string, realm_data, std::less<>> realms;
    std::vector<event> events;
    std::uint64_t replays = 0;
    std::uint64_t api_creates = 0;
    std::chrono::milliseconds create_hold{0};
    std::atomic<std::uint64_t> serial{0};

    util::instant now() const {
        const auto t = options.now ? options.now()
                                   : util::instant(std::chrono::time_point_cast<util::duration>(
                                         std::chrono::system_clock::now()));
        return std::chrono::time_point_cast<util::duration>(
            std::chrono::floor<std::chrono::milliseconds>(t));
    }

    std::string unique(std::string_view salt) {
        const auto h = util::hex_encode(util::sha256(std::to_string(++serial) + std::string(salt)));
        return h;
    }

    realm_data* realm(std::string_view r) {
        const auto it = realms.find(r);
        return it == realms.end() ? nullptr : &it->second;
    }

    record* find(realm_data& rd, kind k, std::string_view id) {
        const auto n = parse_id(id);
        if (!n) {
            return nullptr;
        }
        auto& t = rd.tables[index_of(k)];
        const auto it = t.find(*n);
        return it == t.end() || it->second.deleted ? nullptr : &it->second;
    }

    json render(kind k, std::uint64_t id, const record& r) const {
        if (r.deleted) {
            return json{{"Id", std::to_string(id)},
                        {"status", "Deleted"},
                        {"domain", "QBO"},
                        {"MetaData", {{"LastUpdatedTime", qbo_time(r.updated)}}}};
        }
        json out = r.doc;
        out["Id"] = std::to_string(id);
        out["SyncToken"] = std::to_string(r.sync);
        out["domain"] = "QBO";
        out["sparse"] = false;
        out["MetaData"] = {{"CreateTime", qbo_time(r.created)},
                           {"LastUpdatedTime", qbo_time(r.updated)}};
        (void)k;
        numbers_out(out);
        return out;
    }

    reply entity_reply(kind k, std::uint64_t id, const record& r) const {
        return {200, json{{std::string(entity_name(k)), render(k, id, r)}}};
    }

    void queue(
        std::string_view realm_id, kind k, std::uint64_t id, std::string op, util::instant at) {
        events.push_back({std::string(realm_id), k, id, std::move(op), at});
    }

    void touch(std::string_view realm_id, kind k, std::uint64_t id, record& r, std::string op) {
        ++r.sync;
        r.updated = now();
        queue(realm_id, k, id, std::move(op), r.updated);
    }

    std::uint64_t insert(std::string_view realm_id, realm_data& rd, kind k, json doc) {
        const auto id = rd.next_id[index_of(k)]++;
        record r;
        r.doc = std::move(doc);
        r.created = r.updated = now();
        rd.tables[index_of(k)][id] = r;
        queue(realm_id, k, id, "Create", r.updated);
        return id;
    }

    static void strip_system(json& body) {
        for (const auto* k : {"Id", "SyncToken", "MetaData", "sparse", "domain", "status"}) {
            body.erase(k);
        }
    }

    // ---- customers ----

    std::optional<reply> customer_fields(realm_data& rd, json& doc, std::uint64_t self) {
        std::string name = text_of(doc, "DisplayName");
        if (name.empty()) {
            for (const auto* k : {"GivenName", "FamilyName", "CompanyName"}) {
                const auto part = text_of(doc, k);
                if (!part.empty() && std::string_view(k) != "CompanyName") {
                    name += (name.empty() ? "" : " ") + part;
                } else if (name.empty() && !part.empty()) {
                    name = part;
                }
            }
            if (name.empty()) {
                return missing_param("DisplayName");
            }
            doc["DisplayName"] = name;
        }
        const auto needle = lower(name);
        for (const auto& [id, r] : rd.tables[index_of(kind::customer)]) {
            if (id != self && lower(text_of(r.doc, "DisplayName")) == needle) {
                return fault(400,
                             "6240",
                             "Duplicate Name Exists Error",
                             "The name supplied already exists. : Another customer, vendor or "
                             "employee is already using this name. Please use a different name. "
                             "(Id=" +
                                 std::to_string(id) + ")");
            }
        }
        if (!doc.contains("Active")) {
            doc["Active"] = true;
        }
        if (!doc["Active"].is_boolean()) {
            return fault(400, "2170", "Invalid Enumeration", "Active must be true or false");
        }
        if (!doc.contains("Balance")) {
            doc["Balance"] = "0";
        }
        return std::nullopt;
    }

    // ---- invoices ----

    // Validates and normalises an invoice document: lines, totals, references, defaults.
    std::optional<reply> invoice_fields(realm_data& rd,
                                        json& doc,
                                        std::uint64_t self,
                                        std::int64_t& total) {
        const auto cref = ref_of(doc, "CustomerRef");
        if (cref.empty()) {
            return missing_param("CustomerRef");
        }
        const auto cid = parse_id(cref);
        const auto& customers = rd.tables[index_of(kind::customer)];
        const auto cit = cid ? customers.find(*cid) : customers.end();
        if (cit == customers.end()) {
            return invalid_ref("CustomerRef " + cref);
        }
        if (!flag(cit->second.doc, "Active", true)) {
            return not_found(kind::customer, cref);
        }
        if (!doc.contains("CurrencyRef")) {
            doc["CurrencyRef"] = {{"value", "USD"}, {"name", "United States Dollar"}};
        }
        const int digits = digits_of(doc);
        const auto lines = doc.find("Line");
        if (lines == doc.end() || !lines->is_array() || lines->empty()) {
            return missing_param("Line");
        }
        json out = json::array();
        std::int64_t subtotal = 0, discount = 0;
        std::uint64_t n = 0;
        for (auto line : *lines) {
            if (!line.is_object()) {
                return missing_param("Line.Amount");
            }
            const auto type = text_of(line, "DetailType");
            if (type == "SubTotalLineDetail") {
                continue;  // recomputed
            }
            if (type.empty()) {
                return missing_param("Line.DetailType");
            }
            const auto amt = line.find("Amount");
            std::optional<std::int64_t> c;
            if (amt != line.end()) {
                c = cents_of(*amt, digits);
            }
            if (type == "SalesItemLineDetail" || type == "DiscountLineDetail") {
                if (!c || *c < 0) {
                    return missing_param("Line.Amount (a non-negative amount)");
                }
                (type == "DiscountLineDetail" ? discount : subtotal) += *c;
                line["Amount"] = money_value(*c, digits);
            }
            ++n;
            line["Id"] = std::to_string(n);
            line["LineNum"] = n;
            out.push_back(std::move(line));
        }
        if (subtotal - discount < 0) {
            return business("the discount exceeds the invoice subtotal");
        }
        out.push_back({{"Amount", money_value(subtotal, digits)},
                       {"DetailType", "SubTotalLineDetail"},
                       {"SubTotalLineDetail", json::object()}});
        doc["Line"] = std::move(out);
        total = subtotal - discount;
        doc["TotalAmt"] = money_value(total, digits);
        for (const auto* k : {"TxnDate", "DueDate"}) {
            if (doc.contains(k) && !mappings::parse_civil_date(text_of(doc, k))) {
                return fault(400,
                             "2010",
                             "Request has invalid or unsupported property",
                             std::string(k) + " is not a date (YYYY-MM-DD)");
            }
        }
        if (!doc.contains("TxnDate")) {
            doc["TxnDate"] = utc_date(now());
        }
        auto docnum = text_of(doc, "DocNumber");
        const auto& invoices = rd.tables[index_of(kind::invoice)];
        auto taken = [&](const std::string& d) {
            for (const auto& [id, r] : invoices) {
                if (id != self && !r.deleted && text_of(r.doc, "DocNumber") == d) {
                    return true;
                }
            }
            return false;
        };
        if (docnum.empty()) {
            do {
                docnum = std::to_string(rd.next_doc++);
            } while (taken(docnum));
            doc["DocNumber"] = docnum;
        } else if (taken(docnum)) {
            return fault(400,
                         "6140",
                         "Duplicate Document Number Error",
                         "Duplicate Document Number Error : You must specify a different number. "
                         "This number has already been used. DocNumber=" +
                             docnum);
        }
        return std::nullopt;
    }

    // ---- payments ----

    struct application {
        std::uint64_t invoice = 0;
        std::int64_t cents = 0;
    };

    // What a payment document applies to invoices (TxnType Invoice).
    static std::vector<application> applications(const json& doc) {
        std::vector<application> out;
        const int digits = digits_of(doc);
        const auto lines = doc.find("Line");
        if (lines == doc.end() || !lines->is_array()) {
            return out;
        }
        for (const auto& l : *lines) {
            if (!l.is_object() || !l.contains("LinkedTxn") || !l["LinkedTxn"].is_array()) {
                continue;
            }
            const auto c = cents_of(l.value("Amount", json("0")), digits).value_or(0);
            for (const auto& t : l["LinkedTxn"]) {
                if (text_of(t, "TxnType") == "Invoice") {
                    if (const auto id = parse_id(text_of(t, "TxnId"))) {
                        out.push_back({*id, c});
                        break;  // one line's amount applies once
                    }
                }
            }
        }
        return out;
    }

    // Adds `sign * amount` to each invoice's balance and links or unlinks the payment.
    void apply(std::string_view realm_id,
               realm_data& rd,
               std::uint64_t pid,
               const std::vector<application>& apps,
               int sign,
               std::set<std::uint64_t>& touched) {
        auto& invoices = rd.tables[index_of(kind::invoice)];
        for (const auto& a : apps) {
            const auto it = invoices.find(a.invoice);
            if (it == invoices.end() || it->second.deleted) {
                continue;
            }
            auto& doc = it->second.doc;
            const int digits = digits_of(doc);
            doc["Balance"] =
                money_value(field_cents(doc, "Balance", digits) - sign * a.cents, digits);
            auto& linked = doc["LinkedTxn"];
            if (!linked.is_array()) {
                linked = json::array();
            }
            const auto pid_text = std::to_string(pid);
            json kept = json::array();
            for (const auto& l : linked) {
                if (!(text_of(l, "TxnType") == "Payment" && text_of(l, "TxnId") == pid_text)) {
                    kept.push_back(l);
                }
            }
            if (sign > 0) {
                kept.push_back({{"TxnId", pid_text}, {"TxnType", "Payment"}});
            }
            linked = std::move(kept);
            touched.insert(a.invoice);
        }
        (void)realm_id;
    }

    void finish_touched(std::string_view realm_id,
                        realm_data& rd,
                        const std::set<std::uint64_t>& touched) {
        for (const auto id : touched) {
            auto& r = rd.tables[index_of(kind::invoice)][id];
            touch(realm_id, kind::invoice, id, r, "Update");
        }
    }

    std::optional<reply> payment_fields(realm_data& rd,
                                        json& doc,
                                        std::uint64_t self,
                                        std::vector<application>& apps) {
        const auto cref = ref_of(doc, "CustomerRef");
        if (cref.empty()) {
            return missing_param("CustomerRef");
        }
        if (!find(rd, kind::customer, cref)) {
            return invalid_ref("CustomerRef " + cref);
        }
        if (!doc.contains("CurrencyRef")) {
            doc["CurrencyRef"] = {{"value", "USD"}, {"name", "United States Dollar"}};
        }
        const int digits = digits_of(doc);
        const auto total = doc.contains("TotalAmt") ? cents_of(doc["TotalAmt"], digits)
                                                    : std::optional<std::int64_t>{};
        if (!total || *total < 0) {
            return missing_param("TotalAmt");
        }
        doc["TotalAmt"] = money_value(*total, digits);
        if (!doc.contains("Line")) {
            doc["Line"] = json::array();
        }
        if (!doc["Line"].is_array()) {
            return missing_param("Line");
        }
        std::int64_t applied = 0;
        for (auto& l : doc["Line"]) {
            const auto c = l.is_object() && l.contains("Amount") ? cents_of(l["Amount"], digits)
                                                                 : std::optional<std::int64_t>{};
            if (!c || *c < 0) {
                return missing_param("Line.Amount");
            }
            l["Amount"] = money_value(*c, digits);
            applied += *c;
        }
        if (applied > *total) {
            return business("the amount applied exceeds the payment's TotalAmt");
        }
        apps = applications(doc);
        // Balances as they would be with this payment's current application taken back.
        std::map<std::uint64_t, std::int64_t> balance;
        if (self != 0) {
            for (const auto& a : applications(rd.tables[index_of(kind::payment)][self].doc)) {
                balance[a.invoice] -= a.cents;
            }
        }
        for (const auto& a : apps) {
            const auto* inv = find(rd, kind::invoice, std::to_string(a.invoice));
            if (inv == nullptr) {
                return invalid_ref("LinkedTxn Invoice " + std::to_string(a.invoice));
            }
            balance[a.invoice] += a.cents;
            if (balance[a.invoice] > field_cents(inv->doc, "Balance", digits_of(inv->doc))) {
                return business("the payment applies more than invoice " +
                                std::to_string(a.invoice) + "'s open balance");
            }
        }
        doc["UnappliedAmt"] = money_value(*total - applied, digits);
        if (!doc.contains("TxnDate")) {
            doc["TxnDate"] = utc_date(now());
        }
        return std::nullopt;
    }

    // ---- employees, items, time activities ----

    std::optional<reply> employee_fields(json& doc) {
        if (text_of(doc, "DisplayName").empty()) {
            const auto given = text_of(doc, "GivenName");
            const auto family = text_of(doc, "FamilyName");
            const auto name = given.empty()    ? family
                              : family.empty() ? given
                                               : given + " " + family;
            if (name.empty()) {
                return missing_param("DisplayName");
            }
            doc["DisplayName"] = name;
        }
        if (!doc.contains("Active")) {
            doc["Active"] = true;
        }
        if (!doc["Active"].is_boolean()) {
            return fault(400, "2170", "Invalid Enumeration", "Active must be true or false");
        }
        return std::nullopt;
    }

    std::optional<reply> item_fields(json& doc) {
        if (text_of(doc, "Name").empty()) {
            return missing_param("Name");
        }
        if (!doc.contains("Type")) {
            doc["Type"] = "Service";
        }
        if (!doc.contains("Active")) {
            doc["Active"] = true;
        }
        if (doc.contains("UnitPrice")) {
            const auto c = cents_of(doc["UnitPrice"], 2);
            if (!c || *c < 0) {
                return fault(400,
                             "2010",
                             "Request has invalid or unsupported property",
                             "UnitPrice is not an amount");
            }
            doc["UnitPrice"] = money_value(*c, 2);
        }
        return std::nullopt;
    }

    // TimeActivity as the fact sheet describes it: NameOf Employee|Vendor with its reference,
    // Hours/Minutes or StartTime/EndTime, TxnDate, CustomerRef, ItemRef, BillableStatus
    // (HasBeenBilled only by QBO itself), HourlyRate required when billable, Description up to
    // 4000 characters.
    std::optional<reply> time_activity_fields(realm_data& rd, json& doc, bool via_api) {
        const auto name_of = text_of(doc, "NameOf");
        if (name_of.empty()) {
            return missing_param("NameOf");
        }
        if (name_of == "Vendor") {
            const auto v = ref_of(doc, "VendorRef");
            return v.empty() ? missing_param("VendorRef") : invalid_ref("VendorRef " + v);
        }
        if (name_of != "Employee") {
            return fault(400,
                         "2170",
                         "Invalid Enumeration",
                         "NameOf must be Employee or Vendor, not " + name_of);
        }
        const auto eref = ref_of(doc, "EmployeeRef");
        if (eref.empty()) {
            return missing_param("EmployeeRef");
        }
        const auto* employee = find(rd, kind::employee, eref);
        if (employee == nullptr) {
            return invalid_ref("EmployeeRef " + eref);
        }
        if (!flag(employee->doc, "Active", true)) {
            return not_found(kind::employee, eref);
        }
        if (const auto cref = ref_of(doc, "CustomerRef"); !cref.empty()) {
            const auto* c = find(rd, kind::customer, cref);
            if (c == nullptr) {
                return invalid_ref("CustomerRef " + cref);
            }
            if (!flag(c->doc, "Active", true)) {
                return not_found(kind::customer, cref);
            }
        }
        if (const auto iref = ref_of(doc, "ItemRef"); !iref.empty()) {
            const auto* i = find(rd, kind::item, iref);
            if (i == nullptr) {
                return invalid_ref("ItemRef " + iref);
            }
            if (!flag(i->doc, "Active", true)) {
                return not_found(kind::item, iref);
            }
        }
        const bool span = doc.contains("StartTime") || doc.contains("EndTime");
        if (doc.contains("Hours") || doc.contains("Minutes")) {
            for (const auto* k : {"Hours", "Minutes"}) {
                if (!doc.contains(k)) {
                    doc[k] = 0;
                }
                if (!doc[k].is_number_integer() || doc[k].get<std::int64_t>() < 0 ||
                    (std::string_view(k) == "Minutes" && doc[k].get<std::int64_t>() > 59)) {
                    return fault(400,
                                 "2010",
                                 "Request has invalid or unsupported property",
                                 std::string(k) + " must be a whole number (Minutes 0-59)");
                }
            }
        } else if (span) {
            const auto a = mappings::parse_timestamp(text_of(doc, "StartTime"));
            const auto b = mappings::parse_timestamp(text_of(doc, "EndTime"));
            if (!a || !b || *b < *a) {
                return fault(400,
                             "2010",
                             "Request has invalid or unsupported property",
                             "StartTime and EndTime must be date-times, EndTime not before "
                             "StartTime");
            }
        } else {
            return missing_param("Hours or StartTime/EndTime");
        }
        if (doc.contains("TxnDate") && !mappings::parse_civil_date(text_of(doc, "TxnDate"))) {
            return fault(400,
                         "2010",
                         "Request has invalid or unsupported property",
                         "TxnDate is not a date (YYYY-MM-DD)");
        }
        if (!doc.contains("TxnDate")) {
            doc["TxnDate"] = utc_date(now());
        }
        if (!doc.contains("BillableStatus")) {
            doc["BillableStatus"] = "NotBillable";
        }
        const auto status = text_of(doc, "BillableStatus");
        if (status != "Billable" && status != "NotBillable" && status != "HasBeenBilled") {
            return fault(400,
                         "2170",
                         "Invalid Enumeration",
                         "BillableStatus must be Billable or NotBillable, not " + status);
        }
        if (status == "HasBeenBilled" && via_api) {
            return business(
                "BillableStatus HasBeenBilled is set by QuickBooks when an invoice "
                "links the activity");
        }
        if (status == "Billable") {
            if (ref_of(doc, "CustomerRef").empty()) {
                return missing_param("CustomerRef");
            }
            const auto rate = doc.contains("HourlyRate") ? cents_of(doc["HourlyRate"], 2)
                                                         : std::optional<std::int64_t>{};
            if (!rate || *rate < 0) {
                return missing_param("HourlyRate");
            }
            doc["HourlyRate"] = money_value(*rate, 2);
        }
        const auto desc = text_of(doc, "Description");
        const auto chars = std::count_if(desc.begin(), desc.end(), [](char c) {
            return (static_cast<unsigned char>(c) & 0xC0U) != 0x80U;
        });
        if (chars > 4000) {
            return fault(400,
                         "2050",
                         "String length is either shorter or longer than supported "
                         "by specification",
                         "Description is longer than 4000 characters");
        }
        return std::nullopt;
    }

    // ---- writes ----

    // Create (no Id) or update (Id + SyncToken; sparse merges).
    reply write(std::string_view realm_id, kind k, json body, bool via_api) {
        auto* rd = realm(realm_id);
        if (rd == nullptr) {
            return fault(403,
                         "003100",
                         "ApplicationAuthorizationFailed",
                         "realm " + std::string(realm_id) + " is not connected");
        }
        if (!body.is_object()) {
            return fault(400,
                         "2020",
                         "Request has invalid or unsupported property",
                         "the body is not a JSON object");
        }
        std::uint64_t self = 0;
        record* existing = nullptr;
        json doc;
        if (body.contains("Id")) {
            const auto id = text_of(body, "Id");
            existing = find(*rd, k, id);
            if (existing == nullptr) {
                return not_found(k, id);
            }
            self = *parse_id(id);
            const auto token = text_of(body, "SyncToken");
            if (token.empty()) {
                return missing_param("SyncToken");
            }
            if (token != std::to_string(existing->sync)) {
                return stale(token, existing->sync);
            }
            const bool sparse = flag(body, "sparse", false);
            strip_system(body);
            if (sparse) {
                doc = existing->doc;
                for (auto& [key, v] : body.items()) {
                    doc[key] = v;
                }
            } else {
                doc = std::move(body);
                // Read-only and system-kept fields survive a full update.
                for (const auto* key :
                     {"LinkedTxn", "Balance", "DocNumber", "EmailStatus", "DeliveryInfo"}) {
                    if (!doc.contains(key) && existing->doc.contains(key)) {
                        doc[key] = existing->doc[key];
                    }
                }
            }
        } else {
            strip_system(body);
            doc = std::move(body);
        }
        std::set<std::uint64_t> touched;
        std::vector<application> apps;
        switch (k) {
            case kind::customer:
                if (auto f = customer_fields(*rd, doc, self)) {
                    return *f;
                }
                break;
            case kind::invoice: {
                std::int64_t total = 0;
                if (existing != nullptr) {
                    doc["LinkedTxn"] = existing->doc.value("LinkedTxn", json::array());
                }
                if (auto f = invoice_fields(*rd, doc, self, total)) {
                    return *f;
                }
                const int digits = digits_of(doc);
                std::int64_t paid = 0;
                if (existing != nullptr) {
                    paid = field_cents(existing->doc, "TotalAmt", digits) -
                           field_cents(existing->doc, "Balance", digits);
                } else {
                    doc.erase("LinkedTxn");
                }
                if (paid > total) {
                    return business("the invoice total is below the payments applied to it");
                }
                doc["Balance"] = money_value(total - paid, digits);
                if (!doc.contains("EmailStatus")) {
                    const bool email =
                        doc.contains("BillEmail") && !text_of(doc["BillEmail"], "Address").empty();
                    doc["EmailStatus"] = email ? "NeedToSend" : "NotSet";
                }
                break;
            }
            case kind::payment:
                if (auto f = payment_fields(*rd, doc, self, apps)) {
                    return *f;
                }
                break;
            case kind::employee:
                if (auto f = employee_fields(doc)) {
                    return *f;
                }
                break;
            case kind::item:
                if (auto f = item_fields(doc)) {
                    return *f;
                }
                break;
            case kind::timeactivity:
                if (auto f = time_activity_fields(*rd, doc, via_api)) {
                    return *f;
                }
                break;
        }
        if (existing == nullptr) {
            const auto id = insert(realm_id, *rd, k, std::move(doc));
            if (via_api) {
                ++api_creates;
            }
            if (k == kind::payment) {
                apply(realm_id, *rd, id, apps, 1, touched);
                finish_touched(realm_id, *rd, touched);
            }
            return entity_reply(k, id, rd->tables[index_of(k)][id]);
        }
        if (k == kind::payment) {
            apply(realm_id, *rd, self, applications(existing->doc), -1, touched);
            apply(realm_id, *rd, self, apps, 1, touched);
        }
        existing->doc = std::move(doc);
        touch(realm_id, k, self, *existing, "Update");
        finish_touched(realm_id, *rd, touched);
        return entity_reply(k, self, *existing);
    }

    // Resolves {"Id","SyncToken"} for void/delete; nullptr with `err` set on failure.
    record* target(realm_data& rd, kind k, const json& body, bool check_token, reply& err) {
        const auto id = text_of(body, "Id");
        auto* r = find(rd, k, id);
        if (r == nullptr) {
            err = id.empty() ? missing_param("Id") : not_found(k, id);
            return nullptr;
        }
        if (check_token) {
            const auto token = text_of(body, "SyncToken");
            if (token.empty()) {
                err = missing_param("SyncToken");
                return nullptr;
            }
            if (token != std::to_string(r->sync)) {
                err = stale(token, r->sync);
                return nullptr;
            }
        }
        return r;
    }

    static void voided_note(json& doc) {
        const auto old = text_of(doc, "PrivateNote");
        doc["PrivateNote"] = old.empty() ? "Voided" : "Voided - " + old;
    }

    reply void_txn(std::string_view realm_id, kind k, const json& body, bool check_token) {
        auto* rd = realm(realm_id);
        reply err;
        auto* r = rd == nullptr ? nullptr : target(*rd, k, body, check_token, err);
        if (r == nullptr) {
            return rd == nullptr ? fault(403, "003100", "ApplicationAuthorizationFailed", "realm")
                                 : err;
        }
        const auto id = *parse_id(text_of(body, "Id"));
        auto& doc = r->doc;
        const int digits = digits_of(doc);
        std::set<std::uint64_t> touched;
        if (k == kind::payment) {
            apply(realm_id, *rd, id, applications(doc), -1, touched);
            doc["UnappliedAmt"] = money_value(0, digits);
        } else {
            doc["Balance"] = money_value(0, digits);
        }
        doc["TotalAmt"] = money_value(0, digits);
        if (doc.contains("Line") && doc["Line"].is_array()) {
            for (auto& l : doc["Line"]) {
                if (l.is_object() && l.contains("Amount")) {
                    l["Amount"] = money_value(0, digits);
                }
            }
        }
        voided_note(doc);
        touch(realm_id, k, id, *r, "Void");
        finish_touched(realm_id, *rd, touched);
        return entity_reply(k, id, *r);
    }

    reply remove(std::string_view realm_id, kind k, const json& body, bool check_token) {
        auto* rd = realm(realm_id);
        if (rd == nullptr) {
            return fault(403, "003100", "ApplicationAuthorizationFailed", "realm");
        }
        if (k == kind::customer || k == kind::employee || k == kind::item) {
            return business("a " + lower(entity_name(k)) +
                            " cannot be deleted; make it inactive (Active false)");
        }
        reply err;
        auto* r = target(*rd, k, body, check_token, err);
        if (r == nullptr) {
            return err;
        }
        const auto id = *parse_id(text_of(body, "Id"));
        std::set<std::uint64_t> touched;
        if (k == kind::invoice) {
            const int digits = digits_of(r->doc);
            if (field_cents(r->doc, "TotalAmt", digits) != field_cents(r->doc, "Balance", digits)) {
                return business("the invoice has payments applied; delete or void them first");
            }
        } else {
            apply(realm_id, *rd, id, applications(r->doc), -1, touched);
        }
        r->deleted = true;
        touch(realm_id, k, id, *r, "Delete");
        finish_touched(realm_id, *rd, touched);
        return {200,
                json{{std::string(entity_name(k)),
                      {{"Id", std::to_string(id)}, {"status", "Deleted"}, {"domain", "QBO"}}}}};
    }

    reply send(std::string_view realm_id, std::string_view id, const std::string& send_to) {
        auto* rd = realm(realm_id);
        auto* r = rd == nullptr ? nullptr : find(*rd, kind::invoice, id);
        if (r == nullptr) {
            return not_found(kind::invoice, std::string(id));
        }
        if (!send_to.empty()) {
            r->doc["BillEmail"] = {{"Address", send_to}};
        }
        if (!r->doc.contains("BillEmail") || text_of(r->doc["BillEmail"], "Address").empty()) {
            return business("no email address: set BillEmail or pass sendTo");
        }
        const auto t = now();
        r->doc["EmailStatus"] = "EmailSent";
        r->doc["DeliveryInfo"] = {{"DeliveryType", "Email"}, {"DeliveryTime", qbo_time(t)}};
        const auto n = *parse_id(id);
        touch(realm_id, kind::invoice, n, *r, "Emailed");
        return entity_reply(kind::invoice, n, *r);
    }

    // ---- reads ----

    std::optional<qvalue> row_value(const field_def& f, std::uint64_t id, const record& r) const {
        qvalue v;
        const auto& name = f.name;
        if (name == "Id") {
            v.n = static_cast<std::int64_t>(id);
        } else if (name == "MetaData.LastUpdatedTime") {
            v.n = r.updated.time_since_epoch().count();
        } else if (name == "MetaData.CreateTime") {
            v.n = r.created.time_since_epoch().count();
        } else if (name == "Active") {
            v.n = flag(r.doc, "Active", true) ? 1 : 0;
        } else if (name == "CustomerRef") {
            const auto n = parse_id(ref_of(r.doc, "CustomerRef"));
            if (!n) {
                return std::nullopt;
            }
            v.n = static_cast<std::int64_t>(*n);
        } else if (f.type == ftype::text) {
            if (!r.doc.contains(name)) {
                return std::nullopt;
            }
            v.is_text = true;
            v.s = lower(text_of(r.doc, name));
        } else if (f.type == ftype::money) {
            const auto it = r.doc.find(name);
            if (it == r.doc.end()) {
                return std::nullopt;
            }
            const auto c = cents_of(*it, 2);
            if (!c) {
                return std::nullopt;
            }
            v.n = *c;
        } else if (f.type == ftype::date) {
            const auto d = mappings::parse_civil_date(text_of(r.doc, name));
            if (!d) {
                return std::nullopt;
            }
            v.n = std::chrono::sys_days(*d).time_since_epoch().count();
        }
        return v;
    }

    bool matches(const condition& c, std::uint64_t id, const record& r) const {
        const auto v = row_value(*c.field, id, r);
        if (!v) {
            return false;
        }
        const auto& x = c.values.front();
        switch (c.op) {
            case qop::eq:
                return compare(*v, x) == 0;
            case qop::ne:
                return compare(*v, x) != 0;
            case qop::lt:
                return compare(*v, x) < 0;
            case qop::gt:
                return compare(*v, x) > 0;
            case qop::le:
                return compare(*v, x) <= 0;
            case qop::ge:
                return compare(*v, x) >= 0;
            case qop::like:
                return like_match(v->s, x.s);
            case qop::in:
                return std::any_of(c.values.begin(), c.values.end(), [&](const qvalue& y) {
                    return compare(*v, y) == 0;
                });
        }
        return false;
    }

    reply run_query(realm_data& rd, std::string_view text) const {
        std::string error;
        query_parser p(text);
        const auto q = p.parse(error);
        if (!q) {
            return query_error(error);
        }
        // Inactive customers, employees and items stay out unless the query asks about Active.
        const bool active_only =
            (q->entity == kind::customer || q->entity == kind::employee ||
             q->entity == kind::item) &&
            std::none_of(q->where.begin(), q->where.end(), [](const condition& c) {
                return c.field->name == "Active";
            });
        std::vector<std::pair<std::uint64_t, const record*>> rows;
        for (const auto& [id, r] : rd.tables[index_of(q->entity)]) {
            if (r.deleted || (active_only && !flag(r.doc, "Active", true))) {
                continue;
            }
            if (std::all_of(q->where.begin(), q->where.end(), [&](const condition& c) {
                    return matches(c, id, r);
                })) {
                rows.emplace_back(id, &r);
            }
        }
        if (q->count) {
            return {200, json{{"QueryResponse", {{"totalCount", rows.size()}}}}};
        }
        if (q->order != nullptr) {
            const auto* f = q->order;
            // Ties fall back on Id (std::sort with a last key, not std::stable_sort, whose
            // temporary buffer clang flags as deprecated).
            const bool desc = q->descending;
            std::sort(rows.begin(), rows.end(), [&](const auto& a, const auto& b) {
                const auto va = row_value(*f, a.first, *a.second);
                const auto vb = row_value(*f, b.first, *b.second);
                const int c = !va || !vb ? (va ? 1 : 0) - (vb ? 1 : 0) : compare(*va, *vb);
                if (c != 0) {
                    return desc ? c > 0 : c < 0;
                }
                return a.first < b.first;
            });
        }
        json list = json::array();
        const auto first = static_cast<std::size_t>(q->start - 1);
        for (std::size_t i = first;
             i < rows.size() && list.size() < static_cast<std::size_t>(q->max);
             ++i) {
            list.push_back(render(q->entity, rows[i].first, *rows[i].second));
        }
        if (list.empty()) {
            return {200, json{{"QueryResponse", json::object()}}};
        }
        const auto n = list.size();
        return {200,
                json{{"QueryResponse",
                      {{std::string(entity_name(q->entity)), std::move(list)},
                       {"startPosition", q->start},
                       {"maxResults", n}}}}};
    }

    reply cdc(realm_data& rd, const std::string& entities, const std::string& since_text) const {
        if (entities.empty()) {
            return missing_param("entities");
        }
        if (since_text.empty()) {
            return missing_param("changedSince");
        }
        std::optional<util::instant> since = mappings::parse_timestamp(since_text);
        if (!since) {
            if (const auto d = mappings::parse_civil_date(since_text)) {
                since = util::instant(std::chrono::sys_days(*d));
            }
        }
        if (!since) {
            return fault(400,
                         "2010",
                         "Request has invalid or unsupported property",
                         "changedSince '" + since_text + "' is not a date or date-time");
        }
        if (*since < now() - options.cdc_lookback) {
            return fault(400,
                         "6000",
                         "A business validation error has occurred while processing your request",
                         "Business Validation Error: changedSince cannot go back more than " +
                             std::to_string(options.cdc_lookback.count() / 24) + " days");
        }
        std::vector<kind> wanted;
        std::string_view rest = entities;
        while (!rest.empty()) {
            const auto comma = rest.find(',');
            auto name = rest.substr(0, comma);
            while (!name.empty() && name.front() == ' ') {
                name.remove_prefix(1);
            }
            // TimeActivity and the other uncovered entities are not returned.
            if (const auto k = kind_of(name);
                k && *k != kind::timeactivity &&
                std::find(wanted.begin(), wanted.end(), *k) == wanted.end()) {
                wanted.push_back(*k);
            }
            rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
        }
        struct hit {
            util::instant at;
            kind k;
            std::uint64_t id;
            const record* r;
        };
        std::vector<hit> hits;
        for (const auto k : wanted) {
            for (const auto& [id, r] : rd.tables[index_of(k)]) {
                if (r.updated >= *since) {
                    hits.push_back({r.updated, k, id, &r});
                }
            }
        }
        std::sort(hits.begin(), hits.end(), [](const hit& a, const hit& b) {
            return std::tie(a.at, a.k, a.id) < std::tie(b.at, b.k, b.id);
        });
        if (hits.size() > options.cdc_cap) {
            hits.resize(options.cdc_cap);
        }
        json responses = json::array();
        for (const auto k : wanted) {
            json list = json::array();
            for (const auto& h : hits) {
                if (h.k == k) {
                    list.push_back(render(k, h.id, *h.r));
                }
            }
            if (list.empty()) {
                responses.push_back(json::object());
                continue;
            }
            const auto n = list.size();
            responses.push_back({{std::string(entity_name(k)), std::move(list)},
                                 {"startPosition", 1},
                                 {"maxResults", n}});
        }
        return {200,
                json{{"CDCResponse", json::array({{{"QueryResponse", std::move(responses)}}})}}};
    }

    // ---- webhooks ----

    std::string ce_id() {
        auto h = unique("ce");
        return h.substr(0, 8) + "-" + h.substr(8, 4) + "-4" + h.substr(13, 3) + "-a" +
               h.substr(17, 3) + "-" + h.substr(20, 12);
    }

    static std::string_view ce_operation(std::string_view op) {
        if (op == "Create") {
            return "created";
        }
        if (op == "Delete") {
            return "deleted";
        }
        if (op == "Void") {
            return "voided";
        }
        if (op == "Emailed") {
            return "emailed";
        }
        return "updated";
    }

    std::string body_of(const std::vector<event>& batch, qbo_webhook_format format) {
        if (format == qbo_webhook_format::cloudevents) {
            json arr = json::array();
            for (const auto& e : batch) {
                arr.push_back({{"specversion", "1.0"},
                               {"id", ce_id()},
                               {"source", "intuit.sim"},
                               {"type",
                                "qbo." + lower(entity_name(e.entity)) + "." +
                                    std::string(ce_operation(e.op)) + ".v1"},
                               {"datacontenttype", "application/json"},
                               {"time", util::format_rfc3339(e.at)},
                               {"intuitentityid", std::to_string(e.id)},
                               {"intuitaccountid", e.realm},
                               {"data", json::object()}});
            }
            return arr.dump();
        }
        json notes = json::array();
        std::vector<std::string> order;
        std::map<std::string, json> by_realm;
        for (const auto& e : batch) {
            if (!by_realm.contains(e.realm)) {
                order.push_back(e.realm);
                by_realm[e.realm] = json::array();
            }
            by_realm[e.realm].push_back({{"name", entity_name(e.entity)},
                                         {"id", std::to_string(e.id)},
                                         {"operation", e.op},
                                         {"lastUpdated", util::format_rfc3339(e.at)}});
        }
        for (const auto& r : order) {
            notes.push_back(
                {{"realmId", r}, {"dataChangeEvent", {{"entities", std::move(by_realm[r])}}}});
        }
        return json{{"eventNotifications", std::move(notes)}}.dump();
    }

    qbo_delivery sign(std::string body) const {
        qbo_delivery d;
        d.signature = util::base64_encode(util::hmac_sha256(options.verifier_token, body));
        d.body = std::move(body);
        return d;
    }

    std::vector<qbo_delivery> take(const qbo_deliver_options& o) {
        auto evs = std::move(events);
        events.clear();
        if (o.reverse_order) {
            std::reverse(evs.begin(), evs.end());
        }
        const auto per = std::max<std::size_t>(1, o.events_per_delivery);
        std::vector<qbo_delivery> out;
        for (std::size_t i = 0; i < evs.size(); i += per) {
            const std::vector<event> batch(
                evs.begin() + static_cast<std::ptrdiff_t>(i),
                evs.begin() + static_cast<std::ptrdiff_t>(std::min(evs.size(), i + per)));
            auto d = sign(body_of(batch, o.format));
            if (o.duplicate_each) {
                out.push_back(d);
            }
            out.push_back(std::move(d));
        }
        return out;
    }

    json state_json() const {
        json realms_out = json::object();
        for (const auto& [name, rd] : realms) {
            json counts = json::object();
            for (const auto k : all_kinds) {
                std::size_t n = 0;
                for (const auto& [id, r] : rd.tables[index_of(k)]) {
                    n += r.deleted ? 0 : 1;
                }
                counts[std::string(entity_name(k))] = n;
            }
            realms_out[name] = std::move(counts);
        }
        return json{{"realms", std::move(realms_out)},
                    {"pending_events", events.size()},
                    {"requestid_replays", replays},
                    {"creates", api_creates}};
    }
};

namespace {

std::optional<kind> kind_from_user(const std::string& entity) { return kind_of(entity); }

json entity_or_fault(const reply& r, kind k) {
    if (r.ok()) {
        const auto it = r.body.find(std::string(entity_name(k)));
        return it == r.body.end() ? r.body : *it;
    }
    return r.body;
}

std::vector<std::string> path_parts(std::string_view path) {
    std::vector<std::string> out;
    while (!path.empty()) {
        const auto slash = path.find('/');
        if (slash != 0) {
            out.push_back(http::percent_decode(path.substr(0, slash)));
        }
        if (slash == std::string_view::npos) {
            break;
        }
        path.remove_prefix(slash + 1);
    }
    return out;
}

}  // namespace

// ---- qbo_simulator -----------------------------------------------------------------------------

qbo_simulator::qbo_simulator(qbo_sim_options o)
    : st_(std::make_unique<state>(std::move(o))), oauth_([this] {
          auto oo = st_->options.oauth;
          oo.mode = oauth2_mode::qbo;
          if (!oo.now) {
              state* s = st_.get();
              oo.now = [s] { return s->now(); };
          }
          if (!st_->options.realms.empty() && oo.realm_id == oauth2_server_options{}.realm_id) {
              oo.realm_id = st_->options.realms.front();
          }
          return oo;
      }()) {}

qbo_simulator::~qbo_simulator() = default;

std::string_view qbo_simulator::name() const noexcept { return "qbo"; }

oauth2_server& qbo_simulator::oauth() { return oauth_; }

void qbo_simulator::configure(sim_server& server) {
    if (!st_->options.enforce_limits) {
        return;
    }
    state* s = st_.get();
    server.add_limit(qbo_throttle_rule(s->options.scale, [s] { return qbo_time(s->now()); }));
}

namespace {

http::response to_http(const reply& r, std::string time_text) {
    json body = r.body;
    body["time"] = std::move(time_text);
    return http::response::json(r.status, body.dump());
}

}  // namespace

void qbo_simulator::add_routes(http::router& r) {
    oauth_.add_routes(r);
    auto company_h = [this](http::request req) { return company_held(std::move(req)); };
    auto admin_h = [this](http::request req) { return admin(std::move(req)); };
    r.add_prefix("GET", std::string(company_prefix), "/v3/company/:realm", company_h);
    r.add_prefix("POST", std::string(company_prefix), "/v3/company/:realm", company_h);
    r.add("GET", std::string(admin_prefix) + "state", admin_h);
    r.add_prefix("POST", std::string(admin_prefix), "/_sim/qbo/:any", admin_h);
}

net::awaitable<http::response> qbo_simulator::company_held(http::request req) {
    const bool create = req.method == "POST" &&
                        (req.path.ends_with("/invoice") || req.path.ends_with("/timeactivity")) &&
                        http::query_param(req.query, "operation").empty();
    auto resp = co_await company(std::move(req));
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

void qbo_simulator::hold_create_answers(std::chrono::milliseconds hold) {
    std::lock_guard lock(st_->mutex);
    st_->create_hold = hold;
}

net::awaitable<http::response> qbo_simulator::company(http::request req) {
    state* s = st_.get();
    oauth2_server* auth = &oauth_;
    const auto tid = s->unique("tid").substr(0, 32);
    auto finish = [&](http::response resp) {
        resp.headers.push_back({"intuit_tid", tid});
        return resp;
    };
    const auto bearer = req.header_value("Authorization");
    if (!bearer.starts_with("Bearer ") || !auth->access_token_valid(bearer.substr(7))) {
        std::lock_guard lock(s->mutex);
        json body{{"fault",
                   {{"error",
                     json::array({{{"message",
                                    "message=AuthenticationFailed; errorCode=003200; "
                                    "statusCode=401"},
                                   {"detail", "Token expired"},
                                   {"code", "3200"}}})},
                    {"type", "AUTHENTICATION"}}},
                  {"time", qbo_time(s->now())}};
        auto resp = http::response::json(401, body.dump());
        resp.headers.push_back(
            {"WWW-Authenticate", R"(Bearer realm="Intuit", error="invalid_token")"});
        co_return finish(std::move(resp));
    }
    const auto parts = path_parts(std::string_view(req.path).substr(company_prefix.size()));
    std::lock_guard lock(s->mutex);
    const auto time_text = qbo_time(s->now());
    if (parts.empty() || s->realm(parts[0]) == nullptr) {
        co_return finish(to_http(
            fault(403,
                  "003100",
                  "message=ApplicationAuthorizationFailed; errorCode=003100; statusCode=403",
                  "the app is not connected to company " + (parts.empty() ? "" : parts[0]),
                  "AUTHORIZATION"),
            time_text));
    }
    const auto& realm_id = parts[0];
    auto& rd = *s->realm(realm_id);
    const auto requestid = http::query_param(req.query, "requestid");
    if (req.method == "POST" && !requestid.empty()) {
        if (requestid.size() > 50) {
            co_return finish(to_http(
                fault(400,
                      "6000",
                      "A business validation error has occurred while processing your request",
                      "Business Validation Error: requestid is longer than 50 characters"),
                time_text));
        }
        if (const auto it = rd.requestids.find(requestid); it != rd.requestids.end()) {
            ++s->replays;
            co_return finish(http::response::json(it->second.first, it->second.second));
        }
    }
    const auto operation = http::query_param(req.query, "operation");
    reply out = fault(400,
                      "500",
                      "Unsupported Operation",
                      "Operation " + req.method + " " + req.path + " is not supported");
    const auto k = parts.size() >= 2 ? kind_of(parts[1]) : std::nullopt;
    bool cacheable = false;
    if (req.method == "GET") {
        if (parts.size() == 3 && k) {
            const auto* rec = s->find(rd, *k, parts[2]);
            out = rec == nullptr ? not_found(*k, parts[2])
                                 : s->entity_reply(*k, *parse_id(parts[2]), *rec);
        } else if (parts.size() == 2 && parts[1] == "query") {
            out = s->run_query(rd, http::query_param(req.query, "query"));
        } else if (parts.size() == 2 && parts[1] == "cdc") {
            out = s->cdc(rd,
                         http::query_param(req.query, "entities"),
                         http::query_param(req.query, "changedSince"));
        } else if (parts.size() == 3 && parts[1] == "companyinfo") {
            out = {
                200,
                json{{"CompanyInfo",
                      {{"Id", "1"}, {"CompanyName", "Sim Books " + realm_id}, {"Country", "US"}}}}};
        }
    } else if (req.method == "POST" && k) {
        cacheable = true;
        if (parts.size() == 4 && parts[3] == "send" && *k == kind::invoice) {
            const auto ct = lower(req.header_value("Content-Type"));
            if (ct.starts_with("application/json")) {
                out = fault(500,
                            "10000",
                            "An application error has occurred while processing your request",
                            "System Failure Error: Could not find resource for relative : "
                            "/v3/company/" +
                                realm_id + "/invoice/" + parts[2] + "/send of full path",
                            "SystemFault");
            } else if (!ct.starts_with("application/octet-stream")) {
                out = fault(415,
                            "500",
                            "Unsupported Operation",
                            "send takes an empty body with Content-Type "
                            "application/octet-stream");
            } else {
                out = s->send(realm_id, parts[2], http::query_param(req.query, "sendTo"));
            }
        } else if (parts.size() == 2) {
            std::string err;
            auto body = mappings::parse_exact(req.body, err);
            if (!body || !body->is_object()) {
                out = fault(400,
                            "2020",
                            "Request has invalid or unsupported property",
                            "the body is not a JSON object: " + err);
            } else if (operation == "void" && *k == kind::invoice) {
                out = s->void_txn(realm_id, *k, *body, true);
            } else if (operation == "update" && http::query_param(req.query, "include") == "void" &&
                       *k == kind::payment) {
                out = s->void_txn(realm_id, *k, *body, true);
            } else if (operation == "delete") {
                out = s->remove(realm_id, *k, *body, true);
            } else if (operation.empty() || operation == "update" || operation == "create") {
                out = s->write(realm_id, *k, std::move(*body), true);
            } else {
                out = fault(400,
                            "500",
                            "Unsupported Operation",
                            "operation=" + operation + " is not supported on " +
                                std::string(entity_name(*k)));
            }
        }
    }
    auto resp = to_http(out, time_text);
    if (cacheable && !requestid.empty()) {
        rd.requestids[requestid] = {resp.status, resp.body};
    }
    co_return finish(std::move(resp));
}

net::awaitable<http::response> qbo_simulator::admin(http::request req) {
    state* s = st_.get();
    oauth2_server* auth = &oauth_;
    const auto parts = path_parts(std::string_view(req.path).substr(admin_prefix.size()));
    if (req.method == "GET" && parts.size() == 1 && parts[0] == "state") {
        std::lock_guard lock(s->mutex);
        co_return http::response::json(200, s->state_json().dump());
    }
    if (parts.size() == 1 && parts[0] == "grant") {
        const auto g = auth->issue_grant();
        std::lock_guard lock(s->mutex);
        co_return http::response::json(
            200,
            json{{"access_token", g.access_token},
                 {"refresh_token", g.refresh_token},
                 {"expires_in", g.expires_in.count()},
                 {"realmId", s->options.realms.empty() ? "" : s->options.realms[0]}}
                .dump());
    }
    std::string err;
    auto body = mappings::parse_exact(req.body.empty() ? "{}" : req.body, err);
    if (!body || !body->is_object()) {
        co_return http::response::error(400, "invalid_request", "body is not a JSON object");
    }
    if (parts.size() == 1 && parts[0] == "deliver") {
        qbo_deliver_options o;
        o.format = text_of(*body, "format") == "cloudevents" ? qbo_webhook_format::cloudevents
                                                             : qbo_webhook_format::classic;
        o.duplicate_each = flag(*body, "duplicate_each", false);
        o.reverse_order = flag(*body, "reverse_order", false);
        if (body->contains("events_per_delivery") &&
            (*body)["events_per_delivery"].is_number_unsigned()) {
            o.events_per_delivery = (*body)["events_per_delivery"].get<std::size_t>();
        }
        const auto target = http::parse_url(text_of(*body, "url"));
        if (!target || target->scheme != "http") {
            co_return http::response::error(400, "invalid_request", "url must be http://");
        }
        const auto deliveries = take_deliveries(o);
        json statuses = json::array();
        for (const auto& d : deliveries) {
            http::outgoing_request out;
            out.method = "POST";
            out.host = target->host;
            out.port = target->port;
            out.target = target->target;
            out.headers = {{"Content-Type", "application/json"}, {"intuit-signature", d.signature}};
            out.body = d.body;
            const auto resp = co_await http::async_fetch(std::move(out));
            statuses.push_back(resp.status);
        }
        co_return http::response::json(200, json{{"statuses", statuses}}.dump());
    }
    std::lock_guard lock(s->mutex);
    if (parts.size() == 2 && kind_of(parts[1])) {
        const auto k = *kind_of(parts[1]);
        body->erase("Id");
        const auto out = s->write(parts[0], k, std::move(*body), false);
        co_return http::response::json(out.status, entity_or_fault(out, k).dump());
    }
    if (parts.size() == 4 && parts[1] == "invoice" && parts[3] == "void") {
        const auto out = s->void_txn(parts[0], kind::invoice, json{{"Id", parts[2]}}, false);
        co_return http::response::json(out.status, entity_or_fault(out, kind::invoice).dump());
    }
    co_return http::response::error(404, "not_found", "unknown simulator route");
}

// ---- business events ---------------------------------------------------------------------------

nlohmann::json qbo_simulator::add_customer(const std::string& realm, nlohmann::json fields) {
    auto body = exact(fields);
    body.erase("Id");
    std::lock_guard lock(st_->mutex);
    return entity_or_fault(st_->write(realm, kind::customer, std::move(body), false),
                           kind::customer);
}

nlohmann::json qbo_simulator::add_invoice(const std::string& realm, nlohmann::json fields) {
    auto body = exact(fields);
    body.erase("Id");
    std::lock_guard lock(st_->mutex);
    return entity_or_fault(st_->write(realm, kind::invoice, std::move(body), false), kind::invoice);
}

nlohmann::json qbo_simulator::add_payment(const std::string& realm, nlohmann::json fields) {
    auto body = exact(fields);
    body.erase("Id");
    std::lock_guard lock(st_->mutex);
    return entity_or_fault(st_->write(realm, kind::payment, std::move(body), false), kind::payment);
}

nlohmann::json qbo_simulator::add_employee(const std::string& realm, nlohmann::json fields) {
    auto body = exact(fields);
    body.erase("Id");
    std::lock_guard lock(st_->mutex);
    return entity_or_fault(st_->write(realm, kind::employee, std::move(body), false),
                           kind::employee);
}

nlohmann::json qbo_simulator::add_item(const std::string& realm, nlohmann::json fields) {
    auto body = exact(fields);
    body.erase("Id");
    std::lock_guard lock(st_->mutex);
    return entity_or_fault(st_->write(realm, kind::item, std::move(body), false), kind::item);
}

nlohmann::json qbo_simulator::add_time_activity(const std::string& realm, nlohmann::json fields) {
    auto body = exact(fields);
    body.erase("Id");
    std::lock_guard lock(st_->mutex);
    return entity_or_fault(st_->write(realm, kind::timeactivity, std::move(body), false),
                           kind::timeactivity);
}

nlohmann::json qbo_simulator::void_invoice(const std::string& realm, const std::string& id) {
    std::lock_guard lock(st_->mutex);
    return entity_or_fault(st_->void_txn(realm, kind::invoice, json{{"Id", id}}, false),
                           kind::invoice);
}

nlohmann::json qbo_simulator::update(const std::string& realm,
                                     const std::string& entity,
                                     const std::string& id,
                                     nlohmann::json sparse_fields) {
    const auto k = kind_from_user(entity);
    if (!k) {
        return fault(400, "500", "Unsupported Operation", "unknown entity " + entity).body;
    }
    auto body = exact(sparse_fields);
    std::lock_guard lock(st_->mutex);
    auto* rd = st_->realm(realm);
    const auto* r = rd == nullptr ? nullptr : st_->find(*rd, *k, id);
    if (r == nullptr) {
        return not_found(*k, id).body;
    }
    body["Id"] = id;
    body["SyncToken"] = std::to_string(r->sync);
    body["sparse"] = true;
    return entity_or_fault(st_->write(realm, *k, std::move(body), false), *k);
}

void qbo_simulator::delete_entity(const std::string& realm,
                                  const std::string& entity,
                                  const std::string& id) {
    const auto k = kind_from_user(entity);
    if (!k) {
        return;
    }
    std::lock_guard lock(st_->mutex);
    st_->remove(realm, *k, json{{"Id", id}}, false);
}

std::optional<nlohmann::json> qbo_simulator::get(const std::string& realm,
                                                 const std::string& entity,
                                                 const std::string& id) const {
    const auto k = kind_from_user(entity);
    if (!k) {
        return std::nullopt;
    }
    std::lock_guard lock(st_->mutex);
    auto* rd = st_->realm(realm);
    const auto* r = rd == nullptr ? nullptr : st_->find(*rd, *k, id);
    if (r == nullptr) {
        return std::nullopt;
    }
    return st_->render(*k, *parse_id(id), *r);
}

std::size_t qbo_simulator::count(const std::string& realm, const std::string& entity) const {
    const auto k = kind_from_user(entity);
    std::lock_guard lock(st_->mutex);
    const auto* rd = st_->realm(realm);
    if (!k || rd == nullptr) {
        return 0;
    }
    std::size_t n = 0;
    for (const auto& [id, r] : rd->tables[index_of(*k)]) {
        n += r.deleted ? 0 : 1;
    }
    return n;
}

// ---- webhooks ----------------------------------------------------------------------------------

std::vector<qbo_delivery> qbo_simulator::take_deliveries(const qbo_deliver_options& o) {
    std::lock_guard lock(st_->mutex);
    return st_->take(o);
}

qbo_delivery qbo_simulator::sign(std::string body) const { return st_->sign(std::move(body)); }

std::vector<unsigned> qbo_simulator::deliver(const std::string& url, const qbo_deliver_options& o) {
    const auto target = http::parse_url(url);
    const auto deliveries = take_deliveries(o);
    std::vector<unsigned> out;
    for (const auto& d : deliveries) {
        if (!target || target->scheme != "http") {
            out.push_back(0);
            continue;
        }
        const auto r =
            http::fetch(target->host,
                        target->port,
                        "POST",
                        target->target,
                        {{"Content-Type", "application/json"}, {"intuit-signature", d.signature}},
                        d.body);
        out.push_back(r.status);
    }
    return out;
}

std::size_t qbo_simulator::pending_events() const {
    std::lock_guard lock(st_->mutex);
    return st_->events.size();
}

std::uint64_t qbo_simulator::requestid_replays() const {
    std::lock_guard lock(st_->mutex);
    return st_->replays;
}

std::uint64_t qbo_simulator::creates() const {
    std::lock_guard lock(st_->mutex);
    return st_->api_creates;
}

// ---- shared with qbo-limits --------------------------------------------------------------------

std::string qbo_realm_of(const http::request& req) {
    if (!req.path.starts_with(company_prefix)) {
        return {};
    }
    const auto rest = std::string_view(req.path).substr(company_prefix.size());
    return std::string(rest.substr(0, rest.find('/')));
}

rate_limit_rule qbo_throttle_rule(double scale, std::function<std::string()> time_text) {
    rate_limit_rule rule;
    rule.path_prefix = std::string(company_prefix);
    rule.requests = 500;
    rule.window = scaled_window(60s, scale);
    rule.max_concurrent = 10;
    rule.key = qbo_realm_of;
    rule.reject = [time_text = std::move(time_text)](const limit_hit&) {
        // No Retry-After: Intuit documents none.
        json body{{"Fault",
                   {{"Error",
                     json::array({{{"Message", "ThrottleExceeded"},
                                   {"Detail", "ThrottleExceeded"},
                                   {"code", "003001"}}})},
                    {"type", "ValidationFault"}}},
                  {"time", time_text ? time_text() : "2026-01-05T09:00:00.000-08:00"}};
        return http::response::json(429, body.dump());
    };
    return rule;
}

}  // namespace billsync::simulators
