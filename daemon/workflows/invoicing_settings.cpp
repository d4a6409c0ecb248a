#include "daemon/workflows/invoicing_settings.hpp"

#include <toml++/toml.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "daemon/workflows/followup_settings.hpp"
#include "mappings/money.hpp"

namespace billsync::config {

namespace inv = workflows::invoicing;

namespace {

std::string lower(std::string_view s) {
    std::string out(s);
    for (auto& c : out) {
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    return out;
}

// The table node r reads, found through the document (for tables whose keys are data: the
// milestones and the rate tables).
const toml::table* table_of(const reader& r) {
    const auto doc = r.document();
    const toml::node* node = doc.get();
    std::string_view path = r.path();
    while (!path.empty() && node != nullptr) {
        // Keys may be quoted names containing dots; walk the document's own keys instead.
        const auto* table = node->as_table();
        if (table == nullptr) {
            return nullptr;
        }
        const toml::node* next = nullptr;
        std::size_t used = 0;
        for (const auto& [k, v] : *table) {
            const std::string_view key = k.str();
            if (path.starts_with(key) && (path.size() == key.size() || path[key.size()] == '.') &&
                key.size() > used) {
                next = &v;
                used = key.size();
            }
        }
        node = next;
        path = used >= path.size() ? std::string_view() : path.substr(used + 1);
    }
    return node == nullptr ? nullptr : node->as_table();
}

// An amount in minor units of `currency`, written as quoted decimal text.
std::optional<std::int64_t> money_at(reader& t,
                                     std::string_view key,
                                     const std::string& currency,
                                     requirement req = {}) {
    auto text = t.get_string(key, req);
    if (!text) {
        return std::nullopt;
    }
    const int digits = mappings::minor_digits(currency);
    auto v = mappings::parse_decimal(*text, digits);
    if (!v || *v < 0) {
        t.error(key,
                "'" + std::string(key) + "' must be an amount in " + currency + " with at most " +
                    std::to_string(digits) + " decimals, as quoted text (\"2400.00\")");
        return std::nullopt;
    }
    return v;
}

// Every key = "<amount>" of a rate table, folded to lower case.
void rates_at(reader t,
              const std::string& currency,
              std::map<std::string, std::int64_t, std::less<>>& out) {
    const auto* table = table_of(t);
    if (table == nullptr) {
        return;
    }
    for (const auto& [k, v] : *table) {
        const std::string key(k.str());
        if (auto m = money_at(t, key, currency)) {
            out[lower(key)] = *m;
        }
    }
}

void read_engagement(reader t, const inv::settings& base, inv::engagement& e) {
    e.id = t.name();
    e.client = t.get_string("client", required).value_or("");
    e.currency = t.get_string("currency").value_or(base.currency);
    if (e.currency.size() != 3 || !std::all_of(e.currency.begin(), e.currency.end(), [](char c) {
            return c >= 'A' && c <= 'Z';
        })) {
        t.error("currency", "'currency' must be an ISO 4217 code in capitals (\"USD\")");
    }
    e.ledger = t.get_string("ledger").value_or("");
    e.item = t.get_string("item").value_or("");
    e.account_code = t.get_string("account_code").value_or("");
    e.tax_code = t.get_string("tax_code").value_or("");
    e.partner = lower(t.get_string("partner").value_or(""));
    e.terms_by = lower(t.get_string("terms_by").value_or(""));
    e.billing_contact = t.get_string("billing_contact").value_or("");
    e.terms_days = t.get_int("terms_days", 0, 365).value_or(30);
    e.po_number = t.get_string("po_number").value_or("");
    e.po_required = t.get_bool("po_required").value_or(false);
    e.po_limit = money_at(t, "po_limit", e.currency);
    e.send_to_client = t.get_bool("send_to_client").value_or(false);
    e.work_items = t.get_string_array("work_items").value_or(std::vector<std::string>{});
    e.projects = t.get_string_array("projects").value_or(std::vector<std::string>{});
    e.work_type = t.get_string("work_type", e.work_items.empty() ? required : requirement::optional)
                      .value_or("");
    const auto m =
        t.get_enum("model", {"fixed_fee", "retainer", "time_and_materials", "hybrid"}, required)
            .value_or("fixed_fee");
    e.billing = m == "retainer"             ? inv::model::retainer
                : m == "time_and_materials" ? inv::model::time_and_materials
                : m == "hybrid"             ? inv::model::hybrid
                                            : inv::model::fixed_fee;
    const bool fixed = e.billing == inv::model::fixed_fee;
    const bool retainer = e.billing == inv::model::retainer || e.billing == inv::model::hybrid;
    const bool tm = e.billing == inv::model::time_and_materials || e.billing == inv::model::hybrid;
    if (fixed) {
        e.fee = money_at(t, "fee", e.currency, required).value_or(0);
        auto ms = t.sub("milestones");
        const auto* table = table_of(ms);
        if (table == nullptr || table->empty()) {
            t.error("milestones",
                    "a fixed_fee engagement needs [engagement.\"" + e.id +
                        "\".milestones]: stage = \"50%\", \"1200.00\" or \"remainder\"");
        } else {
            std::int64_t sum = 0;
            int remainders = 0;
            for (const auto& [k, v] : *table) {
                const std::string stage(k.str());
                auto text = ms.get_string(stage);
                if (!text) {
                    continue;
                }
                inv::milestone x;
                x.stage = stage;
                const auto bad = [&] {
                    ms.error(stage,
                             "milestone '" + stage +
                                 "' must be a share (\"50%\"), an amount (\"1200.00\") or "
                                 "\"remainder\"");
                };
                if (*text == "remainder") {
                    x.remainder = true;
                    ++remainders;
                } else if (text->ends_with('%')) {
                    auto bp = mappings::parse_decimal(
                        std::string_view(*text).substr(0, text->size() - 1), 2);
                    if (!bp || *bp <= 0 || *bp > 10000) {
                        bad();
                        continue;
                    }
                    x.percent_bp = *bp;
                    sum += (e.fee * *bp + 5000) / 10000;
                } else if (auto amount =
                               mappings::parse_decimal(*text, mappings::minor_digits(e.currency));
                           amount && *amount > 0) {
                    x.amount = *amount;
                    sum += *amount;
                } else {
                    bad();
                    continue;
                }
                e.milestones.push_back(std::move(x));
            }
            if (remainders > 1) {
                ms.error("", "at most one milestone may be \"remainder\"");
            }
            if (sum > e.fee) {
                ms.error("", "the milestones add up to more than the fee");
            }
        }
    }
    if (retainer) {
        e.retainer = money_at(t, "retainer", e.currency, required).value_or(0);
        if (auto h = t.get_string("included_hours")) {
            const auto centi = mappings::parse_decimal(*h, 2);
            if (!centi || *centi < 0 || (*centi * 60) % 100 != 0) {
                t.error("included_hours",
                        "'included_hours' must be decimal hours that are whole minutes (\"10\", "
                        "\"7.5\")");
            } else {
                e.included_minutes = *centi * 60 / 100;
            }
        }
        e.overage_rate = money_at(t, "overage_rate", e.currency);
        e.tolerance = money_at(t, "tolerance", e.currency).value_or(0);
        e.out_of_scope_services =
            t.get_string_array("out_of_scope_services").value_or(std::vector<std::string>{});
    }
    if (tm) {
        auto rates = t.sub("rates");
        e.rates.default_rate = money_at(rates, "default", e.currency);
        rates_at(rates.sub("staff"), e.currency, e.rates.by_staff);
        rates_at(rates.sub("role"), e.currency, e.rates.by_role);
        rates_at(rates.sub("service"), e.currency, e.rates.by_service);
        rates.sub("staff").accept_rest();
        rates.sub("role").accept_rest();
        rates.sub("service").accept_rest();
        if (!e.rates.default_rate && e.rates.by_staff.empty() && e.rates.by_role.empty() &&
            e.rates.by_service.empty()) {
            t.warning(
                "rates",
                "no rate at all: every time entry of this engagement waits as a no_rate exception");
        }
        e.cap = money_at(t, "cap", e.currency);
        const auto every =
            t.get_enum("schedule", {"monthly", "weekly", "on_completion"}).value_or("monthly");
        e.every = every == "weekly"          ? inv::schedule::weekly
                  : every == "on_completion" ? inv::schedule::on_completion
                                             : inv::schedule::monthly;
    }
    for (std::string_view key : {"fee", "milestones"}) {
        if (!fixed && t.has(key)) {
            t.error(key, "'" + std::string(key) + "' applies to fixed_fee engagements only");
        }
    }
    for (std::string_view key :
         {"retainer", "included_hours", "overage_rate", "tolerance", "out_of_scope_services"}) {
        if (!retainer && t.has(key)) {
            t.error(key,
                    "'" + std::string(key) + "' applies to retainer and hybrid engagements only");
        }
    }
    for (std::string_view key : {"rates", "cap", "schedule"}) {
        if (!tm && t.has(key)) {
            t.error(key,
                    "'" + std::string(key) +
                        "' applies to time_and_materials and hybrid engagements only");
        }
    }
    if (t.has("milestones")) {
        t.sub("milestones").accept_rest();
    }
    for (std::string_view key : {"fee",
                                 "retainer",
                                 "included_hours",
                                 "overage_rate",
                                 "tolerance",
                                 "out_of_scope_services",
                                 "rates",
                                 "cap",
                                 "schedule"}) {
        t.ignore(key);
    }
}

}  // namespace

bool parse_engagement_book(std::string_view text,
                           const std::string& file_name,
                           inv::settings& s,
                           diagnostics& diags) {
    const auto errors_before = diags.error_count();
    auto book = reader::parse(text, file_name, diags);
    if (!book) {
        return false;
    }
    for (auto t : book->sub("engagement").subtables()) {
        inv::engagement e;
        read_engagement(t, s, e);
        s.engagements.push_back(std::move(e));
    }
    if (s.engagements.empty()) {
        book->warning("", "no [engagement.\"<id>\"] table: nothing will be invoiced");
    }
    book->finish();
    return diags.error_count() == errors_before;
}

std::optional<inv::settings> parse_invoicing(reader& r) {
    const auto errors_before = r.diags().error_count();
    inv::settings s;
    if (!r.exists()) {
        return s;
    }
    s.enabled = r.get_bool("enabled").value_or(true);
    const auto req = s.enabled ? required : requirement::optional;
    s.ledger = r.get_string("ledger", req).value_or("");
    s.currency = r.get_string("currency").value_or("USD");
    s.email_connector = r.get_string("email_connector").value_or("");
    s.time_zone = r.get_time_zone("time_zone").value_or("");
    s.retainer_day = static_cast<int>(r.get_int("retainer_day", 1, 28).value_or(1));
    s.run_hour = static_cast<int>(r.get_int("run_hour", 0, 23).value_or(6));
    const auto day =
        r.get_enum("weekly_day", {"sun", "mon", "tue", "wed", "thu", "fri", "sat"}).value_or("mon");
    static constexpr std::array<std::string_view, 7> days{
        "sun", "mon", "tue", "wed", "thu", "fri", "sat"};
    s.weekly_day = static_cast<int>(std::find(days.begin(), days.end(), day) - days.begin());
    s.po_warning_percent = r.get_int("po_warning_percent", 1, 100).value_or(90);
    s.require_tax_code = r.get_bool("require_tax_code").value_or(false);
    s.milestone_needs_time = r.get_bool("milestone_needs_time").value_or(false);
    s.check_item_prices = r.get_bool("check_item_prices").value_or(false);
    read_holidays(r, s.holidays);
    auto a = r.sub("approval");
    s.approval.auto_approve_below = money_at(a, "auto_approve_below", s.currency).value_or(0);
    s.approval.second_approver_from = money_at(a, "second_approver_from", s.currency);
    for (auto& x : a.get_string_array("approvers").value_or(std::vector<std::string>{})) {
        s.approval.approvers.push_back(lower(x));
    }
    for (auto& x : a.get_string_array("escalate_to").value_or(std::vector<std::string>{})) {
        s.approval.escalate_to.push_back(lower(x));
    }
    if (auto flags = a.get_string_array("always_review")) {
        static constexpr std::array<std::string_view, 5> known{"new_client",
                                                               "first_invoice",
                                                               "write_down",
                                                               "overage_above_tolerance",
                                                               "unusual_amount"};
        for (const auto& f : *flags) {
            if (std::find(known.begin(), known.end(), f) == known.end()) {
                a.error("always_review",
                        "unknown flag '" + f +
                            "' (new_client, first_invoice, write_down, overage_above_tolerance, "
                            "unusual_amount)");
            } else {
                s.approval.always_review.insert(f);
            }
        }
    } else {
        s.approval.always_review = {"new_client",
                                    "first_invoice",
                                    "write_down",
                                    "overage_above_tolerance",
                                    "unusual_amount"};
    }
    s.approval.unusual_percent = a.get_int("unusual_percent", 1, 1000).value_or(50);
    s.approval.sla_business_days =
        static_cast<int>(a.get_int("sla_business_days", 1, 30).value_or(2));
    s.approval.reasons = a.get_string_array("reasons").value_or(std::vector<std::string>{
        "scope change", "quality issue", "courtesy", "rate error", "client relationship"});
    if (auto file = r.get_string("engagements", req)) {
        std::filesystem::path p(*file);
        if (p.is_relative()) {
            p = std::filesystem::path(r.position().file).parent_path() / p;
        }
        s.book = p.string();
        std::ifstream in(p, std::ios::binary);
        if (!in) {
            r.error("engagements", "cannot read the engagement book " + p.string());
        } else {
            std::ostringstream text;
            text << in.rdbuf();
            parse_engagement_book(text.str(), p.string(), s, r.diags());
        }
    }
    if (r.diags().error_count() > errors_before) {
        return std::nullopt;
    }
    return s;
}

}  // namespace billsync::config
