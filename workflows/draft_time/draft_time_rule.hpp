#pragma once

// draft_time: when practice work completes, draft the time entry for the person who did it, so
// they only confirm or adjust it.
//
// - Trigger: a work_item change whose status is a completing status ("completed" by default) or
//   whose stage is one of its work type's completing stages.
// - One draft per work item, ever: a row "draft_time"/<work item> records it; re-completion after
//   a re-open, repeated changes and replays find the row and skip (audited). The action key is
//   action_key("draft_time", work item, 1), so even a replayed step cannot queue a second one,
//   and it travels as the entry's external reference.
// - The draft: client through the identity map (the client's remote key in the time connector),
//   staff by the assignee's email among the time connector's staff, project/task/hours from the
//   work type's mapping, the completion date (else today in the firm's zone), notes naming the
//   work item and "drafted by billsync". Anything unresolved is an exception: audited, listed by
//   the review view, and retried on the next change of the work item, a client or a staff member.
//   A work item deleted (or re-opened) before the draft is created drafts nothing.
// - After creation: the entry seen with a later updated_at than billsync's write was edited by
//   staff ("edited") and is never touched again; one that became locked (approved) with the
//   hours and date billsync wrote was approved as drafted ("approved", its own cause), and is
//   likewise never touched again; an entry still untouched at the first review moment
//   (review_day at review_hour, firm time zone) after it was created, or review_after after it
//   when that is set, joins the review list (GET /workflows/draft_time/review, `billsync
//   workflow draft_time review`).
// - Reconcile (reconcile, daily at reconcile_hour): polling by update time never shows a delete,
//   so each pass re-reads every open draft's entry (created or in review) through the
//   before_timer refresh, 25 per firing every 30 s. A re-read entry that changed arrives as an
//   update (edited, as above); one that is gone (404) arrives as a delete: the draft becomes
//   "deleted" (final, audited with its cause, off the review list and the email, never drafted
//   again). Progress and the last pass: row "draft_time_reconcile"/"state", the list view.
// - Missing time ([draft_time.missing_time]): each working day at check_hour, the staff with less
//   time recorded than expected on the previous working day (missing_time.hpp), kept per day
//   (GET /workflows/draft_time/missing) and, with remind, emailed to each of them once.
// - Review email (review_email): weekly on review_day, each staff member with drafts on the
//   review list gets one email listing them.

#include <memory>
#include <string>

#include "workflows/draft_time/settings.hpp"
#include "workflows/rule.hpp"

namespace billsync::workflows::draft_time {

class draft_time_rule final : public rule {
public:
    // email: the connector taking "email.send" for missing-time reminders; empty: none.
    explicit draft_time_rule(settings s, std::string email = {});

    std::string_view name() const noexcept override { return "draft_time"; }
    state::status on_change(const mappings::change& c, context& ctx) const override;
    state::status on_start(context& ctx) const override;
    bool owns_timer(std::string_view timer_name) const noexcept override;
    state::status on_timer(const state::timer& t, context& ctx) const override;
    std::vector<refresh_target> before_timer(std::string_view timer_name,
                                             const state::store& s) const override;
    std::optional<std::string> recheck(const state::action& a, context& ctx) const override;
    std::vector<verb_spec> verbs() const override;
    operator_answer view(std::string_view path, const state::store& s) const override;
    // `missing` reads as a list per day; the other views print their JSON.
    cli_result cli_view(std::string_view verb,
                        const std::vector<std::string>& args,
                        const state::store& s,
                        cli_output format,
                        std::ostream& out,
                        std::ostream& err) const override;

private:
    state::status on_work_item(const mappings::change& c, context& ctx) const;
    state::status on_time_entry(const mappings::change& c, context& ctx) const;
    state::status retry_waiting(const mappings::change& c, context& ctx) const;
    state::status attempt(const mappings::work_item& w,
                          nlohmann::json row,
                          context& ctx,
                          const mappings::staff* hint) const;
    const work_type_mapping* mapping_for(std::string_view work_type) const;
    bool completes(const mappings::work_item& w) const;
    state::status check_missing_time(context& ctx) const;
    state::status send_review_emails(context& ctx) const;
    state::status reconcile_step(context& ctx) const;
    util::instant next_review(util::instant now) const;
    util::instant review_due(const nlohmann::json& row, util::instant now) const;
    util::instant next_reconcile(util::instant now) const;

    settings s_;
    std::string email_;
};

std::unique_ptr<rule> make(const settings& s, const rule_deps& deps, std::string* error);

}  // namespace billsync::workflows::draft_time
