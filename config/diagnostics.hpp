#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace billsync::config {

// A place in a configuration file. line and column are 1-based; 0 means "unknown".
struct source_pos {
    std::string file;
    std::uint32_t line = 0;
    std::uint32_t column = 0;
};

enum class severity { error, warning };

struct diagnostic {
    severity sev = severity::error;
    source_pos where;
    std::string message;

    // Compiler style: "billsync.toml:14:3: error: [connectors.qbo] unknown key 'clinet_id'".
    // Parts of the position that are unknown are left out ("billsync.toml: error: ...").
    std::string to_string() const;
};

// Collects every problem found in a configuration so they can be reported all at once.
// Messages never contain secret values.
class diagnostics {
public:
    void error(source_pos where, std::string message);
    void warning(source_pos where, std::string message);

    bool has_errors() const noexcept { return errors_ > 0; }
    std::size_t error_count() const noexcept { return errors_; }
    std::size_t warning_count() const noexcept { return items_.size() - errors_; }
    bool empty() const noexcept { return items_.empty(); }

    // In the order they were reported.
    const std::vector<diagnostic>& items() const noexcept { return items_; }

    // One line per diagnostic, each ending in '\n', sorted by file, line and column (problems at
    // the same position keep the order they were reported in).
    std::string render() const;

private:
    std::vector<diagnostic> items_;
    std::size_t errors_ = 0;
};

}  // namespace billsync::config
