// libFuzzer target: the QBO webhook verifier and parser, plus the entity mappers that read the
// same untrusted JSON. Any crash, sanitizer report or broken invariant is a finding.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "connectors/qbo/qbo_webhook.hpp"
#include "mappings/qbo/qbo_mapping.hpp"
#include "util/crypto.hpp"

namespace {

using namespace billsync;

constexpr std::string_view token = "b5771f19b12ddb4bcdb9f08bdc50bc63878a";

void check(bool ok) {
    if (!ok) {
        std::abort();
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view input(reinterpret_cast<const char*>(data), size);

    // The verifier: the right signature always passes; arbitrary header text never crashes it.
    const auto good = util::base64_encode(util::hmac_sha256(token, input));
    check(connectors::qbo::verify_signature(token, input, good) ==
          connectors::qbo::signature_check::ok);
    (void)connectors::qbo::verify_signature(token, input, input.substr(0, 256));

    // The parser: never throws; every kept event is routable and keyed deterministically.
    connectors::qbo::webhook_limits limits;
    limits.max_events = 10'000;
    const auto parsed = connectors::qbo::parse_webhook(input, {"1185883450"}, limits);
    for (const auto& e : parsed.events) {
        check(!e.realm_id.empty() && !e.entity_name.empty() && !e.entity_id.empty());
        check(!e.dedup_key.empty() && e.dedup_key == connectors::qbo::dedup_key(e));
        check(e.realm_known == (e.realm_id == "1185883450"));
    }
    check(parsed.ok() || !parsed.error.empty());

    // The mappers and the fault reader on the same bytes.
    mappings::qbo::mapping_options options;
    options.realm_id = "1185883450";
    const auto inv = mappings::qbo::map_invoice(input, options);
    check(inv.value.has_value() || !inv.error.empty());
    if (inv) {
        std::string error;
        const auto back = mappings::invoice_from_json(mappings::to_json(*inv.value), error);
        check(back.has_value() && *back == *inv.value);
    }
    (void)mappings::qbo::map_customer(input, options);
    (void)mappings::qbo::map_payment(input, options);
    if (const auto f = mappings::qbo::parse_fault(input)) {
        (void)mappings::qbo::classify(*f, 400);
    }
    return 0;
}
