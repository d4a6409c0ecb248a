#include "sim/grant.hpp"

#include "state/store.hpp"

namespace billsync::simulators {

std::string seed_grant(const std::filesystem::path& data_dir,
                       oauth2_server& server,
                       connectors::oauth2::credential c,
                       util::instant now,
                       std::optional<connectors::sealing_key> key) {
    std::error_code ec;
    std::filesystem::create_directories(data_dir, ec);
    std::filesystem::permissions(data_dir, std::filesystem::perms::owner_all, ec);
    auto st = state::store::open(data_dir / "state");
    if (!st.ok()) {
        return st.st.message;
    }
    connectors::token_store tokens(*st.value, std::move(key));
    const auto grant = server.issue_grant();
    c.access_token = grant.access_token;
    c.access_expires_at = now + grant.expires_in;
    c.refresh_token = grant.refresh_token;
    c.connected_at = now;
    c.refreshed_at = now;
    const auto s = connectors::oauth2::store_credential(tokens, c);
    return s.ok ? std::string() : s.message;
}

}  // namespace billsync::simulators
