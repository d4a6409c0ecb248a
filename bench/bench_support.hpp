#pragma once

// Small pieces every benchmark needs.

#include <chrono>
#include <fstream>
#include <string>

namespace billsync::bench {

// Peak resident set size of this process (VmHWM), in MiB; 0 when unknown.
inline double peak_rss_mb() {
    std::ifstream in("/proc/self/status");
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind("VmHWM:", 0) == 0) {
            return std::stod(line.substr(6)) / 1024.0;  // kB
        }
    }
    return 0.0;
}

inline double seconds_since(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace billsync::bench
