#include "sandbox/chaos.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <ostream>
#include <set>
#include <sstream>
#include <thread>

#include "connectors/xero/xero_kind.hpp"
#include "daemon/access.hpp"
#include "daemon/tools.hpp"
#include "http/client.hpp"
#include "sandbox/chaos_invariants.hpp"
#include "sandbox/chaos_profile.hpp"
#include "sandbox/sandbox.hpp"
#include "sandbox/sandbox_firm.hpp"
#include "sim/faults.hpp"
#include "sim/harvest_simulator.hpp"
#include "sim/karbon_simulator.hpp"
#include "sim/qbo_grant.hpp"
#include "sim/qbo_simulator.hpp"
#include "sim/sendgrid_simulator.hpp"
#include "sim/sim_server.hpp"
#include "sim/smtp_sink.hpp"
#include "sim/twilio_simulator.hpp"
#include "sim/xero_grant.hpp"
#include "sim/xero_simulator.hpp"
#include "workflows/followup/settings.hpp"

namespace billsync::sandbox {

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using namespace detail;
using namespace std::chrono_literals;
namespace sim = simulators;

// A free loopback port (bound, then released for the daemon to take).
std::uint16_t free_port() {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return 0;
    }
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    socklen_t len = sizeof(a);
    std::uint16_t port = 0;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0 &&
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0) {
        port = ntohs(a.sin_port);
    }
    ::close(fd);
    return port;
}

// Decimal JSON money ("123.45" as the ledger renders it) to minor units, without floats.
std::int64_t minor_of(const json& amount) {
    const auto text = amount.is_string() ? amount.get<std::string>() : amount.dump();
    std::int64_t units = 0;
    std::int64_t cents = 0;
    int decimals = -1;
    bool negative = false;
    for (const char c : text) {
        if (c == '-') {
            negative = true;
        } else if (c == '.') {
            decimals = 0;
        } else if (c >= '0' && c <= '9') {
            if (decimals < 0) {
                units = units * 10 + (c - '0');
            } else if (decimals < 2) {
                cents = cents * 10 + (c - '0');
                ++decimals;
            }
        }
    }
    if (decimals == 1) {
        cents *= 10;
    }
    const auto v = units * 100 + cents;
    return negative ? -v : v;
}

// "YYYY-MM-DD" (a civil date, as the firm wrote it); nullopt when it is not one.
std::optional<std::chrono::sys_days> civil_date_of(std::string_view text) {
    if (text.size() < 10) {
        return std::nullopt;
    }
    int v[3] = {0, 0, 0};
    const std::size_t at[3] = {0, 5, 8};
    const std::size_t n[3] = {4, 2, 2};
    for (int k = 0; k < 3; ++k) {
        for (std::size_t i = at[k]; i < at[k] + n[k]; ++i) {
            if (text[i] < '0' || text[i] > '9') {
                return std::nullopt;
            }
            v[k] = v[k] * 10 + (text[i] - '0');
        }
    }
    const std::chrono::year_month_day ymd{std::chrono::year{v[0]},
                                          std::chrono::month{static_cast<unsigned>(v[1])},
                                          std::chrono::day{static_cast<unsigned>(v[2])}};
    return ymd.ok() ? std::optional(std::chrono::sys_days{ymd}) : std::nullopt;
}

// The vendor object a ledger action's result names: "Invoice/41 #1041", "Invoice/41 (existing)",
// "qbo:<realm>:invoice:41" -> "Invoice/41".
std::string created_invoice_key(std::string result) {
    if (const auto colon = result.rfind(':'); colon != std::string::npos) {
        result = result.substr(colon + 1);
    }
    result = result.substr(0, result.find(' '));
    return result.starts_with("Invoice/") ? result : "Invoice/" + result;
}

// The seeded misbehaviour of every simulated vendor (docs/chaos.md, "Fault profile").
void add_request_faults(sim::fault_plan& plan, const std::string& api_prefix) {
    using k = sim::fault_kind;
    const auto rule = [&](std::string prefix, k kind, double p) {
        sim::fault_rule r;
        r.path_prefix = std::move(prefix);
        r.kind = kind;
        r.probability = p;
        r.hold = kind == k::slow ? 300ms : 150ms;
        r.status = kind == k::server_error ? 503 : 500;
        plan.add(r);
    };
    rule(api_prefix, k::server_error, 0.03);
    // A 429 pauses the vendor's key in billsync's limiter (Retry-After, or the connector's pause
    // for a bare 429: up to 10 s; skipped on the simulated clock), rarer than the other faults.
    rule(api_prefix, k::rate_limited, 0.01);
    rule(api_prefix, k::rate_limited_bare, 0.004);
    rule(api_prefix, k::timeout_unread, 0.02);
    rule(api_prefix, k::timeout_after_read, 0.02);
    rule(api_prefix, k::reset_after_write, 0.03);
    rule(api_prefix, k::slow, 0.03);
}

// The runner's own profile for one vendor (docs/chaos.md, "Fault profile").
void add_runner_faults(sim::fault_plan& plan,
                       const std::string& vendor,
                       const std::string& prefix) {
    // A create that loses its answer often (the object exists, billsync does not know): the
    // retry must find it, never create a second. Harvest's time entry by its external
    // reference; Xero's invoice by its Idempotency-Key, and after a kill by its Reference.
    const auto lost_creates = [&plan](const char* method, const char* path) {
        for (const auto kind :
             {sim::fault_kind::reset_after_write, sim::fault_kind::timeout_after_read}) {
            sim::fault_rule t;
            t.method = method;
            t.path_prefix = path;
            t.kind = kind;
            t.probability = kind == sim::fault_kind::reset_after_write ? 0.25 : 0.15;
            t.hold = 150ms;
            plan.add(t);
        }
    };
    if (vendor == "harvest") {
        lost_creates("POST", "/v2/time_entries");
    }
    if (vendor == "xero") {
        lost_creates("PUT", "/api.xro/2.0/Invoices");
    }
    if (!prefix.empty()) {
        add_request_faults(plan, prefix);
    }
    if (vendor == "qbo" || vendor == "xero") {
        // The token endpoint fails, or rotates the refresh token and the answer is lost (Xero's
        // refresh tokens are single-use: the old one works again only within its grace).
        sim::fault_rule t;
        t.path_prefix = "/oauth2/token";
        t.kind = sim::fault_kind::server_error;
        t.probability = 0.1;
        plan.add(t);
        t.kind = sim::fault_kind::reset_after_write;
        plan.add(t);
        plan.add(sim::webhook_fault_rule{vendor, 0.15, 0.15, 0.3});
    }
    if (vendor == "taxdome") {
        // Zapier's relays: lost (the Zap gave up), duplicated, reordered.
        plan.add(sim::webhook_fault_rule{"taxdome", 0.15, 0.15, 0.3});
    }
    if (vendor == "sendgrid") {
        plan.add(sim::webhook_fault_rule{"sendgrid/events", 0.1, 0.1, 0.3});
    }
}

// A practice job in Karbon whose completion drafts time in Harvest.
struct time_job {
    std::string work_type;
    std::string client;  // its name, at Karbon and Harvest (no QuickBooks customer)
    std::size_t staff = 0;
    int day = 1;            // the run's day it completes
    bool withdraw = false;  // re-opened before billsync can draft it (its client is linked late)
    std::string org_key;    // Karbon organization
    std::int64_t harvest_client = 0;
    std::string work_item_key;
};

class chaos_run {
public:
    chaos_run(std::uint64_t seed,
              int days,
              fs::path dir,
              fs::path exe,
              const chaos_profile* profile = nullptr)
        : seed_(seed), days_(days), dir_(std::move(dir)), exe_(std::move(exe)), profile_(profile) {}

    ~chaos_run() {
        stop_daemon();
        if (notify_fd_ >= 0) {
            ::close(notify_fd_);
        }
    }

    struct outcome {
        std::uint64_t faults = 0;
        std::map<std::string, std::uint64_t> by_kind;
        std::uint64_t kills = 0;
        std::optional<chaos_violation> violation;
        chaos_coverage checked;
        std::string error;  // the runner itself failed
    };

