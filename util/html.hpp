#pragma once

// Text placed in HTML that billsync renders (the dashboard page, the weekly report).

#include <string>
#include <string_view>

namespace billsync::util {

// & < > " ' become character references; everything else passes unchanged.
std::string html_escape(std::string_view text);

}  // namespace billsync::util
