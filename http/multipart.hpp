#pragma once

// multipart/form-data (RFC 7578 over RFC 2046 §5.1): a small, bounded parser for webhook bodies
// such as SendGrid Inbound Parse. It works on the raw bytes, copies nothing it does not return,
// and refuses anything outside its limits instead of guessing.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "http/message.hpp"

namespace billsync::http {

struct form_part {
    std::string name;          // Content-Disposition name
    std::string filename;      // Content-Disposition filename; empty for plain fields
    std::string content_type;  // the part's Content-Type; empty when absent
    std::string data;          // the part's bytes, exactly as sent
};

struct multipart_limits {
    std::size_t max_parts = 256;
    std::size_t max_part_header_bytes = 8 * 1024;  // all header lines of one part
    std::size_t max_boundary = 70;                 // RFC 2046
};

struct multipart_result {
    std::vector<form_part> parts;
    std::string error;  // empty: parsed
    bool ok() const noexcept { return error.empty(); }
    // The first part named `name`; nullptr when absent.
    const form_part* find(std::string_view name) const;
};

// The boundary parameter of a multipart Content-Type ("multipart/form-data; boundary=xyz",
// quoted or not); nullopt when the type is not multipart or has no valid boundary.
std::optional<std::string> multipart_boundary(std::string_view content_type);

// The boundary a body opens with ("--<boundary>" followed by CRLF); nullopt when it does not
// start with a delimiter line. For callers that only have the body.
std::optional<std::string> leading_boundary(std::string_view body, const multipart_limits& l = {});

// Parses body with the given boundary. The preamble before the first delimiter and the epilogue
// after the closing one are ignored; a missing closing delimiter is an error.
multipart_result parse_multipart(std::string_view body,
                                 std::string_view boundary,
                                 const multipart_limits& limits = {});

}  // namespace billsync::http
