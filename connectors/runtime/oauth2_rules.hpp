#pragma once

// What one vendor's OAuth2 authorization-code flow needs to know (its fact sheet's
// "Authentication" section). A connector kind that declares these rules is one `billsync connect`
// works for; the rules live in the vendor's folder, the flow and the token manager are neutral.

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

namespace billsync::connectors::oauth2 {

// One account (organisation, company) a grant reaches.
struct tenant {
    std::string id = {};
    std::string name = {};
    std::string type = {};
};

struct vendor_rules {
    // The connector kind; also the credential id prefix ("<kind>/<account>").
    std::string vendor = {};
    std::string display_name = {};  // for people: "Open this URL ... access to <display_name>"
    std::string authorize_url = {};
    std::string token_url = {};
    std::string revoke_url = {};
    // Non-empty: the accounts (tenants) a grant reaches are listed here.
    std::string connections_url = {};
    // Reads connections_url's answer (the vendor's JSON) into tenants; malformed: none.
    std::vector<tenant> (*parse_connections)(std::string_view body) = nullptr;
    std::string scope = {};
    bool pkce = false;  // S256 code challenge on the authorize URL
    // The token endpoint takes client_id and client_secret as form fields, not HTTP Basic.
    bool client_secret_in_body = false;
    // Where the connected account comes from: a query parameter of the redirect (e.g. a company
    // id), else the first tenant that connections_url lists (or the configured one).
    std::string account_redirect_param = {};
    std::string account_setting = {};  // the section key that names the account, e.g. "tenant_id"
    std::string account_label = {};    // "tenant", "company", … in messages
    // How long a rotated-away refresh token still works.
    std::chrono::seconds old_refresh_valid{0};
};

}  // namespace billsync::connectors::oauth2
