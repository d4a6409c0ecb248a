#pragma once

// The cross-system identity map: one client of the firm is known as a ledger customer, a practice
// organization, a time-tracking client and a portal account. Every source keeps its own
// canonical client row (so a change from one system never overwrites another system's fields);
// the identity map groups those rows into one *party*.
//
// Matching runs in the apply step whenever a client is written, strongest key first:
//   1. the firm's client code ("SMI001", mappings::client::client_code, compared
//      case-insensitively), then
//   2. exact billing email (any of the client's addresses), then
//   3. email domain (not a public mail provider) plus normalized name.
// A client joins a candidate party only when exactly one party matches and that party has no
// member from the client's own system yet (two customers of one ledger are two clients). Several
// candidates, or a candidate found by name alone, are never guessed: they become an *identity
// exception* that an operator resolves with link or unlink. A client an operator linked or
// unlinked is never matched automatically again.
//
// A client code names one client, so it is never overruled and never guessed around:
//   - a code on clients of two or more parties, or on another client of the client's own system,
//     is an "ambiguous" exception;
//   - a code that names one party while the strongest email key that matches anything (email,
//     else domain and name) names only other parties, or an email key's one party whose members
//     carry a different code, is a "code_conflict" exception;
//   - a code that names one party, with no email key against it, joins it (how "client_code").
// When a client's next change finds nothing to match, an earlier automatic exception of it
// ("ambiguous", "name_only", "code_conflict") is dropped: it no longer holds. An exception also
// names its candidates; when one of them changes its keys (code, emails, name), is deleted, or
// is linked or unlinked by hand, the client with the exception is matched again at once, so
// correcting either side of a conflict clears it (one level: that re-match re-checks no one
// else). A client in a party keeps no automatic exception. A deleted client leaves its party.
//
// A client already in a party is left alone by later edits, except when its client code changes
// (one appearing for the first time included): the link stays while the new code agrees with
// the party (no client outside it has the code; its other members carry that code or none; a
// blank code is no code). Otherwise the client leaves the party and is matched again like a new
// client; if that finds nothing, a code its former party's members contradict is a
// "code_conflict" exception naming them, so a party never comes apart unseen.
//
// Whenever a client leaves a party (a code change, a delete, an unlink), the others stay together
// only while their own keys (code, email, domain plus name) tie each of them to the party's first
// client or to a client linked by hand, directly or through other members; one tied only through
// the client that left leaves too and is matched again.
//
// Rows (column family xref, beside the vendor-key rows):
//   m/<client>            -> party id (absent: the client stands alone)
//   p/<party>\0<client>   -> {"system","how","at"}   members of a party of two or more
//   c/<code>\0<client>, e/<email>\0<client>, d/<domain>\0<name>\0<client>, n/<name>\0<client>
//                            match indexes (<code>: client_code_key, lower-case); each is
//                            rewritten when the client changes and dropped when it is deleted
//   x/<client>            -> {"kind","reason","candidates","at",...}   open exceptions
//   xc/<candidate>\0<client> the open exception of <client> names <candidate>
//   o/<client>            -> "manual"   an operator decided; automatic matching leaves it alone
//
// The code rows need no upgrade step of their own: rows stored before clients carried a code
// read with an empty one (nothing to index); a stored client gets its code, and its c/ row, at
// its next change from its source. index_all writes them too, for any row that has one.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mappings/model.hpp"
#include "state/store.hpp"
#include "util/clock.hpp"

namespace billsync::state::identity {

// Lower-cased addresses of a billing-email field ("a@x.com, B@Y.com" -> two).
std::vector<std::string> emails_of(std::string_view billing_email);
// Lower-cased, punctuation-free name without a legal suffix or a leading "the":
// "The Smith & Sons, LLC" -> "smith and sons".
std::string normalize_name(std::string_view name);
// Whether a mail domain is a public provider (gmail.com…), which says nothing about a company.
bool public_mail_domain(std::string_view domain) noexcept;

// The apply step's hook: keeps the indexes of `after` current (dropping `before`'s stale rows)
// and matches a client that is not in a party yet. Links and exceptions it makes are stamped
// with the client's update time at its source.
status on_client(const store& s,
                 batch& b,
                 const mappings::client* before,
                 const mappings::client& after);

// Writes the match-index rows of every stored client (the schema 1 -> 2 upgrade: clients stored
// before the identity map existed). Matching waits for each client's next change.
status index_all(const store& s, batch& b);

// The party a client belongs to (itself when it stands alone).
result<std::string> party_of(const store& s, batch* b, std::string_view client);

struct member {
    std::string client;  // canonical client id
    std::string system;  // connector name
    std::string how;     // "client_code", "email", "domain_name", "manual", "" (the first member)
    std::string at;      // RFC 3339, when it joined
};
// Every member of the client's party, the client itself included.
result<std::vector<member>> members_of(const store& s, batch* b, std::string_view client);

// The canonical client of the same party in `system` (a connector name); nullopt when the party
// has no member there (yet).
result<std::optional<std::string>> counterpart(const store& s,
                                               batch* b,
                                               std::string_view client,
                                               std::string_view system);

// The member whose fields count for the party: the one from `owner` (the [sources] clients
// connector) when the party has one, else the client itself.
result<std::string> authoritative(const store& s,
                                  batch* b,
                                  std::string_view client,
                                  std::string_view owner);

struct exception_info {
    std::string client;
    std::string kind;    // "ambiguous", "code_conflict", "name_only", "missing"
    std::string reason;  // for people
    std::vector<std::string> candidates;
    std::string needed_by;  // "missing": who waits (e.g. "draft_time work item 42")
    std::string system;     // "missing": the system the counterpart is needed in
    std::string at;
};
result<std::vector<exception_info>> exceptions(const store& s);

// A workflow that needs the client in `system` and found no counterpart records why it waits
// (idempotent: the first record's time is kept).
status need_counterpart(const store& s,
                        batch& b,
                        std::string_view client,
                        std::string_view system,
                        std::string_view needed_by,
                        util::instant now);

// Resolves what an operator typed: a canonical client id, or "<system>:<vendor id>" (the
// connector name and the vendor's own client id). nullopt: no such client.
result<std::optional<std::string>> find_client(const store& s, std::string_view ref);

// Operator decisions. link puts b's whole party into a's; unlink takes the client out of its
// party. Both mark the clients touched as decided by hand and clear their exceptions. The error
// text of a refused link is for people ("both are customers of qbo").
struct decision {
    bool ok = false;
    std::string error;
    std::string party;  // link: the party both now belong to
};
result<decision> link(
    const store& s, batch& b, std::string_view a, std::string_view bclient, util::instant now);
result<decision> unlink(const store& s, batch& b, std::string_view client, util::instant now);

// Every party of two or more members, keyed by party id.
result<std::vector<std::pair<std::string, std::vector<member>>>> parties(const store& s);

}  // namespace billsync::state::identity
