#pragma once

// A store with the tables rules write to, and one committed step at a time, for rule tests.

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "state/outbox.hpp"
#include "state/store.hpp"
#include "state/tables.hpp"
#include "state/timers.hpp"
#include "tests/fakes/temp_dir.hpp"
#include "util/clock.hpp"
#include "workflows/context.hpp"

namespace billsync::workflows::testing_support {

inline util::instant at(std::string_view text) {
    util::instant t{};
    EXPECT_TRUE(util::parse_rfc3339(text, t)) << text;
    return t;
}

class state_fixture : public ::testing::Test {
protected:
    void SetUp() override {
        auto st = state::store::open(dir_.path() / "state");
        ASSERT_TRUE(st.ok()) << st.st.message;
        store_ = std::move(st.value);
        auto ob = state::outbox::open(*store_);
        ASSERT_TRUE(ob.ok());
        outbox_ = std::move(ob.value);
        timers_ = std::make_unique<state::timers>(*store_);
        auto au = state::audit_log::open(*store_);
        ASSERT_TRUE(au.ok());
        audit_ = std::move(au.value);
    }

    // One step: fn decides into a batch, committed when it succeeds. Returns fn's status.
    template <typename Fn>
    state::status step(Fn fn, util::instant now = at("2026-01-05T15:00:00Z")) {
        state::batch b(*store_);
        context ctx{b, *outbox_, *timers_, *audit_, now};
        ctx.store = store_.get();
        auto st = fn(ctx);
        if (st.ok) {
            EXPECT_TRUE(store_->write(b, true).ok);
            last_enqueued_ = ctx.enqueued;
        }
        return st;
    }

    std::string audit_text() {
        auto r = audit_->read(at("2000-01-01T00:00:00Z"), 10'000);
        std::string out;
        for (const auto& e : r.value) {
            out += e.line + "\n";
        }
        return out;
    }

    std::vector<state::action> actions() {
        auto r = outbox_->ready(at("2100-01-01T00:00:00Z"), 1000);
        EXPECT_TRUE(r.ok());
        return r.value;
    }

    testing::temp_dir dir_;
    std::unique_ptr<state::store> store_;
    std::unique_ptr<state::outbox> outbox_;
    std::unique_ptr<state::timers> timers_;
    std::unique_ptr<state::audit_log> audit_;
    std::vector<std::pair<std::string, std::string>> last_enqueued_;
};

}  // namespace billsync::workflows::testing_support