    outcome run();

private:
    // ---- the daemon child -----------------------------------------------------------------
    // The daemon says it is up as systemd's notify protocol has it (READY=1 on NOTIFY_SOCKET,
    // sent once its listeners serve): the runner hears of it at once instead of polling
    // /healthz. An abstract socket of this process and seed; none: /healthz is polled.
    void open_notify_socket() {
        notify_fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (notify_fd_ < 0) {
            return;
        }
        notify_name_ = fmt::format("@billsync-chaos-{}-{}", ::getpid(), seed_);
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::memcpy(addr.sun_path, notify_name_.data(), notify_name_.size());
        addr.sun_path[0] = '\0';
        const auto len =
            static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + notify_name_.size());
        if (::bind(notify_fd_, reinterpret_cast<sockaddr*>(&addr), len) != 0) {
            ::close(notify_fd_);
            notify_fd_ = -1;
            notify_name_.clear();
        }
    }

    // True when READY=1 arrived within `wait`; drains everything queued.
    bool heard_ready(std::chrono::milliseconds wait) {
        pollfd p{notify_fd_, POLLIN, 0};
        if (::poll(&p, 1, static_cast<int>(wait.count())) <= 0) {
            return false;
        }
        bool ready = false;
        std::array<char, 512> buf{};
        for (;;) {
            const auto n = ::recv(notify_fd_, buf.data(), buf.size(), 0);
            if (n <= 0) {
                break;
            }
            ready = ready ||
                    std::string_view(buf.data(), static_cast<std::size_t>(n)).find("READY=1") !=
                        std::string_view::npos;
        }
        return ready;
    }

    bool spawn() {
        const int fd = ::open(log_path().c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (fd < 0) {
            return false;
        }
        const auto config = (dir_ / "billsync.toml").string();
        const auto exe = exe_.string();
        // The environment is built before fork: the child only calls async-signal-safe functions.
        std::vector<std::string> env_text;
        for (char** e = environ; *e != nullptr; ++e) {
            if (!std::string_view(*e).starts_with("NOTIFY_SOCKET=")) {
                env_text.emplace_back(*e);
            }
        }
        if (!notify_name_.empty()) {
            env_text.push_back("NOTIFY_SOCKET=" + notify_name_);
        }
        std::vector<char*> envp;
        for (auto& e : env_text) {
            envp.push_back(e.data());
        }
        envp.push_back(nullptr);
        const pid_t pid = ::fork();
        if (pid == 0) {
            ::dup2(fd, 1);
            ::dup2(fd, 2);
            const int null_fd = ::open("/dev/null", O_RDONLY);
            if (null_fd >= 0) {
                ::dup2(null_fd, 0);
            }
            for (int i = 3; i < 1024; ++i) {
                ::close(i);
            }
            ::execle(exe.c_str(),
                     exe.c_str(),
                     "run",
                     "--config",
                     config.c_str(),
                     static_cast<char*>(nullptr),
                     envp.data());
            ::_exit(127);
        }
        ::close(fd);
        if (pid < 0) {
            return false;
        }
        pid_.store(pid);
        return true;
    }

    // True when the child is gone (reaped).
    bool reap(bool block) {
        const pid_t pid = pid_.load();
        if (pid <= 0) {
            return true;
        }
        int status = 0;
        const pid_t r = ::waitpid(pid, &status, block ? 0 : WNOHANG);
        if (r == pid || r < 0) {
            pid_.store(-1);
            return true;
        }
        return false;
    }

    bool start_daemon() {
        known_now_ = {};  // a restarted daemon resumes at its stored time
        for (int attempt = 0; attempt < 20; ++attempt) {
            if (notify_fd_ >= 0) {
                heard_ready(0ms);  // nothing a killed daemon said counts
            }
            if (!spawn()) {
                return false;
            }
            const auto deadline = std::chrono::steady_clock::now() + 30s;
            while (std::chrono::steady_clock::now() < deadline) {
                if (notify_fd_ >= 0) {
                    if (heard_ready(50ms)) {
                        return true;
                    }
                } else if (http::fetch("127.0.0.1", status_port_, "GET", "/healthz", {}, {}, 2s)
                               .status == 200) {
                    return true;
                }
                if (reap(false)) {
                    break;  // died while starting (killed mid-reconcile): start again
                }
                if (notify_fd_ < 0) {
                    std::this_thread::sleep_for(10ms);
                }
            }
            if (pid_.load() > 0) {
                ::kill(pid_.load(), SIGKILL);
                reap(true);
            }
        }
        return false;
    }

    bool ensure_up() {
        if (pid_.load() > 0 && !reap(false)) {
            return true;
        }
        return start_daemon();
    }

    void kill_now() {
        const pid_t pid = pid_.load();
        if (pid > 0 && ::kill(pid, SIGKILL) == 0) {
            ++kills_;
        }
    }

    void stop_daemon() {
        const pid_t pid = pid_.load();
        if (pid <= 0) {
            return;
        }
        ::kill(pid, SIGTERM);
        for (int i = 0; i < 500 && !reap(false); ++i) {
            std::this_thread::sleep_for(10ms);
        }
        if (pid_.load() > 0) {
            ::kill(pid, SIGKILL);
            reap(true);
        }
    }

    // A call to the daemon's status listener; a daemon that died (a kill) is restarted and the
    // call made again, as an operator or the runner's clock would.
    // once: a call that must not be made twice (moving the clock by an amount): when the daemon
    // dies under it, the answer is status 0 and the caller re-reads where things stand.
    http::simple_response call(const std::string& method,
                               const std::string& target,
                               const std::string& body = {},
                               bool once = false) {
        http::simple_response r;
        for (int i = 0; i < (once ? 1 : 50); ++i) {
            if (!ensure_up()) {
                break;
            }
            // Changes need the daemon's status token, also on loopback (it writes it at start).
            std::vector<http::header> headers;
            if (method == "POST") {
                std::string error;
                const auto token = daemon::read_status_token(dir_ / "data", error);
                headers.push_back({"Content-Type", "application/json"});
                if (!token.empty()) {
                    headers.push_back({"Authorization", "Bearer " + token});
                }
            }
            r = http::fetch("127.0.0.1", status_port_, method, target, headers, body, 180s);
            if (r.status != 0) {
                return r;
            }
            std::this_thread::sleep_for(5ms);
        }
        return r;
    }

    util::instant daemon_now(const http::simple_response& r) {
        util::instant t{};
        const auto j = json::parse(r.body, nullptr, false);
        if (j.is_object() && j.contains("now") && j["now"].is_string()) {
            util::parse_rfc3339(j["now"].get<std::string>(), t);
        }
        return t;
    }

    // Moves the daemon's clock to `target`, across kills (a restarted daemon resumes at its
    // stored time, which may be short of where the killed one was going). Where the daemon's
    // clock stands is asked only after a restart (the last answer says it otherwise): a daemon
    // restarted meanwhile stands at or before that answer, so moving it by the difference never
    // carries it past the target.
    bool advance_to(util::instant target) {
        for (int i = 0; i < 100; ++i) {
            auto now = known_now_;
            if (now == util::instant{}) {
                now = daemon_now(call("POST", "/clock/advance", R"({"seconds":0})"));
                known_now_ = now;
            }
            if (now == util::instant{}) {
                return false;
            }
            if (now >= target) {
                return true;
            }
            // Once: repeated on a daemon restarted at its stored time, the same amount would carry
            // it past the target while the simulators' clock stays behind.
            const auto by = std::chrono::ceil<std::chrono::seconds>(target - now).count();
            const auto r = call("POST", "/clock/advance", json{{"seconds", by}}.dump(), true);
            known_now_ = r.status == 200 ? daemon_now(r) : util::instant{};
            if (r.status == 200 && known_now_ >= target) {
                return true;
            }
        }
        return false;
    }

    // One simulated day in hour steps. The simulators' clock is the step's start, so what a
    // vendor records carries the hour it was sent in; a step's last second is its own step, so a
    // touch due on the hour is recorded on the hour.
    bool run_day(util::instant day_start) {
        for (int h = 0; h < 24; ++h) {
            const auto s = day_start + std::chrono::hours(h);
            clock_->set(s);
            if (!advance_to(s + 3599s)) {
                return false;
            }
            clock_->set(s + 3600s);
            if (!advance_to(s + 3600s)) {
                return false;
            }
            if (!pending_links_.empty()) {
                try_links();
            }
        }
        return true;
    }

    std::string log_path() const { return (dir_ / "daemon.log").string(); }

    // ---- seeded choices ---------------------------------------------------------------------
    double chance(std::string_view what, std::uint64_t n) const {
        std::uint64_t h = sim::mix64(seed_ ^ 0x72756e6e6572ULL);
        for (const char c : what) {
            h = sim::mix64(h ^ static_cast<unsigned char>(c));
        }
        return static_cast<double>(sim::mix64(h ^ n) >> 11) * 0x1.0p-53;
    }
    std::uint64_t next_kill_gap(std::uint64_t n) const {
        return 30 + static_cast<std::uint64_t>(chance("kill-gap", n) * 150);
    }

    template <typename Delivery>
    void deliver_signed(std::vector<Delivery>& retry,
                        std::vector<Delivery> fresh,
                        sim::fault_plan& plan,
                        const std::string& source,
                        const std::string& signature_header);
    void deliver_webhooks();
    void deliver_mail_events(const std::string& hook);
    void relay_accounts(int day);
    void pay_xero(int day);
    void collect_xero(chaos_record& r);
    void collect_identities(chaos_record& r);
    void seed_time(util::instant start);
    void complete_jobs(int day, util::instant day_start);
    void notify_karbon(const std::string& key);
    void try_links();
    chaos_record collect();
    std::string read_audit(chaos_record& r);

    std::uint64_t seed_;
    int days_;
    fs::path dir_;
    fs::path exe_;
    const chaos_profile* profile_ = nullptr;  // the vendors it names get its faults
    std::set<std::string> permanent_fault_vendors_;
    std::uint16_t webhook_port_ = 0;
    std::uint16_t status_port_ = 0;
    std::atomic<pid_t> pid_{-1};
    int notify_fd_ = -1;
    std::string notify_name_;
    util::instant known_now_{};  // the daemon's clock as its last answer gave it; {}: ask
    std::atomic<std::uint64_t> kills_{0};
    std::atomic<bool> kills_armed_{false};
    std::atomic<std::uint64_t> handled_{0};
    std::atomic<std::uint64_t> next_kill_at_{0};
    std::atomic<std::uint64_t> kill_index_{0};

    std::unique_ptr<sandbox_clock> clock_;
    std::unique_ptr<sim::qbo_simulator> qbo_;
    std::unique_ptr<sim::sendgrid_simulator> mail_;
    std::unique_ptr<sim::twilio_simulator> sms_;
    std::unique_ptr<sim::karbon_simulator> karbon_;
    std::unique_ptr<sim::harvest_simulator> harvest_;
    std::unique_ptr<sim::xero_simulator> xero_;
    // qbo, mail, sms, karbon, harvest, xero, taxdome (none: Zapier relays, billsync calls nothing)
    std::vector<std::unique_ptr<sim::sim_server>> servers_;
    std::vector<std::shared_ptr<sim::fault_plan>> plans_;
    std::unique_ptr<firm> firm_;
    std::vector<sim::qbo_delivery> qbo_retry_;    // deliveries QBO sends again (not acknowledged)
    std::vector<sim::xero_delivery> xero_retry_;  // as QBO's
    std::vector<xero_client> xero_clients_;       // the firm's other company, booked in Xero
    std::map<std::string, std::int64_t> xero_paid_;  // Xero invoice id -> cents paid by the run
    // TaxDome accounts relayed by the Zap: (account id, body) not acknowledged yet (the Zap
    // replays them), and the acknowledged ones with the client each must join (by its email).
    std::vector<std::pair<std::string, std::string>> relays_pending_;
    std::map<std::string, std::string> relays_acknowledged_;  // account -> QBO customer id
    std::set<std::size_t> relayed_clients_;
    std::size_t mail_events_sent_ = 0;
    std::map<std::string, util::instant> paid_in_full_;
    std::map<std::string, util::instant> paid_invoices_;  // QBO Id or Xero InvoiceID -> paid at
    util::instant start_{};
    std::vector<std::string> secrets_;
    std::vector<time_job> jobs_;
    std::vector<std::pair<std::string, std::string>> pending_links_;  // identities to link
    std::set<std::string> completed_items_;
    std::set<std::string> withdrawn_items_;
    util::instant touches_until_{};
};

