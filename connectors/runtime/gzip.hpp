#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace billsync::connectors {

// Decodes a gzip (or zlib) stream. nullopt when the data is corrupt or would exceed max_bytes
// once decoded (a decompression bomb is refused, not buffered).
std::optional<std::string> gunzip(std::string_view data, std::size_t max_bytes);

}  // namespace billsync::connectors
