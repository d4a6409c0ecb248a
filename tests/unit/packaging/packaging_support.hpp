#pragma once

#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace billsync::packaging::testing {

inline const std::filesystem::path source_dir = BILLSYNC_SOURCE_DIR;

inline std::string read(const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// The lines of a text that are not comments (a TOML or unit-file line starting with '#').
inline std::vector<std::string> live_lines(const std::string& text) {
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
        const auto first = line.find_first_not_of(" \t");
        if (first != std::string::npos && line[first] != '#') {
            out.push_back(line);
        }
    }
    return out;
}

// Every NAME of "${credential:NAME}" on a line that is not a comment.
inline std::set<std::string> credentials_referenced(const std::string& toml) {
    std::set<std::string> out;
    const std::regex credential(R"(\$\{credential:([A-Za-z0-9_.-]+)\})");
    for (const auto& line : live_lines(toml)) {
        for (std::sregex_iterator it(line.begin(), line.end(), credential), end; it != end; ++it) {
            out.insert((*it)[1].str());
        }
    }
    return out;
}

}  // namespace billsync::packaging::testing