void chaos_run::seed_time(util::instant start) {
    struct person {
        const char* first;
        const char* last;
        const char* email;
        const char* karbon;  // the Karbon user (a work item's assignee)
    };
    static constexpr std::array<person, 3> staff = {
        {{"Dana", "Whitfield", "dana.whitfield@smithlee.example", "STAFF-DANA"},
         {"Mei", "Chen", "mei.chen@smithlee.example", "STAFF-MEI"},
         {"Raj", "Patel", "raj.patel@smithlee.example", "STAFF-RAJ"}}};
    for (const auto& s : staff) {
        harvest_->add_user(s.first, s.last, s.email);  // billsync finds them by email
    }
    const auto bookkeeping = harvest_->add_task("Bookkeeping");
    const auto payroll = harvest_->add_task("Payroll Processing");
    // Three jobs complete on seeded days; the fourth completes on day 1 while its Harvest client
    // is not linked yet (the draft waits), is re-opened that evening, and its client is linked
    // on the first calm day: it must never be drafted.
    const std::array<const char*, 4> clients = {
        "Hollis Farm Supply", "Kettle Creek Outfitters", "Larch Valley Dental", "Mistral Sailing"};
    for (std::size_t i = 0; i < clients.size(); ++i) {
        time_job j;
        j.client = clients[i];
        j.work_type = i % 2 == 0 ? "Monthly Bookkeeping" : "Payroll";
        j.staff = i % staff.size();
        j.withdraw = i == 3;
        j.day = j.withdraw
                    ? 1
                    : 1 + static_cast<int>(chance("complete-day", i) * static_cast<double>(days_));
        j.harvest_client = harvest_->add_client(j.client);
        const auto project = harvest_->add_project(j.harvest_client, j.work_type);
        harvest_->assign_task(project, j.work_type == "Payroll" ? payroll : bookkeeping);
        j.org_key =
            karbon_->add_organization({{"FullName", j.client}}).value("OrganizationKey", "");
        const auto& s = staff[j.staff];
        j.work_item_key =
            karbon_
                ->add_work_item({{"Title", j.work_type + " - " + j.client},
                                 {"ClientKey", j.org_key},
                                 {"ClientType", "Organization"},
                                 {"WorkType", j.work_type},
                                 {"PrimaryStatus", "In Progress"},
                                 {"StartDate", date_text(start) + "T00:00:00Z"},
                                 {"DueDate", "2026-03-31T00:00:00Z"},
                                 {"AssigneeKey", s.karbon},
                                 {"AssigneeName", std::string(s.first) + " " + s.last},
                                 {"AssigneeEmailAddress", s.email}})
                .value("WorkItemKey", "");
        if (!j.withdraw) {
            pending_links_.emplace_back("harvest:" + std::to_string(j.harvest_client),
                                        "karbon:" + j.org_key);
        }
        jobs_.push_back(std::move(j));
    }
}

// Karbon tells billsync of a change to a work item (lost or duplicated by the plan: the sweep
// must find a lost one).
void chaos_run::notify_karbon(const std::string& key) {
    ensure_up();
    const auto n = plans_[3]->delivery_order("karbon", 1).size();
    for (std::size_t k = 0; k < n; ++k) {
        karbon_->notify("Work", "Work", key, "Updated");
    }
}

