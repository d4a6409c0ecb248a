#include "sim/qbo_grant.hpp"

#include "sim/grant.hpp"

namespace billsync::simulators {

std::string seed_qbo_grant(const std::filesystem::path& data_dir,
                           simulators::qbo_simulator& qbo,
                           const std::string& realm,
                           util::instant now,
                           std::optional<connectors::sealing_key> key) {
    connectors::oauth2::credential c;
    c.id = "qbo/" + realm;
    c.vendor = "qbo";
    c.account = realm;
    return seed_grant(data_dir, qbo.oauth(), std::move(c), now, std::move(key));
}

}  // namespace billsync::simulators
