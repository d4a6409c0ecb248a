#include "sandbox/chaos_profile.hpp"

#include <fmt/format.h>
#include <toml++/toml.h>

#include <algorithm>
#include <array>
#include <fstream>
#include <sstream>

namespace billsync::sandbox {

namespace {

namespace sim = simulators;

// The first mistake, with where it is.
struct profile_error {
    std::string message;
};

class profile_reader {
public:
    explicit profile_reader(const std::string& file) : file_(file) {}

    [[noreturn]] void fail(const toml::node& at, const std::string& what) const {
        const auto& p = at.source().begin;
        throw profile_error{fmt::format("{}:{}:{}: {}", file_, p.line, p.column, what)};
    }

    // Every key of `t` must be one of `known`.
    void only(const toml::table& t,
              std::initializer_list<std::string_view> known,
              std::string_view where) const {
        for (const auto& [key, node] : t) {
            if (std::find(known.begin(), known.end(), key.str()) == known.end()) {
                std::string list;
                for (const auto k : known) {
                    list += fmt::format("{}{}", list.empty() ? "" : ", ", k);
                }
                fail(node, fmt::format("{}: unknown key '{}' (known: {})", where, key.str(), list));
            }
        }
    }

    double probability(const toml::table& t, std::string_view key, std::string_view where) const {
        const auto* n = t.get(key);
        if (n == nullptr) {
            return 0.0;
        }
        double v = 0.0;
        if (const auto* f = n->as_floating_point()) {
            v = f->get();
        } else if (const auto* i = n->as_integer()) {
            v = static_cast<double>(i->get());
        } else {
            fail(*n, fmt::format("{}: '{}' must be a number from 0 to 1", where, key));
        }
        if (!(v >= 0.0 && v <= 1.0)) {
            fail(*n, fmt::format("{}: '{}' must be from 0 to 1, not {}", where, key, v));
        }
        return v;
    }

    std::optional<std::int64_t> integer(const toml::table& t,
                                        std::string_view key,
                                        std::int64_t lo,
                                        std::int64_t hi,
                                        std::string_view where) const {
        const auto* n = t.get(key);
        if (n == nullptr) {
            return std::nullopt;
        }
        const auto* i = n->as_integer();
        if (i == nullptr) {
            fail(*n, fmt::format("{}: '{}' must be a whole number", where, key));
        }
        if (i->get() < lo || i->get() > hi) {
            fail(*n, fmt::format("{}: '{}' must be from {} to {}", where, key, lo, hi));
        }
        return i->get();
    }

