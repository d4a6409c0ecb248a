#include "util/metrics.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <stdexcept>

#include "util/assert.hpp"

namespace billsync::util {

histogram::histogram(std::vector<double> bounds_seconds)
    : bounds_(std::move(bounds_seconds)),
      buckets_(std::make_unique<std::atomic<std::uint64_t>[]>(bounds_.size())) {
    std::sort(bounds_.begin(), bounds_.end());
    bounds_ns_.reserve(bounds_.size());
    for (double b : bounds_) {
        bounds_ns_.push_back(static_cast<std::int64_t>(b * 1e9));
    }
    for (std::size_t i = 0; i < bounds_.size(); ++i) {
        buckets_[i].store(0, std::memory_order_relaxed);
    }
}

void histogram::observe(std::chrono::nanoseconds d) noexcept {
    const auto ns = std::max<std::int64_t>(0, d.count());
    const auto it = std::lower_bound(bounds_ns_.begin(), bounds_ns_.end(), ns);
    if (it != bounds_ns_.end()) {
        buckets_[static_cast<std::size_t>(it - bounds_ns_.begin())].fetch_add(
            1, std::memory_order_relaxed);
    }
    count_.fetch_add(1, std::memory_order_relaxed);
    sum_ns_.fetch_add(static_cast<std::uint64_t>(ns), std::memory_order_relaxed);
}

std::vector<double> latency_buckets() {
    return {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
}

std::string render_labels(const metric_labels& labels) {
    if (labels.empty()) {
        return {};
    }
    std::string out = "{";
    bool first = true;
    for (const auto& [k, v] : labels) {
        if (!first) {
            out += ',';
        }
        first = false;
        out += k;
        out += "=\"";
        for (char c : v) {
            switch (c) {
                case '\\':
                    out += "\\\\";
                    break;
                case '"':
                    out += "\\\"";
                    break;
                case '\n':
                    out += "\\n";
                    break;
                default:
                    out += c;
            }
        }
        out += '"';
    }
    out += '}';
    return out;
}

metrics_registry::family& metrics_registry::family_for(std::string_view name,
                                                       std::string_view help,
                                                       kind type) {
    auto it = families_.find(name);
    if (it == families_.end()) {
        it =
            families_.emplace(std::string(name), family{type, std::string(help), {}, {}, {}}).first;
    }
    BILLSYNC_BUG(it->second.type == type, "metric family registered with two types");
    return it->second;
}

counter& metrics_registry::get_counter(std::string_view name,
                                       std::string_view help,
                                       const metric_labels& labels) {
    std::lock_guard lock(mutex_);
    auto& f = family_for(name, help, kind::counter);
    auto& slot = f.counters[render_labels(labels)];
    if (!slot) {
        slot = std::make_unique<counter>();
    }
    return *slot;
}

gauge& metrics_registry::get_gauge(std::string_view name,
                                   std::string_view help,
                                   const metric_labels& labels) {
    std::lock_guard lock(mutex_);
    auto& f = family_for(name, help, kind::gauge);
    auto& slot = f.gauges[render_labels(labels)];
    if (!slot) {
        slot = std::make_unique<gauge>();
    }
    return *slot;
}

histogram& metrics_registry::get_histogram(std::string_view name,
                                           std::string_view help,
                                           const metric_labels& labels,
                                           std::vector<double> bounds_seconds) {
    std::lock_guard lock(mutex_);
    auto& f = family_for(name, help, kind::histogram);
    auto& slot = f.histograms[render_labels(labels)];
    if (!slot) {
        slot = std::make_unique<histogram>(std::move(bounds_seconds));
    }
    return *slot;
}

void metrics_registry::add_collector(std::function<void(metrics_registry&)> collector) {
    std::lock_guard lock(mutex_);
    collectors_.push_back(std::move(collector));
}

namespace {
// Inserts `extra` (a label pair) into a rendered label set.
std::string with_label(const std::string& rendered, std::string_view extra) {
    if (rendered.empty()) {
        return fmt::format("{{{}}}", extra);
    }
    return fmt::format("{},{}}}", rendered.substr(0, rendered.size() - 1), extra);
}
}  // namespace

std::string metrics_registry::render() {
    std::vector<std::function<void(metrics_registry&)>> collectors;
    {
        std::lock_guard lock(mutex_);
        collectors = collectors_;
    }
    for (auto& c : collectors) {
        c(*this);
    }
    std::lock_guard lock(mutex_);
    std::string out;
    for (const auto& [name, f] : families_) {
        static constexpr std::string_view type_names[] = {"counter", "gauge", "histogram"};
        out += fmt::format("# HELP {} {}\n# TYPE {} {}\n",
                           name,
                           f.help,
                           name,
                           type_names[static_cast<int>(f.type)]);
        for (const auto& [labels, c] : f.counters) {
            out += fmt::format("{}{} {}\n", name, labels, c->value());
        }
        for (const auto& [labels, g] : f.gauges) {
            out += fmt::format("{}{} {}\n", name, labels, g->value());
        }
        for (const auto& [labels, h] : f.histograms) {
            std::uint64_t cumulative = 0;
            for (std::size_t i = 0; i < h->bounds_.size(); ++i) {
                cumulative += h->buckets_[i].load(std::memory_order_relaxed);
                out += fmt::format("{}_bucket{} {}\n",
                                   name,
                                   with_label(labels, fmt::format("le=\"{}\"", h->bounds_[i])),
                                   cumulative);
            }
            const auto count = h->count();
            out += fmt::format("{}_bucket{} {}\n", name, with_label(labels, "le=\"+Inf\""), count);
            out +=
                fmt::format("{}_sum{} {:.9f}\n",
                            name,
                            labels,
                            static_cast<double>(h->sum_ns_.load(std::memory_order_relaxed)) / 1e9);
            out += fmt::format("{}_count{} {}\n", name, labels, count);
        }
    }
    return out;
}

}  // namespace billsync::util
