#pragma once

// [invoicing] and the engagement book it names: the invoicing workflow's settings
// (docs/invoicing.md, docs/configuration.md).
//
//   [invoicing]
//   ledger = "books"                       # required: the default ledger connector
//   engagements = "engagements.toml"       # required: the engagement book, relative to this file
//   currency = "USD"
//   [invoicing.approval]
//   auto_approve_below = "2500.00"
//   approvers = ["partner@firm.example"]
//
// The book: one [engagement."<id>"] table per engagement (docs/invoicing.md).

#include <filesystem>
#include <optional>

#include "config/reader.hpp"
#include "workflows/invoicing/settings.hpp"

namespace billsync::config {

// Problems (in the main file and in the book) go to r.diags() at their file:line:col; nullopt
// when there were errors. An absent table yields settings with enabled = false.
std::optional<workflows::invoicing::settings> parse_invoicing(reader& r);

// The engagement book alone (tests, `validate`): its text and its file name for diagnostics.
bool parse_engagement_book(std::string_view text,
                           const std::string& file_name,
                           workflows::invoicing::settings& s,
                           diagnostics& diags);

}  // namespace billsync::config
