#pragma once

// A Twilio Programmable Messaging simulator (shared/vendors/twilio.md).
//
// REST (Basic auth Account SID : Auth Token, Twilio's error bodies):
//   POST /2010-04-01/Accounts/{sid}/Messages.json       send; 201 with the Message JSON
//   GET  /2010-04-01/Accounts/{sid}/Messages.json       list; To, From, DateSent, DateSent<,
//                                                       DateSent>, PageSize, next_page_uri paging
//   GET  /2010-04-01/Accounts/{sid}/Messages/{Sid}.json read one
// A concurrency cap per account answers 429 with error 20429.
//
// Webhooks towards billsync are signed with X-Twilio-Signature (an implementation of the
// sheet's algorithm of its own, so the connector's is checked against an independent one). The
// URL signed is the public one (what Twilio would call); the request goes to a loopback URL.
//
// Admin routes (billsync sandbox): GET /_sim/twilio/messages, POST /_sim/twilio/opt_out
// {"number"}, POST /_sim/twilio/inbound {"url","signed_url","from","to","body"}, POST
// /_sim/twilio/flush {"final_status","callback_base"}; the last two answer {"statuses":[…]}.

#include <cstdint>
#include <functional>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "sim/sim_server.hpp"
#include "util/clock.hpp"

namespace billsync::simulators {

struct twilio_options {
    std::string account_sid = "AC00000000000000000000000000000001";
    std::string auth_token = "sim-twilio-auth-token";
    std::vector<std::string> numbers = {"+15005550006"};  // sender numbers the account owns
    std::vector<std::string> messaging_service_sids = {"MG00000000000000000000000000000001"};
    std::function<util::instant()> now;  // empty: the system clock
    std::uint32_t max_concurrent = 100;  // REST requests at once per account; 0: unlimited
    // Status callbacks go to this base instead of the StatusCallback URL's own scheme and host
    // (which is billsync's public URL); empty: to the StatusCallback URL as given.
    std::string callback_base;
};

class twilio_simulator final : public simulator {
public:
    explicit twilio_simulator(twilio_options o = {});

    std::string_view name() const noexcept override { return "twilio"; }
    void add_routes(http::router& r) override;
    void configure(sim_server& server) override;

    const twilio_options& options() const noexcept { return options_; }
    void set_callback_base(std::string base);

    // Every message (sent and received), oldest first, as Message JSON plus "status_callback".
    std::vector<nlohmann::json> messages() const;
    // The number has texted STOP (sends to it fail with 21610) / START.
    void opt_out(std::string number);
    void opt_in(std::string number);
    bool opted_out(const std::string& number) const;

    // Texts `body` from `from` to `to`: records the inbound message, applies STOP/START, and POSTs
    // the signed webhook to `url`, signed for `signed_url` (empty: `url`). Returns the HTTP
    // statuses received (0: no answer).
    std::vector<unsigned> send_inbound(const std::string& url,
                                       std::string from,
                                       std::string to,
                                       std::string body,
                                       std::string signed_url = {});
    // Moves every outbound message not yet final through sent → final_status, POSTing a signed
    // status callback for each step to its StatusCallback (rewritten to callback_base).
    std::vector<unsigned> flush_status_callbacks(std::string final_status = "delivered");

    // A signed form POST to `url`, signed for `signed_url`; the HTTP status (0: no answer).
    unsigned post_signed(const std::string& url,
                         const std::string& signed_url,
                         const std::vector<std::pair<std::string, std::string>>& params) const;
    // X-Twilio-Signature for a form POST.
    std::string sign(const std::string& url,
                     std::vector<std::pair<std::string, std::string>> params) const;

private:
    struct message {
        nlohmann::json j;
        std::string status_callback;
        util::instant sent_at{};
    };

    net::awaitable<http::response> handle(http::request req);
    http::response create_message(const http::request& req);
    http::response list_messages(const http::request& req) const;
    http::response read_message(std::string_view sid) const;
    http::response admin(const http::request& req);
    util::instant now() const;
    std::string next_sid();

    twilio_options options_;
    mutable std::mutex mutex_;
    std::vector<message> messages_;
    std::set<std::string> opted_out_;
    std::uint64_t counter_ = 0;
};

}  // namespace billsync::simulators
