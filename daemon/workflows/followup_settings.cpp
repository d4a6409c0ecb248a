#include "daemon/workflows/followup_settings.hpp"

#include <date/date.h>
#include <toml++/toml.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "mappings/model.hpp"

namespace billsync::config {

namespace fu = workflows::followup;
using workflows::message_template;
using workflows::placeholder;

namespace {

// The value node of key in r's table, found through the document (the reader gives values, not
// nodes, and template errors need the value's own position).
const toml::node* value_node(const reader& r, std::string_view key) {
    const auto doc = r.document();
    const toml::node* node = doc.get();
    std::string_view path = r.path();
    while (!path.empty() && node != nullptr) {
        const auto dot = path.find('.');
        const auto part = path.substr(0, dot);
        const auto* table = node->as_table();
        node = table == nullptr ? nullptr : table->get(part);
        path = dot == std::string_view::npos ? std::string_view() : path.substr(dot + 1);
    }
    const auto* table = node == nullptr ? nullptr : node->as_table();
    return table == nullptr ? nullptr : table->get(key);
}

std::size_t code_points(std::string_view s) {
    std::size_t n = 0;
    for (const char c : s) {
        if ((static_cast<unsigned char>(c) & 0xC0) != 0x80) {
            ++n;
        }
    }
    return n;
}

// Where byte `offset` of a string value's decoded text sits in the file. toml++ counts columns in
// code points, from the opening quote to one past the closing one. Exact for strings without
// escape sequences (single- or multi-line, basic or literal); otherwise the value's start.
source_pos text_position(const reader& r,
                         std::string_view key,
                         std::string_view text,
                         std::size_t offset) {
    auto pos = r.position_of(key);
    const auto* node = value_node(r, key);
    if (node == nullptr) {
        return pos;
    }
    const auto& src = node->source();
    pos.line = src.begin.line;
    pos.column = src.begin.column;
    const auto prefix = text.substr(0, offset);
    const auto newlines_in = [](std::string_view s) {
        return static_cast<std::uint32_t>(std::count(s.begin(), s.end(), '\n'));
    };
    if (src.begin.line == src.end.line) {
        const auto width = src.end.column - src.begin.column;
        const auto cps = code_points(text);
        std::uint32_t quote = 0;
        if (width == cps + 2) {
            quote = 1;
        } else if (width == cps + 6) {
            quote = 3;
        } else {
            return pos;
        }
        pos.column = src.begin.column + quote + static_cast<std::uint32_t>(code_points(prefix));
        return pos;
    }
    const auto lines = src.end.line - src.begin.line;
    const auto newlines = newlines_in(text);
    const auto line_start = prefix.rfind('\n');
    const auto in_line =
        line_start == std::string_view::npos ? prefix : prefix.substr(line_start + 1);
    const auto before = newlines_in(prefix);
    if (lines == newlines + 1) {
        // The newline right after the opening """ was trimmed: text starts on the next line.
        pos.line = src.begin.line + 1 + before;
        pos.column = 1 + static_cast<std::uint32_t>(code_points(in_line));
    } else if (lines == newlines) {
        pos.line = src.begin.line + before;
        pos.column = (before == 0 ? src.begin.column + 3 : 1) +
                     static_cast<std::uint32_t>(code_points(in_line));
    }
    return pos;
}

struct template_reader {
    reader& r;
    const fu::settings& s;  // firm_name / firm_phone, to check the placeholders that use them
    std::set<std::string>& missing_for_defaults;  // firm settings the default texts need
    bool ok = true;

