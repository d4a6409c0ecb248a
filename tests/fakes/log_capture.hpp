#pragma once

#include <spdlog/sinks/ringbuffer_sink.h>

#include <memory>
#include <string>
#include <vector>

namespace billsync::testing {

// Captures formatted log lines for assertions; hand sink() to util::log_hub as an extra sink.
class log_capture {
public:
    log_capture() : sink_(std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(4096)) {
        sink_->set_pattern("%l [%n] %v");
    }
    std::shared_ptr<spdlog::sinks::ringbuffer_sink_mt> sink() const { return sink_; }
    std::vector<std::string> lines() const { return sink_->last_formatted(); }
    std::string joined() const {
        std::string all;
        for (const auto& l : lines()) {
            all += l;
        }
        return all;
    }

private:
    std::shared_ptr<spdlog::sinks::ringbuffer_sink_mt> sink_;
};

}  // namespace billsync::testing
