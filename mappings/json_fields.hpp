#pragma once

// Reading fields of vendor JSON that may be missing or of another type, shared by the vendor
// mappings: none of these throws.

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace billsync::mappings::fields {

// A member of an object, or nullptr when j is not an object or lacks it.
const nlohmann::json* member(const nlohmann::json& j, std::string_view key);
// A string member; an integer is accepted as its text (ids sometimes arrive as numbers). Empty
// when missing or of another type.
std::string text(const nlohmann::json& j, std::string_view key);
// j[a][b] as text: "CustomerRef.value", "Contact.ContactID".
std::string nested_text(const nlohmann::json& j, std::string_view a, std::string_view b);
// Without leading and trailing spaces, tabs and line breaks.
std::string trim(std::string_view s);

}  // namespace billsync::mappings::fields
