#pragma once

// Dispute keyword matching on client replies. (SMS opt-out/opt-in keywords:
// mappings/sms_keywords.hpp.)

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace billsync::workflows::followup {

// True when text (UTF-8) contains one of the keywords (ASCII) as a whole word, ignoring ASCII
// case: "Dispute!", "I DISPUTE this", "Invoice—incorrect" match; "disputed", "indisputable"
// and "questioné" do not. A keyword of several words ("wrong amount") matches across any run
// of whitespace. Word characters are ASCII letters, digits and '_', and non-ASCII code points
// other than spaces and punctuation (U+0080-U+00BF, U+2000-U+206F, U+3000-U+303F, U+FE30-U+FE4F,
// U+FF00-U+FF0F); malformed UTF-8 counts as a boundary.
bool contains_dispute_keyword(std::string_view text, const std::vector<std::string>& keywords);

}  // namespace billsync::workflows::followup
