#include "config/diagnostics.hpp"

#include <algorithm>
#include <tuple>

namespace billsync::config {

std::string diagnostic::to_string() const {
    std::string out;
    if (!where.file.empty()) {
        out += where.file;
        if (where.line > 0) {
            out += ':';
            out += std::to_string(where.line);
            if (where.column > 0) {
                out += ':';
                out += std::to_string(where.column);
            }
        }
        out += ": ";
    }
    out += sev == severity::error ? "error: " : "warning: ";
    out += message;
    return out;
}

void diagnostics::error(source_pos where, std::string message) {
    items_.push_back({severity::error, std::move(where), std::move(message)});
    ++errors_;
}

void diagnostics::warning(source_pos where, std::string message) {
    items_.push_back({severity::warning, std::move(where), std::move(message)});
}

std::string diagnostics::render() const {
    // std::sort with the index as the last key: stable without std::stable_sort, whose temporary
    // buffer clang 19 flags as deprecated in libstdc++ 12.
    std::vector<std::size_t> order(items_.size());
    for (std::size_t i = 0; i < order.size(); ++i) {
        order[i] = i;
    }
    std::sort(order.begin(), order.end(), [this](std::size_t a, std::size_t b) {
        const auto& pa = items_[a].where;
        const auto& pb = items_[b].where;
        return std::tie(pa.file, pa.line, pa.column, a) < std::tie(pb.file, pb.line, pb.column, b);
    });
    std::string out;
    for (const std::size_t i : order) {
        out += items_[i].to_string();
        out += '\n';
    }
    return out;
}

}  // namespace billsync::config
