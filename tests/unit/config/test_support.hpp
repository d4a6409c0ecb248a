#pragma once

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "config/diagnostics.hpp"
#include "config/loader.hpp"
#include "connectors/builtin.hpp"

namespace billsync::config::testing {

// Loads text as "billsync.toml" with the real connector settings parser.
struct load_result {
    diagnostics diags;
    std::optional<loaded_config> config;
    std::vector<connectors::connector_settings> connectors;

    std::string rendered() const { return diags.render(); }
};

inline load_result load_text(std::string_view text, std::string file_name = "billsync.toml") {
    load_result out;
    out.config =
        load_string(text, std::move(file_name), out.diags, [&](const auto& section, auto& r) {
            if (auto s = connectors::parse_connector_settings(section, r, out.diags)) {
                out.connectors.push_back(std::move(*s));
            }
        });
    return out;
}

// The lines of a rendering, without the trailing newline.
inline std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> lines;
    std::size_t start = 0;
    while (start < text.size()) {
        auto end = text.find('\n', start);
        if (end == std::string::npos) {
            end = text.size();
        }
        lines.push_back(text.substr(start, end - start));
        start = end + 1;
    }
    return lines;
}

// Sets an environment variable for the lifetime of the object (unset = nullopt).
class scoped_env {
public:
    scoped_env(std::string name, std::optional<std::string> value) : name_(std::move(name)) {
        if (const char* old = std::getenv(name_.c_str())) {
            old_ = old;
        }
        if (value) {
            ::setenv(name_.c_str(), value->c_str(), 1);
        } else {
            ::unsetenv(name_.c_str());
        }
    }
    scoped_env(const scoped_env&) = delete;
    scoped_env& operator=(const scoped_env&) = delete;
    ~scoped_env() {
        if (old_) {
            ::setenv(name_.c_str(), old_->c_str(), 1);
        } else {
            ::unsetenv(name_.c_str());
        }
    }

private:
    std::string name_;
    std::optional<std::string> old_;
};

// A fresh directory under the system temp dir, removed at the end.
class temp_dir {
public:
    temp_dir() {
        std::random_device rd;
        path_ = std::filesystem::temp_directory_path() /
                ("billsync-config-test-" + std::to_string(rd()) + std::to_string(rd()));
        std::filesystem::create_directories(path_);
    }
    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;
    ~temp_dir() {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }
    const std::filesystem::path& path() const { return path_; }
    std::filesystem::path write(const std::string& name, std::string_view content) const {
        const auto p = path_ / name;
        std::ofstream(p, std::ios::binary) << content;
        return p;
    }

private:
    std::filesystem::path path_;
};

}  // namespace billsync::config::testing
