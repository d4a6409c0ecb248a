// libFuzzer target: the Xero webhook verifier and thin-event parser, plus the mappers and the
// /Date()/ readers that take the same untrusted JSON. Any crash, sanitizer report or broken
// invariant is a finding.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "connectors/xero/xero_webhook.hpp"
#include "mappings/xero/xero_mapping.hpp"
#include "util/crypto.hpp"

namespace {

using namespace billsync;

constexpr std::string_view key = "Xw0N4ctbVE/xFAKE+KEY/looksLikeBase64==";
constexpr std::string_view tenant = "c2cc9b6e-9458-4c7d-93cc-f02b81b0594f";

void check(bool ok) {
    if (!ok) {
        std::abort();
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view input(reinterpret_cast<const char*>(data), size);

    // The verifier: the right signature always passes, one character off never does.
    const auto good = connectors::xero::sign(key, input);
    check(connectors::xero::verify_signature(key, input, good) ==
          connectors::xero::signature_check::ok);
    auto off = good;
    off[0] = off[0] == 'A' ? 'B' : 'A';
    check(connectors::xero::verify_signature(key, input, off) ==
          connectors::xero::signature_check::mismatch);
    (void)connectors::xero::verify_signature(key, input, input.substr(0, 256));

    // The parser: never throws; every kept event is routable.
    const auto parsed = connectors::xero::parse_webhook(input, {std::string(tenant)});
    for (const auto& e : parsed.events) {
        check(!e.category.empty() && !e.resource_id.empty());
        check(e.tenant_known == (e.tenant_id == tenant));
    }
    check(parsed.ok() || !parsed.error.empty());

    // The mappers on the same bytes, and a storage round trip of what maps.
    std::string error;
    if (auto doc = mappings::xero::parse_exact(input, error)) {
        mappings::xero::mapping_options options;
        options.tenant_id = std::string(tenant);
        const auto inv = mappings::xero::map_invoice(*doc, options);
        check(inv.value.has_value() || !inv.error.empty());
        if (inv) {
            std::string e2;
            const auto back = mappings::invoice_from_json(mappings::to_json(*inv.value), e2);
            check(back.has_value() && *back == *inv.value);
        }
        (void)mappings::xero::map_contact(*doc, options);
        (void)mappings::xero::map_payment(*doc, options);
    }
    (void)mappings::xero::parse_ms_date(input.substr(0, 64));
    (void)mappings::xero::parse_xero_date(input.substr(0, 64));
    (void)mappings::xero::error_message(input);
    return 0;
}
