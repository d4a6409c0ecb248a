#pragma once

#include "config/config.hpp"
#include "config/diagnostics.hpp"

namespace billsync::config {

// Checks what the file alone cannot show, reporting at the keys' positions:
// - data_dir is a writable directory (a temporary file is created and removed), or does not exist
//   yet and its nearest existing parent is a writable directory;
// - each listener address can be bound now (bound and closed at once; port 0 is skipped).
// Used by `billsync validate` and before `billsync run` starts anything.
void check_environment(const daemon_settings& settings, diagnostics& diags);

}  // namespace billsync::config
