// libFuzzer target: the Karbon webhook signature check and payload parser, plus the mappers that
// read the records a delivery names. Any crash, sanitizer report or broken invariant is a finding.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "connectors/karbon/karbon_webhook.hpp"
#include "mappings/json_depth.hpp"
#include "mappings/karbon/karbon_mapping.hpp"

namespace {

using namespace billsync;

constexpr std::string_view key = "fuzz-karbon-signing-key-0001";

void check(bool ok) {
    if (!ok) {
        std::abort();
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    namespace k = connectors::karbon;

    // The signature: its own value always passes, any other header text never crashes it.
    check(k::verify_signature(key, input, k::sign(key, input)) == k::signature_check::ok);
    (void)k::verify_signature(key, input, input.substr(0, 128));

    // The parser: never throws; an accepted payload has every field.
    const auto parsed = k::parse_webhook(input);
    check(parsed.ok() != !parsed.error.empty());
    if (parsed.ok()) {
        check(!parsed.value->key.empty() && !parsed.value->resource_type.empty() &&
              !parsed.value->action_type.empty());
        (void)k::webhook_type_of(parsed.value->resource_type);
    }

    // The mappers on the same bytes as a record: a value or an error naming why, never both.
    if (mappings::json_depth_error(input).empty()) {
        const auto j = nlohmann::json::parse(input, nullptr, false);
        if (!j.is_discarded()) {
            mappings::karbon::mapping_options o;
            o.time_zone = "America/Chicago";
            const auto w = mappings::karbon::map_work_item(j, o);
            check(w.value.has_value() == w.error.empty());
            const auto c = mappings::karbon::map_contact(j, o);
            check(c.value.has_value() == c.error.empty());
            const auto g = mappings::karbon::map_organization(j, o);
            check(g.value.has_value() == g.error.empty());
            (void)mappings::karbon::assignee_of(j, o);
        }
    }
    return 0;
}
