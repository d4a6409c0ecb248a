#include "sim/xero_grant.hpp"

#include "sim/grant.hpp"

namespace billsync::simulators {

std::string seed_xero_grant(const std::filesystem::path& data_dir,
                            xero_simulator& xero,
                            const std::string& tenant,
                            const std::string& scope,
                            util::instant now,
                            std::optional<connectors::sealing_key> key) {
    connectors::oauth2::credential c;
    c.id = "xero/" + tenant;
    c.vendor = "xero";
    c.account = tenant;
    c.tenants = {{tenant, "", "ORGANISATION"}};
    c.scope = scope;
    return seed_grant(data_dir, xero.oauth(), std::move(c), now, std::move(key));
}

}  // namespace billsync::simulators
