#pragma once

// The invariants of a chaos run (docs/chaos.md), stated in one place and checked against what the
// simulators recorded (and, where the simulators cannot know, what the daemon shows) at the end of
// a run. The runner (sandbox/chaos.cpp) fills a chaos_record; check_invariants() answers the first
// invariant it violates, in the order of `invariant_names()`.

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "util/clock.hpp"

namespace billsync::sandbox {

// One client-facing message as the vendor received it.
struct chaos_message {
    std::string channel;      // "email" or "sms"
    std::string to;           // address or number
    std::string delivery_id;  // billsync's delivery id (custom arg / status callback)
    std::string subject;      // email subject or SMS body
    util::instant at{};       // business time when the vendor received it
};

// One invoice of the ledger at the end of the run.
struct chaos_invoice {
    std::string id;  // the daemon's invoice id ("<connector>:<vendor id>")
    std::int64_t balance_minor = 0;
    std::string email;                             // the client's address
    std::string mobile;                            // the client's number ("" when none)
    std::chrono::sys_days due{};                   // its due date (a civil date)
    bool retainer = false;                         // the client follows the retainer cadence
    std::optional<util::instant> paid_in_full_at;  // when the run paid it in full, if it did
};

// One touch of a follow-up cadence: the day after the anchor (the due date, or the day a partial
// payment restarted the sequence) and the client-facing channels it uses.
struct chaos_cadence_touch {
    int day = 1;
    bool email = false;
    bool sms = false;
};

// One line of the daemon's stored audit log (`billsync inspect audit --json`).
struct chaos_audit_line {
    util::instant at{};
    std::string rule;      // "followup", ... ("" for the pipeline's action lines)
    std::string invoice;   // followup lines
    std::string decision;  // enter, touch, skip, restart, cancel, ..., action_dropped, action_done
    std::uint32_t touch = 0;
    std::string action;  // action lines: the action (delivery) id
    std::string text;    // cause or detail
};

// One invoice as the daemon's follow-up view shows it (GET /followups).
struct chaos_sequence {
    std::string invoice;
    std::int64_t balance_minor = 0;
    std::string phase;  // "waiting": never entered (nothing to cancel when it is paid)
};

// One late-fee period the daemon assessed (GET /workflows/late_fees).
struct chaos_fee {
    std::string invoice;  // the overdue invoice's id
    util::instant assessed_at{};
    std::string state;  // pending, approved, created, failed, rejected, dropped
};

struct chaos_record {
    std::string time_zone;                          // the firm's
    int window_start_minute = 9 * 60;               // [followup.window]
    int window_end_minute = 17 * 60;                // exclusive
    std::set<unsigned> window_days{1, 2, 3, 4, 5};  // weekday c_encoding (0 = Sunday)

    std::vector<chaos_message> messages;           // every message the vendors accepted
    std::vector<chaos_message> attempts;           // every send the vendors saw (incl. refused)
    std::set<std::string> clients;                 // the firm's clients' addresses and numbers
    std::vector<chaos_invoice> invoices;           // the ledger's invoices
    std::vector<chaos_sequence> active_sequences;  // the daemon's open follow-ups
    // Clients (email, number) paid in full by the run, and when (business time).
    std::map<std::string, util::instant> paid_in_full;  // address/number -> when
    // Clients billsync invoiced again after they paid in full (an invoicing milestone): from the
    // new invoice's creation (the ledger's record) they owe again, and its touches are due.
    std::map<std::string, util::instant> owes_again;  // address/number -> when
    // Created at vendors by billsync: a key per object (invoice draft id, task title, ...).
    std::map<std::string, std::uint64_t> created_objects;  // key -> how many exist
    std::set<std::string> created_expected;                // keys the daemon says it created
    std::vector<std::string> secrets;                      // values no log may hold
    std::vector<std::string> log_paths;                    // every log of the run
    bool ready_at_end = false;
    std::map<std::string, std::uint64_t> dead_letters;  // connector -> count
    std::set<std::string> permanent_fault_vendors;      // vendors given a permanent fault
    // Subjects/bodies that are acknowledgements (sent because of a payment) and so may follow it.
    std::vector<std::string> acknowledgement_markers;

    // Touches due (touch_due_sent_or_skipped): the firm's cadences ("standard", "retainer"), the
    // daemon's audit, and the span checked: a touch whose window opens after `touches_until` is
    // not checked (the run may end before it can go out).
    std::map<std::string, std::vector<chaos_cadence_touch>> cadences;
    std::vector<chaos_audit_line> audit;
    util::instant touches_until{};
    util::instant run_start{};  // the daemon's first moment

    // Drafted time (time_drafted_once): work items completed during the run, work items completed
    // and re-opened before billsync could draft them, and per work item (its key at the practice
    // system) how many entries the time system holds with billsync's external reference.
    std::set<std::string> completed_work_items;
    std::set<std::string> withdrawn_work_items;
    std::map<std::string, std::uint64_t> drafted_entries;

    // Relayed clients (acknowledged_webhooks_reflected): each client a relay brought that billsync
    // acknowledged, and the client it must have joined in the identity map (the same email);
    // each client of the identity map and its party's members (itself included).
    std::map<std::string, std::string> relayed_clients;  // relayed client -> the one it joins
    std::map<std::string, std::set<std::string>> party_of;

    // Late fees (no_touch_after_payment_in_full): none assessed on an invoice the run had paid
    // in full (beyond payment_grace).
    std::vector<chaos_fee> fees;
    std::set<std::string> fee_invoices;  // of created_expected: the fees' invoices
};

struct chaos_violation {
    std::string invariant;  // one of invariant_names()
    std::string detail;
};

std::vector<std::string_view> invariant_names();
// Allowed lag between a payment in full and the last touch that may still go out (the webhook
// may be lost: the poll finds it).
inline constexpr std::chrono::hours payment_grace{6};

std::optional<chaos_violation> check_invariants(const chaos_record& r);

// What the run gave the invariants to check (printed per run, so a check that compared nothing
// shows): touches that fell due, and of them sent or skipped with an audited cause; completed
// work items whose time was drafted; created invoices (and late fees) and relayed clients found
// as they must be.
struct chaos_coverage {
    std::size_t touches_due = 0;
    std::size_t touches_sent = 0;
    std::size_t touches_skipped = 0;
    std::size_t drafts = 0;
    std::size_t created = 0;  // invoices billsync says it created, found once in their ledger
    std::size_t fees = 0;     // of which late fees
    std::size_t relays = 0;   // acknowledged relays whose client joined the identity map
};
chaos_coverage coverage(const chaos_record& r);

}  // namespace billsync::sandbox