    // Reads one template part: the configured text or the default. Returns an empty template when
    // neither exists (the caller decides whether the part is needed).
    message_template part(std::string_view id, std::string_view name) {
        std::string text;
        bool configured = false;
        if (auto value = r.get_string(name)) {
            text = std::move(*value);
            configured = true;
        } else if (r.has(name)) {
            ok = false;  // wrong type, already reported
            return {};
        } else {
            text = std::string(fu::default_template_text(id, name, !s.autopay_link.empty()));
        }
        if (text.empty()) {
            if (configured) {
                r.error(name, "'" + std::string(name) + "' must not be empty");
                ok = false;
            }
            return {};
        }
        auto parsed = message_template::parse(text);
        if (auto* e = std::get_if<workflows::template_error>(&parsed)) {
            r.diags().error(text_position(r, name, text, e->offset),
                            prefix() + "'" + std::string(name) + "': " + e->message);
            ok = false;
            return {};
        }
        auto t = std::get<message_template>(std::move(parsed));
        check_firm(t, name, text, configured, placeholder::firm_name, s.firm_name, "firm_name");
        check_firm(t, name, text, configured, placeholder::firm_phone, s.firm_phone, "firm_phone");
        check_firm(
            t, name, text, configured, placeholder::autopay_link, s.autopay_link, "autopay_link");
        return t;
    }

    // A built-in text (tested to parse), checked for the firm settings it needs like the defaults.
    message_template compile_default(std::string_view text, std::string_view name) {
        auto parsed = message_template::parse(text);
        auto* t = std::get_if<message_template>(&parsed);
        if (t == nullptr) {
            return {};
        }
        const std::string copy(text);
        check_firm(*t, name, copy, false, placeholder::firm_name, s.firm_name, "firm_name");
        check_firm(*t, name, copy, false, placeholder::firm_phone, s.firm_phone, "firm_phone");
        return std::move(*t);
    }

    void check_firm(const message_template& t,
                    std::string_view name,
                    const std::string& text,
                    bool configured,
                    placeholder p,
                    const std::string& value,
                    std::string_view setting) {
        if (!s.enabled || !t.uses(p) || !value.empty()) {
            return;
        }
        if (!configured) {
            missing_for_defaults.emplace(setting);
            return;
        }
        const auto token = "{" + std::string(workflows::to_string(p)) + "}";
        const auto at = text.find(token);
        r.diags().error(text_position(r, name, text, at),
                        prefix() + "'" + std::string(name) + "' uses " + token +
                            " but [followup] " + std::string(setting) + " is not set");
        ok = false;
    }

