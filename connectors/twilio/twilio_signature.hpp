#pragma once

// X-Twilio-Signature (twilio.md, "Signature"): base64(HMAC-SHA1(auth token, URL + the form
// parameters sorted by name, each name immediately followed by its value)). JSON bodies are
// signed over the URL alone, which carries bodySHA256=<hex SHA-256 of the raw body>.
//
// The URL is the one Twilio called: rebuild it from the configured public URL (request_url()),
// never from the listener's own address. Like the official SDKs, a signature is accepted for the
// URL with its port removed or with the scheme's default port added, and with ' and %27
// interchangeable (twilio-node). Comparisons are constant-time.

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace billsync::connectors::twilio {

// Decoded (name, value) pairs, in any order; a name may repeat.
using form_params = std::vector<std::pair<std::string, std::string>>;

// application/x-www-form-urlencoded ('+' is a space, %XX escapes). nullopt on a malformed escape.
std::optional<form_params> parse_form(std::string_view body);

// The string Twilio signs: url, then the parameters sorted by name (and by value for a repeated
// name), each as name + value.
std::string signature_base(std::string_view url, const form_params& params);
// base64(HMAC-SHA1(auth_token, signature_base(url, params))).
std::string compute_signature(std::string_view auth_token,
                              std::string_view url,
                              const form_params& params);

// The URL variants a signature is checked against: the URL as given, without its port, with the
// scheme's default port when it has none, and each with ' and %27 swapped. No duplicates.
std::vector<std::string> url_variants(std::string_view url);

// A form-encoded POST (or a GET, with no params).
bool validate_form(std::string_view auth_token,
                   std::string_view url,
                   const form_params& params,
                   std::string_view signature_header);
// A JSON body: the signature over the URL alone, and the URL's bodySHA256 equal to the body's
// SHA-256 (lowercase hex). Fails when the URL has no bodySHA256.
bool validate_json(std::string_view auth_token,
                   std::string_view url,
                   std::string_view body,
                   std::string_view signature_header);

// The URL Twilio called: the configured public base URL ("https://billsync.example.com" or with a
// path prefix such as "https://proxy.example.com/firm1") joined with the request target
// ("/webhooks/twilio/sms?x=1").
std::string request_url(std::string_view public_base_url, std::string_view target);

}  // namespace billsync::connectors::twilio
