#include "mappings/entity.hpp"

namespace billsync::mappings {

namespace {

template <class... Fs>
struct overloaded : Fs... {
    using Fs::operator()...;
};

}  // namespace

std::string_view entity_type_of(const client&) noexcept { return "client"; }
std::string_view entity_type_of(const invoice&) noexcept { return "invoice"; }
std::string_view entity_type_of(const payment&) noexcept { return "payment"; }
std::string_view entity_type_of(const suppression&) noexcept { return "suppression"; }
std::string_view entity_type_of(const message_status& m) noexcept {
    return m.via == channel::sms ? "sms_message" : "email_message";
}
std::string_view entity_type_of(const inbound_message& m) noexcept {
    return m.via == channel::sms ? "sms_inbound" : "email_inbound";
}
std::string_view entity_type_of(const generic::record&) noexcept { return "record"; }
std::string_view entity_type_of(const staff&) noexcept { return "staff"; }
std::string_view entity_type_of(const work_item&) noexcept { return "work_item"; }
std::string_view entity_type_of(const time_entry&) noexcept { return "time_entry"; }
std::string_view entity_type_of(const ledger_item&) noexcept { return "ledger_item"; }

std::string_view entity_type_of(const entity& e) noexcept {
    return std::visit([](const auto& x) { return entity_type_of(x); }, e);
}

std::string entity_id_of(const entity& e) {
    return std::visit(overloaded{
                          [](const suppression& s) { return s.id(); },
                          [](const message_status& m) { return m.delivery_id; },
                          [](const auto& x) { return x.id; },
                      },
                      e);
}

std::string identity_key(std::string_view type, const source_ref& ref) {
    std::string out;
    if (!ref.account.empty()) {
        out += ref.account;
        out += '/';
    }
    out += type;
    out += '/';
    out += ref.id;
    return out;
}

std::string default_canonical_id(std::string_view type, const source_ref& ref) {
    std::string out = ref.system;
    out += ':';
    if (!ref.account.empty()) {
        out += ref.account;
        out += ':';
    }
    out += type;
    out += ':';
    out += ref.id;
    return out;
}

}  // namespace billsync::mappings
