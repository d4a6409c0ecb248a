#pragma once

// TaxDome relays (TaxDome trigger -> Zapier "Webhooks by Zapier" POST -> billsync) mapped into
// canonical clients. The body is the flat JSON object the Zap is told to send (every value a
// string; connectors/taxdome/README.md gives the Zap field by field):
//
//   {"event": "New Account", "id": "7351024", "name": "Acme Dental",
//    "emails": "ap@acme-dental.example, owner@acme-dental.example", "phones": "+1 555 0100",
//    "tags": "retainer, vip", "account_id": "", "relayed_at": "2026-01-05T15:04:05Z"}
//
// It is checked strictly, because a Zap edited by hand can change its shape at any time: an
// unknown key, a missing or empty required key, a value that is not a string or a malformed
// time is an error naming the key.

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mappings/model.hpp"

namespace billsync::mappings::taxdome {

enum class record_kind : std::uint8_t { account, contact };

struct relay {
    std::string event;  // the TaxDome trigger's name, as TaxDome's Zapier app shows it
    record_kind kind = record_kind::account;
    bool deleted = false;
    std::string id;          // the TaxDome account or contact id
    std::string name;        // account name or contact name (may be empty on a delete)
    std::string account_id;  // contacts: the account they belong to, when the Zap maps it
    std::vector<std::string> emails;
    std::vector<std::string> phones;
    std::vector<std::string> tags;  // lower-cased, sorted, unique
    instant relayed_at{};
};

// The six triggers of TaxDome's Zapier app, in the spelling the "event" value must carry.
const std::vector<std::string_view>& events();

// Parses and checks one relay body; nullopt with `error` naming the offending key.
std::optional<relay> parse_relay(std::string_view body, std::string& error);

// The canonical client of a relay. Accounts keep their id; contacts are keyed "contact-<id>" so
// an account and a contact with the same number stay apart. `canonical_id` maps the vendor
// reference to the canonical id (the identity-map row when the client is known already).
// `default_calling_code` normalises phone numbers without a country code.
client to_client(const relay& r,
                 std::string_view system,
                 const std::function<std::string(const source_ref&)>& canonical_id,
                 std::string_view default_calling_code = "1");

}  // namespace billsync::mappings::taxdome
