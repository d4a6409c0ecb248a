#pragma once

// Secondary index rows beside the ledger and time rows, so that a reader that needs one week or
// one slice (the weekly report) reads that slice and not the firm's whole history. The apply
// step keeps them current in the same batch as the row itself (state/apply.cpp); the schema
// 2 -> 3 upgrade writes them for rows stored before they existed (index_all).
//
// Rows (column family entities, types of their own; '\x1f' separates the parts of an id):
//   index.invoice_open/<invoice>                      open or paid invoices with a balance above 0
//   index.invoice_issue/<YYYY-MM-DD>\x1f<invoice>     open or paid invoices by issue date
//   index.invoice_currency/<total cur>\x1f<balance cur>\x1f<invoice>   open or paid invoices
//   index.payment_date/<YYYY-MM-DD>\x1f<payment>      payments by date (not voided or deleted)
//   index.time_date/<YYYY-MM-DD>\x1f<entry>           time entries by date (not deleted)
//   index.time_unreviewed/<entry>                     time entries billsync drafted, not locked
//
// The value of a dated or open row is a projection of the entity: its top-level members that
// readers of the slice need, copied verbatim from the stored row (so a reader parsing the
// projection reads exactly what it would read in the row); the other rows have an empty value.
// A currency part is the currency string's JSON text without its quotes, "\x01" when the money
// has none.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "state/store.hpp"

namespace billsync::state::entity_index {

inline constexpr std::string_view invoice_open = "index.invoice_open";
inline constexpr std::string_view invoice_issue = "index.invoice_issue";
inline constexpr std::string_view invoice_currency = "index.invoice_currency";
inline constexpr std::string_view payment_date = "index.payment_date";
inline constexpr std::string_view time_date = "index.time_date";
inline constexpr std::string_view time_unreviewed = "index.time_unreviewed";

inline constexpr char sep = '\x1f';
inline constexpr std::string_view no_currency = "\x01";

struct index_row {
    std::string type;  // one of the index types above
    std::string id;
    std::string value;

    friend bool operator==(const index_row&, const index_row&) = default;
};

// Whether rows of this entity type are indexed (invoice, payment, time_entry).
bool indexed(std::string_view entity_type) noexcept;

// The index rows of one stored entity row (none for other types or an unreadable row).
std::vector<index_row> rows_of(std::string_view entity_type,
                               std::string_view entity_id,
                               std::string_view stored);

// Keeps the indexes of one entity current in b: drops the rows `before` had that `after` has not,
// writes after's. nullopt: no such row (before: new; after: removed).
void update(batch& b,
            std::string_view entity_type,
            std::string_view entity_id,
            const std::optional<std::string>& before,
            const std::optional<std::string>& after);

// Writes the index rows of every stored invoice, payment and time entry (the schema 2 -> 3
// upgrade: rows stored before the indexes existed).
status index_all(const store& s, batch& b);

// The entity id in a dated index row's id ("YYYY-MM-DD\x1f<id>" -> "<id>").
std::string_view dated_entity_id(std::string_view index_id) noexcept;

}  // namespace billsync::state::entity_index
