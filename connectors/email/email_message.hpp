#pragma once

// The outbox action both email connectors (SendGrid, SMTP) perform, parsed and checked in one
// place, plus what they share around it: addresses, the canonical "email_message" effect, the
// reconcile policy, and an RFC 5322 rendering for SMTP.
//
// Action kind "email.send", payload:
//   {"to":"a@b.com","to_name":"…","subject":"…","text":"…","html":"…"?,
//    "delivery_id":"<opaque>","reply_to":"…"?,"headers":{"In-Reply-To":"…"}?}

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "connectors/runtime/connector.hpp"
#include "http/message.hpp"
#include "mappings/change.hpp"
#include "mappings/email_address.hpp"
#include "util/clock.hpp"

namespace billsync::connectors::email {

inline constexpr std::string_view send_action = "email.send";

struct email_message {
    std::string to;
    std::string to_name;
    std::string subject;
    std::string text;
    std::string html;  // empty: text only
    std::string delivery_id;
    std::string reply_to;               // empty: none
    std::vector<http::header> headers;  // extra headers (In-Reply-To, References, X-…)
};

// Parses and validates an action payload; nullopt with a reason in `error` (safe to log: it
// names fields, never their content).
std::optional<email_message> parse_email_message(std::string_view payload, std::string& error);

// The message of an "email.send" action; nullopt with the reason in `error` when the action is
// of another kind or its payload is not valid (both permanent: retrying cannot fix them).
std::optional<email_message> parse_send_action(const state::action& a,
                                               std::string_view provider,
                                               std::string& error);

// Addresses and header fields (mappings/email_address.hpp), used by both email connectors.
using mappings::email::address_list;
using mappings::email::bare_address;
using mappings::email::raw_header_value;
using mappings::email::valid_address;

// The effect of an accepted send: a canonical email message status (entity "email_message",
// id delivery_id) with `status` "accepted" (or "unknown" when the answer was lost) and the
// provider's message id.
mappings::change accepted_change(std::string_view connector,
                                 std::string_view delivery_id,
                                 std::string_view message_id,
                                 std::string_view status = "accepted");

// What reconcile() answers for a provider that cannot be asked whether a message went out:
// `happened`, never resent (a duplicate reminder is worse than a missing one); the detail says
// so for the audit.
reconcile_outcome unknown_send_outcome(std::string_view provider, const state::action& a);

// What perform() answers when the message went out and the answer was lost (`why`: the
// transport error or the status): done with the "unknown" effect, never retried, so the outbox
// records it and nothing is resent automatically (the at-most-once email policy).
action_outcome unknown_send_result(std::string_view provider,
                                   const state::action& a,
                                   std::string_view why);

// "<" + first 32 hex digits of sha256(delivery_id) + "@billsync.local>": stable per delivery, so
// a resend after an unknown outcome carries the same Message-ID and receivers can collapse it.
std::string stable_message_id(std::string_view delivery_id);

// RFC 2047 encoded-words (UTF-8, base64) when text is not printable ASCII; text itself otherwise.
std::string encode_header_text(std::string_view text);
// "Name <addr>" with the display name quoted or encoded as needed; addr alone without a name.
std::string format_mailbox(std::string_view name, std::string_view address);
// RFC 5322 date in UTC: "Mon, 05 Jan 2026 09:00:00 +0000".
std::string format_rfc5322_date(util::instant t);
// Quoted-printable (RFC 2045) of UTF-8 text with CRLF line breaks (any LF or CR normalised).
std::string quoted_printable(std::string_view text);

struct sender {
    std::string email;
    std::string name;
};

// The whole message (headers and MIME body), CRLF line endings, lines at most 998 bytes; not
// dot-stuffed (that is the SMTP transport's job).
std::string render_rfc5322(const email_message& m,
                           const sender& from,
                           std::string_view message_id,
                           util::instant date);

}  // namespace billsync::connectors::email
