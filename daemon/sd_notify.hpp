#pragma once

#include <chrono>
#include <optional>
#include <string_view>

namespace billsync::daemon {

// Sends a state string ("READY=1", "STOPPING=1", ...) to systemd through $NOTIFY_SOCKET.
// Does nothing (and returns false) when not started by systemd with Type=notify.
bool sd_notify(std::string_view state);

// "RELOADING=1\nMONOTONIC_USEC=<now>" as systemd 253+ expects for Type=notify-reload.
bool sd_notify_reloading();

// Half of $WATCHDOG_USEC when the watchdog is enabled for this process, else nullopt.
std::optional<std::chrono::microseconds> sd_watchdog_interval();

// One watchdog tick: pets systemd ("WATCHDOG=1") only while `healthy` (the pipeline beats), so a
// stalled or dead pipeline gets the process restarted after WatchdogSec. Returns whether it sent.
bool sd_watchdog_tick(bool healthy);

}  // namespace billsync::daemon
