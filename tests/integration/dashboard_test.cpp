// The dashboard page in a real browser: the billsync binary on a simulated firm (QBO, SendGrid and
// Twilio simulators, a simulated clock), Debian's chromium loading GET / headless. The test checks
// the DOM for the figures the daemon knows, that a screenshot of the page is not blank, that the
// HTML is well-formed, that a browser gets through HTTP Basic with the token, and that changes over
// the status listener need the token, an allowed Host and a JSON body even on loopback.

#include <gtest/gtest.h>
#include <zlib.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>

#include "http/client.hpp"
#include "sim/qbo_grant.hpp"
#include "sim/qbo_simulator.hpp"
#include "sim/sendgrid_simulator.hpp"
#include "sim/sim_server.hpp"
#include "sim/twilio_simulator.hpp"
#include "tests/fakes/billsync_daemon.hpp"
#include "tests/fakes/html_check.hpp"
#include "tests/fakes/qbo_seed.hpp"
#include "tests/fakes/temp_dir.hpp"

namespace billsync {
namespace {

using json = nlohmann::json;
using testing::parse_time;

constexpr const char* realm = "9130350000000001";
constexpr const char* verifier = "dashboard-verifier";
constexpr const char* firm_number = "+15005550006";
constexpr const char* start_time = "2026-01-05T13:00:00Z";  // Monday, 08:00 in New York
constexpr const char* chromium = "/usr/bin/chromium";
const std::string hostile = R"(Brown & <script>alert("x")</script> "Sons")";

// ---- a small PNG reader: enough to tell a blank screenshot from a page ----

std::uint32_t be32(const std::string& s, std::size_t at) {
    return (static_cast<std::uint32_t>(static_cast<unsigned char>(s[at])) << 24) |
           (static_cast<std::uint32_t>(static_cast<unsigned char>(s[at + 1])) << 16) |
           (static_cast<std::uint32_t>(static_cast<unsigned char>(s[at + 2])) << 8) |
           static_cast<std::uint32_t>(static_cast<unsigned char>(s[at + 3]));
}

struct png_summary {
    std::uint32_t width = 0;
    std::uint32_t height = 0;
    std::size_t colours = 0;           // distinct pixel values (capped at 4096)
    std::uint64_t off_background = 0;  // pixels that differ from the top-left one
};

// Decodes an 8-bit RGB or RGBA, non-interlaced PNG (what Chromium writes); error on anything else.
std::optional<png_summary> read_png(const std::string& png, std::string& error) {
    static const std::string signature("\x89PNG\r\n\x1a\n", 8);
    if (png.size() < 8 || png.compare(0, 8, signature) != 0) {
        error = "not a PNG";
        return std::nullopt;
    }
    png_summary out;
    std::size_t channels = 0;
    std::string idat;
    for (std::size_t at = 8; at + 8 <= png.size();) {
        const auto length = be32(png, at);
        const auto type = png.substr(at + 4, 4);
        if (at + 12 + length > png.size()) {
            error = "truncated chunk " + type;
            return std::nullopt;
        }
        const auto data = png.substr(at + 8, length);
        if (type == "IHDR") {
            out.width = be32(data, 0);
            out.height = be32(data, 4);
            const int depth = static_cast<unsigned char>(data[8]);
            const int colour = static_cast<unsigned char>(data[9]);
            const int interlace = static_cast<unsigned char>(data[12]);
            if (depth != 8 || (colour != 2 && colour != 6) || interlace != 0) {
                error = "unsupported PNG format";
                return std::nullopt;
            }
            channels = colour == 6 ? 4 : 3;
        } else if (type == "IDAT") {
            idat += data;
        }
        at += 12 + length;
    }
    if (channels == 0 || out.width == 0 || out.height == 0) {
        error = "no image header";
        return std::nullopt;
    }
    const std::size_t stride = out.width * channels;
    std::string raw((stride + 1) * out.height, '\0');
    uLongf raw_size = raw.size();
    if (uncompress(reinterpret_cast<Bytef*>(raw.data()),
                   &raw_size,
                   reinterpret_cast<const Bytef*>(idat.data()),
                   idat.size()) != Z_OK ||
        raw_size != raw.size()) {
        error = "cannot inflate the image data";
        return std::nullopt;
    }
    std::vector<unsigned char> prev(stride, 0);
    std::vector<unsigned char> line(stride, 0);
    std::set<std::string> colours;
    std::string first;
    for (std::uint32_t y = 0; y < out.height; ++y) {
        const auto* in = reinterpret_cast<const unsigned char*>(raw.data()) + y * (stride + 1);
        const int filter = in[0];
        for (std::size_t x = 0; x < stride; ++x) {
            const int a = x >= channels ? line[x - channels] : 0;
            const int b = prev[x];
            const int c = x >= channels ? prev[x - channels] : 0;
            int predictor = 0;
            switch (filter) {
                case 0:
                    break;
                case 1:
                    predictor = a;
                    break;
                case 2:
                    predictor = b;
                    break;
                case 3:
                    predictor = (a + b) / 2;
                    break;
                case 4: {
                    const int p = a + b - c;
                    const int pa = std::abs(p - a);
                    const int pb = std::abs(p - b);
                    const int pc = std::abs(p - c);
                    predictor = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
                    break;
                }
                default:
                    error = "bad filter type";
                    return std::nullopt;
            }
            line[x] = static_cast<unsigned char>((in[1 + x] + predictor) & 0xff);
        }
        for (std::size_t x = 0; x < stride; x += channels) {
            std::string pixel(reinterpret_cast<const char*>(line.data() + x), channels);
            if (first.empty()) {
                first = pixel;
            }
            if (pixel != first) {
                ++out.off_background;
            }
            if (colours.size() < 4096) {
                colours.insert(std::move(pixel));
            }
        }
        std::swap(prev, line);
    }
    out.colours = colours.size();
    return out;
}

void append_chunk(std::string& png, const std::string& type, const std::string& data) {
    const auto put32 = [&png](std::uint32_t v) {
        for (int shift = 24; shift >= 0; shift -= 8) {
            png.push_back(static_cast<char>((v >> shift) & 0xff));
        }
    };
    put32(static_cast<std::uint32_t>(data.size()));
    const auto body = type + data;
    png += body;
    put32(static_cast<std::uint32_t>(
        crc32(0, reinterpret_cast<const Bytef*>(body.data()), static_cast<uInt>(body.size()))));
}

// An RGB PNG of `w` x `h` whose pixel (x, y) is colour(x, y).
template <typename F>
std::string make_png(std::uint32_t w, std::uint32_t h, F colour) {
    std::string png("\x89PNG\r\n\x1a\n", 8);
    std::string ihdr;
    for (const auto v : {w, h}) {
        for (int shift = 24; shift >= 0; shift -= 8) {
            ihdr.push_back(static_cast<char>((v >> shift) & 0xff));
        }
    }
    ihdr += std::string("\x08\x02\x00\x00\x00", 5);
    append_chunk(png, "IHDR", ihdr);
    std::string raw;
    for (std::uint32_t y = 0; y < h; ++y) {
        raw.push_back('\0');
        for (std::uint32_t x = 0; x < w; ++x) {
            const auto rgb = colour(x, y);
            raw += rgb;
        }
    }
    std::string packed(compressBound(raw.size()), '\0');
    uLongf packed_size = packed.size();
    compress(reinterpret_cast<Bytef*>(packed.data()),
             &packed_size,
             reinterpret_cast<const Bytef*>(raw.data()),
             raw.size());
    packed.resize(packed_size);
    append_chunk(png, "IDAT", packed);
    append_chunk(png, "IEND", "");
    return png;
}

// The blank-screenshot check the browser test relies on.
bool looks_blank(const png_summary& s) {
    const auto pixels = static_cast<std::uint64_t>(s.width) * s.height;
    return s.colours < 8 || s.off_background * 100 < pixels;  // under 1 % of the page drawn
}

TEST(png_check, tells_a_blank_image_from_a_drawn_one) {
    std::string error;
    const auto blank = read_png(
        make_png(64, 48, [](auto, auto) { return std::string("\xff\xff\xff", 3); }), error);
    ASSERT_TRUE(blank) << error;
    EXPECT_EQ(blank->width, 64u);
    EXPECT_EQ(blank->colours, 1u);
    EXPECT_TRUE(looks_blank(*blank));
    const auto drawn = read_png(
        make_png(64,
                 48,
                 [](std::uint32_t x, std::uint32_t y) {
                     return std::string{static_cast<char>(x * 4), static_cast<char>(y * 5), '\x40'};
                 }),
        error);
    ASSERT_TRUE(drawn) << error;
    EXPECT_FALSE(looks_blank(*drawn));
    EXPECT_FALSE(read_png("GIF89a", error));
}

// ---- the browser ----

struct browser_result {
    int rc = -1;
    std::string out;
};

// Runs Debian's chromium headless with the given mode arguments on `url`; stdout is the result.
browser_result run_chromium(const std::filesystem::path& profile,
                            const std::string& mode,
                            const std::string& url) {
    const auto cmd = std::string("timeout 120 ") + chromium +
                     " --headless --no-sandbox --disable-gpu --disable-quic --no-first-run"
                     " --disable-background-networking --disable-component-update --disable-sync"
                     " --user-data-dir=" +
                     profile.string() + " " + mode + " '" + url + "' 2>/dev/null";
    browser_result r;
    FILE* p = ::popen(cmd.c_str(), "r");
    if (p == nullptr) {
        return r;
    }
    std::array<char, 4096> buf{};
    std::size_t n = 0;
    while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) {
        r.out.append(buf.data(), n);
    }
    const int status = ::pclose(p);
    r.rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return r;
}

void require_chromium() {
    ASSERT_TRUE(std::filesystem::exists(chromium))
        << chromium
        << " is missing: the dashboard is tested in a real browser; run scripts/install-deps.sh "
           "(it installs Debian's chromium package)";
}

class dashboard_browser : public ::testing::Test {
protected:
    void SetUp() override {
        simulators::qbo_sim_options qo;
        qo.realms = {realm};
        qo.verifier_token = verifier;
        qo.now = [this] { return now(); };
        qbo_ = std::make_unique<simulators::qbo_simulator>(qo);
        mail_ = std::make_unique<simulators::sendgrid_simulator>();
        simulators::twilio_options to;
        to.numbers = {firm_number};
        to.now = [this] { return now(); };
        sms_ = std::make_unique<simulators::twilio_simulator>(to);
        qbo_->add_routes(qbo_server_.routes());
        qbo_->configure(qbo_server_);
        mail_->add_routes(mail_server_.routes());
        sms_->add_routes(sms_server_.routes());
        sms_->configure(sms_server_);
        ASSERT_EQ(qbo_server_.start(), "");
        ASSERT_EQ(mail_server_.start(), "");
        ASSERT_EQ(sms_server_.start(), "");
    }
    void TearDown() override {
        if (daemon_) {
            EXPECT_EQ(daemon_->stop(), 0) << daemon_->output();
        }
    }

