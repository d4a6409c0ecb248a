#include "config/loader.hpp"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <utility>

#include "config/values.hpp"

namespace billsync::config {

namespace {

using namespace std::chrono_literals;

constexpr std::uint64_t kib = 1024;
constexpr std::uint64_t mib = 1024 * kib;
constexpr std::uint64_t gib = 1024 * mib;

// Returns false when the address was given but is invalid.
bool read_listener(reader& r,
                   std::string_view default_address,
                   listener_settings& out,
                   source_pos& address_pos) {
    const auto address = r.get_endpoint("address");
    out.address = address.value_or(*parse_endpoint(default_address));
    address_pos = r.position_of("address");
    auto& lim = out.limits;
    lim.max_body_bytes = r.get_size("max_body", 1, 4 * gib).value_or(lim.max_body_bytes);
    lim.max_header_bytes = r.get_size("max_header", kib, 1 * mib).value_or(lim.max_header_bytes);
    lim.read_timeout = r.get_duration("read_timeout", 1ms, 24h).value_or(lim.read_timeout);
    lim.idle_timeout = r.get_duration("idle_timeout", 1ms, 24h).value_or(lim.idle_timeout);
    lim.max_connections =
        static_cast<std::size_t>(r.get_int("max_connections", 1, 1'000'000)
                                     .value_or(static_cast<std::int64_t>(lim.max_connections)));
    lim.max_connections_per_ip = static_cast<std::size_t>(
        r.get_int("max_connections_per_ip", 0, 1'000'000)
            .value_or(static_cast<std::int64_t>(lim.max_connections_per_ip)));
    lim.max_buffered_body_bytes =
        r.get_size("max_buffered_body", 64 * kib, 4 * gib).value_or(lim.max_buffered_body_bytes);
    if (lim.max_body_bytes > lim.max_buffered_body_bytes) {
        r.error("max_body",
                "'max_body' (" + std::to_string(lim.max_body_bytes) +
                    " bytes) must not exceed 'max_buffered_body' (" +
                    std::to_string(lim.max_buffered_body_bytes) +
                    " bytes), the ceiling on request bodies read at once");
    }
    return address.has_value() || !r.has("address");
}

bool same_port_overlaps(const endpoint& a, const endpoint& b) {
    if (a.port == 0 || a.port != b.port) {
        return false;
    }
    const auto wildcard = [](const endpoint& e) { return e.host == "0.0.0.0" || e.host == "::"; };
    return a.host == b.host || wildcard(a) || wildcard(b);
}

// Dedup rows and the SendGrid events seen must outlive the longest bounded vendor redelivery
// window (SendGrid: 3 days); outbox "seen" markers must outlive any replay of a decision.
void read_retention(reader r, retention_settings& out) {
    constexpr std::int64_t max_days = 100 * 366;
    const auto days = [&r](std::string_view key, std::int64_t min, std::int64_t& value) {
        if (auto v = r.get_int(key, 0, max_days)) {
            if (*v != 0 && *v < min) {
                r.error(key,
                        "'" + std::string(key) + "' must be 0 (keep for ever) or at least " +
                            std::to_string(min) + " days");
            } else {
                value = *v;
            }
        }
    };
    days("dedup_days", 3, out.dedup_days);
    days("connector_events_days", 3, out.connector_events_days);
    days("audit_days", 1, out.audit_days);
    days("changes_days", 1, out.changes_days);
    days("outbox_days", 1, out.outbox_days);
    days("outbox_seen_days", 90, out.outbox_seen_days);
    out.interval = r.get_duration("interval", std::chrono::minutes(1), std::chrono::hours(24))
                       .value_or(out.interval);
    out.chunk = r.get_int("chunk", 10, 100'000).value_or(out.chunk);
    const auto dedup_forever = out.dedup_days == 0;
    if (out.outbox_seen_days != 0 && (dedup_forever || out.outbox_seen_days < out.dedup_days)) {
        r.error("outbox_seen_days",
                "'outbox_seen_days' must be 0 (keep for ever) or at least 'dedup_days': a "
                "redelivered event could otherwise decide an action again");
    }
}

void read_daemon(reader& d, daemon_settings& out) {
    out.where.daemon = d.position();

    if (auto dir = d.get_string("data_dir", required)) {
        if (dir->empty()) {
            d.error("data_dir", "'data_dir' must not be empty");
        }
        out.data_dir = *dir;
    }
    out.where.data_dir = d.position_of("data_dir");
    out.time_zone = d.get_time_zone("time_zone", required).value_or("");
    out.log_level =
        d.get_enum("log_level", {"trace", "debug", "info", "warn", "error", "critical", "off"})
            .value_or(out.log_level);
    if (auto fmt = d.get_enum("log_format", {"auto", "text", "json", "journald"})) {
        out.log_fmt = *fmt == "text"       ? log_format::text
                      : *fmt == "json"     ? log_format::json
                      : *fmt == "journald" ? log_format::journald
                                           : log_format::automatic;
    }
    out.shutdown_grace = d.get_duration("shutdown_grace", 0ms, 1h).value_or(out.shutdown_grace);
    out.refresh_wait = d.get_duration("refresh_wait", 100ms, 10min).value_or(out.refresh_wait);
    out.secrets_key = d.get_secret("secrets_key");
    out.public_url = d.get_url("public_url").value_or("");

    auto webhook = d.sub("webhook_listener");
    const bool webhook_address_ok =
        read_listener(webhook, "0.0.0.0:8080", out.webhook, out.where.webhook_address);

    auto status = d.sub("status_listener");
    const bool status_address_ok =
        read_listener(status, "127.0.0.1:8081", out.status, out.where.status_address);
    out.status_token = status.get_secret("bearer_token");
    const bool token_given = status.has("bearer_token");
    if (auto hosts = status.get_string_array("allowed_hosts")) {
        for (const auto& h : *hosts) {
            const bool bad =
                h.empty() || h.find_first_of(" \t/\\@*?#,") != std::string::npos ||
                (h.find(':') != std::string::npos && !(h.starts_with('[') && h.ends_with(']')));
            if (bad) {
                status.error("allowed_hosts",
                             "allowed_hosts entry '" + h +
                                 "' is not a host name or address (no scheme, port, path or "
                                 "wildcard; an IPv6 address in brackets: \"[fd00::1]\")");
            }
        }
        out.status_allowed_hosts = std::move(*hosts);
    }
    if (status_address_ok && !out.status.address.is_loopback() && !token_given) {
        status.error("address",
                     "address '" + out.status.address.text() +
                         "' is not loopback; set 'bearer_token' so the status endpoint is not "
                         "open to the network");
    }
    if (status_address_ok && webhook_address_ok &&
        same_port_overlaps(out.status.address, out.webhook.address)) {
        status.error("address",
                     "address '" + out.status.address.text() +
                         "' collides with the webhook listener's '" + out.webhook.address.text() +
                         "'");
    }

    read_retention(d.sub("retention"), out.retention);

    auto clock = d.sub("clock");
    const auto mode = clock.get_enum("mode", {"system", "simulated"});
    out.clock = mode == "simulated" ? clock_mode::simulated : clock_mode::system;
    if (out.clock == clock_mode::simulated) {
        if (!clock.has("start")) {
            clock.ignore("start");
            clock.error("start",
                        "missing required key 'start' (the simulated clock needs a start "
                        "instant, e.g. start = \"2026-01-05T08:00:00Z\")");
        } else if (auto start = clock.get_instant("start")) {
            out.clock_start = *start;
        }
    } else if (clock.has("start")) {
        (void)clock.get_instant("start");
        clock.error("start", "'start' is only allowed with mode = \"simulated\"");
    }
}

bool valid_connector_name(std::string_view name) {
    if (name.empty() || name.size() > 64) {
        return false;
    }
    for (const char c : name) {
        const bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
        if (!ok) {
            return false;
        }
    }
    return true;
}

}  // namespace

reader loaded_config::connector_reader(std::size_t i, diagnostics& diags) const {
    reader root(document, file.string(), diags);
    auto r = root.sub("connectors").sub(connectors.at(i).name);
    r.ignore("kind");
    r.ignore("enabled");
    return r;
}

std::optional<loaded_config> load_string(std::string_view toml_text,
                                         std::string file_name,
                                         diagnostics& diags,
                                         const connector_parser& parse_connector,
                                         const section_parsers& sections) {
    const std::size_t errors_before = diags.error_count();
    auto root = reader::parse(toml_text, file_name, diags);
    if (!root) {
        return std::nullopt;
    }

    loaded_config cfg;
    cfg.file = file_name;
    cfg.document = root->document();

    auto daemon = root->sub("daemon");
    read_daemon(daemon, cfg.daemon);

    auto connectors = root->sub("connectors");
    for (auto& c : connectors.subtables()) {
        connector_section section;
        section.name = c.name();
        section.where = c.position();
        section.kind = c.get_string("kind").value_or(section.name);
        section.enabled = c.get_bool("enabled").value_or(true);
        if (!valid_connector_name(section.name)) {
            diags.error(section.where,
                        "[connectors] connector name '" + section.name +
                            "' may only contain a-z, 0-9, '_' and '-' (it is used in URLs)");
        }
        if (section.kind.empty()) {
            c.error("kind", "'kind' must not be empty");
        }
        cfg.connectors.push_back(section);
        if (parse_connector) {
            parse_connector(cfg.connectors.back(), c);
        } else {
            c.accept_rest();
        }
    }

    for (const auto& [name, parse] : sections) {
        auto r = root->sub(name);
        parse(r);
    }

    root->finish();
    if (diags.error_count() > errors_before) {
        return std::nullopt;
    }
    return cfg;
}

std::optional<loaded_config> load(const std::filesystem::path& file,
                                  diagnostics& diags,
                                  const connector_parser& parse_connector,
                                  const section_parsers& sections) {
    std::ifstream in(file, std::ios::binary);
    if (!in) {
        diags.error({file.string(), 0, 0},
                    std::string("cannot open configuration file: ") + std::strerror(errno));
        return std::nullopt;
    }
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (in.bad()) {
        diags.error({file.string(), 0, 0}, "cannot read configuration file");
        return std::nullopt;
    }
    return load_string(text, file.string(), diags, parse_connector, sections);
}

}  // namespace billsync::config
