// The Windows service control contract against a fake Service Control Manager. Runs under ctest
// on Linux and, cross-compiled with mingw-w64 together with windows_service.cpp, as
// platform_test.exe (scripts/ci-windows.sh).
#include "daemon/platform/scm_control.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace billsync::daemon::platform::scm {
namespace {

// Records every SetServiceStatus the daemon would make.
class fake_scm final : public port {
public:
    void report(const status& s) override { reports.push_back(s); }
    std::vector<status> reports;
};

constexpr std::uint32_t running_accepts = accept::stop | accept::shutdown | accept::paramchange;

status make(state st,
            std::uint32_t accepted,
            std::uint32_t checkpoint,
            std::uint32_t hint,
            std::uint32_t win32 = no_error,
            std::uint32_t specific = 0) {
    status s;
    s.current = st;
    s.controls_accepted = accepted;
    s.checkpoint = checkpoint;
    s.wait_hint_ms = hint;
    s.win32_exit_code = win32;
    s.service_exit_code = specific;
    return s;
}

struct scm_control : ::testing::Test {
    fake_scm scm;
    control_machine machine{scm, timings{}};
};

TEST_F(scm_control, start_run_stop_reports_the_contract_in_order) {
    machine.starting();
    machine.ready();
    const auto r = machine.control(control::stop);
    EXPECT_EQ(r.code, no_error);
    EXPECT_EQ(r.action, request::stop);  // the same drain as SIGTERM
    machine.stopped(0);
    EXPECT_EQ(scm.reports,
              (std::vector<status>{make(state::start_pending, 0, 1, 30'000),
                                   make(state::running, running_accepts, 0, 0),
                                   make(state::stop_pending, 0, 1, 30'000),
                                   make(state::stopped, 0, 0, 0)}));
}

TEST_F(scm_control, shutdown_and_preshutdown_drain_as_stop_does) {
    for (const auto code : {control::shutdown, control::preshutdown}) {
        fake_scm other;
        control_machine m(other, timings{});
        m.starting();
        m.ready();
        const auto r = m.control(code);
        EXPECT_EQ(r.action, request::stop) << code;
        EXPECT_EQ(other.reports.back().current, state::stop_pending) << code;
    }
}

TEST_F(scm_control, paramchange_reloads_while_running_and_the_service_stays_running) {
    machine.starting();
    machine.ready();
    const auto before = scm.reports.size();
    const auto r = machine.control(control::paramchange);
    EXPECT_EQ(r.code, no_error);
    EXPECT_EQ(r.action, request::reload);  // the same reload as SIGHUP
    machine.reloading();
    EXPECT_EQ(scm.reports.size(), before);  // no RELOADING state at the SCM
    machine.ready();
    EXPECT_EQ(scm.reports.back(), make(state::running, running_accepts, 0, 0));
    EXPECT_EQ(machine.reloads(), 1U);
}

TEST_F(scm_control, controls_not_accepted_yet_or_any_more_are_refused) {
    machine.starting();
    EXPECT_EQ(machine.control(control::stop).code, error_call_not_implemented);
    EXPECT_EQ(machine.control(control::paramchange).code, error_call_not_implemented);
    machine.ready();
    EXPECT_EQ(machine.control(0x80).code, error_call_not_implemented);  // user-defined code
    machine.stopping();
    EXPECT_EQ(machine.control(control::paramchange).code, error_call_not_implemented);
    // A second stop while draining is accepted and changes nothing.
    const auto before = scm.reports.size();
    const auto again = machine.control(control::stop);
    EXPECT_EQ(again.code, no_error);
    EXPECT_EQ(again.action, request::none);
    EXPECT_EQ(scm.reports.size(), before);
    machine.stopped(0);
    EXPECT_EQ(machine.control(control::stop).code, error_call_not_implemented);
}

TEST_F(scm_control, interrogate_reports_the_current_status_again) {
    machine.starting();
    machine.ready();
    const auto r = machine.control(control::interrogate);
    EXPECT_EQ(r.code, no_error);
    EXPECT_EQ(r.action, request::none);
    ASSERT_EQ(scm.reports.size(), 3U);
    EXPECT_EQ(scm.reports[2], scm.reports[1]);
}

TEST_F(scm_control, ticks_report_progress_while_pending) {
    machine.starting();
    EXPECT_TRUE(machine.tick(true));
    EXPECT_TRUE(machine.tick(false));  // still starting: progress, whatever the pipeline says
    EXPECT_EQ(scm.reports.back(), make(state::start_pending, 0, 3, 30'000));
    machine.ready();
    machine.stopping();
    EXPECT_TRUE(machine.tick(true));
    EXPECT_EQ(scm.reports.back(), make(state::stop_pending, 0, 2, 30'000));
}

TEST_F(scm_control, a_stalled_pipeline_ends_the_service_after_the_limit) {
    machine.starting();
    machine.ready();
    const auto before = scm.reports.size();
    EXPECT_TRUE(machine.tick(true));
    EXPECT_TRUE(machine.tick(false));  // one unhealthy tick is tolerated (15 s)
    EXPECT_TRUE(machine.tick(true));   // beats again: the count starts over
    EXPECT_TRUE(machine.tick(false));
    EXPECT_FALSE(machine.tick(false));      // 2 x 15 s, as WatchdogSec=30 under systemd
    EXPECT_EQ(scm.reports.size(), before);  // running ticks report nothing
    machine.stopped(70);
    EXPECT_EQ(scm.reports.back(), make(state::stopped, 0, 0, 0, error_service_specific_error, 70));
    EXPECT_FALSE(machine.tick(true));
}

TEST_F(scm_control, a_reload_finishing_while_stopping_does_not_resume_running) {
    machine.starting();
    machine.ready();
    EXPECT_EQ(machine.control(control::paramchange).action, request::reload);
    EXPECT_EQ(machine.control(control::stop).action, request::stop);
    machine.ready();  // the reload's end
    EXPECT_EQ(scm.reports.back().current, state::stop_pending);
}

TEST_F(scm_control, an_error_exit_is_a_service_specific_error) {
    machine.starting();
    machine.stopped(78);  // configuration error before ready
    EXPECT_EQ(scm.reports.back(), make(state::stopped, 0, 0, 0, error_service_specific_error, 78));
}

TEST(scm_command_line, quotes_each_path_and_refuses_what_cannot_be_quoted) {
    EXPECT_EQ(service_command_line(L"C:\\Program Files\\billsync\\billsync.exe",
                                   L"C:\\ProgramData\\billsync\\billsync.toml"),
              L"\"C:\\Program Files\\billsync\\billsync.exe\" run --service --config "
              L"\"C:\\ProgramData\\billsync\\billsync.toml\"");
    EXPECT_EQ(service_command_line(L"C:\\a\"b.exe", L"C:\\c.toml"), L"");
    EXPECT_EQ(service_command_line(L"", L"C:\\c.toml"), L"");
}

}  // namespace
}  // namespace billsync::daemon::platform::scm
