#include "state/entity_index.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdint>

#include "mappings/model.hpp"
#include "state/tables.hpp"
#include "util/json_scan.hpp"

namespace billsync::state::entity_index {

namespace {

using util::json_scan::members;

constexpr std::array<std::string_view, 8> invoice_fields{
    "status", "deleted", "client_id", "number", "issue_date", "due_date", "total", "balance"};
constexpr std::array<std::string_view, 5> payment_fields{
    "date", "amount", "applied", "voided", "deleted"};
constexpr std::array<std::string_view, 7> time_fields{
    "date", "deleted", "locked", "billable", "external_reference", "minutes", "staff_id"};

// The members of `row` named in `fields`, in the row's order, as a JSON object text.
template <std::size_t N>
std::string projection(std::string_view row, const std::array<std::string_view, N>& fields) {
    std::string out = "{";
    members(row, [&](std::string_view k, std::string_view v) {
        if (std::find(fields.begin(), fields.end(), k) == fields.end()) {
            return;
        }
        if (out.size() > 1) {
            out.push_back(',');
        }
        out.push_back('"');
        out.append(k);
        out.append("\":");
        out.append(v);
    });
    out.push_back('}');
    return out;
}

// A civil date's JSON text ("\"2026-12-06\"") -> "2026-12-06"; empty when it is not one.
std::string_view date_of(std::string_view v) {
    if (v.size() != 12 || v.front() != '"' || !mappings::parse_civil_date(v.substr(1, 10))) {
        return {};
    }
    return v.substr(1, 10);
}

std::int64_t int_of(std::string_view v) {
    std::int64_t out = 0;
    const auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
    return ec == std::errc() && p == v.data() + v.size() ? out : 0;
}

// A money member {"minor": N, "currency": "USD"}: its minor units and currency part.
struct money_text {
    std::int64_t minor = 0;
    std::string currency{no_currency};
};

money_text money_of(std::string_view v) {
    money_text m;
    members(v, [&](std::string_view k, std::string_view x) {
        if (k == "minor") {
            m.minor = int_of(x);
        } else if (k == "currency") {
            m.currency = x.size() >= 2 && x.front() == '"' ? std::string(x.substr(1, x.size() - 2))
                                                           : std::string(no_currency);
        }
    });
    return m;
}

std::string dated(std::string_view date, std::string_view id) {
    std::string out(date);
    out.push_back(sep);
    out.append(id);
    return out;
}

void invoice_rows(std::string_view id, std::string_view row, std::vector<index_row>& out) {
    std::string_view status, deleted, issue, total, balance;
    members(row, [&](std::string_view k, std::string_view v) {
        if (k == "status") {
            status = v;
        } else if (k == "deleted") {
            deleted = v;
        } else if (k == "issue_date") {
            issue = v;
        } else if (k == "total") {
            total = v;
        } else if (k == "balance") {
            balance = v;
        }
    });
    // Open or paid, not deleted: the invoices the ledger figures count.
    if (deleted == "true" || (status != "\"open\"" && status != "\"paid\"")) {
        return;
    }
    const auto t = money_of(total);
    const auto b = money_of(balance);
    std::string cur = t.currency;
    cur.push_back(sep);
    cur.append(b.currency);
    cur.push_back(sep);
    cur.append(id);
    out.push_back({std::string(invoice_currency), std::move(cur), {}});
    const auto date = date_of(issue);
    if (date.empty() && b.minor <= 0) {
        return;
    }
    const auto value = projection(row, invoice_fields);
    if (!date.empty()) {
        out.push_back({std::string(invoice_issue), dated(date, id), value});
    }
    if (b.minor > 0) {
        out.push_back({std::string(invoice_open), std::string(id), value});
    }
}

void payment_rows(std::string_view id, std::string_view row, std::vector<index_row>& out) {
    bool dead = false;
    std::string_view date;
    members(row, [&](std::string_view k, std::string_view v) {
        if (k == "voided" || k == "deleted") {
            dead = dead || v == "true";
        } else if (k == "date") {
            date = date_of(v);
        }
    });
    if (!dead && !date.empty()) {
        out.push_back(
            {std::string(payment_date), dated(date, id), projection(row, payment_fields)});
    }
}

void time_rows(std::string_view id, std::string_view row, std::vector<index_row>& out) {
    bool deleted = false, locked = false, drafted = false;
    std::string_view date;
    members(row, [&](std::string_view k, std::string_view v) {
        if (k == "deleted") {
            deleted = v == "true";
        } else if (k == "locked") {
            locked = v == "true";
        } else if (k == "external_reference") {
            drafted = v.size() > 2;  // a non-empty string
        } else if (k == "date") {
            date = date_of(v);
        }
    });
    if (deleted) {
        return;
    }
    if (!date.empty()) {
        out.push_back({std::string(time_date), dated(date, id), projection(row, time_fields)});
    }
    if (drafted && !locked) {
        out.push_back({std::string(time_unreviewed), std::string(id), {}});
    }
}

}  // namespace

bool indexed(std::string_view type) noexcept {
    return type == "invoice" || type == "payment" || type == "time_entry";
}

std::vector<index_row> rows_of(std::string_view type, std::string_view id, std::string_view row) {
    std::vector<index_row> out;
    if (type == "invoice") {
        invoice_rows(id, row, out);
    } else if (type == "payment") {
        payment_rows(id, row, out);
    } else if (type == "time_entry") {
        time_rows(id, row, out);
    }
    return out;
}

void update(batch& b,
            std::string_view type,
            std::string_view id,
            const std::optional<std::string>& before,
            const std::optional<std::string>& after) {
    if (!indexed(type)) {
        return;
    }
    const auto next = after ? rows_of(type, id, *after) : std::vector<index_row>{};
    if (before) {
        for (const auto& r : rows_of(type, id, *before)) {
            const bool kept = std::any_of(next.begin(), next.end(), [&](const index_row& n) {
                return n.type == r.type && n.id == r.id;
            });
            if (!kept) {
                delete_entity(b, r.type, r.id);
            }
        }
    }
    for (const auto& r : next) {
        put_entity(b, r.type, r.id, r.value);
    }
}

status index_all(const store& s, batch& b) {
    for (std::string_view type : {"invoice", "payment", "time_entry"}) {
        auto st = for_each_entity(s, type, [&](std::string_view id, std::string_view row) {
            for (const auto& r : rows_of(type, id, row)) {
                put_entity(b, r.type, r.id, r.value);
            }
            return true;
        });
        if (!st.ok) {
            return st;
        }
    }
    return status::success();
}

std::string_view dated_entity_id(std::string_view index_id) noexcept {
    return index_id.size() > 11 ? index_id.substr(11) : std::string_view();
}

}  // namespace billsync::state::entity_index
