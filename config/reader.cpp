#include "config/reader.hpp"

#include <date/date.h>
#include <date/tz.h>
#include <toml++/toml.h>

#include <algorithm>
#include <exception>
#include <limits>
#include <set>
#include <tuple>
#include <utility>

#include "config/values.hpp"

namespace billsync::config {

namespace detail {

struct reader_state {
    std::shared_ptr<const toml::table> document;
    const toml::table* table = nullptr;  // null when the table is absent
    std::string path;
    std::string file;
    diagnostics* diags = nullptr;
    source_pos header;
    bool quiet_missing = false;  // the table had the wrong type: no "missing key" pile-up
    bool accept_all = false;
    bool finished = false;
    std::set<std::string, std::less<>> known;
    std::vector<std::pair<std::string, std::shared_ptr<reader_state>>> children;

    std::string prefix() const { return path.empty() ? std::string() : "[" + path + "] "; }
    std::string child_path(std::string_view key) const {
        return path.empty() ? std::string(key) : path + "." + std::string(key);
    }
    source_pos pos(const toml::source_region& region) const {
        return {file, region.begin.line, region.begin.column};
    }
};

}  // namespace detail

namespace {

using detail::reader_state;

struct found {
    const toml::node* node;
    source_pos where;  // the key
};

std::string_view type_name(toml::node_type type) {
    switch (type) {
        case toml::node_type::table:
            return "a table";
        case toml::node_type::array:
            return "an array";
        case toml::node_type::string:
            return "a string";
        case toml::node_type::integer:
            return "an integer";
        case toml::node_type::floating_point:
            return "a floating-point number";
        case toml::node_type::boolean:
            return "a boolean";
        case toml::node_type::date:
            return "a date";
        case toml::node_type::time:
            return "a time";
        case toml::node_type::date_time:
            return "a date-time";
        case toml::node_type::none:
            break;
    }
    return "nothing";
}

std::string quoted_list(const std::vector<std::string_view>& items) {
    std::string out;
    for (const auto item : items) {
        if (!out.empty()) {
            out += ", ";
        }
        out += '\'';
        out += item;
        out += '\'';
    }
    return out;
}

// Entries of a table in document order (toml::table is ordered by key).
std::vector<std::pair<const toml::key*, const toml::node*>> in_document_order(
    const toml::table& table) {
    std::vector<std::pair<const toml::key*, const toml::node*>> entries;
    for (const auto& [key, node] : table) {
        entries.emplace_back(&key, &node);
    }
    std::sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) {
        const auto& pa = a.first->source().begin;
        const auto& pb = b.first->source().begin;
        return std::make_tuple(pa.line, pa.column, a.first->str()) <
               std::make_tuple(pb.line, pb.column, b.first->str());
    });
    return entries;
}

std::vector<std::string_view> time_zone_names() {
    std::vector<std::string_view> names;
    try {
        const auto& db = date::get_tzdb();
        for (const auto& zone : db.zones) {
            names.push_back(zone.name());
        }
    } catch (const std::exception&) {
        // No tzdata: no suggestions.
    }
    return names;
}

class getter {
public:
    getter(reader_state& s, std::string_view key) : s_(s), key_(key) {}

    // Marks the key as known and finds it; reports a missing required key.
    std::optional<found> fetch(requirement req) {
        s_.known.emplace(key_);
        if (s_.table != nullptr) {
            if (auto it = s_.table->find(key_); it != s_.table->end()) {
                return found{&it->second, s_.pos(it->first.source())};
            }
        }
        if (req == requirement::required && !s_.quiet_missing) {
            s_.diags->error(s_.header, s_.prefix() + "missing required key '" + key_ + "'");
        }
        return std::nullopt;
    }

    void fail(const found& f, const std::string& message) {
        s_.diags->error(f.where, s_.prefix() + message);
    }
    void fail_type(const found& f, std::string_view expected) {
        fail(f,
             "'" + key_ + "' must be " + std::string(expected) + ", not " +
                 std::string(type_name(f.node->type())));
    }

    const std::string& key() const { return key_; }
    reader_state& state() { return s_; }

