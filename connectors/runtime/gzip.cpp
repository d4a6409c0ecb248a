#include "connectors/runtime/gzip.hpp"

#include <zlib.h>

#include <array>

namespace billsync::connectors {

std::optional<std::string> gunzip(std::string_view data, std::size_t max_bytes) {
    z_stream zs{};
    // 32 + MAX_WBITS: detect gzip or zlib headers automatically.
    if (inflateInit2(&zs, 32 + MAX_WBITS) != Z_OK) {
        return std::nullopt;
    }
    std::string out;
    std::array<char, 16384> chunk{};
    zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
    zs.avail_in = static_cast<uInt>(data.size());
    int rc = Z_OK;
    while (rc != Z_STREAM_END) {
        zs.next_out = reinterpret_cast<Bytef*>(chunk.data());
        zs.avail_out = static_cast<uInt>(chunk.size());
        rc = inflate(&zs, Z_NO_FLUSH);
        if (rc != Z_OK && rc != Z_STREAM_END) {
            inflateEnd(&zs);
            return std::nullopt;
        }
        const std::size_t produced = chunk.size() - zs.avail_out;
        if (out.size() + produced > max_bytes) {
            inflateEnd(&zs);
            return std::nullopt;
        }
        out.append(chunk.data(), produced);
        if (rc == Z_OK && produced == 0 && zs.avail_in == 0) {
            inflateEnd(&zs);
            return std::nullopt;  // truncated stream
        }
    }
    inflateEnd(&zs);
    return out;
}

}  // namespace billsync::connectors
