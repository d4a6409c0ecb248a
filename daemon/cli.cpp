#include "daemon/cli.hpp"

#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>

#include "config/environment.hpp"
#include "config/secret.hpp"
#include "connectors/builtin.hpp"
#include "connectors/runtime/oauth2.hpp"
#include "connectors/runtime/token_store.hpp"
#include "daemon/app.hpp"
#include "daemon/app_config.hpp"
#include "daemon/connect.hpp"
#include "daemon/identities.hpp"
#include "daemon/platform/heap.hpp"
#include "daemon/platform/platform.hpp"
#include "daemon/preview.hpp"
#include "daemon/report.hpp"
#include "daemon/tools.hpp"
#include "daemon/workflows/builtin.hpp"
#include "daemon/workflows/operator.hpp"
#include "http/client.hpp"
#include "state/store.hpp"
#include "util/redact.hpp"
#include "util/version.hpp"

namespace billsync::daemon {

namespace {

// Stored OAuth2 grants that lack scopes their connector needs now (its `scope`, or the kind's):
// one warning each, telling the admin to consent again. Nothing to say when the state does not
// exist yet, cannot be opened, or a record has no scope list (written before billsync recorded
// scopes: unknown).
void check_grants(const app_config& cfg, const std::string& file, config::diagnostics& diags) {
    std::filesystem::path dir = cfg.daemon().data_dir / "state";
    std::error_code ec;
    if (!cfg.uses_oauth2() || !std::filesystem::exists(dir, ec)) {
        return;
    }
    state::open_options opts;
    opts.read_only = true;
    opts.create_if_missing = false;
    auto opened = state::store::open(dir, opts);
    if (!opened.ok()) {
        return;
    }
    std::optional<connectors::sealing_key> key;
    if (const auto& k = cfg.daemon().secrets_key; k && k->resolved()) {
        std::string error;
        key = connectors::parse_secrets_key(k->reveal(), error);
    }
    const connectors::token_store tokens(*opened.value, key);
    for (const auto& c : cfg.connectors) {
        const auto* kind = connectors::builtin_kinds().find(c.kind);
        if (!c.enabled || kind == nullptr || !kind->oauth2) {
            continue;
        }
        const auto& rules = *kind->oauth2;
        const auto* account = c.value(rules.account_setting);
        if (account == nullptr || account->empty()) {
            continue;
        }
        auto cred = connectors::oauth2::load_credential(tokens, rules.vendor + "/" + *account);
        if (!cred.ok() || !cred.value) {
            continue;
        }
        const auto* scope = c.value("scope");
        const auto missing = connectors::oauth2::missing_scopes(
            cred.value->scope, scope != nullptr && !scope->empty() ? *scope : rules.scope);
        if (missing.empty()) {
            continue;
        }
        std::string names;
        for (const auto& m : missing) {
            names += (names.empty() ? "" : " ") + m;
        }
        diags.warning({file},
                      fmt::format("[connectors.{}] the stored OAuth2 grant lacks the scopes {} "
                                  "(reconsent needed): run `billsync connect {} --config {}` again",
                                  c.name,
                                  names,
                                  c.name,
                                  file));
    }
}

// With no_environment, nothing of the machine is looked at: secret references are checked for
// their syntax only (no variable, file or credential is read), and neither data_dir nor the
// listener addresses are tried. For checking a file before the secrets are in place, or on
// another machine (CI, a configuration repository).
int cmd_validate(const std::string& file, bool no_environment) {
    config::diagnostics diags;
    std::optional<app_config> cfg;
    if (no_environment) {
        const config::secret_syntax_only syntax_only;
        cfg = load_app_config(file, diags);
    } else {
        cfg = load_app_config(file, diags);
        if (cfg) {
            config::check_environment(cfg->daemon(), diags);
            check_grants(*cfg, file, diags);
        }
    }
    if (cfg) {
        check_rules(*cfg, diags);
    }
    std::cerr << diags.render();
    if (diags.has_errors()) {
        return exit_config;
    }
    std::cout << fmt::format("{}: ok ({} connector{}{})\n",
                             file,
                             cfg->connectors.size(),
                             cfg->connectors.size() == 1 ? "" : "s",
                             no_environment ? "; secrets, data_dir and listeners not checked" : "");
    return exit_ok;
}

std::string text_or(const nlohmann::json& j, const char* key, const char* fallback = "-") {
    if (j.contains(key) && j[key].is_string()) {
        return j[key].get<std::string>();
    }
    if (j.contains(key) && j[key].is_number()) {
        return j[key].dump();
    }
    return fallback;
}

// A connector's own figures (connector::status_json), a few readable lines.
void print_connector_detail(const nlohmann::json& d) {
    if (d.contains("credential")) {
        std::cout << fmt::format(
            "  credential {}  access token expires {}  refresh token expires {}\n",
            text_or(d, "credential"),
            text_or(d, "token_expires_at"),
            text_or(d, "refresh_token_expires_at"));
    }
    if (d.contains("cursor") && d["cursor"].is_object()) {
        const auto& c = d["cursor"];
        std::cout << fmt::format("  sync {} since {} (cursor age {} s)\n",
                                 text_or(c, "phase"),
                                 text_or(c, "since"),
                                 text_or(c, "age_s"));
        if (c.contains("progress")) {
            const auto& p = c["progress"];
            std::cout << fmt::format("  progress {}/{} rows, {}/s, ETA {} s\n",
                                     text_or(p, "done"),
                                     text_or(p, "total"),
                                     text_or(p, "rate_per_s"),
                                     text_or(p, "eta_s"));
        }
    }
    if (d.contains("last_success") || d.contains("last_error")) {
        std::cout << fmt::format("  last success {}", text_or(d, "last_success"));
        if (d.contains("last_error") && d["last_error"].is_object()) {
            std::cout << fmt::format("  last error {}: {}",
                                     text_or(d["last_error"], "at"),
                                     text_or(d["last_error"], "message"));
        }
        std::cout << "\n";
    }
    if (d.contains("rate_limit") && d["rate_limit"].is_object()) {
        const auto& r = d["rate_limit"];
        std::cout << fmt::format("  rate limit: {} in flight, {} waiting, headroom {}\n",
                                 text_or(r, "in_flight"),
                                 text_or(r, "waiting"),
                                 r.contains("available") ? r["available"].dump() : "-");
    }
    if (d.value("reconsent_needed", false) && d.contains("missing_scopes") &&
        d["missing_scopes"].is_array()) {
        std::string names;
        for (const auto& m : d["missing_scopes"]) {
            names += (names.empty() ? "" : " ") + (m.is_string() ? m.get<std::string>() : m.dump());
        }
        std::cout << "  RECONSENT NEEDED: the stored OAuth2 grant lacks " << names << "\n";
    }
    if (d.contains("action_needed")) {
        std::cout << "  ACTION NEEDED: " << text_or(d, "action_needed") << "\n";
    }
    std::string rest;
    for (const auto& [k, v] : d.items()) {
        if (v.is_number() || v.is_boolean()) {
            rest += fmt::format(" {}={}", k, v.dump());
        }
    }
    if (!rest.empty()) {
        std::cout << " " << rest << "\n";
    }
}

int cmd_status(const std::string& file, bool raw) {
    config::diagnostics diags;
    auto cfg = load_app_config(file, diags);
    if (!cfg) {
        std::cerr << diags.render();
        return exit_config;
    }
    const auto& d = cfg->daemon();
    std::vector<http::header> headers;
    if (d.status_token) {
        headers.push_back({"Authorization", "Bearer " + d.status_token->reveal()});
    }
    const auto [host, port] = status_endpoint(*cfg);
    const auto res = http::fetch(host, port, "GET", "/status", headers);
    if (res.status == 0) {
        std::cerr << fmt::format(
            "billsync is not answering on {}: {}\n", d.status.address.text(), res.error);
        return exit_unavailable;
    }
    if (res.status != 200) {
        std::cerr << fmt::format("status endpoint answered {}: {}\n", res.status, res.body);
        return exit_unavailable;
    }
    if (raw) {
        std::cout << res.body << '\n';
        return exit_ok;
    }
    const auto j = nlohmann::json::parse(res.body, nullptr, false);
    if (j.is_discarded()) {
        std::cerr << "status endpoint returned malformed JSON\n";
        return exit_unavailable;
    }
    std::cout << fmt::format("billsync {} ({}), up {} s, {}\n",
                             j.value("version", "?"),
                             j.value("commit", "?"),
                             j.value("uptime_s", 0),
                             j.value("ready", false) ? "ready" : "NOT READY");
    std::cout << fmt::format("clock: {} {}\n", j.value("clock", "?"), j.value("now", "?"));
    if (j.contains("config")) {
        const auto& c = j["config"];
        std::cout << fmt::format("config: {} loaded {} (reloads {}, failed {})\n",
                                 c.value("file", "?"),
                                 c.value("loaded_at", "?"),
                                 c.value("reloads", 0),
                                 c.value("reload_failures", 0));
    }
    if (j.contains("connectors")) {
        for (const auto& c : j["connectors"]) {
            std::cout << fmt::format("connector {:<12} {:<10} {}\n",
                                     c.value("name", "?"),
                                     c.value("kind", "?"),
                                     c.value("state", "?"));
            if (c.contains("detail") && c["detail"].is_object()) {
                print_connector_detail(c["detail"]);
            }
        }
    }
    if (j.contains("queues")) {
        for (const auto& [name, q] : j["queues"].items()) {
            std::cout << fmt::format("queue {:<13} {}\n", name, q.value("count", 0));
        }
    }
    return exit_ok;
}

workflows::cli_output output_of(bool json) {
    return json ? workflows::cli_output::json : workflows::cli_output::text;
}

int cmd_version() {
    std::cout << fmt::format("billsync {} (commit {})\n", util::version(), util::git_commit());
    std::cout << util::library_versions();
    return exit_ok;
}

}  // namespace

int main(int argc, char** argv, std::span<const command_definer> extra) {
    // Every secret the configuration resolves is masked in all output from then on.
    config::set_secret_observer([](const std::string& value) { util::register_secret(value); });
    CLI::App cli{"billsync: keeps a firm's billing in sync and follows up on overdue invoices"};
    cli.require_subcommand(1);
    cli.set_version_flag("--version", [] {
        return fmt::format("billsync {} (commit {})", util::version(), util::git_commit());
    });

    std::string config_file;
    std::string ports_file;
    auto* run = cli.add_subcommand("run", "Run the daemon");
    run->add_option("-c,--config", config_file, "Configuration file")->required();
    run->add_option("--ports-file", ports_file, "Write the bound ports here as JSON (for tests)");
    bool as_service = false;
    run->add_flag("--service",
                  as_service,
                  "Windows: run under the Service Control Manager (what `service install` "
                  "registers)");

    std::string service_verb;
    std::string service_name = "billsync";
    auto* service = cli.add_subcommand(
        "service", "Windows: register billsync with the Service Control Manager, or remove it");
    service->add_option("verb", service_verb, "install | uninstall")
        ->required()
        ->check(CLI::IsMember({"install", "uninstall"}));
    service->add_option("-c,--config", config_file, "Configuration file (install)");
    service->add_option("--name", service_name, "Service name")->capture_default_str();

    bool no_environment = false;
    auto* validate = cli.add_subcommand("validate", "Check a configuration file and exit");
    validate->add_option("-c,--config", config_file, "Configuration file")->required();
    validate->add_flag(
        "--no-environment",
        no_environment,
        "Check the file alone: secret references by their syntax (no value is read), no data dir "
        "or port checks");

    bool raw = false;
    auto* status = cli.add_subcommand("status", "Show a running daemon's status");
    status->add_option("-c,--config", config_file, "Configuration file")->required();
    status->add_flag("--json", raw, "Print the raw JSON");

    auto* version = cli.add_subcommand("version", "Print version, commit and library versions");

    std::string verb;
    std::string item;
    auto* deadletters = cli.add_subcommand("deadletters", "List, show, retry or drop dead letters");
    deadletters->add_option("verb", verb, "list | show | retry | drop")
        ->required()
        ->check(CLI::IsMember({"list", "show", "retry", "drop"}));
    deadletters->add_option("id", item, "Dead letter id (show, retry, drop)");
    deadletters->add_option("-c,--config", config_file, "Configuration file")->required();

    auto* inspect = cli.add_subcommand("inspect", "Read one item of state (read-only)");
    inspect
        ->add_option("key", item, "counts, inbox/<c>, outbox/<id>, entity/<t>/<id>, timer/<n>, ...")
        ->required();
    inspect->add_option("-c,--config", config_file, "Configuration file")->required();
    std::string inspect_since;
    bool inspect_json = false;
    inspect->add_option(
        "--since", inspect_since, "audit: every line from this instant (RFC 3339) on, streamed");
    inspect->add_flag("--json", inspect_json, "audit: JSON lines, each with its \"at\"");

    std::string fu_verb;
    std::string fu_invoice;
    auto* followup = cli.add_subcommand("followup", "Overdue follow-up sequences");
    followup->add_option("verb", fu_verb, "list | show | resume | stop | plans")
        ->required()
        ->check(CLI::IsMember({"list", "show", "resume", "stop", "plans"}));
    followup->add_option("invoice", fu_invoice, "Invoice id or number (show, resume, stop)");
    followup->add_option("-c,--config", config_file, "Configuration file")->required();
    bool fu_json = false;
    followup->add_flag("--json", fu_json, "Print the JSON (list, show, plans) instead of text");

    std::string wf_rule;
    std::string wf_verb;
    std::vector<std::string> wf_args;
    auto* workflow = cli.add_subcommand(
        "workflow", "Operate a workflow: its views and commands (GET/POST /workflows/<rule>/...)");
    workflow->add_option("rule", wf_rule, "Workflow (rule) name, e.g. followup")->required();
    workflow->add_option("verb", wf_verb, "Verb of that workflow, e.g. list")->required();
    workflow->add_option("args", wf_args, "Arguments of the verb");
    workflow->add_option("-c,--config", config_file, "Configuration file")->required();
    bool wf_json = false;
    workflow->add_flag("--json", wf_json, "Views: print the JSON instead of text");

    preview_options preview_opts;
    auto* preview = cli.add_subcommand(
        "preview",
        "Show who the follow-up workflow would contact over the next days (sends nothing)");
    preview->add_option("--days", preview_opts.days, "Days to simulate (1-366)")
        ->capture_default_str();
    preview->add_option("--from", preview_opts.from, "Start instant (RFC 3339); default: now");
    preview->add_flag("--json", preview_opts.json, "Machine-readable output");
    preview->add_option("-c,--config", config_file, "Configuration file")->required();

    auto* tasks = cli.add_subcommand("tasks", "Internal tasks for the billing coordinator");
    tasks->add_option("-c,--config", config_file, "Configuration file")->required();
    bool tasks_json = false;
    tasks->add_flag("--json", tasks_json, "Print the JSON instead of text");

    std::string id_verb;
    std::vector<std::string> id_args;
    bool id_json = false;
    auto* identities = cli.add_subcommand(
        "identities", "One client across systems: list exceptions and links, link or unlink");
    identities->add_option("verb", id_verb, "list | link | unlink")
        ->required()
        ->check(CLI::IsMember({"list", "link", "unlink"}));
    identities->add_option("clients",
                           id_args,
                           "link: CLIENT OTHER; unlink: CLIENT (canonical id or <connector>:<id>)");
    identities->add_option("-c,--config", config_file, "Configuration file")->required();
    identities->add_flag("--json", id_json, "Print the JSON instead of text");

    // The invoicing workflow's verbs under their documented names.
    std::string inv_verb;
    std::vector<std::string> inv_args;
    std::string inv_by, inv_reason, inv_write_down, inv_po;
    bool inv_json = false;
    auto* approvals = cli.add_subcommand("approvals", "Invoice drafts waiting for an approval");
    approvals->add_option("verb", inv_verb, "list | show | approve | reject | redraft")
        ->required()
        ->check(CLI::IsMember({"list", "show", "approve", "reject", "redraft"}));
    approvals->add_option("id", inv_args, "Draft id (show, approve, reject, redraft)");
    approvals->add_option("--by", inv_by, "approve, reject, redraft: who decides (email)");
    approvals->add_option(
        "--reason", inv_reason, "reject, write-down: a reason of the taxonomy; redraft: why");
    approvals->add_option(
        "--write-down", inv_write_down, "approve: reduce the draft by this amount");
    approvals->add_option("-c,--config", config_file, "Configuration file")->required();
    approvals->add_flag("--json", inv_json, "Print the JSON (list, show) instead of text");
    auto* exceptions =
        cli.add_subcommand("exceptions", "Invoicing exceptions: what blocks a draft");
    exceptions->add_option("verb", inv_verb, "list | show | resolve")
        ->required()
        ->check(CLI::IsMember({"list", "show", "resolve"}));
    exceptions->add_option("id", inv_args, "Exception or draft id (show, resolve)");
    exceptions->add_option("--po", inv_po, "resolve: the PO number a missing_po exception needs");
    exceptions->add_option("--by", inv_by, "resolve: who resolves it (email)");
    exceptions->add_option("--reason", inv_reason, "resolve: how it was resolved");
    exceptions->add_option("-c,--config", config_file, "Configuration file")->required();
    exceptions->add_flag("--json", inv_json, "Print the JSON (list, show) instead of text");

    std::string report_kind;
    std::string report_week;
    bool report_json = false;
    bool report_html = false;
    auto* report = cli.add_subcommand(
        "report", "The weekly report: aging, follow-up, collections, time, operations");
    report->add_option("kind", report_kind, "weekly")->required()->check(CLI::IsMember({"weekly"}));
    report->add_option("--week", report_week, "ISO week YYYY-Www; default: the last finished week");
    auto* report_json_flag = report->add_flag("--json", report_json, "Print the JSON");
    report->add_flag("--html", report_html, "Print a self-contained HTML page")
        ->excludes(report_json_flag);
    report->add_option("-c,--config", config_file, "Configuration file")->required();

    std::string connect_vendor;
    auto* connect = cli.add_subcommand(
        "connect", "Authorize billsync at a vendor that uses OAuth2 (authorization code)");
    connect->add_option("connector", connect_vendor, "Connector name (or its kind, when unique)")
        ->required();
    connect->add_option("-c,--config", config_file, "Configuration file")->required();

    std::vector<command_runner> extra_runners;
    extra_runners.reserve(extra.size());
    for (const auto& define : extra) {
        extra_runners.push_back(define(cli));
    }

    try {
        cli.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        const int rc = cli.exit(e);
        return rc == 0 ? exit_ok : exit_usage;
    }

    if (*validate) {
        return cmd_validate(config_file, no_environment);
    }
    if (*status) {
        return cmd_status(config_file, raw);
    }
    if (*connect) {
        return cmd_connect(config_file, connect_vendor, std::cout, std::cerr);
    }
    if (*deadletters) {
        return cmd_deadletters(config_file, verb, item, std::cout, std::cerr);
    }
    if (*workflow) {
        return cmd_workflow(
            config_file, wf_rule, wf_verb, wf_args, output_of(wf_json), std::cout, std::cerr);
    }
    // `followup` and `tasks` are the follow-up workflow's verbs under their documented names.
    if (*followup) {
        std::vector<std::string> args;
        if (!fu_invoice.empty()) {
            args.push_back(fu_invoice);
        }
        return cmd_workflow(
            config_file, "followup", fu_verb, args, output_of(fu_json), std::cout, std::cerr);
    }
    if (*approvals || *exceptions) {
        const bool appr = approvals->parsed();
        std::string inv_rule_verb = inv_verb == "list"   ? (appr ? "approvals" : "exceptions")
                                    : inv_verb == "show" ? (appr ? "show" : "exception")
                                                         : inv_verb;
        std::vector<std::string> args = inv_args;
        for (const auto& [flag, value] : {std::pair<std::string, std::string>{"--by", inv_by},
                                          {"--reason", inv_reason},
                                          {"--write-down", inv_write_down},
                                          {"--po", inv_po}}) {
            if (!value.empty()) {
                args.push_back(flag);
                args.push_back(value);
            }
        }
        return cmd_workflow(config_file,
                            "invoicing",
                            inv_rule_verb,
                            args,
                            output_of(inv_json),
                            std::cout,
                            std::cerr);
    }
    if (*report) {
        return cmd_report(config_file,
                          report_kind,
                          report_week,
                          report_json   ? report_format::json
                          : report_html ? report_format::html
                                        : report_format::text,
                          std::cout,
                          std::cerr);
    }
    if (*identities) {
        return cmd_identities(config_file, id_verb, id_args, id_json, std::cout, std::cerr);
    }
    if (*preview) {
        return cmd_preview(config_file, preview_opts, std::cout, std::cerr);
    }
    if (*tasks) {
        return cmd_workflow(
            config_file, "followup", "tasks", {}, output_of(tasks_json), std::cout, std::cerr);
    }
    if (*inspect) {
        inspect_options io;
        io.json = inspect_json;
        if (!inspect_since.empty()) {
            util::instant t{};
            if (!util::parse_rfc3339(inspect_since, t)) {
                std::cerr << "--since: expected an RFC 3339 instant, e.g. 2026-01-05T00:00:00Z\n";
                return exit_usage;
            }
            io.since = t;
        }
        return cmd_inspect(config_file, item, std::cout, std::cerr, io);
    }
    if (*version) {
        return cmd_version();
    }
    for (const auto& run_extra : extra_runners) {
        if (const auto rc = run_extra()) {
            return *rc;
        }
    }
    if (*service) {
        const std::wstring name(service_name.begin(), service_name.end());
        std::string problem;
        if (service_verb == "install") {
            if (config_file.empty()) {
                std::cerr << "service install: --config FILE is required\n";
                return exit_usage;
            }
            problem = platform::install_service(name, config_file);
        } else {
            problem = platform::uninstall_service(name);
        }
        if (!problem.empty()) {
            std::cerr << problem << "\n";
            return exit_usage;
        }
        std::cout << fmt::format("service {}: {} done\n", service_name, service_verb);
        return exit_ok;
    }
    if (*run && as_service) {
        const std::wstring name(service_name.begin(), service_name.end());
        std::string problem;
        const int rc = platform::run_as_service(
            name,
            [&](platform::service_host& host) {
                app a({config_file, ports_file, &host.life()});
                host.on_requests([&a] { a.request_stop(); }, [&a] { a.request_reload(); });
                const int code = a.run(std::cerr);
                host.on_requests({}, {});
                return code;
            },
            problem);
        if (!problem.empty()) {
            std::cerr << problem << "\n";
        }
        return rc;
    }
    if (*run) {
        platform::limit_heap_arenas();
        app a({config_file, ports_file});
        return a.run(std::cerr);
    }
    return exit_usage;
}

}  // namespace billsync::daemon
