// The cross-system identity map: clients of different systems are grouped by strong keys only,
// never guessed, and operators decide what matching cannot.

#include "state/identity.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "state/apply.hpp"
#include "state/tables.hpp"
#include "tests/unit/state/state_test_support.hpp"

namespace billsync::state {
namespace {

using testing::temp_dir;

class identity_test : public ::testing::Test {
protected:
    void SetUp() override {
        store_ = testing::open_store(dir_.db());
        ASSERT_TRUE(store_);
    }

    static mappings::client client(std::string system,
                                   std::string id,
                                   std::string name,
                                   std::string email) {
        mappings::client c;
        c.id = system + ":client:" + id;
        c.display_name = std::move(name);
        c.contact.billing_email = std::move(email);
        c.source = {system, "", id, "1", *mappings::parse_timestamp("2026-03-02T10:00:00Z")};
        return c;
    }

    static mappings::client coded(
        std::string system, std::string id, std::string name, std::string email, std::string code) {
        auto c = client(std::move(system), std::move(id), std::move(name), std::move(email));
        c.client_code = std::move(code);
        return c;
    }

    // A later version of a stored client, as its source sends it.
    static mappings::client later(mappings::client c, std::string_view at) {
        c.source.updated = *mappings::parse_timestamp(at);
        return c;
    }

    void put(mappings::client c) {
        batch b(*store_);
        const auto system = c.source.system;
        auto r = apply(*store_, b, system, std::move(c));
        ASSERT_TRUE(r.ok()) << r.st.message;
        ASSERT_TRUE(store_->write(b, false).ok);
    }

    std::vector<std::string> party(std::string_view id) {
        auto m = identity::members_of(*store_, nullptr, id);
        EXPECT_TRUE(m.ok());
        std::vector<std::string> out;
        for (const auto& x : m.value) {
            out.push_back(x.client);
        }
        std::sort(out.begin(), out.end());
        return out;
    }

    std::vector<identity::exception_info> exceptions() {
        auto e = identity::exceptions(*store_);
        EXPECT_TRUE(e.ok());
        return e.value;
    }

    identity::decision link(std::string_view a, std::string_view b2) {
        batch b(*store_);
        auto r = identity::link(*store_, b, a, b2, util::instant{});
        EXPECT_TRUE(r.ok());
        EXPECT_TRUE(store_->write(b, false).ok);
        return r.value;
    }

    void unlink(std::string_view a) {
        batch b(*store_);
        auto r = identity::unlink(*store_, b, a, util::instant{});
        ASSERT_TRUE(r.ok() && r.value.ok);
        ASSERT_TRUE(store_->write(b, false).ok);
    }

    std::string how(std::string_view id) {
        auto m = identity::members_of(*store_, nullptr, id);
        EXPECT_TRUE(m.ok());
        for (const auto& x : m.value) {
            if (x.client == id) {
                return x.how;
            }
        }
        return "?";
    }

    std::vector<std::string> code_rows() {
        std::vector<std::string> out;
        EXPECT_TRUE(store_
                        ->for_each(cf::xref,
                                   "c/",
                                   [&](std::string_view key, std::string_view) {
                                       out.emplace_back(key);
                                       return true;
                                   })
                        .ok);
        return out;
    }