    std::string prefix() const { return "[" + r.path() + "] "; }
};

std::optional<std::chrono::minutes> parse_hhmm(std::string_view text) {
    if (text.size() != 5 || text[2] != ':') {
        return std::nullopt;
    }
    int h = 0;
    int m = 0;
    const auto rh = std::from_chars(text.data(), text.data() + 2, h);
    const auto rm = std::from_chars(text.data() + 3, text.data() + 5, m);
    if (rh.ec != std::errc() || rh.ptr != text.data() + 2 || rm.ec != std::errc() ||
        rm.ptr != text.data() + 5) {
        return std::nullopt;
    }
    if (h < 0 || m < 0 || m > 59 || h > 24 || (h == 24 && m != 0)) {
        return std::nullopt;
    }
    return std::chrono::minutes(h * 60 + m);
}

std::optional<date::sys_days> parse_civil_date(std::string_view text) {
    if (text.size() != 10) {
        return std::nullopt;
    }
    // Not date::parse: at -O2 GCC 12 flags its internals (maybe-uninitialized).
    const auto c = mappings::parse_civil_date(text);
    if (!c) {
        return std::nullopt;
    }
    const date::year_month_day ymd{date::year{static_cast<int>(c->year())},
                                   date::month{static_cast<unsigned>(c->month())},
                                   date::day{static_cast<unsigned>(c->day())}};
    return date::sys_days(ymd);
}

void parse_window(reader w, fu::sending_window& out) {
    const auto time_of = [&w](std::string_view key, std::chrono::minutes fallback) {
        auto text = w.get_string(key);
        if (!text) {
            return fallback;
        }
        if (auto t = parse_hhmm(*text)) {
            return *t;
        }
        w.error(key,
                "'" + std::string(key) + "' must be a time of day \"HH:MM\", not '" + *text + "'");
        return fallback;
    };
    out.start = time_of("start", out.start);
    out.end = time_of("end", out.end);
    if (out.start >= out.end) {
        w.error("end", "'end' must be later than 'start'");
    }
    read_weekdays(w, "days", out.days);
    read_holidays(w, out.holidays);
}

// [followup.cadence.<class>]: touch1 = { day, channels, hold }, touch2, ...
void parse_cadence(reader c, std::vector<fu::touch_spec>& out) {
    std::map<std::uint32_t, fu::touch_spec> touches;
    for (auto t : c.subtables()) {
        const auto name = t.name();
        std::uint32_t n = 0;
        const bool numbered = name.starts_with("touch") && name.size() > 5 &&
                              std::from_chars(name.data() + 5, name.data() + name.size(), n).ptr ==
                                  name.data() + name.size() &&
                              n >= 1 && n <= 20 && name[5] != '0';
        if (!numbered) {
            c.error(name, "touch tables are named touch1, touch2, ... (not '" + name + "')");
            t.accept_rest();
            continue;
        }
        fu::touch_spec spec;
        spec.day = static_cast<std::int32_t>(t.get_int("day", 1, 3650, required).value_or(1));
        if (auto channels = t.get_string_array("channels", required)) {
            for (const auto& ch : *channels) {
                if (ch == "email") {
                    spec.email = true;
                } else if (ch == "sms") {
                    spec.sms = true;
                } else if (ch == "task") {
                    spec.task = true;
                } else {
                    t.error("channels",
                            "'channels': unknown channel '" + ch + "' (use email, sms, task)");
                }
            }
            if (channels->empty()) {
                t.error("channels", "'channels' must name at least one of email, sms, task");
            }
        }
        spec.hold = t.get_bool("hold").value_or(false);
        if (spec.hold && !spec.email) {
            t.error("hold", "'hold' needs the email channel (it marks the account-hold email)");
        }
        touches.emplace(n, spec);
    }
    out.clear();
    std::uint32_t expected = 1;
    std::int32_t last_day = 0;
    for (const auto& [n, spec] : touches) {
        const auto key = "touch" + std::to_string(n);
        if (n != expected) {
            c.error(key,
                    "touches must be numbered from touch1 without gaps; touch" +
                        std::to_string(expected) + " is missing");
            return;
        }
        if (spec.day <= last_day) {
            c.error(key,
                    "'" + key + "' day " + std::to_string(spec.day) +
                        " must be later than the previous touch's day " + std::to_string(last_day));
        }
        last_day = spec.day;
        out.push_back(spec);
        ++expected;
    }
    if (out.empty() && c.exists()) {
        c.error(
            "",
            "a cadence needs at least one touch (touch1 = { day = 1, channels = [\"email\"] })");
    }
}

// [followup.reminders.<class>]: days_before = [7, 0], channels = ["email"] (the default).
void parse_reminders(reader t, std::vector<fu::reminder_spec>& out) {
    out.clear();
    bool email = true;
    bool sms = false;
    if (auto channels = t.get_string_array("channels")) {
        email = false;
        for (const auto& ch : *channels) {
            if (ch == "email") {
                email = true;
            } else if (ch == "sms") {
                sms = true;
            } else {
                t.error("channels", "'channels': unknown channel '" + ch + "' (use email, sms)");
            }
        }
        if (channels->empty()) {
            t.error("channels", "'channels' must name at least one of email, sms");
        }
    }
    t.ignore("days_before");
    const auto* node = value_node(t, "days_before");
    const auto* array = node == nullptr ? nullptr : node->as_array();
    if (array == nullptr || array->empty()) {
        t.error("days_before",
                node == nullptr ? "missing 'days_before' (e.g. days_before = [7, 0])"
                                : "'days_before' must be a non-empty array of whole days before "
                                  "the due date (e.g. [7, 0]; 0 is the due date)");
        return;
    }
    const auto file = t.position_of("days_before").file;
    std::int64_t last = -1;
    for (const auto& element : *array) {
        const source_pos at{file, element.source().begin.line, element.source().begin.column};
        const auto* v = element.as_integer();
        if (v == nullptr || v->get() < 0 || v->get() > 365) {
            t.diags().error(at,
                            "[" + t.path() +
                                "] 'days_before': each element must be a whole number of days "
                                "from 0 (the due date) to 365");
            continue;
        }
        if (last >= 0 && v->get() >= last) {
            t.diags().error(at,
                            "[" + t.path() + "] 'days_before': " + std::to_string(v->get()) +
                                " must be fewer days than the previous " + std::to_string(last) +
                                " (reminders are listed in the order they go out)");
            continue;
        }
        last = v->get();
        out.push_back(
            {.days_before = static_cast<std::int32_t>(v->get()), .email = email, .sms = sms});
    }
}

// [followup.payment_plans."<client id>"]: installments = [{ due = "2026-12-15", amount =
// "500.00" }, ...], currency = "USD". Every error at its element or field.
void parse_payment_plan(reader p, fu::payment_plan& out) {
    out.currency = p.get_string("currency").value_or(out.currency);
    const auto digits = mappings::minor_digits(out.currency);
    p.ignore("installments");
    const auto* node = value_node(p, "installments");
    const auto* array = node == nullptr ? nullptr : node->as_array();
    if (array == nullptr || array->empty()) {
        p.error("installments",
                node == nullptr ? "missing 'installments' (e.g. installments = [{ due = "
                                  "\"2026-12-15\", amount = \"500.00\" }])"
                                : "'installments' must be a non-empty array of { due, amount }");
        return;
    }
    const auto file = p.position_of("installments").file;
    const auto pos = [&file](const toml::node& n) {
        return source_pos{file, n.source().begin.line, n.source().begin.column};
    };
    const auto where = "[" + p.path() + "] 'installments': ";
    std::optional<date::sys_days> last;
    for (const auto& element : *array) {
        const auto* table = element.as_table();
        if (table == nullptr) {
            p.diags().error(pos(element), where + "each element must be { due, amount }");
            continue;
        }
        fu::installment inst;
        bool ok = true;
        for (const auto& [key, value] : *table) {
            if (key.str() != "due" && key.str() != "amount") {
                p.diags().error(pos(value),
                                where + "unknown key '" + std::string(key.str()) +
                                    "' (an installment has 'due' and 'amount')");
                ok = false;
            }
        }
        const auto* due = table->get("due");
        std::optional<date::sys_days> day;
        if (due == nullptr) {
            p.diags().error(pos(element), where + "missing 'due' (\"YYYY-MM-DD\")");
            ok = false;
        } else if (const auto* d = due->as_date()) {
            const auto& v = d->get();
            day = date::sys_days(
                date::year_month_day{date::year(v.year), date::month(v.month), date::day(v.day)});
        } else if (const auto* text = due->as_string(); text != nullptr) {
            day = parse_civil_date(text->get());
        }
        if (due != nullptr && !day) {
            p.diags().error(pos(*due), where + "'due' must be a date \"YYYY-MM-DD\"");
            ok = false;
        }
        const auto* amount = table->get("amount");
        std::optional<std::int64_t> minor;
        if (amount == nullptr) {
            p.diags().error(pos(element),
                            where + "missing 'amount' (a decimal string, \"500.00\")");
            ok = false;
        } else if (const auto* text = amount->as_string(); text != nullptr) {
            minor = mappings::parse_decimal(text->get(), digits);
        }
        if (amount != nullptr && (!minor || *minor <= 0)) {
            p.diags().error(pos(*amount),
                            where + "'amount' must be a positive decimal string in " +
                                out.currency + " (\"500.00\", at most " + std::to_string(digits) +
                                " decimals)");
            ok = false;
        }
        if (day && last && *day <= *last) {
            p.diags().error(pos(*due),
                            where + "due dates must increase from one installment to the next");
            ok = false;
        }
        if (day) {
            last = day;
        }
        if (ok) {
            inst.due = date::year_month_day(*day);
            inst.amount = *minor;
            out.installments.push_back(inst);
        }
    }
}

}  // namespace

std::optional<fu::settings> parse_followup(reader& r) {
    const auto errors_before = r.diags().error_count();
    auto s = fu::default_settings();
    if (!r.exists()) {
        s.enabled = false;
        return s;
    }
    s.enabled = r.get_bool("enabled").value_or(true);
    s.time_zone = r.get_time_zone("time_zone").value_or("");
    s.firm_name = r.get_string("firm_name").value_or("");
    s.firm_phone = r.get_string("firm_phone").value_or("");
    s.email_connector = r.get_string("email_connector").value_or("");
    s.sms_connector = r.get_string("sms_connector").value_or("");
    s.reply_to = r.get_string("reply_to").value_or("");
    if (!s.reply_to.empty() && s.reply_to.find('@') == std::string::npos) {
        r.error("reply_to", "'reply_to' must be an email address (replies@firm.example)");
    }
    s.coordinator_email = r.get_string("coordinator_email").value_or("");
    s.task_connector = r.get_string("task_connector").value_or("");
    if (auto keywords = r.get_string_array("dispute_keywords")) {
        s.dispute_keywords.clear();
        for (auto& k : *keywords) {
            const bool ascii = std::all_of(
                k.begin(), k.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; });
            if (k.find_first_not_of(" \t") == std::string::npos) {
                r.error("dispute_keywords", "'dispute_keywords' must not contain empty keywords");
            } else if (!ascii) {
                r.error("dispute_keywords",
                        "'dispute_keywords': '" + k +
                            "' is not ASCII (matching ignores ASCII case only)");
            } else {
                s.dispute_keywords.push_back(std::move(k));
            }
        }
    }
    if (auto clients = r.get_string_array("payment_plan_clients")) {
        s.payment_plan_clients.insert(clients->begin(), clients->end());
    }
    s.autopay_tag = r.get_string("autopay_tag").value_or(s.autopay_tag);
    if (auto clients = r.get_string_array("autopay_clients")) {
        s.autopay_clients.insert(clients->begin(), clients->end());
    }
    s.autopay_link = r.get_url("autopay_link").value_or("");
    s.installment_reminder_days = static_cast<std::int32_t>(
        r.get_int("installment_reminder_days", 0, 60).value_or(s.installment_reminder_days));
    for (auto p : r.sub("payment_plans").subtables()) {
        fu::payment_plan plan;
        parse_payment_plan(p, plan);
        s.payment_plans.insert_or_assign(p.name(), std::move(plan));
    }
    {
        auto reminders = r.sub("reminders");
        for (const auto cls : {fu::client_class::standard, fu::client_class::retainer}) {
            auto c = reminders.sub(fu::to_string(cls));
            if (c.exists()) {
                parse_reminders(c, s.reminders[cls]);
            }
        }
    }
    parse_window(r.sub("window"), s.window);

