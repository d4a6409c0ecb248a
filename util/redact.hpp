#pragma once

#include <string>
#include <string_view>

namespace billsync::util {

// Masks secrets in text destined for logs: every registered secret value, and the values of
// credential-looking fields (Authorization headers, access/refresh tokens, client secrets,
// passwords, api keys) in header, JSON and form syntax.
std::string redact(std::string_view text);

// Remembers a secret value so redact() masks it wherever it appears. Values shorter than four
// characters are ignored (they would mask ordinary text). Thread-safe.
void register_secret(std::string_view value);

// The same for a secret that rotates (an OAuth2 access or refresh token): the value registered
// under `slot` replaces the previous one, so the set stays bounded however often it rotates.
void register_secret(std::string_view slot, std::string_view value);

}  // namespace billsync::util
