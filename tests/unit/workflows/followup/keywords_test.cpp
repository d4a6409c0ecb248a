#include "workflows/followup/keywords.hpp"

#include <gtest/gtest.h>

namespace billsync::workflows::followup {
namespace {

const std::vector<std::string> defaults = {"dispute", "incorrect", "question"};

TEST(DisputeKeywords, WholeWordsIgnoringCase) {
    EXPECT_TRUE(contains_dispute_keyword("I DISPUTE this charge", defaults));
    EXPECT_TRUE(contains_dispute_keyword("Dispute!", defaults));
    EXPECT_TRUE(contains_dispute_keyword("the amount is incorrect.", defaults));
    EXPECT_TRUE(contains_dispute_keyword("Quick question: what is this?", defaults));
    EXPECT_TRUE(contains_dispute_keyword("(question)", defaults));
    EXPECT_TRUE(contains_dispute_keyword("question", defaults));
    EXPECT_FALSE(contains_dispute_keyword("disputed", defaults));
    EXPECT_FALSE(contains_dispute_keyword("indisputable", defaults));
    EXPECT_FALSE(contains_dispute_keyword("questions", defaults));
    EXPECT_FALSE(contains_dispute_keyword("correct", defaults));
    EXPECT_FALSE(contains_dispute_keyword("dispute_id", defaults));
    EXPECT_FALSE(contains_dispute_keyword("", defaults));
    EXPECT_FALSE(contains_dispute_keyword("Thanks, paid today", defaults));
}

TEST(DisputeKeywords, Utf8Text) {
    // Punctuation and spaces outside ASCII are boundaries.
    EXPECT_TRUE(contains_dispute_keyword("Invoice\u2014incorrect", defaults));
    EXPECT_TRUE(contains_dispute_keyword("\u201cdispute\u201d", defaults));
    EXPECT_TRUE(contains_dispute_keyword("\u00a0dispute\u00a0", defaults));
    EXPECT_TRUE(contains_dispute_keyword("Caf\u00e9 question", defaults));
    // Letters outside ASCII are part of the word.
    EXPECT_FALSE(contains_dispute_keyword("question\u00e9", defaults));
    EXPECT_FALSE(contains_dispute_keyword("\u00e9dispute", defaults));
    // Malformed UTF-8 is a boundary, never a crash.
    EXPECT_TRUE(
        contains_dispute_keyword("\xff"
                                 "dispute"
                                 "\xc3",
                                 defaults));
}

TEST(DisputeKeywords, MultiWordAndCustomKeywords) {
    const std::vector<std::string> custom = {"wrong amount", "  ", ""};
    EXPECT_TRUE(contains_dispute_keyword("That is the WRONG   amount", custom));
    EXPECT_TRUE(contains_dispute_keyword("wrong\namount", custom));
    EXPECT_FALSE(contains_dispute_keyword("wrongamount", custom));
    EXPECT_FALSE(contains_dispute_keyword("wrong amounts", custom));
}

}  // namespace
}  // namespace billsync::workflows::followup
