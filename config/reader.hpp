#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "config/diagnostics.hpp"
#include "config/secret.hpp"
#include "util/clock.hpp"

namespace toml {
inline namespace v3 {
class table;
}
}  // namespace toml

namespace billsync::config {

enum class requirement : bool { optional, required };
inline constexpr requirement required = requirement::required;

namespace detail {
struct reader_state;
}

// Reads one TOML table (e.g. [connectors.qbo]) against a schema that exists only as the calls
// made on it. Every getter marks its key as known and returns nullopt when the key is missing or
// its value is invalid; problems go to the shared diagnostics at the key's position, prefixed
// with the table's path ("[daemon] 'port' must be an integer, not a string"). A missing required
// key is reported at the table header. finish() then reports every key never asked for.
//
// Copies share state: a reader is a handle. Not thread-safe.
class reader {
public:
    // Parses a document. A TOML syntax error is reported at its position and yields nullopt.
    static std::optional<reader> parse(std::string_view toml_text,
                                       std::string file_name,
                                       diagnostics& diags);

    // A root reader over an already parsed document.
    reader(std::shared_ptr<const toml::table> document, std::string file_name, diagnostics& diags);

    // The parsed document, kept alive by every reader made from it.
    std::shared_ptr<const toml::table> document() const;

    const std::string& path() const noexcept;  // "connectors.qbo"; empty at the root
    std::string name() const;                  // last path component: "qbo"
    bool exists() const noexcept;              // false for a table absent from the document
    diagnostics& diags() const noexcept;
    source_pos position() const;                         // the table header (or nearest ancestor)
    source_pos position_of(std::string_view key) const;  // the key, or the table when absent
    bool has(std::string_view key) const;                // present; does not mark the key as known

    std::optional<std::string> get_string(std::string_view key, requirement req = {});
    std::optional<bool> get_bool(std::string_view key, requirement req = {});
    std::optional<std::int64_t> get_int(std::string_view key,
                                        std::int64_t min,
                                        std::int64_t max,
                                        requirement req = {});
    std::optional<std::chrono::milliseconds> get_duration(std::string_view key,
                                                          requirement req = {});
    std::optional<std::chrono::milliseconds> get_duration(std::string_view key,
                                                          std::chrono::milliseconds min,
                                                          std::chrono::milliseconds max,
                                                          requirement req = {});
    // A size string ("1MiB") or an integer number of bytes.
    std::optional<std::uint64_t> get_size(std::string_view key, requirement req = {});
    std::optional<std::uint64_t> get_size(std::string_view key,
                                          std::uint64_t min,
                                          std::uint64_t max,
                                          requirement req = {});
    // A reference ("${env:X}", "${file:/p}", "${credential:X}") or an inline literal, which is
    // accepted with a warning.
    std::optional<secret> get_secret(std::string_view key, requirement req = {});
    std::optional<std::vector<std::string>> get_string_array(std::string_view key,
                                                             requirement req = {});
    // An RFC 3339 string or a TOML offset date-time.
    std::optional<util::instant> get_instant(std::string_view key, requirement req = {});
    // An IANA name known to the system's tzdata.
    std::optional<std::string> get_time_zone(std::string_view key, requirement req = {});
    std::optional<std::string> get_enum(std::string_view key,
                                        std::initializer_list<std::string_view> allowed,
                                        requirement req = {});
    std::optional<std::string> get_enum(std::string_view key,
                                        const std::vector<std::string_view>& allowed,
                                        requirement req = {});
    std::optional<endpoint> get_endpoint(std::string_view key, requirement req = {});
    // An absolute http or https URL.
    std::optional<std::string> get_url(std::string_view key, requirement req = {});

    // The sub-table at key (a [header] table or an inline table). An absent table gives a reader
    // with exists() == false that reads every key as missing; a non-table value is an error.
    reader sub(std::string_view key);
    // Every sub-table of this table, in document order (e.g. each [connectors.<name>]). Values
    // that are not tables are reported as errors.
    std::vector<reader> subtables();

    // Reports "[path] message" at the key (or at the table when the key is absent).
    void error(std::string_view key, std::string message);
    void warning(std::string_view key, std::string message);

    // Marks one key as known without reading it.
    void ignore(std::string_view key);
    // Marks every key of this table and below as known (for sections nobody parses).
    void accept_rest();
    // Reports unknown keys here and in every sub-reader made from this one. Runs once.
    void finish();

private:
    explicit reader(std::shared_ptr<detail::reader_state> state);
    std::shared_ptr<detail::reader_state> state_;
};

}  // namespace billsync::config