    util::instant now() {
        std::lock_guard lock(clock_mutex_);
        return now_;
    }

    std::string config(const std::string& status_extra) {
        return "[daemon]\n"
               "data_dir = \"data\"\n"
               "time_zone = \"America/New_York\"\n"
               "[daemon.webhook_listener]\n"
               "address = \"127.0.0.1:0\"\n"
               "[daemon.status_listener]\n"
               "address = \"127.0.0.1:0\"\n" +
               status_extra +
               "[daemon.clock]\n"
               "mode = \"simulated\"\n"
               "start = \"" +
               start_time +
               "\"\n"
               "[connectors.qbo]\n"
               "kind = \"qbo\"\n"
               "base_url = \"" +
               qbo_server_.base_url() + "\"\ntoken_url = \"" + qbo_server_.base_url() +
               "/oauth2/token\"\n"
               "client_id = \"sim-client-id\"\n"
               "client_secret = \"sim-client-secret\"\n"
               "webhook_verifier_token = \"" +
               verifier + "\"\nrealm_id = \"" + realm +
               "\"\n"
               "poll_interval_s = 3600\n"
               "[connectors.sendgrid]\n"
               "kind = \"sendgrid\"\n"
               "base_url = \"" +
               mail_server_.base_url() +
               "\"\n"
               "api_key = \"SG.simulated-key\"\n"
               "from_email = \"billing@smithlee.example\"\n"
               "event_webhook_public_key = \"" +
               mail_->public_key_base64() +
               "\"\n"
               "inbound_secret = \"inbound-secret\"\n"
               "[connectors.twilio]\n"
               "kind = \"twilio\"\n"
               "base_url = \"" +
               sms_server_.base_url() +
               "\"\n"
               "account_sid = \"AC00000000000000000000000000000001\"\n"
               "auth_token = \"sim-twilio-auth-token\"\n"
               "from = \"" +
               firm_number +
               "\"\n"
               "public_url = \"https://billsync.smithlee.example\"\n"
               "[followup]\n"
               "firm_name = \"Smith & Lee CPA\"\n"
               "firm_phone = \"+1 555 0100\"\n"
               "reply_to = \"billing@smithlee.example\"\n";
    }

