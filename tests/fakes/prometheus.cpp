#include "tests/fakes/prometheus.hpp"

#include <cctype>
#include <cstdlib>
#include <set>
#include <sstream>

namespace billsync::testing {

namespace {
bool valid_name(std::string_view n) {
    if (n.empty() || std::isdigit(static_cast<unsigned char>(n[0])) != 0) {
        return false;
    }
    for (char c : n) {
        if (std::isalnum(static_cast<unsigned char>(c)) == 0 && c != '_' && c != ':') {
            return false;
        }
    }
    return true;
}
}  // namespace

bool valid_prometheus_text(std::string_view text, std::string& error) {
    std::set<std::string, std::less<>> families;
    std::istringstream in{std::string(text)};
    std::string line;
    int n = 0;
    while (std::getline(in, line)) {
        ++n;
        if (line.empty()) {
            continue;
        }
        if (line.starts_with("# HELP ") || line.starts_with("# TYPE ")) {
            std::istringstream parts(line.substr(7));
            std::string name, rest;
            parts >> name >> rest;
            if (!valid_name(name)) {
                error = "line " + std::to_string(n) + ": bad family name";
                return false;
            }
            if (line.starts_with("# TYPE ") && rest != "counter" && rest != "gauge" &&
                rest != "histogram" && rest != "summary" && rest != "untyped") {
                error = "line " + std::to_string(n) + ": bad type";
                return false;
            }
            families.insert(name);
            continue;
        }
        if (line[0] == '#') {
            continue;
        }
        std::size_t i = 0;
        while (i < line.size() && line[i] != '{' && line[i] != ' ') {
            ++i;
        }
        const std::string name = line.substr(0, i);
        if (!valid_name(name)) {
            error = "line " + std::to_string(n) + ": bad metric name";
            return false;
        }
        std::string family = name;
        for (std::string_view suffix : {"_bucket", "_sum", "_count"}) {
            if (!families.contains(family) && family.ends_with(suffix)) {
                family = family.substr(0, family.size() - suffix.size());
            }
        }
        if (!families.contains(family)) {
            error = "line " + std::to_string(n) + ": sample without HELP/TYPE: " + name;
            return false;
        }
        if (i < line.size() && line[i] == '{') {
            bool quoted = false;
            for (++i; i < line.size(); ++i) {
                if (quoted && line[i] == '\\') {
                    ++i;
                } else if (line[i] == '"') {
                    quoted = !quoted;
                } else if (!quoted && line[i] == '}') {
                    break;
                }
            }
            if (i >= line.size()) {
                error = "line " + std::to_string(n) + ": unterminated labels";
                return false;
            }
            ++i;
        }
        if (i >= line.size() || line[i] != ' ') {
            error = "line " + std::to_string(n) + ": missing value";
            return false;
        }
        const std::string value = line.substr(i + 1);
        char* end = nullptr;
        std::strtod(value.c_str(), &end);
        if (value.empty() || (end != value.c_str() + value.size() && value != "+Inf" &&
                              value != "-Inf" && value != "NaN")) {
            error = "line " + std::to_string(n) + ": bad value '" + value + "'";
            return false;
        }
    }
    return true;
}

}  // namespace billsync::testing
