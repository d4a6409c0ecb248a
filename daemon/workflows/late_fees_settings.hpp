#pragma once

// [late_fees]: the late-fee policy's settings (docs/late-fees.md, docs/configuration.md).
//
//   [late_fees]
//   percent_per_month = "1.5"        # or flat = "25.00"; exactly one, quoted decimal text
//   currency = "USD"
//   grace_days = 10
//   minimum = "5.00"
//   cap = "100.00"                   # on the total of one invoice's fees
//   auto_approve = false             # false: a coordinator approves each fee
//   opt_out_tag = "no-late-fee"
//   opt_out_clients = ["client:acme"]
//   item = "19"                      # the fee line's item / account_code, and tax_code
//   terms_days = 15
//   run_hour = 6
//   time_zone = "America/Chicago"    # default: [daemon] time_zone
//   start = "2027-01-01"             # default: the day the policy first runs

#include <optional>

#include "config/reader.hpp"
#include "workflows/late_fees/settings.hpp"

namespace billsync::config {

// Problems go to r.diags() at their file:line:col; nullopt when this table reported an error.
// An absent table yields settings with enabled = false.
std::optional<workflows::late_fees::settings> parse_late_fees(reader& r);

}  // namespace billsync::config
