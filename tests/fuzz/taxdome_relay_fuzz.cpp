// libFuzzer target: the TaxDome relay parser and the client it maps to. The body reaches it only
// after the bearer secret matched, but a Zap edited by hand can send anything: it must never
// crash, and whatever it accepts must satisfy the documented schema.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "mappings/taxdome/taxdome_mapping.hpp"

namespace {

using namespace billsync;

void check(bool ok) {
    if (!ok) {
        std::abort();
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    std::string error;
    const auto r = mappings::taxdome::parse_relay(input, error);
    if (!r) {
        check(!error.empty());
        return 0;
    }
    const auto& events = mappings::taxdome::events();
    check(std::find(events.begin(), events.end(), r->event) != events.end());
    check(!r->id.empty() && r->id.size() <= 64);
    check(r->deleted || !r->name.empty());
    check(std::is_sorted(r->tags.begin(), r->tags.end()));
    const auto c = mappings::taxdome::to_client(
        *r, "portal", [](const mappings::source_ref& ref) { return "portal:client:" + ref.id; });
    check(c.id == "portal:client:" + c.source.id);
    check(c.deleted == r->deleted);
    check(c.contact.mobile.empty() || c.contact.mobile.front() == '+');
    return 0;
}