    // The string value, or a type error.
    std::optional<std::string> string_of(const found& f, std::string_view expected) {
        if (const auto* v = f.node->as_string()) {
            return v->get();
        }
        fail_type(f, expected);
        return std::nullopt;
    }

private:
    reader_state& s_;
    std::string key_;
};

}  // namespace

// ---- construction -------------------------------------------------------------------------

reader::reader(std::shared_ptr<detail::reader_state> state) : state_(std::move(state)) {}

reader::reader(std::shared_ptr<const toml::table> document,
               std::string file_name,
               diagnostics& diags)
    : state_(std::make_shared<reader_state>()) {
    state_->table = document.get();
    state_->document = std::move(document);
    state_->file = std::move(file_name);
    state_->diags = &diags;
    state_->header = {state_->file, 1, 1};
}

std::optional<reader> reader::parse(std::string_view toml_text,
                                    std::string file_name,
                                    diagnostics& diags) {
    try {
        auto table = toml::parse(toml_text, std::string_view(file_name));
        return reader(
            std::make_shared<const toml::table>(std::move(table)), std::move(file_name), diags);
    } catch (const toml::parse_error& e) {
        std::string description(e.description());
        if (!description.empty() && description[0] >= 'A' && description[0] <= 'Z') {
            description[0] = static_cast<char>(description[0] - 'A' + 'a');
        }
        diags.error({file_name, e.source().begin.line, e.source().begin.column},
                    "invalid TOML: " + description);
        return std::nullopt;
    }
}

std::shared_ptr<const toml::table> reader::document() const { return state_->document; }
const std::string& reader::path() const noexcept { return state_->path; }
std::string reader::name() const {
    const auto dot = state_->path.rfind('.');
    return dot == std::string::npos ? state_->path : state_->path.substr(dot + 1);
}
bool reader::exists() const noexcept { return state_->table != nullptr; }
diagnostics& reader::diags() const noexcept { return *state_->diags; }
source_pos reader::position() const { return state_->header; }

source_pos reader::position_of(std::string_view key) const {
    if (state_->table != nullptr) {
        if (auto it = state_->table->find(key); it != state_->table->end()) {
            return state_->pos(it->first.source());
        }
    }
    return state_->header;
}

bool reader::has(std::string_view key) const {
    return state_->table != nullptr && state_->table->contains(key);
}

void reader::error(std::string_view key, std::string message) {
    state_->diags->error(position_of(key), state_->prefix() + message);
}

void reader::warning(std::string_view key, std::string message) {
    state_->diags->warning(position_of(key), state_->prefix() + message);
}

// ---- scalar getters -----------------------------------------------------------------------

std::optional<std::string> reader::get_string(std::string_view key, requirement req) {
    getter g(*state_, key);
    auto f = g.fetch(req);
    return f ? g.string_of(*f, "a string") : std::nullopt;
}

std::optional<bool> reader::get_bool(std::string_view key, requirement req) {
    getter g(*state_, key);
    auto f = g.fetch(req);
    if (!f) {
        return std::nullopt;
    }
    if (const auto* v = f->node->as_boolean()) {
        return v->get();
    }
    g.fail_type(*f, "a boolean (true or false)");
    return std::nullopt;
}

std::optional<std::int64_t> reader::get_int(std::string_view key,
                                            std::int64_t min,
                                            std::int64_t max,
                                            requirement req) {
    getter g(*state_, key);
    auto f = g.fetch(req);
    if (!f) {
        return std::nullopt;
    }
    const auto* v = f->node->as_integer();
    if (v == nullptr) {
        g.fail_type(*f, "an integer");
        return std::nullopt;
    }
    const std::int64_t value = v->get();
    if (value < min || value > max) {
        g.fail(*f,
               "'" + g.key() + "' must be between " + std::to_string(min) + " and " +
                   std::to_string(max) + ", not " + std::to_string(value));
        return std::nullopt;
    }
    return value;
}

std::optional<std::chrono::milliseconds> reader::get_duration(std::string_view key,
                                                              requirement req) {
    return get_duration(
        key, std::chrono::milliseconds::zero(), std::chrono::milliseconds::max(), req);
}