void chaos_run::complete_jobs(int day, util::instant day_start) {
    for (const auto& j : jobs_) {
        if (j.day != day) {
            continue;
        }
        karbon_->update_work_item(j.work_item_key,
                                  {{"PrimaryStatus", "Completed"},
                                   {"CompletedDate", date_text(day_start) + "T00:00:00Z"}});
        (j.withdraw ? withdrawn_items_ : completed_items_).insert(j.work_item_key);
        notify_karbon(j.work_item_key);
    }
}

// Links each Harvest client to its Karbon organization once billsync knows both (the
// coordinator's confirmation of a name match); a refused link is tried again the next hour.
void chaos_run::try_links() {
    std::vector<std::pair<std::string, std::string>> left;
    for (const auto& [a, b] : pending_links_) {
        const auto r = call("POST", "/identities/link", json{{"a", a}, {"b", b}}.dump());
        if (r.status != 200 && r.status != 409) {
            left.emplace_back(a, b);
        }
    }
    pending_links_ = std::move(left);
}

// A vendor's signed webhook deliveries: the new ones and those not acknowledged before, lost,
// duplicated or reordered by the plan; one sent but not acknowledged is sent again the next day,
// as QBO and Xero retry (a lost one is lost for good: the poll must find its change).
template <typename Delivery>
void chaos_run::deliver_signed(std::vector<Delivery>& retry,
                               std::vector<Delivery> fresh,
                               sim::fault_plan& plan,
                               const std::string& source,
                               const std::string& signature_header) {
    auto batch = std::move(retry);
    retry.clear();
    for (auto& d : fresh) {
        batch.push_back(std::move(d));
    }
    const auto order = plan.delivery_order(source, batch.size());
    std::set<std::size_t> acked;
    for (const auto i : order) {
        const auto r = http::fetch(
            "127.0.0.1",
            webhook_port_,
            "POST",
            "/webhooks/" + source,
            {{"Content-Type", "application/json"}, {signature_header, batch[i].signature}},
            batch[i].body,
            30s);
        if (r.status == 200) {
            acked.insert(i);
        } else if (r.status == 0) {
            ensure_up();
        }
    }
    for (const auto i : std::set<std::size_t>(order.begin(), order.end())) {
        if (!acked.contains(i)) {
            retry.push_back(batch[i]);
        }
    }
}

void chaos_run::deliver_webhooks() {
    deliver_signed(qbo_retry_, qbo_->take_deliveries(), *plans_[0], "qbo", "intuit-signature");
    deliver_signed(xero_retry_, xero_->take_deliveries(), *plans_[5], "xero", "x-xero-signature");
}

// A new TaxDome account on seeded days, for one of the firm's QuickBooks clients (the same
// email), relayed by the Zap: lost, duplicated or reordered by the plan; a relay not acknowledged
// is replayed the next day (the same record, event and time: billsync's dedup key).
void chaos_run::relay_accounts(int day) {
    const auto& clients = firm_->clients();
    if (day > 0 && chance("relay-day", static_cast<std::uint64_t>(day)) < 0.4) {
        const auto pick =
            static_cast<std::size_t>(chance("relay-who", static_cast<std::uint64_t>(day)) *
                                     static_cast<double>(clients.size()));
        const auto index = pick % clients.size();
        if (relayed_clients_.insert(index).second) {
            const auto id = std::to_string(7350000 + index);
            relays_pending_.emplace_back(
                id, taxdome_relay_body(id, clients[index].name, clients[index].email));
        }
    }
    auto batch = std::move(relays_pending_);
    relays_pending_.clear();
    const auto order = plans_[6]->delivery_order("taxdome", batch.size());
    std::set<std::size_t> acked;
    for (const auto i : order) {
        const auto r = post_taxdome_relay(webhook_port_, batch[i].second);
        if (r.status == 200) {
            acked.insert(i);
            const auto index = static_cast<std::size_t>(std::stoul(batch[i].first)) - 7350000;
            relays_acknowledged_[batch[i].first] = clients[index].qbo_id;
        } else if (r.status == 0) {
            ensure_up();
        }
    }
    for (const auto i : std::set<std::size_t>(order.begin(), order.end())) {
        if (!acked.contains(i)) {
            relays_pending_.push_back(batch[i]);
        }
    }
}

// Payments in the Xero organisation: the auto-pay client is charged on its due date; on seeded
// days a client pays half of what it owes, or all of it. Xero sends no payment event, only an
// INVOICE update (which the plan may lose: the poll finds it).
void chaos_run::pay_xero(int day) {
    const auto today = date_text(clock_->now());
    for (std::size_t i = 0; i < xero_clients_.size(); ++i) {
        const auto& c = xero_clients_[i];
        auto& paid = xero_paid_[c.invoice_id];
        if (paid >= c.cents) {
            continue;
        }
        const bool autopay = c.group == "Autopay" && c.due == today;
        const bool seeded = chance("xero-pay", static_cast<std::uint64_t>(day) * 8 + i) < 0.12;
        if (!autopay && !seeded) {
            continue;
        }
        const bool half =
            !autopay && paid == 0 && chance("xero-half", static_cast<std::uint64_t>(day)) < 0.5;
        const auto amount = half ? c.cents / 2 : c.cents - paid;
        xero_->add_payment(xero_tenant,
                           json{{"Invoice", {{"InvoiceID", c.invoice_id}}},
                                {"Account", {{"Code", "090"}}},
                                {"Date", today},
                                {"Amount", json::parse(amount_text(amount))}});
        paid += amount;
        if (paid >= c.cents) {
            paid_invoices_[c.invoice_id] = clock_->now();
            paid_in_full_[c.email] = clock_->now();
            if (!c.mobile.empty()) {
                paid_in_full_[c.mobile] = clock_->now();
            }
        }
    }
}

void chaos_run::deliver_mail_events(const std::string& hook) {
    const auto all = json::parse(mail_->events_for_messages("delivered"), nullptr, false);
    if (!all.is_array() || all.size() <= mail_events_sent_) {
        return;
    }
    std::vector<json> fresh(all.begin() + static_cast<std::ptrdiff_t>(mail_events_sent_),
                            all.end());
    mail_events_sent_ = all.size();
    const auto order = plans_[1]->delivery_order("sendgrid/events", fresh.size());
    json out = json::array();
    for (const auto i : order) {
        out.push_back(fresh[i]);
    }
    if (!out.empty()) {
        mail_->deliver_events(hook + "sendgrid/events", out.dump());
    }
}