    temp_dir dir_;
    std::unique_ptr<store> store_;
};

TEST(identity_normalize, names_lose_case_punctuation_and_legal_suffixes) {
    EXPECT_EQ(identity::normalize_name("The Smith & Sons, LLC"), "smith and sons");
    EXPECT_EQ(identity::normalize_name("O'Brien Tax Co."), "obrien tax");
    EXPECT_EQ(identity::normalize_name("  ACME   inc "), "acme");
    EXPECT_EQ(identity::normalize_name("Inc"), "inc");  // a name is never emptied
    EXPECT_EQ(identity::normalize_name("Müller GmbH"), "m\xc3\xbcller");
}

TEST(identity_normalize, billing_email_fields_hold_several_addresses) {
    EXPECT_EQ(identity::emails_of("AP@Acme.com, Owner@acme.com;ap@acme.com"),
              (std::vector<std::string>{"ap@acme.com", "owner@acme.com"}));
    EXPECT_TRUE(identity::emails_of("not an address").empty());
    EXPECT_TRUE(identity::public_mail_domain("gmail.com"));
    EXPECT_FALSE(identity::public_mail_domain("acme.com"));
}

TEST_F(identity_test, an_exact_billing_email_links_clients_of_two_systems) {
    put(client("ledger", "7", "Acme LLC", "ap@acme.com"));
    put(client("practice", "ORG1", "ACME", "AP@acme.com"));
    EXPECT_EQ(party("practice:client:ORG1"),
              (std::vector<std::string>{"ledger:client:7", "practice:client:ORG1"}));
    auto other = identity::counterpart(*store_, nullptr, "practice:client:ORG1", "ledger");
    ASSERT_TRUE(other.ok() && other.value);
    EXPECT_EQ(*other.value, "ledger:client:7");
    EXPECT_TRUE(exceptions().empty());
}

TEST_F(identity_test, a_company_domain_plus_the_name_links_but_a_public_domain_does_not) {
    put(client("ledger", "7", "Acme LLC", "ap@acme.com"));
    put(client("practice", "ORG1", "Acme, Inc.", "owner@acme.com"));
    EXPECT_EQ(party("ledger:client:7").size(), 2U);

    put(client("ledger", "8", "Jane Roe", "jane.roe@gmail.com"));
    put(client("practice", "ORG2", "Jane Roe", "jroe@gmail.com"));
    EXPECT_EQ(party("practice:client:ORG2"), (std::vector<std::string>{"practice:client:ORG2"}));
    // Same name, nothing else confirms it: an exception, never a guess.
    const auto ex = exceptions();
    ASSERT_EQ(ex.size(), 1U);
    EXPECT_EQ(ex[0].client, "practice:client:ORG2");
    EXPECT_EQ(ex[0].kind, "name_only");
    EXPECT_EQ(ex[0].candidates, (std::vector<std::string>{"ledger:client:8"}));
}

TEST_F(identity_test, two_candidate_parties_are_an_exception_not_a_guess) {
    put(client("ledger", "7", "Acme East", "ap@acme.com"));
    put(client("books", "3", "Acme West", "ap@acme.com"));
    // ledger:7 and books:3 are linked by the shared email (different systems).
    EXPECT_EQ(party("books:client:3").size(), 2U);
    put(client("ledger", "9", "Acme North", "ap@acme.com"));
    // The only party with that email already has a ledger client: ledger:9 stays apart.
    EXPECT_EQ(party("ledger:client:9"), (std::vector<std::string>{"ledger:client:9"}));
    put(client("practice", "ORG1", "Acme", "ap@acme.com"));
    EXPECT_EQ(party("practice:client:ORG1"), (std::vector<std::string>{"practice:client:ORG1"}));
    const auto ex = exceptions();
    ASSERT_EQ(ex.size(), 1U);
    EXPECT_EQ(ex[0].kind, "ambiguous");
    EXPECT_EQ(ex[0].candidates.size(), 3U);
}

TEST_F(identity_test, two_clients_of_one_system_are_never_merged) {
    put(client("ledger", "7", "Acme", "ap@acme.com"));
    put(client("ledger", "8", "Acme", "ap@acme.com"));
    EXPECT_EQ(party("ledger:client:8"), (std::vector<std::string>{"ledger:client:8"}));
    const auto refused = link("ledger:client:7", "ledger:client:8");
    EXPECT_FALSE(refused.ok);
    EXPECT_NE(refused.error.find("'ledger'"), std::string::npos) << refused.error;
}

TEST_F(identity_test, operators_link_and_unlink_and_matching_respects_it) {
    put(client("ledger", "8", "Jane Roe", "jane.roe@gmail.com"));
    put(client("practice", "ORG2", "Jane Roe", "jroe@gmail.com"));
    ASSERT_EQ(exceptions().size(), 1U);
    const auto found = identity::find_client(*store_, "practice:ORG2");
    ASSERT_TRUE(found.ok() && found.value);
    EXPECT_EQ(*found.value, "practice:client:ORG2");
    EXPECT_TRUE(link("ledger:client:8", *found.value).ok);
    EXPECT_EQ(party("practice:client:ORG2").size(), 2U);
    EXPECT_TRUE(exceptions().empty());

    unlink("practice:client:ORG2");
    EXPECT_EQ(party("practice:client:ORG2"), (std::vector<std::string>{"practice:client:ORG2"}));
    EXPECT_EQ(party("ledger:client:8"), (std::vector<std::string>{"ledger:client:8"}));
    // A later edit of the unlinked client, now with the ledger's email, does not re-link it.
    put(client("practice", "ORG2", "Jane Roe", "jane.roe@gmail.com"));
    EXPECT_EQ(party("practice:client:ORG2"), (std::vector<std::string>{"practice:client:ORG2"}));
}

TEST_F(identity_test, unlinking_the_first_member_keeps_the_others_together) {
    put(client("ledger", "7", "Acme", "ap@acme.com"));
    put(client("practice", "ORG1", "Acme", "ap@acme.com"));
    put(client("time", "55", "Acme", "ap@acme.com"));
    ASSERT_EQ(party("time:client:55").size(), 3U);
    unlink("ledger:client:7");
    EXPECT_EQ(party("time:client:55"),
              (std::vector<std::string>{"practice:client:ORG1", "time:client:55"}));
    auto a = identity::authoritative(*store_, nullptr, "time:client:55", "practice");
    ASSERT_TRUE(a.ok());
    EXPECT_EQ(a.value, "practice:client:ORG1");
    auto none = identity::counterpart(*store_, nullptr, "time:client:55", "ledger");
    ASSERT_TRUE(none.ok());
    EXPECT_FALSE(none.value.has_value());
}

TEST_F(identity_test, a_workflow_waiting_on_a_counterpart_is_listed_once) {
    put(client("practice", "ORG1", "Acme", "ap@acme.com"));
    for (int i = 0; i < 2; ++i) {
        batch b(*store_);
        ASSERT_TRUE(identity::need_counterpart(
                        *store_, b, "practice:client:ORG1", "time", "draft_time wi-1", {})
                        .ok);
        ASSERT_TRUE(store_->write(b, false).ok);
    }
    const auto ex = exceptions();
    ASSERT_EQ(ex.size(), 1U);
    EXPECT_EQ(ex[0].kind, "missing");
    EXPECT_EQ(ex[0].system, "time");
    EXPECT_EQ(ex[0].needed_by, "draft_time wi-1");
    // The counterpart arrives and matches: the exception is gone.
    put(client("time", "55", "Acme", "ap@acme.com"));
    EXPECT_EQ(party("practice:client:ORG1").size(), 2U);
}

TEST_F(identity_test, an_email_change_moves_the_index) {
    put(client("ledger", "7", "Acme", "old@acme.com"));
    put(client("ledger", "7", "Acme", "new@acme.com"));
    put(client("practice", "ORG1", "Zeta", "old@acme.com"));
    EXPECT_EQ(party("practice:client:ORG1").size(), 1U);
    put(client("practice", "ORG9", "Zeta", "new@acme.com"));
    EXPECT_EQ(party("practice:client:ORG9").size(), 2U);
}

TEST_F(identity_test, a_client_code_links_clients_of_two_systems_without_case_or_spaces) {
    // Nothing else in common: another name, no email on one side.
    put(coded("ledger", "7", "Smith Holdings", "ap@smith.example", "SMI001"));
    put(coded("practice", "ORG1", "J. Smith", "", " smi001 "));
    EXPECT_EQ(party("practice:client:ORG1"),
              (std::vector<std::string>{"ledger:client:7", "practice:client:ORG1"}));
    EXPECT_EQ(how("practice:client:ORG1"), "client_code");
    EXPECT_TRUE(exceptions().empty());
    // A third system with the code joins the same party.
    put(coded("time", "55", "Smith", "", "SMI001"));
    EXPECT_EQ(party("ledger:client:7").size(), 3U);
    EXPECT_EQ(how("time:client:55"), "client_code");
}

TEST_F(identity_test, a_client_code_comes_before_the_email) {
    // The email names the same party as the code: the code is what the link records.
    put(coded("ledger", "7", "Smith", "ap@smith.example", "SMI001"));
    put(coded("practice", "ORG1", "Smith", "ap@smith.example", "SMI001"));
    EXPECT_EQ(how("practice:client:ORG1"), "client_code");
    // An email shared by two parties is ambiguous on its own; the code settles it.
    put(coded("books", "7", "Acme East", "ap@acme.com", "ACE001"));
    put(coded("books", "8", "Acme West", "ap@acme.com", "ACW001"));
    EXPECT_EQ(party("books:client:8").size(), 1U);  // one system: two clients
    put(coded("practice", "ORG2", "Acme", "ap@acme.com", "ACW001"));
    EXPECT_EQ(party("practice:client:ORG2"),
              (std::vector<std::string>{"books:client:8", "practice:client:ORG2"}));
    EXPECT_EQ(how("practice:client:ORG2"), "client_code");
    EXPECT_TRUE(exceptions().empty());
}

TEST_F(identity_test, a_client_code_on_two_parties_is_an_exception) {
    put(coded("ledger", "7", "Smith", "ap@smith.example", "SMI001"));
    put(coded("books", "3", "Smyth", "ap@smyth.example", "smi001"));
    // Different systems, same code: they join each other (one party).
    EXPECT_EQ(party("books:client:3").size(), 2U);
    put(coded("ledger", "8", "Other", "x@other.example", "OTH001"));
    put(coded("time", "55", "Other", "", ""));
    ASSERT_TRUE(link("time:client:55", "ledger:client:8").ok);
    // Make OTH001's party carry SMI001 too: a second party with the code (a client linked by
    // hand is not matched again when its code changes).
    put(later(coded("time", "55", "Other", "", "SMI001"), "2026-03-02T11:00:00Z"));
    ASSERT_EQ(party("time:client:55").size(), 2U);
    put(coded("practice", "ORG1", "Smith", "", "SMI001"));
    EXPECT_EQ(party("practice:client:ORG1"), (std::vector<std::string>{"practice:client:ORG1"}));
    const auto ex = exceptions();
    ASSERT_EQ(ex.size(), 1U);
    EXPECT_EQ(ex[0].client, "practice:client:ORG1");
    EXPECT_EQ(ex[0].kind, "ambiguous");
    EXPECT_NE(ex[0].reason.find("'SMI001'"), std::string::npos) << ex[0].reason;
    EXPECT_NE(ex[0].reason.find("2 different parties"), std::string::npos) << ex[0].reason;
    EXPECT_EQ(ex[0].candidates,
              (std::vector<std::string>{"books:client:3", "ledger:client:7", "time:client:55"}));
}

TEST_F(identity_test, a_client_code_twice_in_one_system_is_an_exception) {
    put(coded("ledger", "7", "Smith", "", "SMI001"));
    put(coded("ledger", "8", "Smith (old)", "", "SMI001"));
    ASSERT_EQ(exceptions().size(), 1U);
    EXPECT_EQ(exceptions()[0].client, "ledger:client:8");
    EXPECT_EQ(exceptions()[0].kind, "ambiguous");
    EXPECT_NE(exceptions()[0].reason.find("ledger:client:7"), std::string::npos);
    // The practice client with the code now sees two parties: never a guess.
    put(coded("practice", "ORG1", "Smith", "", "SMI001"));
    EXPECT_EQ(party("practice:client:ORG1").size(), 1U);
    EXPECT_EQ(exceptions().size(), 2U);
}

TEST_F(identity_test, a_client_code_against_the_email_is_an_exception) {
    // The email says party A (ledger:7), the code says party B (books:3).
    put(client("ledger", "7", "Acme", "ap@acme.com"));
    put(coded("books", "3", "Smith", "", "SMI001"));
    put(coded("practice", "ORG1", "Acme", "ap@acme.com", "SMI001"));
    EXPECT_EQ(party("practice:client:ORG1"), (std::vector<std::string>{"practice:client:ORG1"}));
    EXPECT_EQ(party("ledger:client:7").size(), 1U);
    EXPECT_EQ(party("books:client:3").size(), 1U);
    const auto ex = exceptions();
    ASSERT_EQ(ex.size(), 1U);
    EXPECT_EQ(ex[0].kind, "code_conflict");
    EXPECT_NE(ex[0].reason.find("books:client:3"), std::string::npos) << ex[0].reason;
    EXPECT_NE(ex[0].reason.find("billing email"), std::string::npos) << ex[0].reason;
    EXPECT_EQ(ex[0].candidates, (std::vector<std::string>{"books:client:3", "ledger:client:7"}));
}

TEST_F(identity_test, an_email_match_whose_party_has_another_code_is_an_exception) {
    put(coded("ledger", "7", "Acme", "ap@acme.com", "ACM001"));
    put(coded("practice", "ORG1", "Acme", "ap@acme.com", "ACM002"));
    EXPECT_EQ(party("practice:client:ORG1").size(), 1U);
    const auto ex = exceptions();
    ASSERT_EQ(ex.size(), 1U);
    EXPECT_EQ(ex[0].kind, "code_conflict");
    EXPECT_NE(ex[0].reason.find("'ACM001'"), std::string::npos) << ex[0].reason;
    // The same code on both sides: the email and the code agree.
    put(coded("time", "55", "Acme", "ap@acme.com", "acm001"));
    EXPECT_EQ(how("time:client:55"), "client_code");
    EXPECT_EQ(party("ledger:client:7").size(), 2U);
}

TEST_F(identity_test, a_code_change_moves_the_index_and_a_delete_drops_it) {
    put(coded("ledger", "7", "Smith", "", "SMI001"));
    const auto row = [](std::string_view code, std::string_view client) {
        return "c/" + std::string(code) + std::string(1, '\0') + std::string(client);
    };
    EXPECT_EQ(code_rows(), (std::vector<std::string>{row("smi001", "ledger:client:7")}));
    put(later(coded("ledger", "7", "Smith", "", "SMI002"), "2026-03-02T11:00:00Z"));
    EXPECT_EQ(code_rows(), (std::vector<std::string>{row("smi002", "ledger:client:7")}));
    put(coded("practice", "ORG1", "Smith & Co", "", "SMI001"));
    EXPECT_EQ(party("practice:client:ORG1").size(), 1U);  // the old code names no one
    put(coded("practice", "ORG2", "Smith & Co", "", "SMI002"));
    EXPECT_EQ(party("practice:client:ORG2").size(), 2U);
    EXPECT_TRUE(exceptions().empty());

    auto gone =
        later(coded("practice", "ORG1", "Smith & Co", "", "SMI001"), "2026-03-03T00:00:00Z");
    gone.deleted = true;
    put(gone);
    EXPECT_EQ(code_rows(),
              (std::vector<std::string>{row("smi002", "ledger:client:7"),
                                        row("smi002", "practice:client:ORG2")}));
}

TEST_F(identity_test, a_corrected_duplicate_code_clears_its_exception) {
    put(coded("ledger", "7", "Smith", "", "SMI001"));
    put(coded("ledger", "8", "Smyth", "", "SMI001"));
    ASSERT_EQ(exceptions().size(), 1U);
    put(later(coded("ledger", "8", "Smyth", "", "SMY001"), "2026-03-02T11:00:00Z"));
    EXPECT_TRUE(exceptions().empty());
    // A workflow's "missing" exception is not the matcher's to drop.
    batch b(*store_);
    ASSERT_TRUE(
        identity::need_counterpart(*store_, b, "ledger:client:8", "practice", "task 1", {}).ok);
    ASSERT_TRUE(store_->write(b, false).ok);
    put(later(coded("ledger", "8", "Smyth", "", "SMY002"), "2026-03-02T12:00:00Z"));
    ASSERT_EQ(exceptions().size(), 1U);
    EXPECT_EQ(exceptions()[0].kind, "missing");
}

TEST_F(identity_test, a_linked_client_whose_code_now_names_another_party_is_an_exception) {
    // Linked by the billing email, no codes yet.
    put(client("ledger", "7", "Acme", "ap@acme.com"));
    put(client("practice", "ORG1", "Acme", "ap@acme.com"));
    ASSERT_EQ(party("practice:client:ORG1").size(), 2U);
    put(coded("books", "3", "Smith", "", "SMI001"));
    // The practice client now carries books:3's code: the code names books:3, the email ledger:7.
    put(later(coded("practice", "ORG1", "Acme", "ap@acme.com", "SMI001"), "2026-03-02T11:00:00Z"));
    EXPECT_EQ(party("practice:client:ORG1"), (std::vector<std::string>{"practice:client:ORG1"}));
    EXPECT_EQ(party("ledger:client:7"), (std::vector<std::string>{"ledger:client:7"}));
    EXPECT_EQ(party("books:client:3"), (std::vector<std::string>{"books:client:3"}));
    const auto ex = exceptions();
    ASSERT_EQ(ex.size(), 1U);
    EXPECT_EQ(ex[0].client, "practice:client:ORG1");
    EXPECT_EQ(ex[0].kind, "code_conflict");
    EXPECT_EQ(ex[0].candidates, (std::vector<std::string>{"books:client:3", "ledger:client:7"}));
}

TEST_F(identity_test, a_linked_client_whose_code_now_contradicts_its_party_leaves_it) {
    put(coded("ledger", "7", "Smith Holdings", "", "SMI001"));
    put(coded("practice", "ORG1", "J. Smith", "", "SMI001"));
    ASSERT_EQ(how("practice:client:ORG1"), "client_code");
    // The code changes at its source: it no longer names the ledger client.
    put(later(coded("practice", "ORG1", "J. Smith", "", "SMI002"), "2026-03-02T11:00:00Z"));
    EXPECT_EQ(party("practice:client:ORG1"), (std::vector<std::string>{"practice:client:ORG1"}));
    EXPECT_EQ(party("ledger:client:7"), (std::vector<std::string>{"ledger:client:7"}));
    auto ex = exceptions();
    ASSERT_EQ(ex.size(), 1U);
    EXPECT_EQ(ex[0].client, "practice:client:ORG1");
    EXPECT_EQ(ex[0].kind, "code_conflict");
    EXPECT_NE(ex[0].reason.find("'SMI002'"), std::string::npos) << ex[0].reason;
    EXPECT_NE(ex[0].reason.find("'SMI001'"), std::string::npos) << ex[0].reason;
    EXPECT_EQ(ex[0].candidates, (std::vector<std::string>{"ledger:client:7"}));
    // Corrected back: it joins again and the exception is gone.
    put(later(coded("practice", "ORG1", "J. Smith", "", "smi001"), "2026-03-02T12:00:00Z"));
    EXPECT_EQ(party("ledger:client:7").size(), 2U);
    EXPECT_EQ(how("practice:client:ORG1"), "client_code");
    EXPECT_TRUE(exceptions().empty());
}

TEST_F(identity_test, a_linked_client_whose_code_now_names_another_party_alone_moves_there) {
    put(coded("ledger", "7", "Smith Holdings", "", "SMI001"));
    put(coded("practice", "ORG1", "J. Smyth", "", "SMI001"));
    put(coded("books", "3", "Smyth Ltd", "", "SMY001"));
    ASSERT_EQ(party("practice:client:ORG1").size(), 2U);
    // The firm corrects the practice client's code: nothing else ties it to the ledger client.
    put(later(coded("practice", "ORG1", "J. Smyth", "", "SMY001"), "2026-03-02T11:00:00Z"));
    EXPECT_EQ(party("practice:client:ORG1"),
              (std::vector<std::string>{"books:client:3", "practice:client:ORG1"}));
    EXPECT_EQ(how("practice:client:ORG1"), "client_code");
    EXPECT_EQ(party("ledger:client:7"), (std::vector<std::string>{"ledger:client:7"}));
    EXPECT_TRUE(exceptions().empty());
}

TEST_F(identity_test, a_code_that_agrees_with_the_party_keeps_the_link) {
    put(client("ledger", "7", "Acme", "ap@acme.com"));
    put(client("practice", "ORG1", "Acme", "ap@acme.com"));
    // Codes arrive one side at a time (stored before billsync read them), then one is cleared.
    put(later(coded("practice", "ORG1", "Acme", "ap@acme.com", "ACM001"), "2026-03-02T11:00:00Z"));
    put(later(coded("ledger", "7", "Acme", "ap@acme.com", "acm001"), "2026-03-02T11:00:00Z"));
    put(later(coded("practice", "ORG1", "Acme", "ap@acme.com", ""), "2026-03-02T12:00:00Z"));
    EXPECT_EQ(party("ledger:client:7"),
              (std::vector<std::string>{"ledger:client:7", "practice:client:ORG1"}));
    EXPECT_EQ(how("practice:client:ORG1"), "email");
    EXPECT_TRUE(exceptions().empty());
}

TEST_F(identity_test, the_first_client_of_a_party_leaving_on_a_code_change_keeps_the_rest) {
    put(client("ledger", "7", "Acme", "ap@acme.com"));
    put(coded("practice", "ORG1", "Acme", "ap@acme.com", "ACM001"));
    put(coded("time", "55", "Acme", "ap@acme.com", "ACM001"));
    ASSERT_EQ(party("time:client:55").size(), 3U);
    // The ledger client (the party's first) gets another code than its party's.
    put(later(coded("ledger", "7", "Acme", "ap@acme.com", "ACX999"), "2026-03-02T11:00:00Z"));
    EXPECT_EQ(party("time:client:55"),
              (std::vector<std::string>{"practice:client:ORG1", "time:client:55"}));
    EXPECT_EQ(party("ledger:client:7"), (std::vector<std::string>{"ledger:client:7"}));
    const auto ex = exceptions();
    ASSERT_EQ(ex.size(), 1U);
    EXPECT_EQ(ex[0].client, "ledger:client:7");
    EXPECT_EQ(ex[0].kind, "code_conflict");
    EXPECT_NE(ex[0].reason.find("'ACM001'"), std::string::npos) << ex[0].reason;
}

TEST_F(identity_test, a_deleted_client_leaves_its_party_and_the_others_stay_together) {
    put(client("ledger", "7", "Acme", "ap@acme.com"));
    put(client("practice", "ORG1", "Acme", "ap@acme.com"));
    put(client("time", "55", "Acme", "ap@acme.com"));
    ASSERT_EQ(party("time:client:55").size(), 3U);
    auto gone = later(client("ledger", "7", "Acme", "ap@acme.com"), "2026-03-03T00:00:00Z");
    gone.deleted = true;
    put(gone);
    EXPECT_EQ(party("ledger:client:7"), (std::vector<std::string>{"ledger:client:7"}));
    EXPECT_EQ(party("time:client:55"),
              (std::vector<std::string>{"practice:client:ORG1", "time:client:55"}));
    EXPECT_TRUE(exceptions().empty());
    // The party was named after the deleted client: it is named after a member now.
    auto all = identity::parties(*store_);
    ASSERT_TRUE(all.ok());
    ASSERT_EQ(all.value.size(), 1U);
    EXPECT_NE(all.value[0].first, "ledger:client:7");
}

TEST_F(identity_test, a_client_linked_only_through_one_that_is_deleted_leaves_too) {
    put(client("ledger", "7", "Acme", "ap@acme.com"));
    put(coded("practice", "ORG1", "Acme", "ap@acme.com", "ACM001"));  // by the email
    put(coded("time", "55", "Acme Consulting", "", "ACM001"));        // by the code, via ORG1
    ASSERT_EQ(party("time:client:55").size(), 3U);
    ASSERT_EQ(how("time:client:55"), "client_code");
    auto gone = later(client("practice", "ORG1", "Acme", "ap@acme.com"), "2026-03-03T00:00:00Z");
    gone.deleted = true;
    put(gone);
    // Nothing of its own ties the time client to the ledger client.
    EXPECT_EQ(party("time:client:55"), (std::vector<std::string>{"time:client:55"}));
    EXPECT_EQ(party("ledger:client:7"), (std::vector<std::string>{"ledger:client:7"}));
    EXPECT_TRUE(exceptions().empty());
    auto all = identity::parties(*store_);
    ASSERT_TRUE(all.ok());
    EXPECT_TRUE(all.value.empty());
}

TEST_F(identity_test, a_client_still_tied_by_its_own_keys_stays_when_another_leaves) {
    put(client("ledger", "7", "Acme", "ap@acme.com"));
    put(coded("practice", "ORG1", "Acme", "ap@acme.com", "ACM001"));
    put(coded("time", "55", "Acme", "ops@acme.com", "ACM001"));  // by the code, via ORG1
    put(coded("portal", "9", "Acme Consulting", "", "ACM001"));  // by the code, via both
    ASSERT_EQ(party("ledger:client:7").size(), 4U);
    // ORG1's code changes and it leaves. The others stay together on their own keys: the time
    // client is tied to the ledger client by domain and name, the portal client to the time
    // client by the code.
    put(later(coded("practice", "ORG1", "Acme", "ap@acme.com", "ACX999"), "2026-03-02T11:00:00Z"));
    EXPECT_EQ(party("ledger:client:7"),
              (std::vector<std::string>{"ledger:client:7", "portal:client:9", "time:client:55"}));
    EXPECT_EQ(party("practice:client:ORG1"), (std::vector<std::string>{"practice:client:ORG1"}));
}

TEST_F(identity_test, correcting_the_other_side_of_a_code_conflict_clears_both_exceptions) {
    put(coded("ledger", "7", "Smith", "", "SMI001"));
    put(coded("ledger", "8", "Smyth", "", "SMI001"));  // a duplicate code in the ledger
    put(coded("practice", "ORG1", "J. Smyth", "", "SMI001"));
    auto ex = exceptions();
    ASSERT_EQ(ex.size(), 2U);
    EXPECT_EQ(ex[0].client, "ledger:client:8");
    EXPECT_EQ(ex[1].client, "practice:client:ORG1");
    EXPECT_EQ(ex[1].candidates, (std::vector<std::string>{"ledger:client:7", "ledger:client:8"}));
    // The firm corrects the code where it was wrong: on ledger:7, not on the clients that wait.
    put(later(coded("ledger", "7", "Smith", "", "SMI009"), "2026-03-02T11:00:00Z"));
    EXPECT_TRUE(exceptions().empty());
    EXPECT_EQ(party("practice:client:ORG1"),
              (std::vector<std::string>{"ledger:client:8", "practice:client:ORG1"}));
    EXPECT_EQ(party("ledger:client:7"), (std::vector<std::string>{"ledger:client:7"}));
}

TEST_F(identity_test, a_name_only_exception_goes_when_its_candidate_is_deleted) {
    put(client("ledger", "7", "Acme", "ap@acme.com"));
    put(client("practice", "ORG1", "Acme Ltd", ""));
    auto ex = exceptions();
    ASSERT_EQ(ex.size(), 1U);
    EXPECT_EQ(ex[0].kind, "name_only");
    auto gone = later(client("ledger", "7", "Acme", "ap@acme.com"), "2026-03-03T00:00:00Z");
    gone.deleted = true;
    put(gone);
    EXPECT_TRUE(exceptions().empty());
    // No dependent row is left behind for the next change of the deleted client.
    std::size_t rows = 0;
    EXPECT_TRUE(store_
                    ->for_each(cf::xref,
                               "xc/",
                               [&](std::string_view, std::string_view) {
                                   ++rows;
                                   return true;
                               })
                    .ok);
    EXPECT_EQ(rows, 0U);
}

TEST_F(identity_test, linking_two_candidate_parties_by_hand_resolves_the_client_between_them) {
    put(client("ledger", "7", "Acme Holdings", "ap@acme.com"));
    put(client("books", "3", "Acme Tools", "billing@acme.com"));
    ASSERT_EQ(party("books:client:3").size(), 1U);
    put(client("practice", "ORG1", "Acme", "ap@acme.com, billing@acme.com"));
    auto ex = exceptions();
    ASSERT_EQ(ex.size(), 1U);
    EXPECT_EQ(ex[0].client, "practice:client:ORG1");
    EXPECT_EQ(ex[0].kind, "ambiguous");
    // The operator says the two ledger clients are one firm: the practice client is no longer
    // between two parties and joins them.
    EXPECT_TRUE(link("ledger:client:7", "books:client:3").ok);
    EXPECT_TRUE(exceptions().empty());
    EXPECT_EQ(party("practice:client:ORG1").size(), 3U);
}

TEST_F(identity_test, index_all_writes_the_code_row_of_a_row_that_has_a_code) {
    // Rows stored before client codes have none; a row that has one is indexed like the rest.
    auto c = coded("ledger", "7", "Smith", "", "SMI001");
    batch b(*store_);
    put_entity(b, "client", c.id, mappings::to_json(c).dump());
    ASSERT_TRUE(store_->write(b, false).ok);
    EXPECT_TRUE(code_rows().empty());
    batch up(*store_);
    ASSERT_TRUE(identity::index_all(*store_, up).ok);
    ASSERT_TRUE(store_->write(up, false).ok);
    ASSERT_EQ(code_rows().size(), 1U);
    put(coded("practice", "ORG1", "J. Smith", "", "SMI001"));
    EXPECT_EQ(how("practice:client:ORG1"), "client_code");
}

TEST(identity_upgrade, clients_stored_before_the_identity_map_are_indexed_on_upgrade) {
    temp_dir dir;
    mappings::client ledger;
    ledger.id = "ledger:client:7";
    ledger.display_name = "Acme";
    ledger.contact.billing_email = "ap@acme.com";
    ledger.source = {"ledger", "", "7", "1", std::nullopt};
    {
        open_options v1;
        v1.schema_version = 1;
        v1.migrations = {};
        auto s = testing::open_store(dir.db(), v1);
        ASSERT_TRUE(s);
        batch b(*s);
        put_entity(b, "client", ledger.id, mappings::to_json(ledger).dump());
        ASSERT_TRUE(s->write(b, true).ok);
    }
    auto s = testing::open_store(dir.db());
    ASSERT_TRUE(s);
    EXPECT_EQ(s->schema_version(), current_schema_version);
    mappings::client practice = ledger;
    practice.id = "practice:client:ORG1";
    practice.source = {"practice", "", "ORG1", "1", std::nullopt};
    batch b(*s);
    ASSERT_TRUE(apply(*s, b, "practice", practice).ok());
    ASSERT_TRUE(s->write(b, true).ok);
    auto other = identity::counterpart(*s, nullptr, practice.id, "ledger");
    ASSERT_TRUE(other.ok() && other.value);
    EXPECT_EQ(*other.value, ledger.id);
}

}  // namespace
}  // namespace billsync::state