    auto cadence = r.sub("cadence");
    for (const auto cls : {fu::client_class::standard, fu::client_class::retainer}) {
        auto c = cadence.sub(fu::to_string(cls));
        if (c.exists()) {
            parse_cadence(c, s.cadences[cls]);
        }
    }

    auto templates = r.sub("templates");
    bool templates_ok = true;
    std::set<std::string> missing_for_defaults;
    // Needs per touch: the parts its channels use.
    // A missing part is reported where the touch asks for it: at its cadence entry when the
    // cadence is configured, else at the templates table.
    const auto need = [&](reader& t,
                          const source_pos& where,
                          const message_template& m,
                          std::string_view id,
                          std::string_view part,
                          std::string_view why) {
        if (m.empty() && !t.has(part)) {
            r.diags().error(where,
                            "[" + t.path() + "] missing '" + std::string(part) +
                                "': " + std::string(id) + " " + std::string(why));
            templates_ok = false;
        }
    };
    s.touches.clear();
    for (const auto cls : {fu::client_class::standard, fu::client_class::retainer}) {
        auto per_class = templates.sub(fu::to_string(cls));
        const auto& touches = s.cadences[cls];
        for (std::size_t n = 1; n <= touches.size(); ++n) {
            const auto id = fu::template_id(cls, n);
            auto t = per_class.sub("touch" + std::to_string(n));
            template_reader tr{t, s, missing_for_defaults};
            fu::touch_templates parts;
            parts.email_subject = tr.part(id, "email_subject");
            parts.email_body = tr.part(id, "email_body");
            // The default body has a variant with the invoice's payment link; a configured body
            // is used as written (a {payment_link} in it needs a link, or the email is skipped).
            const bool autopay_offer =
                !s.autopay_link.empty() &&
                !fu::default_template_text(id + "+autopay", "email_body").empty();
            if (!t.has("email_body") && !autopay_offer) {
                if (const auto text = fu::default_link_text(id, "email_body"); !text.empty()) {
                    parts.email_body_with_link = tr.compile_default(text, "email_body");
                }
            }
            parts.sms_body = tr.part(id, "sms_body");
            parts.task_title = tr.part(id, "task_title");
            parts.task_body = tr.part(id, "task_body");
            templates_ok = templates_ok && tr.ok;
            const auto& spec = touches[n - 1];
            auto declared = cadence.sub(fu::to_string(cls));
            const auto touch_key = "touch" + std::to_string(n);
            const auto where =
                declared.has(touch_key) ? declared.position_of(touch_key) : t.position();
            if (spec.email) {
                need(t, where, parts.email_subject, id, "email_subject", "sends email");
                need(t, where, parts.email_body, id, "email_body", "sends email");
            }
            if (spec.sms) {
                need(t, where, parts.sms_body, id, "sms_body", "sends SMS");
            }
            if (spec.task) {
                need(t, where, parts.task_title, id, "task_title", "opens a task");
                need(t, where, parts.task_body, id, "task_body", "opens a task");
            }
            s.touches.emplace(id, std::move(parts));
        }
        // The courtesy reminders of the class: email_subject, email_body, sms_body.
        static const std::vector<fu::reminder_spec> no_reminders;
        const auto configured = s.reminders.find(cls);
        const auto& reminders = configured == s.reminders.end() ? no_reminders : configured->second;
        if (!reminders.empty() || per_class.sub("reminder").exists()) {
            const auto id = fu::reminder_template_id(cls);
            auto t = per_class.sub("reminder");
            template_reader tr{t, s, missing_for_defaults};
            fu::touch_templates parts;
            parts.email_subject = tr.part(id, "email_subject");
            parts.email_body = tr.part(id, "email_body");
            parts.sms_body = tr.part(id, "sms_body");
            templates_ok = templates_ok && tr.ok;
            const auto where = r.sub("reminders").sub(fu::to_string(cls)).position();
            const bool email = std::any_of(
                reminders.begin(), reminders.end(), [](const auto& x) { return x.email; });
            const bool sms = std::any_of(
                reminders.begin(), reminders.end(), [](const auto& x) { return x.sms; });
            if (email) {
                need(t, where, parts.email_subject, id, "email_subject", "sends email");
                need(t, where, parts.email_body, id, "email_body", "sends email");
            }
            if (sms) {
                need(t, where, parts.sms_body, id, "sms_body", "sends SMS");
            }
            s.touches.insert_or_assign(id, std::move(parts));
        }
    }
    {
        auto t = templates.sub("partial_payment");
        template_reader tr{t, s, missing_for_defaults};
        s.partial_payment.email_subject = tr.part("partial_payment", "email_subject");
        s.partial_payment.email_body = tr.part("partial_payment", "email_body");
        s.partial_payment.sms_body = tr.part("partial_payment", "sms_body");
        templates_ok = templates_ok && tr.ok;
    }
    for (auto [id, parts] : {std::pair{"payment_plan_reminder", &s.plan_reminder},
                             std::pair{"payment_plan_missed", &s.plan_missed}}) {
        auto t = templates.sub(id);
        const std::string default_id = std::string_view(id) == "payment_plan_reminder"
                                           ? "payment_plan.reminder"
                                           : "payment_plan.missed";
        template_reader tr{t, s, missing_for_defaults};
        parts->email_subject = tr.part(default_id, "email_subject");
        parts->email_body = tr.part(default_id, "email_body");
        if (default_id == "payment_plan.missed") {
            parts->task_title = tr.part(default_id, "task_title");
            parts->task_body = tr.part(default_id, "task_body");
        }
        templates_ok = templates_ok && tr.ok;
    }
    {
        auto t = templates.sub("dispute");
        template_reader tr{t, s, missing_for_defaults};
        s.dispute.task_title = tr.part("dispute", "task_title");
        s.dispute.task_body = tr.part("dispute", "task_body");
        templates_ok = templates_ok && tr.ok;
    }
    for (const auto& setting : missing_for_defaults) {
        r.error(setting,
                "missing '" + setting + "': the default templates use {" + setting +
                    "} (set it, or override every template that uses it)");
    }
    if (!templates_ok || r.diags().error_count() != errors_before) {
        return std::nullopt;
    }
    return s;
}