namespace {

std::string format_ms(std::chrono::milliseconds d) {
    const auto ms = d.count();
    if (ms % 86'400'000 == 0 && ms != 0) {
        return std::to_string(ms / 86'400'000) + "d";
    }
    if (ms % 3'600'000 == 0 && ms != 0) {
        return std::to_string(ms / 3'600'000) + "h";
    }
    if (ms % 60'000 == 0 && ms != 0) {
        return std::to_string(ms / 60'000) + "m";
    }
    if (ms % 1'000 == 0) {
        return std::to_string(ms / 1'000) + "s";
    }
    return std::to_string(ms) + "ms";
}

}  // namespace

std::optional<std::chrono::milliseconds> reader::get_duration(std::string_view key,
                                                              std::chrono::milliseconds min,
                                                              std::chrono::milliseconds max,
                                                              requirement req) {
    getter g(*state_, key);
    auto f = g.fetch(req);
    if (!f) {
        return std::nullopt;
    }
    auto text = g.string_of(*f, "a duration string such as \"30s\"");
    if (!text) {
        return std::nullopt;
    }
    auto value = parse_duration(*text);
    if (!value) {
        g.fail(*f, "malformed duration '" + *text + "' (expected e.g. \"30s\", \"5m\", \"1h30m\")");
        return std::nullopt;
    }
    if (*value < min) {
        g.fail(*f, "'" + g.key() + "' must be at least " + format_ms(min) + ", not " + *text);
        return std::nullopt;
    }
    if (*value > max) {
        g.fail(*f, "'" + g.key() + "' must be at most " + format_ms(max) + ", not " + *text);
        return std::nullopt;
    }
    return value;
}

std::optional<std::uint64_t> reader::get_size(std::string_view key, requirement req) {
    return get_size(key, 0, std::numeric_limits<std::uint64_t>::max(), req);
}

std::optional<std::uint64_t> reader::get_size(std::string_view key,
                                              std::uint64_t min,
                                              std::uint64_t max,
                                              requirement req) {
    getter g(*state_, key);
    auto f = g.fetch(req);
    if (!f) {
        return std::nullopt;
    }
    std::optional<std::uint64_t> value;
    std::string shown;
    if (const auto* i = f->node->as_integer()) {
        if (i->get() < 0) {
            g.fail(*f, "'" + g.key() + "' must not be negative");
            return std::nullopt;
        }
        value = static_cast<std::uint64_t>(i->get());
        shown = std::to_string(i->get());
    } else if (const auto* s = f->node->as_string()) {
        shown = s->get();
        value = parse_size(shown);
        if (!value) {
            g.fail(*f,
                   "malformed size '" + shown +
                       "' (expected e.g. \"1MiB\", \"512KiB\", \"64KB\" or a number of bytes)");
            return std::nullopt;
        }
    } else {
        g.fail_type(*f, "a size such as \"1MiB\" or a number of bytes");
        return std::nullopt;
    }
    if (*value < min || *value > max) {
        g.fail(*f,
               "'" + g.key() + "' must be between " + std::to_string(min) + " and " +
                   std::to_string(max) + " bytes, not " + shown);
        return std::nullopt;
    }
    return value;
}

std::optional<secret> reader::get_secret(std::string_view key, requirement req) {
    getter g(*state_, key);
    auto f = g.fetch(req);
    if (!f) {
        return std::nullopt;
    }
    auto text = g.string_of(*f, "a string (a secret reference such as \"${env:NAME}\")");
    if (!text) {
        return std::nullopt;
    }
    std::string problem;
    auto value = resolve_secret(*text, problem);
    if (!value) {
        g.fail(*f, "'" + g.key() + "': " + problem);
        return std::nullopt;
    }
    if (value->resolved() && value->reveal().size() < min_secret_bytes) {
        // The length may be said; the value never is.
        g.fail(*f,
               "'" + g.key() + "' is " + std::to_string(value->reveal().size()) +
                   " bytes long; secrets must be at least " + std::to_string(min_secret_bytes) +
                   " bytes (a shorter value cannot be masked in logs without hiding ordinary "
                   "text)");
        return std::nullopt;
    }
    if (value->is_inline()) {
        state_->diags->warning(f->where,
                               state_->prefix() + "'" + g.key() +
                                   "' is an inline secret; prefer a reference such as "
                                   "\"${credential:NAME}\", \"${env:NAME}\" or \"${file:/path}\"");
    }
    return value;
}

std::optional<std::vector<std::string>> reader::get_string_array(std::string_view key,
                                                                 requirement req) {
    getter g(*state_, key);
    auto f = g.fetch(req);
    if (!f) {
        return std::nullopt;
    }
    const auto* array = f->node->as_array();
    if (array == nullptr) {
        g.fail_type(*f, "an array of strings");
        return std::nullopt;
    }
    std::vector<std::string> out;
    bool ok = true;
    std::size_t index = 0;
    for (const auto& element : *array) {
        ++index;
        if (const auto* s = element.as_string()) {
            out.push_back(s->get());
        } else {
            state_->diags->error(
                state_->pos(element.source()),
                state_->prefix() + "'" + g.key() + "' must be an array of strings; element " +
                    std::to_string(index) + " is " + std::string(type_name(element.type())));
            ok = false;
        }
    }
    return ok ? std::optional(std::move(out)) : std::nullopt;
}

std::optional<util::instant> reader::get_instant(std::string_view key, requirement req) {
    getter g(*state_, key);
    auto f = g.fetch(req);
    if (!f) {
        return std::nullopt;
    }
    if (const auto* dt = f->node->as_date_time()) {
        const toml::date_time& v = dt->get();
        if (!v.offset) {
            g.fail(*f,
                   "'" + g.key() +
                       "' needs a UTC offset (e.g. 2026-01-05T08:00:00Z or "
                       "2026-01-05T03:00:00-05:00)");
            return std::nullopt;
        }
        const date::year_month_day ymd{
            date::year{v.date.year}, date::month{v.date.month}, date::day{v.date.day}};
        const auto local =
            date::sys_days{ymd} + std::chrono::hours{v.time.hour} +
            std::chrono::minutes{v.time.minute} + std::chrono::seconds{v.time.second} +
            std::chrono::duration_cast<util::duration>(std::chrono::nanoseconds{v.time.nanosecond});
        return util::instant{local - std::chrono::minutes{v.offset->minutes}};
    }
    auto text = g.string_of(*f, "an RFC 3339 timestamp such as \"2026-01-05T08:00:00Z\"");
    if (!text) {
        return std::nullopt;
    }
    util::instant out{};
    if (!util::parse_rfc3339(*text, out)) {
        g.fail(*f,
               "malformed timestamp '" + *text +
                   "' (expected RFC 3339, e.g. \"2026-01-05T08:00:00Z\")");
        return std::nullopt;
    }
    return out;
}

std::optional<std::string> reader::get_time_zone(std::string_view key, requirement req) {
    getter g(*state_, key);
    auto f = g.fetch(req);
    if (!f) {
        return std::nullopt;
    }
    auto text = g.string_of(*f, "a time zone name such as \"America/New_York\"");
    if (!text) {
        return std::nullopt;
    }
    try {
        (void)date::locate_zone(*text);
        return text;
    } catch (const std::exception&) {
        std::string message = "unknown time zone '" + *text + "'";
        const auto names = time_zone_names();
        if (auto best = closest_match(*text, names)) {
            message += " (did you mean '" + std::string(*best) + "'?)";
        } else {
            message += " (expected an IANA name such as \"America/New_York\" or \"UTC\")";
        }
        g.fail(*f, message);
        return std::nullopt;
    }
}

std::optional<std::string> reader::get_enum(std::string_view key,
                                            std::initializer_list<std::string_view> allowed,
                                            requirement req) {
    return get_enum(key, std::vector<std::string_view>(allowed), req);
}

std::optional<std::string> reader::get_enum(std::string_view key,
                                            const std::vector<std::string_view>& allowed,
                                            requirement req) {
    getter g(*state_, key);
    auto f = g.fetch(req);
    if (!f) {
        return std::nullopt;
    }
    auto text = g.string_of(*f, "one of " + quoted_list(allowed));
    if (!text) {
        return std::nullopt;
    }
    if (std::find(allowed.begin(), allowed.end(), *text) != allowed.end()) {
        return text;
    }
    std::string message =
        "'" + g.key() + "' must be one of " + quoted_list(allowed) + ", not '" + *text + "'";
    if (auto best = closest_match(*text, allowed)) {
        message += " (did you mean '" + std::string(*best) + "'?)";
    }
    g.fail(*f, message);
    return std::nullopt;
}

std::optional<endpoint> reader::get_endpoint(std::string_view key, requirement req) {
    getter g(*state_, key);
    auto f = g.fetch(req);
    if (!f) {
        return std::nullopt;
    }
    auto text = g.string_of(*f, "a \"host:port\" string");
    if (!text) {
        return std::nullopt;
    }
    auto value = parse_endpoint(*text);
    if (!value) {
        g.fail(*f,
               "malformed endpoint '" + *text +
                   "' (expected \"host:port\" with an IP address or localhost, e.g. "
                   "\"127.0.0.1:8081\" or \"[::1]:8081\")");
    }
    return value;
}

std::optional<std::string> reader::get_url(std::string_view key, requirement req) {
    getter g(*state_, key);
    auto f = g.fetch(req);
    if (!f) {
        return std::nullopt;
    }
    auto text = g.string_of(*f, "a URL string");
    if (!text) {
        return std::nullopt;
    }
    if (!is_http_url(*text)) {
        g.fail(*f, "'" + g.key() + "' must be an absolute http or https URL, not '" + *text + "'");
        return std::nullopt;
    }
    return text;
}

// ---- tables -------------------------------------------------------------------------------

reader reader::sub(std::string_view key) {
    auto& s = *state_;
    s.known.emplace(key);
    for (const auto& [name, child] : s.children) {
        if (name == key) {
            return reader(child);
        }
    }
    auto child = std::make_shared<reader_state>();
    child->document = s.document;
    child->path = s.child_path(key);
    child->file = s.file;
    child->diags = s.diags;
    child->header = s.header;
    child->quiet_missing = s.quiet_missing;
    if (s.table != nullptr) {
        if (auto it = s.table->find(key); it != s.table->end()) {
            if (const auto* table = it->second.as_table()) {
                child->table = table;
                child->header = s.pos(table->source());
            } else {
                s.diags->error(s.pos(it->first.source()),
                               s.prefix() + "'" + std::string(key) + "' must be a table, not " +
                                   std::string(type_name(it->second.type())));
                child->quiet_missing = true;
            }
        }
    }
    s.children.emplace_back(std::string(key), child);
    return reader(std::move(child));
}

std::vector<reader> reader::subtables() {
    std::vector<reader> out;
    if (state_->table == nullptr) {
        return out;
    }
    for (const auto& [key, node] : in_document_order(*state_->table)) {
        if (node->is_table()) {
            out.push_back(sub(key->str()));
        } else {
            state_->known.emplace(key->str());
            state_->diags->error(state_->pos(key->source()),
                                 state_->prefix() + "'" + std::string(key->str()) +
                                     "' must be a table, not " +
                                     std::string(type_name(node->type())));
        }
    }
    return out;
}

void reader::ignore(std::string_view key) { state_->known.emplace(key); }

void reader::accept_rest() { state_->accept_all = true; }

namespace {

void finish_state(reader_state& s, bool accept_all) {
    if (s.finished) {
        return;
    }
    s.finished = true;
    accept_all = accept_all || s.accept_all;
    if (s.table != nullptr && !accept_all) {
        const std::vector<std::string_view> candidates(s.known.begin(), s.known.end());
        for (const auto& [key, node] : in_document_order(*s.table)) {
            if (s.known.contains(key->str())) {
                continue;
            }
            const auto* table = node->as_table();
            const bool is_header_table = table != nullptr && !table->is_inline();
            const auto suggestion = closest_match(key->str(), candidates);
            std::string message;
            if (is_header_table) {
                message = "unknown table [" + s.child_path(key->str()) + "]";
                if (suggestion) {
                    message += " (did you mean [" + s.child_path(*suggestion) + "]?)";
                }
            } else {
                message = "unknown key '" + std::string(key->str()) + "'";
                if (suggestion) {
                    message += " (did you mean '" + std::string(*suggestion) + "'?)";
                }
            }
            s.diags->error(s.pos(key->source()), s.prefix() + message);
        }
    }
    for (const auto& [name, child] : s.children) {
        finish_state(*child, accept_all);
    }
}

}  // namespace

void reader::finish() { finish_state(*state_, false); }

}  // namespace billsync::config
