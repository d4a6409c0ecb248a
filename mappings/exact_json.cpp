#include "mappings/exact_json.hpp"

#include <exception>
#include <new>
#include <vector>

#include "mappings/json_depth.hpp"

namespace billsync::mappings {

namespace {

using nlohmann::json;

// Builds the DOM from SAX events, keeping number texts (depth is checked before, on the text).
class exact_builder {
public:
    using number_integer_t = json::number_integer_t;
    using number_unsigned_t = json::number_unsigned_t;
    using number_float_t = json::number_float_t;
    using string_t = json::string_t;
    using binary_t = json::binary_t;

    explicit exact_builder(json& root) : root_(root) {}

    bool null() { return add(nullptr) != nullptr; }
    bool boolean(bool v) { return add(v) != nullptr; }
    bool number_integer(number_integer_t v) { return add(v) != nullptr; }
    bool number_unsigned(number_unsigned_t v) { return add(v) != nullptr; }
    bool number_float(number_float_t /*unused*/, const string_t& raw) {
        return add(raw) != nullptr;
    }
    bool string(string_t& v) { return add(std::move(v)) != nullptr; }
    bool binary(binary_t& /*unused*/) {
        error_ = "binary values are not JSON";
        return false;
    }
    bool start_object(std::size_t /*unused*/) { return open(json::value_t::object); }
    bool start_array(std::size_t /*unused*/) { return open(json::value_t::array); }
    bool end_object() { return close(); }
    bool end_array() { return close(); }
    bool key(string_t& k) {
        if (stack_.empty() || !stack_.back()->is_object()) {
            return false;
        }
        slot_ = &(*stack_.back())[k];  // a repeated key: the last one wins
        return true;
    }
    bool parse_error(std::size_t position,
                     const std::string& /*unused*/,
                     const nlohmann::detail::exception& e) {
        error_ = "malformed JSON at byte " + std::to_string(position) + ": " + e.what();
        return false;
    }

    const std::string& error() const noexcept { return error_; }

private:
    template <typename V>
    json* add(V&& v) {
        if (stack_.empty()) {
            root_ = json(std::forward<V>(v));
            return &root_;
        }
        json* top = stack_.back();
        if (top->is_array()) {
            top->push_back(json(std::forward<V>(v)));
            return &top->back();
        }
        if (slot_ == nullptr) {
            return nullptr;
        }
        *slot_ = json(std::forward<V>(v));
        json* out = slot_;
        slot_ = nullptr;
        return out;
    }
    bool open(json::value_t t) {
        json* j = add(t);
        if (j == nullptr) {
            return false;
        }
        stack_.push_back(j);
        return true;
    }
    bool close() {
        if (stack_.empty()) {
            return false;
        }
        stack_.pop_back();
        return true;
    }

    json& root_;
    std::vector<json*> stack_;
    json* slot_ = nullptr;
    std::string error_;
};

bool digit(char c) noexcept { return c >= '0' && c <= '9'; }

}  // namespace

std::optional<json> parse_exact(std::string_view text,
                                std::string& error,
                                const json_limits& limits) {
    if (text.size() > limits.max_bytes) {
        error = "JSON body of " + std::to_string(text.size()) + " bytes exceeds the limit of " +
                std::to_string(limits.max_bytes);
        return std::nullopt;
    }
    if (auto deep = json_depth_error(text, limits.max_depth); !deep.empty()) {
        error = std::move(deep);
        return std::nullopt;
    }
    try {
        json root;
        exact_builder builder(root);
        const bool ok = json::sax_parse(text.begin(), text.end(), &builder);
        if (!ok) {
            error = builder.error().empty() ? "malformed JSON" : builder.error();
            return std::nullopt;
        }
        return root;
    } catch (const std::bad_alloc&) {
        error = "out of memory parsing JSON";
    } catch (const std::exception& e) {
        error = std::string("malformed JSON: ") + e.what();
    }
    return std::nullopt;
}

std::optional<std::string> normalize_decimal(std::string_view text) {
    std::size_t i = 0;
    bool negative = false;
    if (i < text.size() && (text[i] == '-' || text[i] == '+')) {
        negative = text[i] == '-';
        ++i;
    }
    std::string digits;  // all significant digits, integer part then fraction
    std::size_t int_digits = 0;
    for (; i < text.size() && digit(text[i]); ++i) {
        digits.push_back(text[i]);
        ++int_digits;
    }
    bool any = int_digits > 0;
    if (i < text.size() && text[i] == '.') {
        ++i;
        for (; i < text.size() && digit(text[i]); ++i) {
            digits.push_back(text[i]);
            any = true;
        }
    }
    if (!any || digits.size() > 400) {
        return std::nullopt;
    }
    long exponent = 0;
    if (i < text.size() && (text[i] == 'e' || text[i] == 'E')) {
        ++i;
        bool exp_negative = false;
        if (i < text.size() && (text[i] == '-' || text[i] == '+')) {
            exp_negative = text[i] == '-';
            ++i;
        }
        if (i == text.size()) {
            return std::nullopt;
        }
        for (; i < text.size() && digit(text[i]); ++i) {
            exponent = exponent * 10 + (text[i] - '0');
            if (exponent > 100) {
                return std::nullopt;  // far outside any amount; refuse rather than expand
            }
        }
        if (exp_negative) {
            exponent = -exponent;
        }
    }
    if (i != text.size()) {
        return std::nullopt;
    }
    // The decimal point sits after `point` digits of `digits`; move it by the exponent.
    long point = static_cast<long>(int_digits) + exponent;
    if (point < 0) {
        digits.insert(0, static_cast<std::size_t>(-point), '0');
        point = 0;
    }
    if (static_cast<std::size_t>(point) > digits.size()) {
        digits.append(static_cast<std::size_t>(point) - digits.size(), '0');
    }
    std::string whole = digits.substr(0, static_cast<std::size_t>(point));
    std::string frac = digits.substr(static_cast<std::size_t>(point));
    const auto first = whole.find_first_not_of('0');
    whole = first == std::string::npos ? "0" : whole.substr(first);
    const auto last = frac.find_last_not_of('0');
    frac = last == std::string::npos ? "" : frac.substr(0, last + 1);
    std::string out = frac.empty() ? whole : whole + "." + frac;
    if (negative && out != "0") {
        out.insert(0, "-");
    }
    return out;
}

std::optional<std::string> decimal_text(const json& v) {
    if (v.is_number_integer()) {
        return v.is_number_unsigned() ? std::to_string(v.get<std::uint64_t>())
                                      : std::to_string(v.get<std::int64_t>());
    }
    if (v.is_string()) {
        return normalize_decimal(v.get_ref<const std::string&>());
    }
    return std::nullopt;  // a double here would already have lost digits
}

}  // namespace billsync::mappings
