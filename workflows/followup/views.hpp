#pragma once

// What the follow-up workflow shows operators (GET /workflows/followup[/...], GET /followups,
// GET /tasks, `billsync followup list|show`, `billsync tasks`), read from state.

#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "state/store.hpp"
#include "workflows/followup/settings.hpp"

namespace billsync::workflows::followup {

// Every sequence that is not finished (waiting, active, paused, excluded), with its invoice's
// number, client and balance, the next touch, when and by which channels.
nlohmann::json followups_json(const state::store& s,
                              const settings& cfg,
                              bool include_finished = false);
// GET /followups: one page of followups_json in invoice id order, at most `limit` sequences whose
// invoice id sorts after `after` (empty: from the first):
//   {"followups": [...], "limit": N, "next": "<invoice id>" | null}
// "next" is the page's last invoice id when more sequences follow (pass it as `after`), else null.
// A page costs what it shows, not the number of sequences.
nlohmann::json followups_page(const state::store& s,
                              const settings& cfg,
                              std::size_t limit,
                              std::string_view after);
// The sequences followups_json lists, counted by phase and last touch from their own rows only
// (no invoice or client read): {"open": N, "stages": [{"phase": "active", "last_touch": 1,
// "count": N}, ...]} in (phase, last touch) order. The dashboard's "by stage" table.
nlohmann::json followup_stages(const state::store& s);
// One invoice's sequence (by canonical id or invoice number), with its audit trail.
std::optional<nlohmann::json> followup_json(const state::store& s,
                                            const settings& cfg,
                                            std::string_view invoice);
// Internal tasks, newest first.
nlohmann::json tasks_json(const state::store& s);
// The canonical id of an invoice given by id or by number; nullopt when unknown.
std::optional<std::string> find_invoice(const state::store& s, std::string_view invoice);
// {"minor": 12345, "currency": "USD"} as "123.45 USD"; "-" when absent.
std::string money_text(const nlohmann::json& m);

}  // namespace billsync::workflows::followup