    std::string customer(const std::string& name, const std::string& email) {
        return qbo_
            ->add_customer(realm,
                           json{{"DisplayName", name}, {"PrimaryEmailAddr", {{"Address", email}}}})
            .value("Id", "");
    }

    void invoice(const std::string& customer_id, const std::string& amount, int number) {
        qbo_->add_invoice(realm,
                          json{{"CustomerRef", {{"value", customer_id}}},
                               {"DueDate", "2026-01-05"},
                               {"DocNumber", std::to_string(number)},
                               {"Line",
                                json::array({{{"Amount", json::parse(amount)},
                                              {"DetailType", "SalesItemLineDetail"},
                                              {"SalesItemLineDetail",
                                               {{"ItemRef", {{"value", "1"}}},
                                                {"Qty", 1},
                                                {"UnitPrice", json::parse(amount)}}}}})}});
    }

    // A firm with two overdue invoices (one client with a hostile name), synced, and a day later
    // (touch 1 sent to both).
    void start_firm(const std::string& configured_token = {}) {
        invoice(customer("Acme Dental", "ap@acmedental.example"), "500.00", 1001);
        invoice(customer(hostile, "ap@brown.example"), "1234.56", 1002);
        ASSERT_EQ(simulators::seed_qbo_grant(dir_.path() / "data", *qbo_, realm, now()), "");
        qbo_->take_deliveries();
        std::vector<std::string> env;
        std::string status_extra;
        if (!configured_token.empty()) {
            status_extra = "bearer_token = \"${env:DASHBOARD_STATUS_TOKEN}\"\n";
            env.push_back("DASHBOARD_STATUS_TOKEN=" + configured_token);
        }
        daemon_ = std::make_unique<testing::billsync_daemon>(
            dir_.path(), config(status_extra), std::move(env));
        if (!configured_token.empty()) {
            daemon_->use_status_token(configured_token);
        }
        ASSERT_TRUE(daemon_->start()) << daemon_->output();
        ASSERT_TRUE(testing::eventually([&] {
            auto [rc, out] = daemon_->cli({"inspect", "cursor/qbo/sync"});
            return rc == 0 && out.find("\"cdc\"") != std::string::npos;
        })) << daemon_->output();
        const auto target = parse_time("2026-01-06T15:00:00Z");  // 10:00 the next day
        const auto by = std::chrono::duration_cast<std::chrono::seconds>(target - now());
        {
            std::lock_guard lock(clock_mutex_);
            now_ = target;
        }
        ASSERT_NE(daemon_->advance(by.count()), "") << daemon_->output();
    }

