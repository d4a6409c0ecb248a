#include "workflows/rule.hpp"

#include <ostream>

namespace billsync::workflows {

operator_answer rule::view(std::string_view path, const state::store& /*s*/) const {
    return operator_answer::fail(
        404,
        "not_found",
        "workflow " + std::string(name()) + " has no view '" + std::string(path) + "'");
}

operator_answer rule::command(std::string_view verb,
                              const nlohmann::json& /*args*/,
                              context& /*ctx*/) const {
    return operator_answer::fail(
        404,
        "not_found",
        "workflow " + std::string(name()) + " has no verb '" + std::string(verb) + "'");
}

std::optional<nlohmann::json> rule::cli_request(std::string_view /*verb*/,
                                                const std::vector<std::string>& /*args*/,
                                                std::ostream& /*err*/) const {
    return nlohmann::json::object();
}

cli_result rule::cli_view(std::string_view verb,
                          const std::vector<std::string>& /*args*/,
                          const state::store& s,
                          cli_output /*format*/,
                          std::ostream& out,
                          std::ostream& err) const {
    auto a = view(verb, s);
    if (a.status != 200) {
        err << a.message << "\n";
        return a.status == 404 ? cli_result::not_found : cli_result::usage;
    }
    out << a.body.dump(2) << "\n";  // a rule without a text form prints its JSON either way
    return cli_result::ok;
}

}  // namespace billsync::workflows
