#pragma once

#include <string>
#include <string_view>

namespace billsync::testing {

// A strict well-formedness check of an HTML document as billsync writes them: an optional
// <!DOCTYPE html>, then elements where every non-void element is closed in the right order (void
// elements such as <meta> and <br> take no end tag; "<x/>" closes itself), every attribute value
// is quoted and free of '<', names are letters, digits and '-', text holds no raw '<'
// and every '&' starts a character reference (&name; &#NN; &#xHH;), the raw text of <style> and
// <script> ends at its end tag, and nothing but white space follows the root element.
// Returns "" when the document passes, else the first problem with its byte offset.
std::string html_problem(std::string_view html);

}  // namespace billsync::testing