    std::string url() const {
        return "http://127.0.0.1:" + std::to_string(daemon_->status_port()) + "/";
    }

    testing::temp_dir dir_;
    std::mutex clock_mutex_;
    util::instant now_ = parse_time(start_time);
    std::unique_ptr<simulators::qbo_simulator> qbo_;
    std::unique_ptr<simulators::sendgrid_simulator> mail_;
    std::unique_ptr<simulators::twilio_simulator> sms_;
    simulators::sim_server qbo_server_;
    simulators::sim_server mail_server_;
    simulators::sim_server sms_server_;
    std::unique_ptr<testing::billsync_daemon> daemon_;
};

TEST_F(dashboard_browser, chromium_shows_the_figures_of_a_running_daemon_on_a_page_that_is_drawn) {
    require_chromium();
    start_firm();

    // The page as served: well-formed, with the right headers.
    const auto page = daemon_->status_get("/");
    ASSERT_EQ(page.status, 200u) << page.body;
    EXPECT_EQ(page.header_value("Content-Type"), "text/html; charset=utf-8");
    EXPECT_NE(page.header_value("Content-Security-Policy").find("default-src 'none'"),
              std::string_view::npos);
    EXPECT_EQ(testing::html_problem(page.body), "") << page.body;

    // The DOM as Chromium built it.
    const auto dom = run_chromium(dir_.path() / "profile", "--dump-dom", url());
    ASSERT_EQ(dom.rc, 0) << dom.out;
    for (const char* needle : {"Connector health",
                               ">qbo ",
                               "Follow-ups by stage",
                               "<td>touch 1 sent</td><td class=\"num\">2</td>",
                               "Acme Dental",
                               "$500.00",
                               "$1,234.56",
                               "Week 2026-W01 (2025-12-29 to 2026-01-04)",
                               "id=\"aging-chart\"",
                               "Dead letters: <strong>0</strong>",
                               "<strong id=\"identities-waiting\">0</strong>",
                               "2026-01-06T15:00:00Z"}) {
        EXPECT_NE(dom.out.find(needle), std::string::npos) << needle << "\n" << dom.out;
    }
    // The hostile client name is text, not markup: no script element exists.
    EXPECT_NE(dom.out.find("Brown &amp; &lt;script&gt;alert(\"x\")&lt;/script&gt; \"Sons\""),
              std::string::npos)
        << dom.out;
    EXPECT_EQ(dom.out.find("<script"), std::string::npos);

    // A phone-sized screenshot that is not blank.
    const auto png_path = dir_.path() / "dashboard.png";
    const auto shot =
        run_chromium(dir_.path() / "profile",
                     "--hide-scrollbars --window-size=412,915 --screenshot=" + png_path.string(),
                     url());
    ASSERT_EQ(shot.rc, 0);
    ASSERT_TRUE(std::filesystem::exists(png_path));
    std::string error;
    const auto summary = read_png(testing::read_file(png_path), error);
    ASSERT_TRUE(summary) << error;
    EXPECT_EQ(summary->width, 412u);
    EXPECT_FALSE(looks_blank(*summary))
        << summary->colours << " colours, " << summary->off_background << " drawn pixels";
}

TEST_F(dashboard_browser, changes_need_the_token_an_allowed_host_and_json_even_on_loopback) {
    start_firm();
    const auto open_sequences = [&] {
        return json::parse(daemon_->status_get("/followups").body, nullptr, false)["followups"]
            .size();
    };
    ASSERT_EQ(open_sequences(), 2u);
    const std::string body = R"({"invoice": "1001"})";
    const auto post = [&](std::vector<http::header> headers) {
        return http::fetch(
            "127.0.0.1", daemon_->status_port(), "POST", "/followups/stop", headers, body);
    };
    const http::header bearer{"Authorization", "Bearer " + daemon_->status_token()};
    const http::header json_type{"Content-Type", "application/json"};
    ASSERT_EQ(daemon_->status_token().size(), 64u);

    EXPECT_EQ(post({json_type}).status, 401u);
    EXPECT_EQ(post({json_type, {"Host", "rebound.attacker.example:80"}, bearer}).status, 403u);
    EXPECT_EQ(post({{"Content-Type", "application/x-www-form-urlencoded"}, bearer}).status, 415u);
    EXPECT_EQ(post({{"Content-Type", "text/plain"}, bearer}).status, 415u);
    // The same for every other change and for the clock.
    for (const auto* target : {"/followups/resume",
                               "/deadletters/retry",
                               "/deadletters/drop",
                               "/identities/link",
                               "/identities/unlink",
                               "/approvals/d-1/approve",
                               "/approvals/d-1/reject",
                               "/approvals/d-1/redraft",
                               "/workflows/invoicing/redraft",
                               "/exceptions/x-1/resolve",
                               "/workflows/followup/stop",
                               "/clock/advance"}) {
        EXPECT_EQ(
            http::fetch("127.0.0.1", daemon_->status_port(), "POST", target, {json_type}, "{}")
                .status,
            401u)
            << target;
    }
    EXPECT_EQ(open_sequences(), 2u) << "nothing changed";

    // The CLI reads the token from the data dir and makes the change.
    const auto [rc, out] = daemon_->cli({"followup", "stop", "1001"});
    EXPECT_EQ(rc, 0) << out;
    EXPECT_EQ(open_sequences(), 1u);
    // And so does a client that sends it, a loopback Host and a JSON body.
    const auto done = http::fetch("127.0.0.1",
                                  daemon_->status_port(),
                                  "POST",
                                  "/followups/stop",
                                  {json_type, bearer, {"Host", "localhost:8081"}},
                                  R"({"invoice": "1002"})");
    EXPECT_EQ(done.status, 200u) << done.body;
    EXPECT_EQ(open_sequences(), 0u);
}

TEST_F(dashboard_browser, a_browser_gets_in_with_basic_auth_when_a_token_is_configured) {
    require_chromium();
    // A throwaway token for this test only.
    const std::string token = "dashboard-test-token-5f1c9a7e2b";
    start_firm(token);
    EXPECT_FALSE(std::filesystem::exists(dir_.path() / "data" / "status_token"));  // configured
    const auto refused = http::fetch("127.0.0.1", daemon_->status_port(), "GET", "/");
    EXPECT_EQ(refused.status, 401u);
    EXPECT_TRUE(refused.header_value("WWW-Authenticate").starts_with("Basic realm="));

    const auto without = run_chromium(dir_.path() / "profile", "--dump-dom", url());
    EXPECT_EQ(without.out.find("Connector health"), std::string::npos) << without.out;
    // Chromium sends the credentials of the URL as HTTP Basic after the challenge.
    const auto with = run_chromium(
        dir_.path() / "profile",
        "--dump-dom",
        "http://operator:" + token + "@127.0.0.1:" + std::to_string(daemon_->status_port()) + "/");
    ASSERT_EQ(with.rc, 0);
    EXPECT_NE(with.out.find("Connector health"), std::string::npos) << with.out;
    EXPECT_NE(with.out.find("$1,234.56"), std::string::npos) << with.out;
}

}  // namespace
}  // namespace billsync
