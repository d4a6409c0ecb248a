#include "mappings/entity.hpp"

namespace billsync::mappings {

namespace {

template <class... Fs>
struct overloaded : Fs... {
    using Fs::operator()...;
};

}  // namespace

std::string_view entity_type_of(const entity& e) noexcept {
    return std::visit(overloaded{
                          [](const client&) -> std::string_view { return "client"; },
                          [](const invoice&) -> std::string_view { return "invoice"; },
                          [](const payment&) -> std::string_view { return "payment"; },
                          [](const suppression&) -> std::string_view { return "suppression"; },
                          [](const message_status& m) -> std::string_view {
                              return m.via == channel::sms ? "sms_message" : "email_message";
                          },
                          [](const inbound_message& m) -> std::string_view {
                              return m.via == channel::sms ? "sms_inbound" : "email_inbound";
                          },
                          [](const generic::record&) -> std::string_view { return "record"; },
                          [](const staff&) -> std::string_view { return "staff"; },
                          [](const work_item&) -> std::string_view { return "work_item"; },
                          [](const time_entry&) -> std::string_view { return "time_entry"; },
                      },
                      e);
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

}  // namespace billsync::mappings
