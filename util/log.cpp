#include "util/log.hpp"

#include <spdlog/details/log_msg.h>
#include <spdlog/logger.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "util/clock.hpp"
#include "util/redact.hpp"

namespace billsync::util {
namespace {

std::string_view payload_of(const spdlog::details::log_msg& msg) {
    return {msg.payload.data(), msg.payload.size()};
}

// One JSON object per line: {"ts","level","logger","msg"}.
class json_formatter final : public spdlog::formatter {
public:
    void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
        nlohmann::json line;
        line["ts"] = format_rfc3339(std::chrono::time_point_cast<duration>(msg.time));
        const auto level = spdlog::level::to_string_view(msg.level);
        line["level"] = std::string(level.data(), level.size());
        line["logger"] = std::string(msg.logger_name.data(), msg.logger_name.size());
        line["msg"] = std::string(payload_of(msg));
        const auto text = line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
        dest.append(text.data(), text.data() + text.size());
        dest.push_back('\n');
    }
    std::unique_ptr<spdlog::formatter> clone() const override {
        return std::make_unique<json_formatter>();
    }
};

// sd-daemon(3) priority prefixes; journald adds its own timestamps.
class journald_formatter final : public spdlog::formatter {
public:
    void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
        int priority = 6;
        switch (msg.level) {
            case spdlog::level::trace:
            case spdlog::level::debug:
                priority = 7;
                break;
            case spdlog::level::info:
                priority = 6;
                break;
            case spdlog::level::warn:
                priority = 4;
                break;
            case spdlog::level::err:
                priority = 3;
                break;
            case spdlog::level::critical:
                priority = 2;
                break;
            default:
                break;
        }
        fmt::format_to(std::back_inserter(dest),
                       "<{}>[{}] {}\n",
                       priority,
                       std::string_view(msg.logger_name.data(), msg.logger_name.size()),
                       payload_of(msg));
    }
    std::unique_ptr<spdlog::formatter> clone() const override {
        return std::make_unique<journald_formatter>();
    }
};

// Redacts every message once, then hands it to the real sinks.
class redacting_sink final : public spdlog::sinks::base_sink<std::mutex> {
public:
    explicit redacting_sink(std::vector<spdlog::sink_ptr> inner) : inner_(std::move(inner)) {}

protected:
    void sink_it_(const spdlog::details::log_msg& msg) override {
        const std::string clean = redact(payload_of(msg));
        spdlog::details::log_msg copy(msg);
        copy.payload = spdlog::string_view_t(clean.data(), clean.size());
        for (auto& s : inner_) {
            if (s->should_log(copy.level)) {
                s->log(copy);
            }
        }
    }
    void flush_() override {
        for (auto& s : inner_) {
            s->flush();
        }
    }

private:
    std::vector<spdlog::sink_ptr> inner_;
};

}  // namespace

log_output detect_log_output() {
    // systemd sets JOURNAL_STREAM=<dev>:<inode> of the stream it connected to stderr.
    const char* stream = std::getenv("JOURNAL_STREAM");
    if (stream == nullptr) {
        return log_output::text;
    }
    struct stat st{};
    if (fstat(fileno(stderr), &st) != 0) {
        return log_output::text;
    }
    const auto expected = fmt::format("{}:{}", st.st_dev, st.st_ino);
    return expected == stream ? log_output::journald : log_output::text;
}

bool parse_log_level(std::string_view text, spdlog::level::level_enum& out) {
    static constexpr std::pair<std::string_view, spdlog::level::level_enum> levels[] = {
        {"trace", spdlog::level::trace},
        {"debug", spdlog::level::debug},
        {"info", spdlog::level::info},
        {"warn", spdlog::level::warn},
        {"warning", spdlog::level::warn},
        {"error", spdlog::level::err},
        {"critical", spdlog::level::critical},
        {"off", spdlog::level::off},
    };
    for (const auto& [name, level] : levels) {
        if (name == text) {
            out = level;
            return true;
        }
    }
    return false;
}

log_hub::log_hub(log_output output,
                 spdlog::level::level_enum level,
                 std::vector<spdlog::sink_ptr> extra_sinks)
    : level_(level) {
    if (output == log_output::external) {
        sink_ = std::make_shared<redacting_sink>(std::move(extra_sinks));
        return;
    }
    auto console = std::make_shared<spdlog::sinks::stderr_color_sink_mt>(
        output == log_output::text ? spdlog::color_mode::automatic : spdlog::color_mode::never);
    switch (output) {
        case log_output::text:
            console->set_pattern("%Y-%m-%dT%H:%M:%S.%e%z %^%-5l%$ [%n] %v");
            break;
        case log_output::json:
            console->set_formatter(std::make_unique<json_formatter>());
            break;
        case log_output::journald:
            console->set_formatter(std::make_unique<journald_formatter>());
            break;
        case log_output::external:
            break;
    }
    extra_sinks.insert(extra_sinks.begin(), console);
    sink_ = std::make_shared<redacting_sink>(std::move(extra_sinks));
}

log_hub::~log_hub() { flush(); }

std::shared_ptr<spdlog::logger> log_hub::get(const std::string& name) {
    std::lock_guard lock(mutex_);
    if (auto it = loggers_.find(name); it != loggers_.end()) {
        return it->second;
    }
    auto logger = std::make_shared<spdlog::logger>(name, sink_);
    logger->set_level(level_);
    logger->flush_on(spdlog::level::warn);
    loggers_.emplace(name, logger);
    return logger;
}

void log_hub::set_level(spdlog::level::level_enum level) {
    std::lock_guard lock(mutex_);
    level_ = level;
    for (auto& [name, logger] : loggers_) {
        logger->set_level(level);
    }
}

void log_hub::flush() {
    std::lock_guard lock(mutex_);
    sink_->flush();
}

}  // namespace billsync::util
