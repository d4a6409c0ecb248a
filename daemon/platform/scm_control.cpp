#include "daemon/platform/scm_control.hpp"

namespace billsync::daemon::platform::scm {

namespace {

std::uint32_t hint(std::chrono::milliseconds ms) { return static_cast<std::uint32_t>(ms.count()); }

}  // namespace

control_machine::control_machine(port& p, timings t) : port_(p), timings_(t) {}

void control_machine::report() { port_.report(status_); }

void control_machine::starting() {
    status_ = status{};
    status_.current = state::start_pending;
    status_.checkpoint = 1;
    status_.wait_hint_ms = hint(timings_.start_hint);
    report();
}

void control_machine::ready() {
    if (status_.current != state::start_pending && status_.current != state::running) {
        return;  // a reload that finished while stopping: stay stopping
    }
    status_.current = state::running;
    status_.controls_accepted = accept::stop | accept::shutdown | accept::paramchange;
    status_.checkpoint = 0;
    status_.wait_hint_ms = 0;
    unhealthy_ticks_ = 0;
    report();
}

void control_machine::reloading() {
    if (status_.current == state::running) {
        ++reloads_;
    }
}

void control_machine::stopping() {
    if (status_.current == state::stop_pending || status_.current == state::stopped) {
        return;
    }
    status_.current = state::stop_pending;
    status_.controls_accepted = 0;
    status_.checkpoint = 1;
    status_.wait_hint_ms = hint(timings_.stop_hint);
    report();
}

control_result control_machine::control(std::uint32_t code) {
    switch (code) {
        case control::interrogate:
            report();
            return {no_error, request::none};
        case control::stop:
        case control::shutdown:
        case control::preshutdown:
            if (status_.current == state::running) {
                stopping();
                return {no_error, request::stop};
            }
            if (status_.current == state::stop_pending) {
                return {no_error, request::none};  // already draining
            }
            return {error_call_not_implemented, request::none};
        case control::paramchange:
            if (status_.current == state::running) {
                return {no_error, request::reload};
            }
            return {error_call_not_implemented, request::none};
        default:
            return {error_call_not_implemented, request::none};
    }
}

bool control_machine::tick(bool healthy) {
    switch (status_.current) {
        case state::start_pending:
        case state::stop_pending:
            ++status_.checkpoint;
            report();
            return true;
        case state::running:
            if (healthy) {
                unhealthy_ticks_ = 0;
                return true;
            }
            ++unhealthy_ticks_;
            return unhealthy_ticks_ < timings_.stalled_ticks_limit;
        case state::stopped:
            return false;
    }
    return false;
}

void control_machine::stopped(int exit_code) {
    status_.current = state::stopped;
    status_.controls_accepted = 0;
    status_.checkpoint = 0;
    status_.wait_hint_ms = 0;
    status_.win32_exit_code = exit_code == 0 ? no_error : error_service_specific_error;
    status_.service_exit_code = static_cast<std::uint32_t>(exit_code);
    report();
}

std::wstring service_command_line(const std::filesystem::path& binary,
                                  const std::filesystem::path& config) {
    const std::wstring b = binary.wstring();
    const std::wstring c = config.wstring();
    if (b.empty() || c.empty() || b.find(L'"') != std::wstring::npos ||
        c.find(L'"') != std::wstring::npos) {
        return {};
    }
    return L"\"" + b + L"\" run --service --config \"" + c + L"\"";
}

}  // namespace billsync::daemon::platform::scm