chaos_record chaos_run::collect() {
    chaos_record r;
    r.permanent_fault_vendors = permanent_fault_vendors_;
    r.time_zone = "America/New_York";
    r.acknowledgement_markers = {"Payment received"};
    for (const auto& m : mail_->messages()) {
        r.messages.push_back({"email", m.to, m.delivery_id, m.subject, {}});
    }
    for (const auto& m : sms_->messages()) {
        if (m.value("direction", "") != "outbound-api") {
            continue;
        }
        const auto cb = m.value("status_callback", "");
        const auto q = cb.find('?');
        const auto id = q == std::string::npos ? std::string()
                                               : http::query_param(cb.substr(q + 1), "delivery");
        r.messages.push_back({"sms", m.value("to", ""), id, m.value("body", ""), {}});
    }
    for (const auto& req : servers_[1]->requests_to("/v3/mail/send")) {
        const auto j = json::parse(req.body, nullptr, false);
        std::string to;
        if (j.is_object() && j.contains("personalizations") && j["personalizations"].is_array() &&
            !j["personalizations"].empty()) {
            const auto& p = j["personalizations"][0];
            if (p.contains("to") && p["to"].is_array() && !p["to"].empty()) {
                to = p["to"][0].value("email", "");
            }
        }
        r.attempts.push_back(
            {"email", to, "", j.is_object() ? j.value("subject", "") : std::string(), req.at});
    }
    for (const auto& req : servers_[2]->requests()) {
        if (req.method != "POST" || !req.path.ends_with("/Messages.json")) {
            continue;
        }
        r.attempts.push_back({"sms",
                              http::query_param(req.body, "To"),
                              "",
                              http::query_param(req.body, "Body"),
                              req.at});
    }
    // The ledger: the firm's invoices and whatever billsync created.
    std::set<std::string> firm_ids;
    for (const auto& inv : firm_->invoices()) {
        firm_ids.insert(inv.qbo_id);
        const auto j = qbo_->get(realm, "Invoice", inv.qbo_id);
        if (!j) {
            continue;
        }
        const auto& c = firm_->clients()[inv.client];
        chaos_invoice ledger;
        ledger.id = fmt::format("qbo:{}:invoice:{}", realm, inv.qbo_id);
        ledger.balance_minor = minor_of(j->value("Balance", json(0)));
        ledger.email = c.email;
        ledger.mobile = c.mobile;
        r.invoices.push_back(std::move(ledger));
    }
    std::set<std::string> owed_before_paying;
    const auto total = qbo_->count(realm, "Invoice");
    std::size_t found = 0;
    for (int id = 1; id < 100000 && found < total; ++id) {
        const auto j = qbo_->get(realm, "Invoice", std::to_string(id));
        if (!j) {
            continue;
        }
        ++found;
        if (firm_ids.contains(std::to_string(id))) {
            continue;
        }
        const auto note = j->value("PrivateNote", "");
        ++r.created_objects["QuickBooks invoice " + note.substr(0, note.find('\n'))];
        // Its client owes again from its creation on (the ledger's record of it).
        util::instant created{};
        const auto& meta = (*j)["MetaData"];
        const auto& customer = (*j)["CustomerRef"];
        if (meta.is_object() && customer.is_object() &&
            util::parse_rfc3339(meta.value("CreateTime", ""), created)) {
            for (const auto& c : firm_->clients()) {
                if (c.qbo_id != customer.value("value", "")) {
                    continue;
                }
                for (const auto& address : {c.email, c.mobile}) {
                    const auto paid = paid_in_full_.find(address);
                    if (paid == paid_in_full_.end()) {
                        continue;
                    }
                    if (created <= paid->second) {
                        owed_before_paying.insert(address);  // never stopped owing
                        continue;
                    }
                    auto [again, fresh] = r.owes_again.emplace(address, created);
                    if (!fresh && created < again->second) {
                        again->second = created;
                    }
                }
            }
        }
        ++r.created_objects["Invoice/" + std::to_string(id)];
    }
    const auto first_item = karbon_->work_items();
    for (const auto& w : first_item) {
        const auto title = w.value("Title", "");
        if (!title.starts_with("2025 Form 1040")) {
            ++r.created_objects["Karbon work item " + title + " for " + w.value("ClientKey", "")];
        }
    }
    const auto drafts =
        json::parse(call("GET", "/workflows/invoicing/drafts").body, nullptr, false);
    if (drafts.is_object() && drafts.contains("drafts")) {
        for (const auto& d : drafts["drafts"]) {
            if (d.value("state", "") == "created") {
                r.created_expected.insert(created_invoice_key(d.value("invoice", "")));
            }
        }
    }
    // Late fees: each period assessed (its invoice, when, where it stands) and the fee invoices
    // the daemon says the ledgers hold.
    const auto fees = json::parse(call("GET", "/workflows/late_fees").body, nullptr, false);
    if (fees.is_object()) {
        for (const char* list : {"pending", "recent"}) {
            for (const auto& f : fees.value(list, json::array())) {
                chaos_fee fee;
                fee.invoice = f.value("invoice", "");
                fee.state = f.value("state", "");
                util::parse_rfc3339(f.value("assessed_at", ""), fee.assessed_at);
                if (fee.state == "created") {
                    const auto key = created_invoice_key(f.value("ledger_invoice", ""));
                    r.created_expected.insert(key);
                    r.fee_invoices.insert(key);
                }
                r.fees.push_back(std::move(fee));
            }
        }
    }
    const auto open = json::parse(call("GET", "/workflows/followup").body, nullptr, false);
    if (open.is_array()) {
        for (const auto& s : open) {
            const auto& b = s.contains("balance") ? s["balance"] : json();
            r.active_sequences.push_back({s.value("invoice", ""),
                                          b.is_object() ? b.value("minor", std::int64_t{0}) : 0,
                                          s.value("phase", "")});
        }
    }
    r.paid_in_full = paid_in_full_;
    for (const auto& address : owed_before_paying) {
        r.paid_in_full.erase(address);
    }
    for (const auto& c : firm_->clients()) {
        r.clients.insert(c.email);
        if (!c.mobile.empty()) {
            r.clients.insert(c.mobile);
        }
    }
    // Follow-up: the cadences (the sandbox firm keeps the defaults), each invoice's due date and
    // class, and the span whose touches must have gone out.
    const auto defaults = workflows::followup::default_settings();
    for (const auto& [cls, touches] : defaults.cadences) {
        auto& list = r.cadences[std::string(workflows::followup::to_string(cls))];
        for (const auto& t : touches) {
            list.push_back({t.day, t.email, t.sms});
        }
    }
    for (auto& inv : r.invoices) {
        const auto id = inv.id.substr(inv.id.rfind(':') + 1);
        if (const auto paid = paid_invoices_.find(id); paid != paid_invoices_.end()) {
            inv.paid_in_full_at = paid->second;
        }
        if (const auto j = qbo_->get(realm, "Invoice", id)) {
            if (const auto due = civil_date_of(j->value("DueDate", ""))) {
                inv.due = *due;
            }
            const auto customer = j->contains("CustomerRef")
                                      ? (*j)["CustomerRef"].value("value", std::string())
                                      : std::string();
            if (const auto c = qbo_->get(realm, "Customer", customer)) {
                inv.retainer = c->value("Notes", "").find("#retainer") != std::string::npos;
            }
        }
    }
    collect_xero(r);
    collect_identities(r);
    r.touches_until = touches_until_;
    r.run_start = start_;
    // Drafted time: the entries Harvest holds with billsync's external reference, per work item
    // (the reference's group is the canonical work item id, "karbon:work_item:<key>").
    r.completed_work_items = completed_items_;
    r.withdrawn_work_items = withdrawn_items_;
    for (const auto& e : harvest_->time_entries()) {
        const auto ext = e.value("external_reference", json());
        if (!ext.is_object()) {
            continue;
        }
        auto group = ext.value("group_id", json()).is_string() ? ext["group_id"].get<std::string>()
                                                               : std::string();
        if (const auto colon = group.rfind(':'); colon != std::string::npos) {
            group = group.substr(colon + 1);
        }
        ++r.drafted_entries[group];
    }
    r.secrets = secrets_;
    // The refresh tokens billsync held: none may reach a log either.
    for (auto* oauth : {&qbo_->oauth(), &xero_->oauth()}) {
        for (auto& t : oauth->refresh_tokens_presented()) {
            r.secrets.push_back(std::move(t));
        }
    }
    r.log_paths = {log_path()};
    r.ready_at_end =
        http::fetch("127.0.0.1", status_port_, "GET", "/readyz", {}, {}, 10s).status == 200;
    const auto status = json::parse(call("GET", "/status").body, nullptr, false);
    if (status.is_object() && status.contains("queues") &&
        status["queues"].contains("dead_letters") &&
        status["queues"]["dead_letters"].contains("by_connector")) {
        const auto& by = status["queues"]["dead_letters"]["by_connector"];
        for (auto it = by.begin(); it != by.end(); ++it) {
            r.dead_letters[it.key()] = it.value().value("count", std::uint64_t{0});
        }
    }
    return r;
}

