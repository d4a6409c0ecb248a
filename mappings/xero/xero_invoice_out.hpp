#pragma once

// The canonical invoice draft (mappings/invoice_draft.hpp) -> the body of Xero's PUT /Invoices
// (shared/vendors/xero.md). Pure: no I/O, no clock.
//
//   Type "ACCREC", Status "AUTHORISED" (the workflow only queues approved invoices),
//   LineAmountTypes "Exclusive", Contact.ContactID <- client_ref, Date / DueDate, CurrencyCode,
//   Reference <- "<po_number> <key_marker(key)>" (or the marker alone): Reference is what the
//   connector's reconcile searches (where=Reference=="..."), so it carries billsync's key,
//   LineItems[] <- Description, Quantity, UnitAmount, LineAmount, AccountCode, ItemCode, TaxType.
//
// The memo has no field of its own on a Xero invoice; it is added as a description-only line
// (no amount). Quantity, UnitAmount and LineAmount are written as JSON numbers digit for digit;
// Quantity x UnitAmount always equals LineAmount exactly (mappings::price_line).

#include <string>

#include "mappings/invoice_draft.hpp"

namespace billsync::mappings::xero {

// Xero keeps four decimals of a quantity; more go as 1 x amount (see price_line).
constexpr int max_qty_decimals = 4;

// What reconcile looks the invoice up by.
std::string invoice_reference(const invoice_draft& d);
// The Invoice object (one element of "Invoices") with amounts as decimal text.
nlohmann::json invoice_create_json(const invoice_draft& d);
// {"Invoices": [invoice_create_json(d)]} with Quantity, UnitAmount, LineAmount as JSON numbers.
std::string invoice_create_body(const invoice_draft& d);

}  // namespace billsync::mappings::xero