// Weekday names ("mon" or "monday", ...) at key into days (by c_encoding, 0 = Sunday); each error
// at the key. Untouched when the key is absent.
void read_weekdays(reader& w, std::string_view key, std::array<bool, 7>& days) {
    const std::string k(key);
    if (auto list = w.get_string_array(key)) {
        static constexpr std::array<std::pair<std::string_view, std::string_view>, 7> names = {{
            {"sun", "sunday"},
            {"mon", "monday"},
            {"tue", "tuesday"},
            {"wed", "wednesday"},
            {"thu", "thursday"},
            {"fri", "friday"},
            {"sat", "saturday"},
        }};
        days.fill(false);
        for (const auto& day : *list) {
            bool found = false;
            for (std::size_t i = 0; i < names.size(); ++i) {
                if (day == names[i].first || day == names[i].second) {
                    days[i] = true;
                    found = true;
                }
            }
            if (!found) {
                w.error(key,
                        "'" + k + "': unknown day '" + day +
                            "' (use mon, tue, wed, thu, fri, sat, sun)");
            }
        }
        if (std::none_of(days.begin(), days.end(), [](bool b) { return b; })) {
            w.error(key, "'" + k + "' must name at least one day");
        }
    }
}

// 'holidays' of a table: TOML dates or "YYYY-MM-DD" strings, each error at its element.
void read_holidays(reader& w, std::set<date::sys_days>& out) {
    w.ignore("holidays");
    if (const auto* node = value_node(w, "holidays")) {
        const auto* array = node->as_array();
        if (array == nullptr) {
            w.error("holidays", "'holidays' must be an array of dates (\"2026-12-25\")");
            return;
        }
        const auto file = w.position_of("holidays").file;
        for (const auto& element : *array) {
            const source_pos at{file, element.source().begin.line, element.source().begin.column};
            if (const auto* d = element.as_date()) {
                const auto& v = d->get();
                const date::year_month_day ymd{
                    date::year(v.year), date::month(v.month), date::day(v.day)};
                out.insert(date::sys_days(ymd));
            } else if (const auto* s = element.as_string()) {
                if (auto day = parse_civil_date(s->get())) {
                    out.insert(*day);
                } else {
                    w.diags().error(at,
                                    "[" + w.path() + "] 'holidays': '" + s->get() +
                                        "' is not a date \"YYYY-MM-DD\"");
                }
            } else {
                w.diags().error(at,
                                "[" + w.path() +
                                    "] 'holidays' must be an array of dates "
                                    "(\"2026-12-25\")");
            }
        }
    }
}

}  // namespace billsync::config
