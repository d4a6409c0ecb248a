#pragma once

// Mail addresses and header fields as billsync reads them from inbound mail and checks them on
// outbound mail.

#include <string>
#include <string_view>
#include <vector>

namespace billsync::mappings::email {

// A plausible single mailbox address: local@domain, no spaces, controls or specials that would
// break a header or an SMTP command.
bool valid_address(std::string_view address) noexcept;

// The bare, lower-cased address of a mailbox ("Ann <Ann@X.com>" → "ann@x.com"); empty when none.
std::string bare_address(std::string_view mailbox);
// The bare addresses of a comma-separated list (commas inside quotes or <> do not split).
std::vector<std::string> address_list(std::string_view list);

// The unfolded value of the first header `name` (case-insensitive) in a raw RFC 5322 header
// block (CRLF or LF line ends); empty when absent.
std::string raw_header_value(std::string_view block, std::string_view name);

}  // namespace billsync::mappings::email
