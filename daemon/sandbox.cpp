#include "daemon/sandbox.hpp"

#include <fmt/format.h>

#include <filesystem>
#include <fstream>
#include <ostream>

#include "daemon/app.hpp"

namespace billsync::daemon {

int run_sandbox(const sandbox_options& options, std::ostream& err) {
    namespace fs = std::filesystem;
    const fs::path dir = fs::absolute(options.dir);
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) {
        err << fmt::format("billsync sandbox: cannot create {}: {}\n", dir.string(), ec.message());
        return 73;
    }
    if (options.fresh) {
        fs::remove_all(dir / "data", ec);
    }
    const auto config_path = dir / "billsync.toml";
    {
        std::ofstream out(config_path, std::ios::trunc);
        out << sandbox_config_text();
        if (!out) {
            err << fmt::format("billsync sandbox: cannot write {}\n", config_path.string());
            return 73;
        }
    }
    err << fmt::format(
        "billsync sandbox: config {}\n"
        "billsync sandbox: status http://127.0.0.1:18081/status  metrics "
        "http://127.0.0.1:18081/metrics  (Ctrl-C stops)\n",
        config_path.string());
    app a({config_path, dir / "ports.json"});
    return a.run(err);
}

}  // namespace billsync::daemon
