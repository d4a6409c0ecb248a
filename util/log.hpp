#pragma once

#include <spdlog/common.h>

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace spdlog {
class logger;
}

namespace billsync::util {

// external: no console output of the hub's own; the sinks given to it are the output (the
// daemon's system log sink, for instance).
enum class log_output { text, json, journald, external };

// journald when stderr is the journal stream systemd gave us (JOURNAL_STREAM), else text.
log_output detect_log_output();

// Parses "trace" … "critical", "off"; false when unknown.
bool parse_log_level(std::string_view text, spdlog::level::level_enum& out);

// Owns the log sinks and hands out one named logger per component ("connector.qbo",
// "http.webhook"). Every message passes through secret redaction before any sink sees it.
class log_hub {
public:
    explicit log_hub(log_output output,
                     spdlog::level::level_enum level = spdlog::level::info,
                     std::vector<spdlog::sink_ptr> extra_sinks = {});
    log_hub(const log_hub&) = delete;
    log_hub& operator=(const log_hub&) = delete;
    ~log_hub();

    std::shared_ptr<spdlog::logger> get(const std::string& name);
    void set_level(spdlog::level::level_enum level);
    void flush();

private:
    std::mutex mutex_;
    spdlog::sink_ptr sink_;
    spdlog::level::level_enum level_;
    std::map<std::string, std::shared_ptr<spdlog::logger>, std::less<>> loggers_;
};

}  // namespace billsync::util
