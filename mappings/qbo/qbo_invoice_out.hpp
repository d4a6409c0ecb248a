#pragma once

// The canonical invoice draft (mappings/invoice_draft.hpp) -> the body of QBO's
// POST /v3/company/{realmId}/invoice (shared/vendors/qbo.md). Pure: no I/O, no clock.
//
//   CustomerRef.value   <- client_ref          TxnDate / DueDate <- issue_date / due_date
//   CurrencyRef.value   <- currency            CustomerMemo.value <- memo, then "PO: <po>"
//   PrivateNote         <- key_marker(key), the key itself, then "PO: <po>"
//   Line[]              <- SalesItemLineDetail {ItemRef, Qty, UnitPrice, TaxCodeRef}, Amount,
//                          Description (account_code is Xero's and ignored here)
//
// The fact sheet names no purchase-order field on the QBO invoice (a PO custom field needs a
// company-specific DefinitionId), so the PO number travels in CustomerMemo, which the client
// sees, and in PrivateNote. Amount, Qty and UnitPrice are written as JSON numbers digit for
// digit; Qty x UnitPrice always equals Amount exactly (mappings::price_line), so the invoice
// totals exactly the sum of amount_minor.

#include <string>

#include "mappings/invoice_draft.hpp"

namespace billsync::mappings::qbo {

// Quantities with more decimals than this go as 1 x amount (see price_line).
constexpr int max_qty_decimals = 4;

// The Invoice object with amounts as decimal text (for inspection and tests).
nlohmann::json invoice_create_json(const invoice_draft& d);
// The request body: invoice_create_json with Amount, Qty and UnitPrice as JSON numbers.
std::string invoice_create_body(const invoice_draft& d);

}  // namespace billsync::mappings::qbo