// The Xero organisation: its clients' invoices (followed up as the QuickBooks ones), and the
// invoices billsync created there (by the Reference carrying its key: exactly once each).
void chaos_run::collect_xero(chaos_record& r) {
    std::map<std::string, const xero_client*> seeded;
    for (const auto& c : xero_clients_) {
        seeded[c.invoice_id] = &c;
        r.clients.insert(c.email);
        if (!c.mobile.empty()) {
            r.clients.insert(c.mobile);
        }
    }
    for (const auto& [inv, created] : xero_->list(xero_tenant, "Invoices")) {
        const auto id = inv.value("InvoiceID", "");
        if (const auto it = seeded.find(id); it != seeded.end()) {
            const auto& c = *it->second;
            chaos_invoice ledger;
            ledger.id = fmt::format("xero:{}:invoice:{}", xero_tenant, id);
            ledger.balance_minor = minor_of(inv.value("AmountDue", json(0)));
            ledger.email = c.email;
            ledger.mobile = c.mobile;
            const auto due = civil_date_of(c.due);
            ledger.due = due ? *due : std::chrono::sys_days{};
            if (const auto paid = paid_invoices_.find(id); paid != paid_invoices_.end()) {
                ledger.paid_in_full_at = paid->second;
            }
            r.invoices.push_back(std::move(ledger));
            continue;
        }
        ++r.created_objects["Xero invoice " + inv.value("Reference", "")];
        ++r.created_objects["Invoice/" + id];
        // Its client owes again from its creation on; one created before the client paid its
        // other invoice in full means the client never stopped owing.
        const auto contact = inv.contains("Contact") ? inv["Contact"].value("ContactID", "") : "";
        for (const auto& c : xero_clients_) {
            if (c.contact_id != contact) {
                continue;
            }
            for (const auto& address : {c.email, c.mobile}) {
                const auto paid = r.paid_in_full.find(address);
                if (address.empty() || paid == r.paid_in_full.end()) {
                    continue;
                }
                if (created <= paid->second) {
                    r.paid_in_full.erase(paid);
                    continue;
                }
                auto [again, fresh] = r.owes_again.emplace(address, created);
                if (!fresh && created < again->second) {
                    again->second = created;
                }
            }
        }
    }
}

// The identity map as the daemon shows it (GET /identities): each client and its party's
// other members; and the TaxDome accounts whose relay billsync acknowledged.
void chaos_run::collect_identities(chaos_record& r) {
    for (const auto& [account, customer] : relays_acknowledged_) {
        r.relayed_clients["taxdome:client:" + account] =
            fmt::format("qbo:{}:client:{}", realm, customer);
    }
    const auto j = json::parse(call("GET", "/identities").body, nullptr, false);
    if (!j.is_object() || !j.contains("parties") || !j["parties"].is_array()) {
        return;
    }
    for (const auto& p : j["parties"]) {
        std::set<std::string> members;
        for (const auto& m : p.value("members", json::array())) {
            members.insert(m.value("client", ""));
        }
        for (const auto& m : members) {
            r.party_of[m] = members;
        }
    }
}

// The daemon's stored audit log (the daemon is stopped: the store is read directly). Answers
// what went wrong, "" when it was read.
std::string chaos_run::read_audit(chaos_record& r) {
    std::ostringstream lines;
    std::ostringstream err;
    daemon::inspect_options io;
    io.json = true;
    io.since = util::instant{};
    if (daemon::cmd_inspect((dir_ / "billsync.toml").string(), "audit", lines, err, io) != 0) {
        return "cannot read the daemon's audit log: " + err.str();
    }
    std::istringstream in(lines.str());
    std::string line;
    while (std::getline(in, line)) {
        const auto j = json::parse(line, nullptr, false);
        if (!j.is_object()) {
            continue;
        }
        chaos_audit_line a;
        util::parse_rfc3339(j.value("at", ""), a.at);
        const auto text = [&j](const char* k) {
            return j.contains(k) && j[k].is_string() ? j[k].get<std::string>() : std::string();
        };
        a.rule = text("rule");
        a.invoice = text("invoice");
        a.decision = text("decision");
        a.action = text("action");
        a.text = text("cause");
        if (a.text.empty()) {
            a.text = text("detail");
        }
        if (j.contains("touch") && j["touch"].is_number_unsigned()) {
            a.touch = j["touch"].get<std::uint32_t>();
        }
        r.audit.push_back(std::move(a));
    }
    return {};
}

