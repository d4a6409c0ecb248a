#include "mappings/qbo/qbo_invoice_out.hpp"

#include "mappings/money.hpp"

namespace billsync::mappings::qbo {

using json = nlohmann::json;

json invoice_create_json(const invoice_draft& d) {
    const int digits = minor_digits(d.currency);
    json inv{{"CustomerRef", {{"value", d.client_ref}}},
             {"TxnDate", format_civil_date(d.issue_date)},
             {"CurrencyRef", {{"value", d.currency}}}};
    if (d.due_date) {
        inv["DueDate"] = format_civil_date(*d.due_date);
    }
    std::string memo = d.memo;
    std::string note = key_marker(d.key) + " " + d.key;
    if (!d.po_number.empty()) {
        memo += (memo.empty() ? "" : "\n") + std::string("PO: ") + d.po_number;
        note += "\nPO: " + d.po_number;
    }
    if (!memo.empty()) {
        inv["CustomerMemo"] = {{"value", memo}};
    }
    inv["PrivateNote"] = note;
    json lines = json::array();
    for (const auto& l : d.lines) {
        const auto p = price_line(l, digits, max_qty_decimals);
        json detail{{"Qty", p.quantity}, {"UnitPrice", format_decimal(p.unit_minor, digits)}};
        if (!l.item_ref.empty()) {
            detail["ItemRef"] = {{"value", l.item_ref}};
        }
        if (!l.tax_code.empty()) {
            detail["TaxCodeRef"] = {{"value", l.tax_code}};
        }
        json line{{"DetailType", "SalesItemLineDetail"},
                  {"Amount", format_decimal(l.amount_minor, digits)},
                  {"SalesItemLineDetail", std::move(detail)}};
        if (!p.description.empty()) {
            line["Description"] = p.description;
        }
        lines.push_back(std::move(line));
    }
    inv["Line"] = std::move(lines);
    return inv;
}

std::string invoice_create_body(const invoice_draft& d) {
    return dump_exact(invoice_create_json(d), {"Amount", "Qty", "UnitPrice"});
}

}  // namespace billsync::mappings::qbo