    sim::fault_rule request(const toml::table& t,
                            const chaos_vendor& vendor,
                            const std::string& where) const {
        only(t,
             {"method",
              "path",
              "kind",
              "probability",
              "status",
              "retry_after_s",
              "hold_ms",
              "max_in_a_row",
              "permanent"},
             where);
        sim::fault_rule r;
        r.path_prefix = std::string(vendor.api_prefix);
        const auto* kind = t.get("kind");
        if (kind == nullptr) {
            fail(t, where + ": 'kind' is required");
        }
        const auto* kind_text = kind->as_string();
        const auto k = kind_text != nullptr ? sim::fault_kind_from(kind_text->get()) : std::nullopt;
        if (!k) {
            fail(*kind,
                 where +
                     ": 'kind' must be one of server_error, rate_limited, rate_limited_bare, "
                     "timeout_unread, timeout_after_read, reset_after_write, slow");
        }
        r.kind = *k;
        r.hold = r.kind == sim::fault_kind::slow ? std::chrono::milliseconds(300)
                                                 : std::chrono::milliseconds(150);
        if (const auto* m = t.get("method")) {
            const auto* s = m->as_string();
            static constexpr std::array<std::string_view, 6> methods = {
                "*", "GET", "POST", "PUT", "PATCH", "DELETE"};
            if (s == nullptr ||
                std::find(methods.begin(), methods.end(), s->get()) == methods.end()) {
                fail(*m, where + ": 'method' must be one of *, GET, POST, PUT, PATCH, DELETE");
            }
            r.method = s->get();
        }
        if (const auto* p = t.get("path")) {
            const auto* s = p->as_string();
            if (s == nullptr || !s->get().starts_with('/')) {
                fail(*p, where + ": 'path' must be a path prefix starting with '/'");
            }
            r.path_prefix = s->get();
        }
        if (const auto* p = t.get("permanent")) {
            const auto* b = p->as_boolean();
            if (b == nullptr) {
                fail(*p, where + ": 'permanent' must be true or false");
            }
            r.permanent = b->get();
        }
        // A permanent rule fails every matching request: its probability does not matter.
        if (t.get("probability") == nullptr && !r.permanent) {
            fail(t, where + ": 'probability' is required (unless permanent = true)");
        }
        r.probability = r.permanent && t.get("probability") == nullptr
                            ? 1.0
                            : probability(t, "probability", where);
        if (const auto v = integer(t, "status", 400, 599, where)) {
            if (r.kind != sim::fault_kind::server_error) {
                fail(*t.get("status"),
                     where + ": 'status' applies to kind = \"server_error\" only");
            }
            r.status = static_cast<unsigned>(*v);
        }
        if (const auto v = integer(t, "retry_after_s", 0, 3600, where)) {
            if (r.kind != sim::fault_kind::rate_limited) {
                fail(*t.get("retry_after_s"),
                     where + ": 'retry_after_s' applies to kind = \"rate_limited\" only");
            }
            r.retry_after = std::chrono::seconds(*v);
        }
        if (const auto v = integer(t, "hold_ms", 0, 600'000, where)) {
            const bool held = r.kind == sim::fault_kind::slow ||
                              r.kind == sim::fault_kind::timeout_unread ||
                              r.kind == sim::fault_kind::timeout_after_read;
            if (!held) {
                fail(*t.get("hold_ms"),
                     where + ": 'hold_ms' applies to slow answers and timeouts only");
            }
            r.hold = std::chrono::milliseconds(*v);
        }
        if (const auto v = integer(t, "max_in_a_row", 0, 1000, where)) {
            r.max_in_a_row = static_cast<std::uint32_t>(*v);
        }
        return r;
    }

    chaos_vendor_faults vendor(const toml::table& t, const chaos_vendor& v) const {
        const auto where = fmt::format("[{}]", v.name);
        only(t, {"request", "webhooks"}, where);
        chaos_vendor_faults out;
        if (const auto* n = t.get("request"); n != nullptr && v.api_prefix.empty()) {
            fail(*n,
                 fmt::format("{}: billsync calls no API of {} (its changes are relayed to "
                             "billsync): only [{}.webhooks]",
                             where,
                             v.name,
                             v.name));
        }
        if (const auto* n = t.get("request")) {
            const auto* rules = n->as_array();
            if (rules == nullptr || !rules->is_array_of_tables()) {
                fail(*n,
                     fmt::format("{}: 'request' must be an array of tables ([[{}.request]])",
                                 where,
                                 v.name));
            }
            std::size_t i = 0;
            for (const auto& rule : *rules) {
                out.requests.push_back(
                    request(*rule.as_table(), v, fmt::format("[[{}.request]] #{}", v.name, ++i)));
            }
        }
        if (const auto* n = t.get("webhooks")) {
            const auto wh_where = fmt::format("[{}.webhooks]", v.name);
            const auto* w = n->as_table();
            if (w == nullptr) {
                fail(*n, wh_where + " must be a table");
            }
            if (v.webhook_source.empty()) {
                fail(*n,
                     wh_where + ": the chaos runner delivers no webhooks of " +
                         std::string(v.name) + " (only qbo, sendgrid, xero and taxdome)");
            }
            only(*w, {"lose", "duplicate", "reorder"}, wh_where);
            sim::webhook_fault_rule rule;
            rule.source = std::string(v.webhook_source);
            rule.lose = probability(*w, "lose", wh_where);
            rule.duplicate = probability(*w, "duplicate", wh_where);
            rule.reorder = probability(*w, "reorder", wh_where);
            out.webhooks = rule;
        }
        return out;
    }

    chaos_profile profile(const toml::table& root) const {
        chaos_profile out;
        for (const auto& [key, node] : root) {
            const auto& vs = chaos_vendors();
            const auto v = std::find_if(
                vs.begin(), vs.end(), [&](const chaos_vendor& c) { return c.name == key.str(); });
            if (v == vs.end()) {
                fail(node,
                     fmt::format("unknown vendor '{}' (chaos runs have qbo, sendgrid, twilio, "
                                 "karbon, harvest, xero, taxdome)",
                                 key.str()));
            }
            const auto* t = node.as_table();
            if (t == nullptr) {
                fail(node, fmt::format("[{}] must be a table", key.str()));
            }
            out.vendors.emplace(std::string(key.str()), vendor(*t, *v));
        }
        return out;
    }

private:
    const std::string& file_;
};

}  // namespace

bool chaos_vendor_faults::permanent() const {
    return std::any_of(requests.begin(), requests.end(), [](const simulators::fault_rule& r) {
        return r.permanent;
    });
}

const std::vector<chaos_vendor>& chaos_vendors() {
    static const std::vector<chaos_vendor> vendors = {{"qbo", "/v3/", "qbo"},
                                                      {"sendgrid", "/v3/mail/", "sendgrid/events"},
                                                      {"twilio", "/2010-04-01/", ""},
                                                      {"karbon", "/v3/", ""},
                                                      {"harvest", "/v2/", ""},
                                                      {"xero", "/api.xro/2.0/", "xero"},
                                                      {"taxdome", "", "taxdome"}};
    return vendors;
}

std::optional<chaos_profile> parse_chaos_profile(std::string_view text,
                                                 const std::string& file,
                                                 std::string& error) {
    try {
        const auto root = toml::parse(text, std::string_view(file));
        return profile_reader(file).profile(root);
    } catch (const toml::parse_error& e) {
        const auto& p = e.source().begin;
        error = fmt::format("{}:{}:{}: {}", file, p.line, p.column, e.description());
    } catch (const profile_error& e) {
        error = e.message;
    }
    return std::nullopt;
}

std::optional<chaos_profile> read_chaos_profile(const std::string& file, std::string& error) {
    std::ifstream in(file, std::ios::binary);
    if (!in) {
        error = file + ": cannot read the fault profile";
        return std::nullopt;
    }
    std::ostringstream text;
    text << in.rdbuf();
    return parse_chaos_profile(text.str(), file, error);
}

}  // namespace billsync::sandbox