chaos_run::outcome chaos_run::run() {
    outcome out;
    std::error_code ec;
    fs::remove_all(dir_, ec);
    fs::create_directories(dir_ / "data", ec);
    ::chmod((dir_ / "data").c_str(), 0700);
    webhook_port_ = free_port();
    status_port_ = free_port();
    if (webhook_port_ == 0 || status_port_ == 0 || webhook_port_ == status_port_) {
        out.error = "no free loopback port";
        return out;
    }

    util::instant start{};
    util::parse_rfc3339("2026-01-05T08:00:00Z", start);
    clock_ = std::make_unique<sandbox_clock>(start);
    start_ = start;
    auto now_fn = [c = clock_.get()] { return c->now(); };

    sim::qbo_sim_options qo;
    qo.realms = {realm};
    qo.verifier_token = verifier;
    qo.now = now_fn;
    // The vendors' own rate limits are off: their windows count real time, billsync's budgets
    // count simulated time, which runs flat out (a minute of it passes in milliseconds), so
    // every window would fill with requests billsync spread over simulated minutes. Seeded 429s
    // (rate_limited, rate_limited_bare) take their place.
    qo.enforce_limits = false;
    qbo_ = std::make_unique<sim::qbo_simulator>(qo);
    mail_ = std::make_unique<sim::sendgrid_simulator>();
    sim::twilio_options to;
    to.numbers = {firm_number};
    to.now = now_fn;
    sms_ = std::make_unique<sim::twilio_simulator>(to);
    sim::karbon_options ko;
    ko.now = now_fn;
    ko.enforce_limits = false;
    karbon_ = std::make_unique<sim::karbon_simulator>(ko);
    sim::harvest_options ho;
    ho.now = now_fn;
    ho.enforce_limits = false;  // as Karbon's
    harvest_ = std::make_unique<sim::harvest_simulator>(ho);
    sim::xero_sim_options xo;
    xo.tenants = {xero_tenant};
    xo.webhook_key = xero_webhook_key;
    xo.now = now_fn;
    xo.oauth.tenants = {{xero_tenant, "Smith & Lee Advisory Ltd"}};
    xo.enforce_limits = false;  // as QBO's
    xero_ = std::make_unique<sim::xero_simulator>(xo);

    // One fault plan per vendor, from the run's seed.
    for (const auto& v : chaos_vendors()) {
        const std::string vendor(v.name);
        const std::string prefix(v.api_prefix);
        sim::sim_options so;
        so.now = now_fn;
        // The daemon runs on the simulated clock, where its own waits cost no real time: so do
        // the vendors' holds. A slow answer (300 ms) still comes well inside the daemon's
        // deadline for an answer (the HTTPS client's read timeout, 30 s), a timeout still ends
        // without one; only the real time goes.
        so.holds.skip = true;
        so.holds.client_deadline = 30s;
        // A vendor billsync never calls (TaxDome: a Zap relays to billsync) has no server.
        auto server = prefix.empty() ? nullptr : std::make_unique<sim::sim_server>(so);
        auto plan = std::make_shared<sim::fault_plan>(seed_, vendor);
        const chaos_vendor_faults* own = nullptr;
        if (profile_ != nullptr) {
            if (const auto it = profile_->vendors.find(vendor); it != profile_->vendors.end()) {
                own = &it->second;
            }
        }
        if (own != nullptr) {
            // The profile's faults, and no others.
            for (const auto& r : own->requests) {
                plan->add(r);
            }
            if (own->webhooks) {
                plan->add(*own->webhooks);
            }
            if (own->permanent()) {
                permanent_fault_vendors_.insert(vendor);
            }
        } else {
            add_runner_faults(*plan, vendor, prefix);
        }
        if (server) {
            server->set_faults(plan);
            server->on_handled([this](const sim::recorded_request&) {
                if (!kills_armed_.load()) {
                    return;
                }
                const auto n = ++handled_;
                auto at = next_kill_at_.load();
                if (n >= at && next_kill_at_.compare_exchange_strong(
                                   at, n + next_kill_gap(kill_index_.fetch_add(1) + 1))) {
                    kill_now();  // the request took effect; the daemon dies before its answer
                }
            });
        }
        plans_.push_back(std::move(plan));
        servers_.push_back(std::move(server));
    }
    qbo_->add_routes(servers_[0]->routes());
    qbo_->configure(*servers_[0]);
    mail_->add_routes(servers_[1]->routes());
    sms_->add_routes(servers_[2]->routes());
    sms_->configure(*servers_[2]);
    karbon_->add_routes(servers_[3]->routes());
    karbon_->configure(*servers_[3]);
    harvest_->add_routes(servers_[4]->routes());
    harvest_->configure(*servers_[4]);
    xero_->add_routes(servers_[5]->routes());
    xero_->configure(*servers_[5]);
    for (auto& s : servers_) {
        if (!s) {
            continue;
        }
        if (auto e = s->start(); !e.empty()) {
            out.error = "a simulator did not start: " + e;
            return out;
        }
    }
    sim::smtp_sink smtp;
    if (auto e = smtp.start(); !e.empty()) {
        out.error = "the SMTP sink did not start: " + e;
        return out;
    }

    firm_ = std::make_unique<firm>(*qbo_, start);
    qbo_->take_deliveries();
    const auto grant = sim::seed_qbo_grant(dir_ / "data", *qbo_, realm, start);
    if (!grant.empty()) {
        out.error = "cannot store the simulated QBO grant: " + grant;
        return out;
    }
    // The firm's other company, in Xero: its clients' invoices, and a grant as `billsync connect`
    // would have stored it.
    xero_clients_ = seed_xero_entity(*xero_);
    xero_->take_deliveries();  // history: the first poll (a backfill) reads it
    if (const auto e = sim::seed_xero_grant(dir_ / "data",
                                            *xero_,
                                            xero_tenant,
                                            std::string(connectors::xero::oauth2_rules().scope),
                                            start);
        !e.empty()) {
        out.error = "cannot store the simulated Xero grant: " + e;
        return out;
    }
    const auto partial = firm_->pick(2, false, start);
    const auto org = karbon_->add_organization({{"FullName", firm_->client_of(partial).name}});
    const auto item =
        karbon_->add_work_item({{"Title", "2025 Form 1040 - " + firm_->client_of(partial).name},
                                {"ClientKey", org["OrganizationKey"]},
                                {"ClientType", "Organization"},
                                {"WorkType", "Tax Return"},
                                {"PrimaryStatus", "In Progress"},
                                {"StartDate", "2026-01-05T00:00:00Z"},
                                {"DueDate", "2026-04-15T00:00:00Z"}});
    const std::string item_key = item["WorkItemKey"];
    const std::string org_key = org["OrganizationKey"];
    // The Xero company's Kauri Cafe is, in Karbon, its owner's group: another name and email,
    // tied by the firm's client code (the identity map links them by it). Its company return is
    // billed in Xero.
    const auto& kauri = xero_clients_[0];
    const auto kauri_org = karbon_->add_organization({{"FullName", "Kauri Hospitality Group"},
                                                      {"EmailAddress", "office@kaurigroup.example"},
                                                      {"UserDefinedIdentifier", kauri.code}});
    const std::string kauri_org_key = kauri_org.value("OrganizationKey", "");
    const std::string kauri_item_key =
        karbon_
            ->add_work_item({{"Title", "2025 Form 1120 - Kauri Hospitality Group"},
                             {"ClientKey", kauri_org_key},
                             {"ClientType", "Organization"},
                             {"WorkType", "Tax Return"},
                             {"PrimaryStatus", "In Progress"},
                             {"StartDate", "2026-01-05T00:00:00Z"},
                             {"DueDate", "2026-04-15T00:00:00Z"}})
            .value("WorkItemKey", "");
    seed_time(start);
    {
        std::ofstream book(dir_ / "engagements.toml", std::ios::trunc);
        book << fmt::format(
            "[engagement.\"acme-1040-2025\"]\nclient = \"karbon:{}\"\nwork_type = \"Tax Return\"\n"
            "model = \"fixed_fee\"\nfee = \"2400.00\"\npartner = \"partner@smithlee.example\"\n"
            "terms_days = 30\npo_required = true\n\n[engagement.\"acme-1040-2025\".milestones]\n"
            "\"Return Filed\" = \"50%\"\n\"Delivered\" = \"remainder\"\n\n"
            "[engagement.\"kauri-1120-2025\"]\nclient = \"karbon:{}\"\nwork_type = \"Tax Return\"\n"
            "model = \"fixed_fee\"\nfee = \"1800.00\"\nledger = \"xero\"\n"
            "partner = \"partner@smithlee.example\"\nterms_days = 30\n\n"
            "[engagement.\"kauri-1120-2025\".milestones]\n"
            "\"Return Filed\" = \"50%\"\n\"Delivered\" = \"remainder\"\n",
            org_key,
            kauri_org_key);
    }
    {
        std::string base(sandbox_config_text());
        const auto replace = [&base](const std::string& from, const std::string& to_text) {
            for (auto p = base.find(from); p != std::string::npos;
                 p = base.find(from, p + to_text.size())) {
                base.replace(p, from.size(), to_text);
            }
        };
        replace("127.0.0.1:18080", fmt::format("127.0.0.1:{}", webhook_port_));
        replace("127.0.0.1:18081", fmt::format("127.0.0.1:{}", status_port_));
        replace("log_level = \"warn\"", "log_level = \"info\"");
        std::ofstream cfg(dir_ / "billsync.toml", std::ios::trunc);
        cfg << base
            << connectors_toml(servers_[0]->base_url(),
                               servers_[1]->base_url(),
                               mail_->public_key_base64(),
                               servers_[2]->base_url(),
                               smtp.port(),
                               ko,
                               servers_[3]->base_url(),
                               webhook_port_)
            << harvest_toml(servers_[4]->base_url(), ho, false)
            << xero_connector_toml(servers_[5]->base_url(), 3600) << taxdome_connector_toml() << R"(
# Late fees (docs/late-fees.md): 1.5 % a month after 3 days' grace, from the run's first day,
# approved by the coordinator each morning; created in the invoice's own ledger.
[late_fees]
percent_per_month = "1.5"
grace_days = 3
minimum = "5.00"
terms_days = 15
start = "2026-01-05"
)";
        if (!cfg) {
            out.error = "cannot write the configuration";
            return out;
        }
    }
    secrets_ = {"sim-client-secret",
                "SG.simulated-key",
                "sim-twilio-auth-token",
                ko.bearer_token,
                ko.access_key,
                "sandbox-karbon-signing-key",
                "sandbox-inbound-secret",
                "sandbox-demo-secret",
                ho.access_token,
                verifier,
                xero_webhook_key,
                std::string(taxdome_secret)};

    open_notify_socket();
    if (!start_daemon()) {
        out.error = "the daemon did not start (see " + log_path() + ")";
        return out;
    }
    const std::string hook = fmt::format("http://127.0.0.1:{}/webhooks/", webhook_port_);
    sms_->set_callback_base(fmt::format("http://127.0.0.1:{}", webhook_port_));
    next_kill_at_ = next_kill_gap(0);
    kills_armed_ = true;

    // Clients that pay in full during the run: single-invoice clients, chosen by the seed.
    std::map<std::size_t, int> invoices_of;
    for (const auto& inv : firm_->invoices()) {
        ++invoices_of[inv.client];
    }
    const auto pay_in_full = [&](std::size_t index) {
        const auto& inv = firm_->invoices()[index];
        if (inv.paid >= inv.cents) {
            return;
        }
        firm_->pay(index, inv.cents - inv.paid);
        paid_invoices_[inv.qbo_id] = clock_->now();
        const auto& c = firm_->clients()[inv.client];
        if (invoices_of[inv.client] == 1) {
            paid_in_full_[c.email] = clock_->now();
            if (!c.mobile.empty()) {
                paid_in_full_[c.mobile] = clock_->now();
            }
        }
    };
    const auto operator_step =
        [&](const std::string& state, const std::string& verb, const json& body) {
            const auto drafts =
                json::parse(call("GET", "/workflows/invoicing/drafts").body, nullptr, false);
            if (!drafts.is_object() || !drafts.contains("drafts")) {
                return;
            }
            for (const auto& d : drafts["drafts"]) {
                if (d.value("state", "") == state) {
                    call("POST", fmt::format(fmt::runtime(verb), d.value("id", "")), body.dump());
                }
            }
        };

    // The coordinator approves the late fees assessed since yesterday, each morning.
    const auto approve_fees = [&] {
        const auto fees = json::parse(call("GET", "/workflows/late_fees").body, nullptr, false);
        if (!fees.is_object()) {
            return;
        }
        for (const auto& f : fees.value("pending", json::array())) {
            call("POST",
                 "/workflows/late_fees/approve",
                 json{{"fee", f.value("fee", "")}, {"by", "coordinator@smithlee.example"}}.dump());
        }
    };
    const auto disputer = firm_->pick(partial + 1, true, start);
    const auto stopper = firm_->pick(disputer + 1, true, start);
    bool ok = true;
    for (int d = 1; d <= days_ && ok; ++d) {
        const auto day_start = start + std::chrono::days(d - 1);
        clock_->set(day_start);
        if (d == 2 || d == 9) {
            for (const auto& key : {item_key, kauri_item_key}) {
                karbon_->update_work_item(
                    key, {{"SecondaryStatus", d == 2 ? "Return Filed" : "Delivered"}});
                if (!plans_[3]->delivery_order("karbon", 1).empty()) {
                    karbon_->notify("Work", "Work", key, "Updated");
                }
            }
        }
        complete_jobs(d, day_start);
        if (d == 3) {
            firm_->pay(partial, firm_->invoices()[partial].cents / 2);
            call("POST",
                 "/identities/link",
                 json{{"a", "karbon:" + org_key}, {"b", "qbo:" + firm_->client_of(partial).qbo_id}}
                     .dump());
            operator_step("blocked",
                          "/exceptions/{}/resolve",
                          {{"by", "coordinator@smithlee.example"}, {"po", "PO-2025-118"}});
        }
        if (d == 4 || d == 10) {
            operator_step(
                "pending_approval", "/approvals/{}/approve", {{"by", "partner@smithlee.example"}});
        }
        if (d == 5) {
            ensure_up();
            sms_->send_inbound(hook + "twilio/sms",
                               firm_->client_of(disputer).mobile,
                               firm_number,
                               "I dispute this invoice, the hours look wrong");
        }
        if (d == 12) {
            ensure_up();
            sms_->send_inbound(
                hook + "twilio/sms", firm_->client_of(stopper).mobile, firm_number, "STOP");
        }
        // Seeded payments in full.
        if (chance("pay-day", static_cast<std::uint64_t>(d)) < 0.6) {
            const auto n = firm_->invoices().size();
            const auto pick = static_cast<std::size_t>(
                chance("pay-who", static_cast<std::uint64_t>(d)) * static_cast<double>(n));
            pay_in_full(pick % n);
        }
        pay_xero(d);
        approve_fees();
        ensure_up();
        deliver_webhooks();
        relay_accounts(d);
        if (chance("kill-after-webhooks", static_cast<std::uint64_t>(d)) < 0.3) {
            kill_now();  // acknowledged deliveries may still be in the pipeline
        }
        ok = run_day(day_start);
        sms_->flush_status_callbacks();
        deliver_mail_events(hook);
        if (d == 1) {
            // The job completed this morning is re-opened before its client is linked.
            for (const auto& j : jobs_) {
                if (j.withdraw) {
                    karbon_->update_work_item(j.work_item_key, {{"PrimaryStatus", "In Progress"}});
                    notify_karbon(j.work_item_key);
                }
            }
        }
    }
    // Calm: no faults, no kills; two days for retries, backoffs and polls to finish.
    kills_armed_ = false;
    for (auto& p : plans_) {
        p->set_enabled(false);
    }
    for (int d = days_ + 1; d <= days_ + 2 && ok; ++d) {
        const auto day_start = start + std::chrono::days(d - 1);
        clock_->set(day_start);
        approve_fees();
        ensure_up();
        deliver_webhooks();
        relay_accounts(0);
        ok = run_day(day_start);
        sms_->flush_status_callbacks();
        deliver_mail_events(hook);
        if (d == days_ + 1) {
            // Now the re-opened job's client is linked: nothing may be drafted for it.
            for (const auto& j : jobs_) {
                if (j.withdraw) {
                    pending_links_.emplace_back("harvest:" + std::to_string(j.harvest_client),
                                                "karbon:" + j.org_key);
                }
            }
        }
    }
    for (const auto& p : plans_) {
        out.faults += p->injected_count();
        for (const auto& [k, n] : p->counts()) {
            out.by_kind[k] += n;
        }
    }
    out.kills = kills_.load();
    if (!ok) {
        out.violation = chaos_violation{
            "ready_at_end", "the daemon's clock could not be moved (see " + log_path() + ")"};
    } else {
        touches_until_ = start + std::chrono::days(days_ + 1);
        auto record = collect();
        stop_daemon();
        out.error = read_audit(record);
        if (out.error.empty()) {
            out.violation = check_invariants(record);
            out.checked = coverage(record);
        }
    }
    stop_daemon();
    smtp.stop();
    for (auto& s : servers_) {
        if (s) {
            s->stop();
        }
    }
    return out;
}

}  // namespace

