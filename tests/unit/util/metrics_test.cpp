#include "util/metrics.hpp"

#include <gtest/gtest.h>

#include <sstream>

#include "tests/fakes/prometheus.hpp"

namespace billsync::util {
namespace {

TEST(metrics, renders_counters_gauges_and_histograms_in_exposition_format) {
    metrics_registry m;
    m.get_counter("billsync_things_total", "Things.", {{"kind", "a\"b"}}).inc(3);
    m.get_gauge("billsync_depth", "Depth.").set(-2);
    auto& h =
        m.get_histogram("billsync_latency_seconds", "Latency.", {{"route", "/x"}}, {0.01, 0.1});
    h.observe(std::chrono::milliseconds(5));
    h.observe(std::chrono::milliseconds(50));
    h.observe(std::chrono::seconds(2));
    const auto text = m.render();
    std::string error;
    EXPECT_TRUE(testing::valid_prometheus_text(text, error)) << error << "\n" << text;
    EXPECT_NE(text.find("billsync_things_total{kind=\"a\\\"b\"} 3\n"), std::string::npos) << text;
    EXPECT_NE(text.find("billsync_depth -2\n"), std::string::npos);
    EXPECT_NE(text.find("billsync_latency_seconds_bucket{route=\"/x\",le=\"0.01\"} 1\n"),
              std::string::npos)
        << text;
    EXPECT_NE(text.find("billsync_latency_seconds_bucket{route=\"/x\",le=\"0.1\"} 2\n"),
              std::string::npos);
    EXPECT_NE(text.find("billsync_latency_seconds_bucket{route=\"/x\",le=\"+Inf\"} 3\n"),
              std::string::npos);
    EXPECT_NE(text.find("billsync_latency_seconds_count{route=\"/x\"} 3\n"), std::string::npos);
}

TEST(metrics, same_series_is_returned_for_same_labels) {
    metrics_registry m;
    auto& a = m.get_counter("c_total", "C.", {{"x", "1"}});
    auto& b = m.get_counter("c_total", "C.", {{"x", "1"}});
    EXPECT_EQ(&a, &b);
    EXPECT_NE(&a, &m.get_counter("c_total", "C.", {{"x", "2"}}));
}

TEST(metrics, collectors_run_before_each_render) {
    metrics_registry m;
    int runs = 0;
    m.add_collector([&runs](metrics_registry& r) { r.get_gauge("g", "G.").set(++runs); });
    EXPECT_NE(m.render().find("g 1\n"), std::string::npos);
    EXPECT_NE(m.render().find("g 2\n"), std::string::npos);
}

}  // namespace
}  // namespace billsync::util
