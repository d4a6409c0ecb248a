#include "connectors/smtp/smtp_kind.hpp"

#include "connectors/runtime/runtime_deps.hpp"
#include "connectors/smtp/smtp_connector.hpp"

namespace billsync::connectors::smtp {

namespace {

void check(const connector_settings& s, config::reader& r) {
    const bool user = s.value("username") != nullptr;
    const bool password = r.has("password");
    if (user && !password) {
        r.error("username", "'username' is set but 'password' is not");
    } else if (password && !user) {
        r.error("password", "'password' is set but 'username' is not");
    }
    // A password never crosses the network in the clear.
    if (password && s.value("tls") != nullptr && *s.value("tls") == "none") {
        r.error("tls", "tls = \"none\" cannot be used with a password");
    }
}

std::unique_ptr<connector> make(const connector_settings& s, const runtime_deps& rt) {
    auto st = from(s);
    st.clock = rt.clock;
    if (rt.log) {
        st.client.log = rt.log;
    }
    return std::make_unique<smtp_connector>(std::move(st));
}

}  // namespace

connector_kind describe() {
    using enum field_type;
    return {
        .kind = "smtp",
        .summary =
            "email through any SMTP relay (at most once: an unknown outcome is never resent)",
        .fields =
            {
                {.key = "host", .required = true},
                {.key = "port", .type = integer, .fallback = "587", .min = 1, .max = 65535},
                {.key = "username"},
                {.key = "password", .type = secret},
                {.key = "tls",
                 .type = choice,
                 .fallback = "starttls",
                 .choices = {"starttls", "implicit", "none"}},
                {.key = "ca_file"},
                {.key = "from_email", .required = true},
                {.key = "from_name"},
            },
        .check = check,
        .actions = {"email.send"},
        .make = make,
    };
}

}  // namespace billsync::connectors::smtp