int run_chaos(const chaos_options& options, std::ostream& out, std::ostream& err) {
    std::error_code ec;
    const auto exe = fs::read_symlink("/proc/self/exe", ec);
    if (ec) {
        err << "billsync sandbox --chaos: cannot find the billsync binary: " << ec.message()
            << "\n";
        return 70;
    }
    std::optional<chaos_profile> profile;
    if (!options.faults_file.empty()) {
        std::string error;
        profile = read_chaos_profile(options.faults_file, error);
        if (!profile) {
            err << "billsync sandbox --chaos: " << error << "\n";
            return daemon::exit_config;
        }
    }
    const fs::path dir = fs::absolute(options.dir);
    fs::create_directories(dir, ec);
    std::uint64_t faults = 0;
    std::uint64_t kills = 0;
    std::uint64_t violations = 0;
    const auto began = std::chrono::steady_clock::now();
    for (int k = 0; k < options.runs; ++k) {
        const auto seed = options.seed + static_cast<std::uint64_t>(k);
        const auto run_dir = dir / fmt::format("seed-{}", seed);
        chaos_run run(seed, options.days, run_dir, exe, profile ? &*profile : nullptr);
        const auto o = run.run();
        if (!o.error.empty()) {
            err << fmt::format("billsync sandbox --chaos: seed {}: {}\n", seed, o.error);
            return 70;
        }
        faults += o.faults;
        kills += o.kills;
        std::string kinds;
        for (const auto& [kind, n] : o.by_kind) {
            kinds += fmt::format("{}{} {}", kinds.empty() ? "" : ", ", kind, n);
        }
        out << fmt::format(
            "seed {}: {} faults ({}), {} kills, {} touches due ({} sent, {} skipped), {} drafts, "
            "{} invoices and {} late fees created, {} relays: ",
            seed,
            o.faults,
            kinds,
            o.kills,
            o.checked.touches_due,
            o.checked.touches_sent,
            o.checked.touches_skipped,
            o.checked.drafts,
            o.checked.created - o.checked.fees,
            o.checked.fees,
            o.checked.relays);
        if (o.violation) {
            ++violations;
            out << fmt::format(
                "FAIL {}: {}\n  replay: billsync sandbox --chaos --seed {} --days {} "
                "--dir {}{}\n",
                o.violation->invariant,
                o.violation->detail,
                seed,
                options.days,
                dir.string(),
                options.faults_file.empty()
                    ? std::string()
                    : " --faults " + fs::absolute(options.faults_file).string());
        } else {
            out << "PASS\n";
            if (!options.keep) {
                fs::remove_all(run_dir, ec);
            }
        }
        out.flush();
    }
    const auto minutes =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count() / 60.0;
    const double per_minute = minutes > 0 ? options.runs / minutes : 0.0;
    out << json{{"bench", "chaos"},
                {"runs", options.runs},
                {"faults", faults},
                {"kills", kills},
                {"violations", violations},
                {"runs_per_minute", std::round(per_minute * 100) / 100}}
               .dump()
        << "\n";
    return violations == 0 ? 0 : 1;
}

}  // namespace billsync::sandbox
