#include "daemon/workflows/late_fees_settings.hpp"

#include <algorithm>
#include <cctype>

#include "mappings/model.hpp"
#include "mappings/money.hpp"

namespace billsync::config {

namespace lf = workflows::late_fees;

std::optional<lf::settings> parse_late_fees(reader& r) {
    const auto errors_before = r.diags().error_count();
    lf::settings s;
    if (!r.exists()) {
        return s;
    }
    s.enabled = r.get_bool("enabled").value_or(true);
    if (auto c = r.get_string("currency")) {
        const bool letters =
            c->size() == 3 && std::all_of(c->begin(), c->end(), [](unsigned char ch) {
                return std::isupper(ch) != 0;
            });
        if (!letters) {
            r.error("currency", "'currency' must be a three-letter ISO 4217 code such as \"USD\"");
        } else {
            s.currency = *c;
        }
    }
    const int digits = mappings::minor_digits(s.currency);
    const auto amount = [&](std::string_view key) -> std::optional<std::int64_t> {
        auto text = r.get_string(key);
        if (!text) {
            return std::nullopt;
        }
        auto v = mappings::parse_decimal(*text, digits);
        if (!v || *v < 0) {
            r.error(key,
                    "'" + std::string(key) + "' must be an amount in " + s.currency +
                        " as quoted decimal text with at most " + std::to_string(digits) +
                        " decimals, e.g. \"25.00\"");
            return std::nullopt;
        }
        return v;
    };
    const bool has_percent = r.has("percent_per_month");
    const bool has_flat = r.has("flat");
    if (has_percent == has_flat) {
        r.error("",
                "[late_fees] needs exactly one of 'percent_per_month' (e.g. \"1.5\") and 'flat' "
                "(e.g. \"25.00\")");
    }
    if (has_percent) {
        if (auto text = r.get_string("percent_per_month")) {
            auto e4 = mappings::parse_decimal(*text, 4);
            if (!e4 || *e4 <= 0 || *e4 > 1'000'000) {
                r.error(
                    "percent_per_month",
                    "'percent_per_month' must be a percentage above 0 and at most 100 as quoted "
                    "decimal text with at most 4 decimals, e.g. \"1.5\"");
            } else {
                s.percent_e4 = *e4;
                s.rate_text = *text + "% a month";
            }
        }
    }
    if (has_flat) {
        if (auto v = amount("flat")) {
            if (*v == 0) {
                r.error("flat", "'flat' must be above 0");
            }
            s.flat_minor = *v;
            s.rate_text =
                "flat " + mappings::format_decimal(*v, digits) + " " + s.currency + " a month";
        }
    }
    if (auto g = r.get_int("grace_days", 0, 365)) {
        s.grace_days = static_cast<std::int32_t>(*g);
    }
    if (auto m = amount("minimum")) {
        s.minimum_minor = *m;
    }
    if (auto c = amount("cap")) {
        if (*c == 0) {
            r.error("cap", "'cap' must be above 0 (leave it out for no cap)");
        } else if (*c < s.minimum_minor) {
            r.error("cap", "'cap' is below 'minimum'");
        }
        s.cap_minor = *c;
    }
    s.auto_approve = r.get_bool("auto_approve").value_or(false);
    if (auto t = r.get_string("opt_out_tag")) {
        s.opt_out_tag = *t;
    }
    if (auto list = r.get_string_array("opt_out_clients")) {
        s.opt_out_clients.insert(list->begin(), list->end());
    }
    s.item = r.get_string("item").value_or("");
    s.account_code = r.get_string("account_code").value_or("");
    s.tax_code = r.get_string("tax_code").value_or("");
    if (auto d = r.get_int("terms_days", 0, 365)) {
        s.terms_days = static_cast<std::int32_t>(*d);
    }
    if (auto h = r.get_int("run_hour", 0, 23)) {
        s.run_hour = static_cast<std::int32_t>(*h);
    }
    s.time_zone = r.get_time_zone("time_zone").value_or("");
    if (auto text = r.get_string("start")) {
        auto d = mappings::parse_civil_date(*text);
        if (!d) {
            r.error("start", "'start' must be a civil date \"YYYY-MM-DD\"");
        } else {
            s.start = date::year_month_day{
                date::sys_days(date::days(std::chrono::sys_days(*d).time_since_epoch().count()))};
        }
    }
    if (r.diags().error_count() > errors_before) {
        return std::nullopt;
    }
    return s;
}

}  // namespace billsync::config
