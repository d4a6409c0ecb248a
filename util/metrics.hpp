#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace billsync::util {

using metric_labels = std::vector<std::pair<std::string, std::string>>;

class counter {
public:
    void inc(std::uint64_t n = 1) noexcept { value_.fetch_add(n, std::memory_order_relaxed); }
    std::uint64_t value() const noexcept { return value_.load(std::memory_order_relaxed); }

private:
    std::atomic<std::uint64_t> value_{0};
};

class gauge {
public:
    void set(std::int64_t v) noexcept { value_.store(v, std::memory_order_relaxed); }
    void add(std::int64_t d) noexcept { value_.fetch_add(d, std::memory_order_relaxed); }
    std::int64_t value() const noexcept { return value_.load(std::memory_order_relaxed); }

private:
    std::atomic<std::int64_t> value_{0};
};

// Cumulative histogram of durations; bucket bounds in seconds as Prometheus expects.
class histogram {
public:
    explicit histogram(std::vector<double> bounds_seconds);
    void observe(std::chrono::nanoseconds d) noexcept;
    std::uint64_t count() const noexcept { return count_.load(std::memory_order_relaxed); }

private:
    friend class metrics_registry;
    std::vector<double> bounds_;
    std::vector<std::int64_t> bounds_ns_;
    std::unique_ptr<std::atomic<std::uint64_t>[]> buckets_;
    std::atomic<std::uint64_t> count_{0};
    std::atomic<std::uint64_t> sum_ns_{0};
};

// Default latency buckets: 0.5 ms … 10 s.
std::vector<double> latency_buckets();

// A registry of metric families rendered in the Prometheus text exposition format (0.0.4).
// Registration takes a lock; the returned references stay valid for the registry's lifetime,
// so hot paths look a series up once and then only touch atomics.
class metrics_registry {
public:
    counter& get_counter(std::string_view name,
                         std::string_view help,
                         const metric_labels& labels = {});
    gauge& get_gauge(std::string_view name,
                     std::string_view help,
                     const metric_labels& labels = {});
    histogram& get_histogram(std::string_view name,
                             std::string_view help,
                             const metric_labels& labels = {},
                             std::vector<double> bounds_seconds = latency_buckets());

    // Runs before every render(), e.g. to refresh queue-depth gauges from the store.
    void add_collector(std::function<void(metrics_registry&)> collector);

    std::string render();

private:
    enum class kind { counter, gauge, histogram };
    struct family {
        kind type;
        std::string help;
        std::map<std::string, std::unique_ptr<counter>> counters;  // key: rendered labels
        std::map<std::string, std::unique_ptr<gauge>> gauges;
        std::map<std::string, std::unique_ptr<histogram>> histograms;
    };
    family& family_for(std::string_view name, std::string_view help, kind type);

    std::mutex mutex_;
    std::map<std::string, family, std::less<>> families_;
    std::vector<std::function<void(metrics_registry&)>> collectors_;
};

// Renders {a="x",b="y"} with Prometheus escaping; empty labels render as "".
std::string render_labels(const metric_labels& labels);

}  // namespace billsync::util
