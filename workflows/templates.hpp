#pragma once

// Message templates for client-facing text (follow-up emails, SMS, internal tasks).
//
// A template is plain text with placeholders in braces: "Dear {client_name}, invoice
// {invoice_number} ...". "{{" and "}}" stand for literal braces. Templates are parsed once, when
// the configuration is loaded; an unknown placeholder, an unclosed '{' or a stray '}' is an error
// that points at its byte offset in the text, so the configuration reader can report it at
// file:line:col. A placeholder whose value is empty at render time (e.g. {payment_link} for an
// invoice without one) makes render() fail rather than leave a blank in a client's inbox.

#include <date/date.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "mappings/money.hpp"

namespace billsync::workflows {

enum class placeholder : std::uint8_t {
    client_name,
    invoice_number,
    amount,
    balance,
    due_date,
    days_overdue,
    days_overdue_text,  // "1 day", "15 days": reads right for every count
    payment_link,
    firm_name,
    firm_phone,
    days_until_due,  // whole days from today to the due date; "0" on the due date
    autopay_link,    // the auto-pay enrollment page ([followup] autopay_link)
};

std::string_view to_string(placeholder p) noexcept;  // "client_name"
std::optional<placeholder> placeholder_from_name(std::string_view name) noexcept;

// The values a template may use. Money is formatted from minor units and currency, dates as
// "March 5, 2026".
struct template_values {
    std::string client_name;
    std::string invoice_number;
    mappings::money amount;   // the invoice total
    mappings::money balance;  // what is still owed
    date::year_month_day due_date{};
    std::int64_t days_overdue = 0;
    std::string payment_link;
    std::string firm_name;
    std::string firm_phone;
    std::int64_t days_until_due = 0;
    std::string autopay_link;
};

struct template_error {
    std::size_t offset = 0;  // byte offset in the template text
    std::string message;     // "unknown placeholder '{client}' (did you mean '{client_name}'?)"
};

class message_template {
public:
    message_template() = default;

    // Parses text; on failure the first problem found.
    static std::variant<message_template, template_error> parse(std::string_view text);

    // Fails (nullopt) when a placeholder's value is empty; `missing` then names the first one.
    std::optional<std::string> render(const template_values& values,
                                      std::optional<placeholder>* missing = nullptr) const;

    bool uses(placeholder p) const noexcept;
    const std::string& source() const noexcept { return source_; }
    bool empty() const noexcept { return segments_.empty(); }

private:
    struct segment {
        std::string literal;  // used when !slot
        std::optional<placeholder> slot;
    };
    std::string source_;
    std::vector<segment> segments_;
};

// "$1,234.50", "-$5.00", "€12.00", "£3.10", "¥1,200", "CHF 1,234.50" (code for others).
std::string format_money(const mappings::money& m);
// "March 5, 2026".
std::string format_date(date::year_month_day d);

}  // namespace billsync::workflows
