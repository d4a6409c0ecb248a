#include "connectors/runtime/connector.hpp"

namespace billsync::connectors {

net::awaitable<resolve_outcome> connector::resolve(const state::inbox_event& /*e*/) {
    co_return resolve_outcome{};
}

net::awaitable<resolve_outcome> connector::refresh(std::string /*entity_type*/,
                                                   mappings::source_ref /*ref*/) {
    co_return resolve_outcome{};
}

net::awaitable<poll_outcome> connector::poll(const state::store& /*s*/) {
    co_return poll_outcome{};
}

}  // namespace billsync::connectors
