#pragma once

// A SendGrid simulator (shared/vendors/sendgrid.md): Mail Send v3 with its Bearer key, required
// fields, 202 + X-Message-Id and X-RateLimit-* headers (429 over the limit); the signed Event
// Webhook (an ECDSA P-256 key generated at runtime) and Inbound Parse (multipart/form-data)
// posted to a URL of the caller's choice. Admin routes under /_sim/sendgrid/ drive it from the
// sandbox:
//   GET  /_sim/sendgrid/messages   the accepted Mail Send bodies with their message ids
//   GET  /_sim/sendgrid/public_key {"public_key": "<base64 DER>"} for the connector config
//   POST /_sim/sendgrid/events     {"url":…, "event":"delivered", "duplicate":false}: one event per
//                                  accepted message, signed and posted to url
//   POST /_sim/sendgrid/inbound    {"url":…, "from":…, "to":…, "subject":…, "text":…,
//                                   "headers":…}: one Inbound Parse post

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "sim/sim_server.hpp"

namespace billsync::simulators {

struct sendgrid_options {
    std::string api_key = "SG.simulated-key";
    std::uint32_t rate_limit =
        600;  // Mail Send requests per window (the real figure is unpublished)
    std::chrono::seconds window{60};
};

class sendgrid_simulator final : public simulator {
public:
    struct message {
        std::string message_id;  // X-Message-Id
        std::string body;        // the request JSON as received
        std::string to;          // first recipient
        std::string subject;
        std::string delivery_id;  // custom_args.billsync_delivery_id
    };

    explicit sendgrid_simulator(sendgrid_options o = {});
    ~sendgrid_simulator() override;

    std::string_view name() const noexcept override { return "sendgrid"; }
    void add_routes(http::router& r) override;

    std::vector<message> messages() const;
    // Base64 DER SubjectPublicKeyInfo of the signing key (event_webhook_public_key).
    std::string public_key_base64() const;
    // Changes the limit (and starts a fresh window).
    void set_rate_limit(std::uint32_t requests, std::chrono::seconds window);

    // Signs (timestamp = now) and POSTs a JSON array of events to url (plain http), twice when
    // `duplicate`. Returns the HTTP status of each post (0 when it failed).
    std::vector<unsigned> deliver_events(const std::string& url,
                                         const std::string& events_json_array,
                                         bool duplicate = false) const;
    // An event array with one `event` per accepted message (sg_event_id, sg_message_id, email,
    // timestamp, billsync_delivery_id).
    std::string events_for_messages(const std::string& event) const;
    // Signs body with the simulator's key.
    std::string sign(const std::string& timestamp, const std::string& body) const;

    // POSTs one Inbound Parse form (from, to, subject, text, headers, envelope, …) to url.
    unsigned send_inbound(const std::string& url,
                          const std::string& from,
                          const std::string& to,
                          const std::string& subject,
                          const std::string& text,
                          const std::string& headers) const;
    // The multipart body and its boundary, as send_inbound posts them.
    static std::string inbound_form(const std::string& boundary,
                                    const std::string& from,
                                    const std::string& to,
                                    const std::string& subject,
                                    const std::string& text,
                                    const std::string& headers);

private:
    net::awaitable<http::response> mail_send(http::request req);
    net::awaitable<http::response> admin(http::request req);

    struct key;
    sendgrid_options options_;
    std::unique_ptr<key> key_;
    mutable std::mutex mutex_;
    std::vector<message> messages_;
    std::chrono::system_clock::time_point window_start_{};
    std::uint32_t used_ = 0;
    std::uint64_t next_id_ = 1;
};

}  // namespace billsync::simulators
