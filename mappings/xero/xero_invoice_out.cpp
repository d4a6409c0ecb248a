#include "mappings/xero/xero_invoice_out.hpp"

#include "mappings/money.hpp"

namespace billsync::mappings::xero {

using json = nlohmann::json;

std::string invoice_reference(const invoice_draft& d) {
    const auto marker = key_marker(d.key);
    return d.po_number.empty() ? marker : d.po_number + " " + marker;
}

json invoice_create_json(const invoice_draft& d) {
    const int digits = minor_digits(d.currency);
    json inv{{"Type", "ACCREC"},
             {"Status", "AUTHORISED"},
             {"LineAmountTypes", "Exclusive"},
             {"Contact", {{"ContactID", d.client_ref}}},
             {"Date", format_civil_date(d.issue_date)},
             {"CurrencyCode", d.currency},
             {"Reference", invoice_reference(d)}};
    if (d.due_date) {
        inv["DueDate"] = format_civil_date(*d.due_date);
    }
    json items = json::array();
    for (const auto& l : d.lines) {
        const auto p = price_line(l, digits, max_qty_decimals);
        json item{{"Quantity", p.quantity},
                  {"UnitAmount", format_decimal(p.unit_minor, digits)},
                  {"LineAmount", format_decimal(l.amount_minor, digits)}};
        if (!p.description.empty()) {
            item["Description"] = p.description;
        }
        if (!l.account_code.empty()) {
            item["AccountCode"] = l.account_code;
        }
        if (!l.item_ref.empty()) {
            item["ItemCode"] = l.item_ref;
        }
        if (!l.tax_code.empty()) {
            item["TaxType"] = l.tax_code;
        }
        items.push_back(std::move(item));
    }
    if (!d.memo.empty()) {
        items.push_back({{"Description", d.memo}});
    }
    inv["LineItems"] = std::move(items);
    return inv;
}

std::string invoice_create_body(const invoice_draft& d) {
    return dump_exact(json{{"Invoices", json::array({invoice_create_json(d)})}},
                      {"Quantity", "UnitAmount", "LineAmount"});
}

}  // namespace billsync::mappings::xero
