#include "workflows/draft_time/draft_time_rule.hpp"

#include <date/tz.h>
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <ostream>

#include "mappings/model.hpp"
#include "state/identity.hpp"
#include "state/keys.hpp"
#include "state/tables.hpp"
#include "workflows/action_key.hpp"
#include "workflows/draft_time/missing_time.hpp"
#include "workflows/rows.hpp"

namespace billsync::workflows::draft_time {

namespace {

using json = nlohmann::json;
using mappings::change;

constexpr std::string_view row_type = "draft_time";
constexpr std::string_view ref_type = "draft_time_ref";  // external reference -> work item
constexpr std::string_view review_prefix = "draft_time/review/";
constexpr std::string_view rule_name = "draft_time";
constexpr std::string_view review_email_timer = "draft_time/review_email";
// The daily reconcile: one pass re-reads every open draft's entry, a chunk per firing.
constexpr std::string_view reconcile_timer = "draft_time/reconcile";
constexpr std::string_view reconcile_row = "draft_time_reconcile";  // id "state"
constexpr std::string_view reconcile_id = "state";
// 25 re-reads every 30 s: under 13 % of Harvest's 100 requests per 15 s, and answered well within
// the daemon's refresh_wait (10 s by default) at 4 calls at a time.
constexpr std::size_t reconcile_chunk = 25;
constexpr std::chrono::seconds reconcile_spacing{30};
constexpr auto no_limit = std::numeric_limits<std::size_t>::max();

std::string lower(std::string_view s) {
    std::string out(s);
    for (auto& c : out) {
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    return out;
}

// "In Progress", "in_progress" and "InProgress" are one status.
std::string status_key(std::string_view s) {
    std::string out;
    for (const char c : s) {
        if (c != ' ' && c != '_' && c != '-') {
            out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        }
    }
    return out;
}

state::result<std::optional<json>> read_row(context& ctx,
                                            std::string_view type,
                                            std::string_view id) {
    auto r = state::get_entity(*ctx.store, ctx.b, type, id);
    if (!r.ok()) {
        return state::result<std::optional<json>>::failure(r.st);
    }
    if (!r.value) {
        return {state::status::success(), std::nullopt};
    }
    auto j = json::parse(*r.value, nullptr, false);
    if (!j.is_object()) {
        return {state::status::success(), std::nullopt};
    }
    return {state::status::success(), std::move(j)};
}

void write_row(context& ctx, const std::string& id, const json& row) {
    state::put_entity(ctx.b, row_type, id, row.dump());
}

void audit(context& ctx, std::string_view decision, const std::string& work_item, json extra = {}) {
    json line{{"rule", rule_name}, {"decision", decision}, {"work_item", work_item}};
    if (extra.is_object()) {
        line.update(extra);
    }
    ctx.audit.append(ctx.b, ctx.now, line.dump());
}

std::string draft_key(const std::string& work_item) { return action_key(rule_name, work_item, 1); }

// A draft billsync created that staff have neither edited nor deleted: what the reconcile
// re-reads. `entry` is the canonical time entry.
struct open_draft {
    std::string work_item;
    std::string entry;
};

// The open drafts with work item ids in (after, until] (until empty: no upper bound), in id
// order, at most `limit`; read from the committed state.
state::result<std::vector<open_draft>> open_drafts(const state::store& s,
                                                   std::string_view after,
                                                   std::string_view until,
                                                   std::size_t limit) {
    using result_t = state::result<std::vector<open_draft>>;
    std::vector<open_draft> out;
    const auto prefix = state::keys::join(row_type, "");
    std::string from = prefix;
    if (!after.empty()) {
        from.append(after);
        from.push_back('\0');  // the first key after `after`
    }
    auto st =
        s.for_each_range(state::cf::entities,
                         from,
                         state::keys::prefix_end(prefix),
                         [&](std::string_view key, std::string_view value) {
                             const auto id = key.substr(prefix.size());
                             if ((!until.empty() && id > until) || out.size() >= limit) {
                                 return false;
                             }
                             const auto j = json::parse(value, nullptr, false);
                             const auto state = text_of(j, "state");
                             const auto entry = text_of(j, "entry");
                             if ((state == "created" || state == "in_review") && !entry.empty()) {
                                 out.push_back({std::string(id), entry});
                             }
                             return true;
                         });
    if (!st.ok) {
        return result_t::failure(st);
    }
    return {state::status::success(), std::move(out)};
}

std::optional<json> stored_row(const state::store& s, std::string_view type, std::string_view id) {
    auto r = state::get_entity(s, type, id);
    if (!r.ok() || !r.value) {
        return std::nullopt;
    }
    auto j = json::parse(*r.value, nullptr, false);
    return j.is_object() ? std::optional<json>(std::move(j)) : std::nullopt;
}

// The civil date of `now` in the zone (UTC when the zone is unknown).
std::string today_in(const std::string& zone, util::instant now) {
    const date::time_zone* tz = nullptr;
    try {
        tz = zone.empty() ? nullptr : date::locate_zone(zone);
    } catch (const std::exception&) {
        tz = nullptr;
    }
    const auto secs = std::chrono::floor<std::chrono::seconds>(now);
    const auto local =
        tz != nullptr ? tz->to_local(secs).time_since_epoch() : secs.time_since_epoch();
    const auto day = std::chrono::floor<std::chrono::days>(local);
    return mappings::format_civil_date(std::chrono::year_month_day{std::chrono::sys_days(day)});
}

// The assignee's email: the staff row's, or the assignee id itself when it is an address.
std::string assignee_email(context& ctx, const std::string& assignee) {
    if (assignee.find('@') != std::string::npos) {
        return lower(assignee);
    }
    auto r = state::get_entity(*ctx.store, ctx.b, "staff", assignee);
    if (!r.ok() || !r.value) {
        return {};
    }
    std::string error;
    const auto j = json::parse(*r.value, nullptr, false);
    auto s = j.is_object() ? mappings::staff_from_json(j, error) : std::nullopt;
    return s ? lower(s->email) : std::string();
}

// The time connector's staff member with that email: its vendor id; empty when none.
std::string user_ref(context& ctx,
                     const std::string& connector,
                     const std::string& email,
                     const mappings::staff* hint) {
    if (email.empty()) {
        return {};
    }
    const auto matches = [&](const mappings::staff& s) {
        return s.source.system == connector && !s.source.id.empty() && s.active &&
               lower(s.email) == email;
    };
    if (hint != nullptr && matches(*hint)) {
        return hint->source.id;
    }
    std::string found;
    (void)state::for_each_entity(
        *ctx.store, "staff", [&](std::string_view, std::string_view value) {
            const auto j = json::parse(value, nullptr, false);
            std::string error;
            auto s = j.is_object() ? mappings::staff_from_json(j, error) : std::nullopt;
            if (s && matches(*s)) {
                found = s->source.id;
                return false;
            }
            return true;
        });
    return found;
}

}  // namespace

draft_time_rule::draft_time_rule(settings s, std::string email)
    : s_(std::move(s)), email_(std::move(email)) {}

const work_type_mapping* draft_time_rule::mapping_for(std::string_view work_type) const {
    const auto key = lower(work_type);
    for (const auto& m : s_.work_types) {
        if (lower(m.work_type) == key) {
            return &m;
        }
    }
    return nullptr;
}

bool draft_time_rule::completes(const mappings::work_item& w) const {
    const auto st = status_key(w.status);
    for (const auto& c : s_.completing_statuses) {
        if (status_key(c) == st) {
            return true;
        }
    }
    if (const auto* m = mapping_for(w.work_type); m != nullptr && !w.stage.empty()) {
        for (const auto& stage : m->stages) {
            if (lower(stage) == lower(w.stage)) {
                return true;
            }
        }
    }
    return false;
}

bool draft_time_rule::owns_timer(std::string_view timer_name) const noexcept {
    return timer_name.starts_with(review_prefix) || timer_name == missing_timer ||
           timer_name == review_email_timer || timer_name == reconcile_timer;
}

util::instant draft_time_rule::next_review(util::instant now) const {
    std::array<bool, 7> days{};
    days.at(s_.review_day % 7) = true;
    return next_at(days, {}, s_.review_hour, workflows::zone_of(s_.time_zone), now);
}

util::instant draft_time_rule::review_due(const json& row, util::instant now) const {
    if (s_.review_after) {
        return now + *s_.review_after;  // set explicitly: it wins over the review day
    }
    // The first review moment after the draft was created (queued); when billsync saw it only
    // after that moment, it is due at once.
    util::instant created = now;
    if (util::instant q{}; util::parse_rfc3339(text_of(row, "queued_at"), q) && q < now) {
        created = q;
    }
    return next_review(created);
}

util::instant draft_time_rule::next_reconcile(util::instant now) const {
    std::array<bool, 7> every_day{};
    every_day.fill(true);
    return next_at(every_day, {}, s_.reconcile_hour, workflows::zone_of(s_.time_zone), now);
}

std::vector<refresh_target> draft_time_rule::before_timer(std::string_view timer_name,
                                                          const state::store& s) const {
    if (timer_name != reconcile_timer) {
        return {};
    }
    // The chunk the previous firing chose; none when a pass is starting.
    const auto r = stored_row(s, reconcile_row, reconcile_id);
    const auto pass = r ? r->value("pass", json()) : json();
    const auto until = text_of(pass, "until");
    if (until.empty()) {
        return {};
    }
    // The range fixes the chunk; drafts created in it meanwhile are read too.
    auto chunk = open_drafts(s, text_of(pass, "after"), until, no_limit);
    std::vector<refresh_target> out;
    for (auto& d : chunk.value) {
        out.push_back({"time_entry", std::move(d.entry)});
    }
    return out;
}

// One firing of the reconcile. Before it, the pipeline re-read the entries of the chunk chosen by
// the previous firing (before_timer) and applied them in this batch: a deleted or changed entry
// has already reached on_time_entry. This firing counts what the chunk found, chooses the next
// chunk and schedules itself: at once for a pass's first chunk, reconcile_spacing later for the
// others, and at the next reconcile_hour when the pass is done.
state::status draft_time_rule::reconcile_step(context& ctx) const {
    if (!s_.reconcile) {
        return state::status::success();
    }
    auto row = read_row(ctx, reconcile_row, reconcile_id);
    if (!row.ok()) {
        return row.st;
    }
    auto r = row.value.value_or(json::object());
    auto pass = r.value("pass", json());
    std::string after;
    bool first = false;
    if (pass.is_object() && !text_of(pass, "until").empty()) {
        auto chunk =
            open_drafts(*ctx.store, text_of(pass, "after"), text_of(pass, "until"), no_limit);
        if (!chunk.ok()) {
            return chunk.st;
        }
        for (const auto& d : chunk.value) {
            auto now_row = read_row(ctx, row_type, d.work_item);
            if (!now_row.ok()) {
                return now_row.st;
            }
            const auto st = now_row.value ? text_of(*now_row.value, "state") : std::string();
            pass["checked"] = int_of(pass, "checked") + 1;
            if (st == "deleted") {
                pass["deleted"] = int_of(pass, "deleted") + 1;
            } else if (st == "edited") {
                pass["edited"] = int_of(pass, "edited") + 1;
            } else if (st == "approved") {
                pass["approved"] = int_of(pass, "approved") + 1;
            }
        }
        after = text_of(pass, "until");
    } else {
        first = true;
        pass = json{{"started_at", util::format_rfc3339(ctx.now)},
                    {"checked", 0},
                    {"deleted", 0},
                    {"edited", 0},
                    {"approved", 0}};
    }
    auto next = open_drafts(*ctx.store, after, {}, reconcile_chunk);
    if (!next.ok()) {
        return next.st;
    }
    util::instant due{};
    if (next.value.empty()) {
        pass.erase("after");
        pass.erase("until");
        pass["finished_at"] = util::format_rfc3339(ctx.now);
        ctx.audit.append(
            ctx.b,
            ctx.now,
            json{{"rule", rule_name},
                 {"decision", "reconcile"},
                 {"checked", pass["checked"]},
                 {"deleted", pass["deleted"]},
                 {"edited", pass["edited"]},
                 {"approved", int_of(pass, "approved")},
                 {"cause",
                  fmt::format("re-read {} open draft{} from {}: {} deleted and {} edited by "
                              "staff, {} approved as drafted",
                              int_of(pass, "checked"),
                              int_of(pass, "checked") == 1 ? "" : "s",
                              s_.connector,
                              int_of(pass, "deleted"),
                              int_of(pass, "edited"),
                              int_of(pass, "approved"))}}
                .dump());
        r["last_pass"] = std::move(pass);
        r.erase("pass");
        due = next_reconcile(ctx.now);
    } else {
        pass["after"] = after;
        pass["until"] = next.value.back().work_item;
        r["pass"] = std::move(pass);
        due = first ? ctx.now : ctx.now + reconcile_spacing;
    }
    r["next_at"] = util::format_rfc3339(due);
    state::put_entity(ctx.b, reconcile_row, reconcile_id, r.dump());
    return ctx.timers.schedule(ctx.b, reconcile_timer, due, "{}");
}

state::status draft_time_rule::send_review_emails(context& ctx) const {
    const auto next = next_review(ctx.now);
    if (!s_.review_email || email_.empty()) {
        return state::status::success();
    }
    // The drafts on the review list, per staff member; a draft whose review falls due at this
    // very moment counts too, whichever of the two timers fires first.
    const auto now_text = util::format_rfc3339(ctx.now);
    std::map<std::string, std::vector<json>> by_staff;
    auto st =
        state::for_each_entity(*ctx.store, row_type, [&](std::string_view, std::string_view v) {
            auto j = json::parse(v, nullptr, false);
            const auto state = text_of(j, "state");
            util::instant due{};
            const bool due_now = state == "created" &&
                                 util::parse_rfc3339(text_of(j, "review_due"), due) &&
                                 due <= ctx.now;
            if (j.is_object() && (state == "in_review" || due_now) &&
                !text_of(j, "staff_email").empty()) {
                by_staff[text_of(j, "staff_email")].push_back(std::move(j));
            }
            return true;
        });
    if (!st.ok) {
        return st;
    }
    const auto date = date::format(
        "%F",
        date::sys_days(
            workflows::local_day(workflows::zone_of(s_.time_zone), ctx.now).time_since_epoch()));
    for (const auto& [email, drafts] : by_staff) {
        std::string lines;
        for (const auto& d : drafts) {
            lines += fmt::format("  - {}  {} ({}), {}{}\n",
                                 text_of(d, "spent_date"),
                                 text_of(d, "title"),
                                 text_of(d, "work_type"),
                                 hours_text(int_of(d, "minutes")),
                                 d.value("billable", true) ? "" : ", non-billable");
        }
        state::action a;
        a.id = action_key("draft_time.review", email + "/" + date, 1);
        a.connector = email_;
        a.kind = "email.send";
        a.payload = json{
            {"to", email},
            {"subject",
             fmt::format("{} drafted time entr{} to review",
                         drafts.size(),
                         drafts.size() == 1 ? "y" : "ies")},
            {"text",
             fmt::format("Hello,\n\nbillsync drafted these time entries for you when "
                         "the work was completed, and they have not been changed "
                         "since. Please confirm or adjust them in the time "
                         "system:\n\n{}\n(sent by billsync)\n",
                         lines)},
            {"delivery_id",
             a.id}}.dump();
        if (auto added = ctx.enqueue(std::move(a)); !added.ok()) {
            return added.st;
        }
    }
    ctx.audit.append(ctx.b,
                     ctx.now,
                     json{{"rule", rule_name},
                          {"decision", "review_email"},
                          {"staff", by_staff.size()},
                          {"cause",
                           fmt::format("{} staff member{} emailed their drafts to review",
                                       by_staff.size(),
                                       by_staff.size() == 1 ? "" : "s")}}
                         .dump());
    return ctx.timers.schedule(ctx.b, review_email_timer, next, "{}");
}

state::status draft_time_rule::on_start(context& ctx) const {
    auto daily = ctx.timers.get(reconcile_timer);
    if (!daily.ok()) {
        return daily.st;
    }
    if (!s_.reconcile && daily.value) {
        if (auto st = ctx.timers.cancel(ctx.b, reconcile_timer); !st.ok) {
            return st;
        }
    } else if (s_.reconcile && !daily.value) {
        // A pass cut short by switching off starts afresh.
        auto row = read_row(ctx, reconcile_row, reconcile_id);
        if (!row.ok()) {
            return row.st;
        }
        auto r = row.value.value_or(json::object());
        r.erase("pass");
        const auto at = next_reconcile(ctx.now);
        r["next_at"] = util::format_rfc3339(at);
        state::put_entity(ctx.b, reconcile_row, reconcile_id, r.dump());
        if (auto st = ctx.timers.schedule(ctx.b, reconcile_timer, at, "{}"); !st.ok) {
            return st;
        }
    }
    auto weekly = ctx.timers.get(review_email_timer);
    if (!weekly.ok()) {
        return weekly.st;
    }
    if (!s_.review_email && weekly.value) {
        if (auto st = ctx.timers.cancel(ctx.b, review_email_timer); !st.ok) {
            return st;
        }
    } else if (s_.review_email && !weekly.value) {
        if (auto st = ctx.timers.schedule(ctx.b, review_email_timer, next_review(ctx.now), "{}");
            !st.ok) {
            return st;
        }
    }
    auto existing = ctx.timers.get(missing_timer);
    if (!existing.ok()) {
        return existing.st;
    }
    if (!s_.missing.enabled) {
        // Switched off: no check is left scheduled.
        return existing.value ? ctx.timers.cancel(ctx.b, missing_timer) : state::status::success();
    }
    if (existing.value) {
        return state::status::success();  // a check due while stopped fires now, once
    }
    const auto at = next_check(s_.missing, workflows::zone_of(s_.time_zone), ctx.now);
    return ctx.timers.schedule(ctx.b, missing_timer, at, "{}");
}

state::status draft_time_rule::check_missing_time(context& ctx) const {
    const auto* tz = workflows::zone_of(s_.time_zone);
    const auto next = next_check(s_.missing, tz, ctx.now);
    if (!s_.missing.enabled) {
        return state::status::success();
    }
    const auto day = previous_working_day(s_.missing, workflows::local_day(tz, ctx.now));
    auto report = check_day(*ctx.store, s_.connector, s_.missing, day);
    if (!report.ok()) {
        return report.st;
    }
    auto& r = report.value;
    const auto date = text_of(r, "date");
    r["checked_at"] = util::format_rfc3339(ctx.now);
    std::size_t reminded = 0;
    for (auto& person : r["short"]) {
        const auto email = text_of(person, "email");
        if (!s_.missing.remind || email_.empty() || email.empty()) {
            continue;
        }
        const auto recorded = int_of(person, "minutes");
        const auto name = text_of(person, "name");
        state::action a;
        a.id = action_key("draft_time.missing", email + "/" + date, 1);
        a.connector = email_;
        a.kind = "email.send";
        a.payload = json{
            {"to", email},
            {"to_name", name},
            {"subject", "Time missing for " + date},
            {"text",
             fmt::format("Hello{},\n\nThe time system shows {} recorded for {}, and {} is "
                         "expected for a working day. Please record the rest of the day's "
                         "time.\n\n(sent by billsync)\n",
                         name.empty() ? "" : " " + name,
                         hours_text(recorded),
                         date,
                         hours_text(s_.missing.expected_minutes))},
            {"delivery_id",
             a.id}}.dump();
        if (auto added = ctx.enqueue(std::move(a)); !added.ok()) {
            return added.st;
        }
        person["reminded"] = true;
        ++reminded;
    }
    state::put_entity(ctx.b, missing_row, date, r.dump());
    ctx.audit.append(ctx.b,
                     ctx.now,
                     json{{"rule", rule_name},
                          {"decision", "missing_time"},
                          {"date", date},
                          {"staff_checked", r["staff_checked"]},
                          {"short", r["short"].size()},
                          {"reminded", reminded},
                          {"cause",
                           fmt::format("{} of {} staff recorded less than {} on {}",
                                       r["short"].size(),
                                       r["staff_checked"].get<std::int64_t>(),
                                       hours_text(s_.missing.expected_minutes),
                                       date)}}
                         .dump());
    return ctx.timers.schedule(ctx.b, missing_timer, next, "{}");
}

state::status draft_time_rule::on_change(const change& c, context& ctx) const {
    if (c.entity_type == "work_item") {
        return on_work_item(c, ctx);
    }
    if (c.entity_type == "time_entry" && c.source == s_.connector) {
        return on_time_entry(c, ctx);
    }
    if (c.entity_type == "client" || (c.entity_type == "staff" && c.source == s_.connector)) {
        // A link or a staff member may have arrived: drafts waiting on one try again.
        return retry_waiting(c, ctx);
    }
    return state::status::success();
}

state::status draft_time_rule::on_work_item(const change& c, context& ctx) const {
    const auto* w = c.as<mappings::work_item>();
    if (w == nullptr) {
        return state::status::success();
    }
    auto row = read_row(ctx, row_type, w->id);
    if (!row.ok()) {
        return row.st;
    }
    const auto st = row.value ? text_of(*row.value, "state") : std::string();
    const bool waiting = st == "waiting";
    const bool open = !row.value || waiting || st == "withdrawn";
    if (w->deleted || c.what == change::op::deleted) {
        if (waiting) {
            (*row.value)["state"] = "cancelled";
            (*row.value)["cause"] = "the work item was deleted before the draft was created";
            write_row(ctx, w->id, *row.value);
            audit(ctx, "cancelled", w->id, {{"cause", "work item deleted before the draft"}});
        }
        return state::status::success();
    }
    if (!completes(*w)) {
        if (waiting) {
            (*row.value)["state"] = "withdrawn";
            (*row.value)["cause"] = "the work item was re-opened before the draft was created";
            write_row(ctx, w->id, *row.value);
            audit(ctx, "withdrawn", w->id, {{"cause", "re-opened before the draft"}});
        }
        return state::status::success();
    }
    if (!open) {
        audit(ctx,
              "skipped",
              w->id,
              {{"cause", "already drafted for this work item (state " + st + ")"},
               {"version", c.version}});
        return state::status::success();
    }
    return attempt(*w, row.value.value_or(json::object()), ctx, nullptr);
}

state::status draft_time_rule::attempt(const mappings::work_item& w,
                                       json row,
                                       context& ctx,
                                       const mappings::staff* hint) const {
    const auto key = draft_key(w.id);
    row["work_item"] = w.id;
    row["title"] = w.title;
    row["work_type"] = w.work_type;
    row["key"] = key;
    row["updated_at"] = util::format_rfc3339(ctx.now);
    const auto wait = [&](std::string kind, std::string cause) {
        const bool again = text_of(row, "state") == "waiting" && text_of(row, "cause") == cause;
        row["state"] = "waiting";
        row["exception"] = kind;
        row["cause"] = cause;
        write_row(ctx, w.id, row);
        if (!again) {
            audit(ctx, "exception", w.id, {{"exception", kind}, {"cause", cause}});
        }
        return state::status::success();
    };
    const auto* m = mapping_for(w.work_type);
    if (m == nullptr) {
        return wait("mapping",
                    "no [draft_time.work_types] entry for work type '" + w.work_type + "'");
    }
    // The work item's client as the time system knows it: the linked client of the same party
    // (the identity map), or the client itself when the time system wrote it.
    auto peer = state::identity::counterpart(*ctx.store, &ctx.b, w.client_id, s_.connector);
    if (!peer.ok()) {
        return peer.st;
    }
    auto client =
        state::remote_id(*ctx.store, ctx.b, peer.value ? *peer.value : w.client_id, s_.connector);
    if (!client.ok()) {
        return client.st;
    }
    if (!client.value) {
        // Listed with the identity exceptions (billsync identities list) until someone links it.
        if (auto st =
                state::identity::need_counterpart(*ctx.store,
                                                  ctx.b,
                                                  w.client_id,
                                                  s_.connector,
                                                  std::string(rule_name) + " work item " + w.id,
                                                  ctx.now);
            !st.ok) {
            return st;
        }
        return wait("identity",
                    "client " + w.client_id + " is not linked to a client in " + s_.connector);
    }
    const auto email = assignee_email(ctx, w.assignee_id);
    const auto user = user_ref(ctx, s_.connector, email, hint);
    if (user.empty()) {
        return wait("staff",
                    email.empty() ? "assignee '" + w.assignee_id + "' has no known email"
                                  : "no active " + s_.connector + " user with email " + email);
    }
    const auto date = w.completed_date ? mappings::format_civil_date(*w.completed_date)
                                       : today_in(s_.time_zone, ctx.now);
    json payload{{"key", key},
                 {"group_id", w.id},
                 {"permalink", ""},
                 {"client_ref", *client.value},
                 {"user_ref", user},
                 {"project", m->project},
                 {"task", m->task},
                 {"spent_date", date},
                 {"hours", m->hours},
                 {"notes",
                  w.title + " (" + w.work_type + ", work item " + w.id + ") - drafted by billsync" +
                      (m->billable ? "" : "; internal only, non-billable")},
                 {"billable", m->billable}};
    state::action a;
    a.id = key;
    a.connector = s_.connector;
    a.kind = "time_entry.create";
    a.payload = payload.dump();
    auto added = ctx.enqueue(std::move(a), cause{rule_name, w.id, 1, "work item completed"});
    if (!added.ok()) {
        return added.st;
    }
    row["state"] = "queued";
    row.erase("exception");
    row.erase("cause");
    row["spent_date"] = date;
    row["minutes"] = m->minutes;
    row["billable"] = m->billable;
    row["staff_email"] = email;
    row["queued_at"] = util::format_rfc3339(ctx.now);
    write_row(ctx, w.id, row);
    state::put_entity(ctx.b, ref_type, key, json{{"work_item", w.id}}.dump());
    audit(ctx,
          "drafted",
          w.id,
          {{"key", key},
           {"spent_date", date},
           {"hours", m->hours},
           {"billable", m->billable},
           {"staff", email}});
    return state::status::success();
}

state::status draft_time_rule::retry_waiting(const change& c, context& ctx) const {
    std::vector<std::pair<std::string, json>> waiting;
    auto st = state::for_each_entity(
        *ctx.store, row_type, [&](std::string_view id, std::string_view value) {
            auto j = json::parse(value, nullptr, false);
            if (j.is_object() && text_of(j, "state") == "waiting") {
                waiting.emplace_back(std::string(id), std::move(j));
            }
            return true;
        });
    if (!st.ok) {
        return st;
    }
    for (auto& [id, row] : waiting) {
        auto w = state::get_entity(*ctx.store, ctx.b, "work_item", id);
        if (!w.ok()) {
            return w.st;
        }
        if (!w.value) {
            continue;
        }
        std::string error;
        const auto j = json::parse(*w.value, nullptr, false);
        auto item = j.is_object() ? mappings::work_item_from_json(j, error) : std::nullopt;
        if (!item || item->deleted || !completes(*item)) {
            continue;
        }
        if (auto s = attempt(*item, std::move(row), ctx, c.as<mappings::staff>()); !s.ok) {
            return s;
        }
    }
    return state::status::success();
}

state::status draft_time_rule::on_time_entry(const change& c, context& ctx) const {
    const auto* t = c.as<mappings::time_entry>();
    if (t == nullptr || t->external_reference.empty()) {
        return state::status::success();
    }
    auto ref = read_row(ctx, ref_type, t->external_reference);
    if (!ref.ok()) {
        return ref.st;
    }
    if (!ref.value) {
        return state::status::success();  // not one of ours
    }
    const auto wi = text_of(*ref.value, "work_item");
    auto row = read_row(ctx, row_type, wi);
    if (!row.ok()) {
        return row.st;
    }
    if (!row.value) {
        return state::status::success();
    }
    auto& r = *row.value;
    const auto st = text_of(r, "state");
    const auto timer = std::string(review_prefix) + wi;
    const auto updated =
        t->source.updated ? util::format_rfc3339(*t->source.updated) : std::string();
    if (t->deleted) {
        // Staff deleted the draft (their way of saying "no time for this"): final. It leaves
        // the review list and the review email, no longer counts as recorded time (the entry is
        // deleted), and the work item is never drafted again.
        if (st != "deleted") {
            const auto cause = "deleted in " + s_.connector +
                               " by staff: no time recorded for this work; final, never drafted "
                               "again";
            r["previous_state"] = st;
            r["state"] = "deleted";
            r["cause"] = cause;
            r["deleted_seen_at"] = util::format_rfc3339(ctx.now);
            write_row(ctx, wi, r);
            audit(ctx, "entry_deleted", wi, {{"entry", t->source.id}, {"cause", cause}});
        }
        return ctx.timers.cancel(ctx.b, timer);
    }
    if (st == "queued" || st == "waiting") {
        // billsync's write, seen for the first time: the baseline for "edited by staff".
        const auto due = review_due(r, ctx.now);
        r["state"] = "created";
        r["entry"] = t->id;
        r["entry_id"] = t->source.id;
        r["written_at"] = updated;
        r["created_seen_at"] = util::format_rfc3339(ctx.now);
        r["locked"] = t->locked;
        r["review_due"] = util::format_rfc3339(due);
        write_row(ctx, wi, r);
        audit(ctx, "entry_created", wi, {{"entry", t->source.id}});
        return ctx.timers.schedule(ctx.b, timer, due, json{{"work_item", wi}}.dump());
    }
    if ((st == "created" || st == "in_review") && !updated.empty() &&
        updated != text_of(r, "written_at")) {
        // Locked (approved, closed or billed) with the hours and day billsync wrote: nobody
        // edited it, the time is approved as drafted. Its own state and cause; left alone all
        // the same.
        const bool same =
            t->minutes == int_of(r, "minutes") &&
            (!t->date || mappings::format_civil_date(*t->date) == text_of(r, "spent_date"));
        if (t->locked && !r.value("locked", false) && same) {
            r["state"] = "approved";
            r["approved_at"] = updated;
            r["locked"] = true;
            write_row(ctx, wi, r);
            audit(ctx,
                  "approved_in_time_system",
                  wi,
                  {{"entry", t->source.id},
                   {"cause",
                    "approved (locked) in " + s_.connector +
                        " as drafted: the time counts as approved; never touched again"}});
            return ctx.timers.cancel(ctx.b, timer);
        }
        r["state"] = "edited";
        r["edited_at"] = updated;
        write_row(ctx, wi, r);
        audit(
            ctx,
            "edited_by_staff",
            wi,
            {{"entry", t->source.id},
             {"cause", "changed in the time system after billsync's write; never touched again"}});
        return ctx.timers.cancel(ctx.b, timer);
    }
    return state::status::success();
}

state::status draft_time_rule::on_timer(const state::timer& t, context& ctx) const {
    if (t.name == missing_timer) {
        return check_missing_time(ctx);
    }
    if (t.name == review_email_timer) {
        return send_review_emails(ctx);
    }
    if (t.name == reconcile_timer) {
        return reconcile_step(ctx);
    }
    const auto wi = t.name.substr(review_prefix.size());
    auto row = read_row(ctx, row_type, wi);
    if (!row.ok()) {
        return row.st;
    }
    if (row.value && text_of(*row.value, "state") == "created") {
        (*row.value)["state"] = "in_review";
        write_row(ctx, wi, *row.value);
        audit(ctx,
              "review",
              wi,
              {{"cause",
                s_.review_after ? "draft untouched since it was created"
                                : "draft untouched since it was created, at the review day"}});
    }
    return state::status::success();
}

std::optional<std::string> draft_time_rule::recheck(const state::action& a, context& ctx) const {
    if (a.kind != "time_entry.create" || a.connector != s_.connector) {
        return std::nullopt;
    }
    const auto p = json::parse(a.payload, nullptr, false);
    const auto wi = text_of(p, "group_id");
    if (wi.empty() || text_of(p, "key") != draft_key(wi)) {
        return std::nullopt;
    }
    auto w = state::get_entity(*ctx.store, ctx.b, "work_item", wi);
    if (!w.ok() || !w.value) {
        return std::nullopt;
    }
    const auto j = json::parse(*w.value, nullptr, false);
    if (j.is_object() && j.value("deleted", false)) {
        return "the work item was deleted before the draft was created";
    }
    return std::nullopt;
}

std::vector<verb_spec> draft_time_rule::verbs() const {
    return {{"review",
             "",
             false,
             "Drafts untouched since the last review day (or review_after_h), and drafts waiting "
             "on an exception"},
            {"list",
             "",
             false,
             "Every draft and its state (\"deleted\": deleted by staff in the time system), and "
             "the daily reconcile"},
            {"missing",
             "",
             false,
             "Staff with less time recorded than expected, per checked working day (newest "
             "first)"}};
}

operator_answer draft_time_rule::view(std::string_view path, const state::store& s) const {
    if (path == "missing") {
        json days = json::array();
        auto st =
            state::for_each_entity(s, missing_row, [&](std::string_view, std::string_view value) {
                auto j = json::parse(value, nullptr, false);
                if (j.is_object()) {
                    days.push_back(std::move(j));
                }
                return true;
            });
        if (!st.ok) {
            return operator_answer::fail(500, "store", st.message);
        }
        std::reverse(days.begin(), days.end());  // ids are dates: newest first
        if (days.size() > 31) {
            days.erase(days.begin() + 31, days.end());
        }
        return operator_answer::ok(json{{"enabled", s_.missing.enabled},
                                        {"expected_minutes", s_.missing.expected_minutes},
                                        {"days", std::move(days)}});
    }
    if (path != "review" && path != "list" && !path.empty()) {
        return rule::view(path, s);
    }
    json review = json::array();
    json exceptions = json::array();
    json all = json::array();
    auto st = state::for_each_entity(s, row_type, [&](std::string_view, std::string_view value) {
        auto j = json::parse(value, nullptr, false);
        if (!j.is_object()) {
            return true;
        }
        const auto state = text_of(j, "state");
        if (state == "in_review") {
            review.push_back(j);
        } else if (state == "waiting") {
            exceptions.push_back(j);
        }
        all.push_back(std::move(j));
        return true;
    });
    if (!st.ok) {
        return operator_answer::fail(500, "store", st.message);
    }
    if (path == "review") {
        return operator_answer::ok(
            json{{"review", std::move(review)}, {"exceptions", std::move(exceptions)}});
    }
    const auto rec = stored_row(s, reconcile_row, reconcile_id).value_or(json::object());
    json reconcile{{"enabled", s_.reconcile},
                   {"hour", s_.reconcile_hour},
                   {"next_at", rec.value("next_at", json())},
                   {"pass", rec.value("pass", json())},
                   {"last_pass", rec.value("last_pass", json())}};
    return operator_answer::ok(
        json{{"drafts", std::move(all)}, {"reconcile", std::move(reconcile)}});
}

cli_result draft_time_rule::cli_view(std::string_view verb,
                                     const std::vector<std::string>& args,
                                     const state::store& s,
                                     cli_output format,
                                     std::ostream& out,
                                     std::ostream& err) const {
    if (verb != "missing" || format == cli_output::json) {
        return rule::cli_view(verb, args, s, format, out, err);
    }
    const auto a = view(verb, s);
    if (a.status != 200) {
        err << a.message << "\n";
        return cli_result::usage;
    }
    if (!s_.missing.enabled) {
        out << "The missing-time check is off ([draft_time.missing_time] is not configured).\n";
    }
    for (const auto& day : a.body["days"]) {
        const auto& shorts = day["short"];
        out << fmt::format("{}  {} of {} staff under {}\n",
                           text_of(day, "date"),
                           shorts.size(),
                           int_of(day, "staff_checked"),
                           hours_text(int_of(day, "expected_minutes")));
        for (const auto& p : shorts) {
            out << fmt::format("    {} <{}>  {} recorded, {} missing{}\n",
                               text_of(p, "name"),
                               text_of(p, "email"),
                               hours_text(int_of(p, "minutes")),
                               hours_text(int_of(p, "missing_minutes")),
                               p.value("reminded", false) ? ", reminded" : "");
        }
    }
    out << fmt::format(
        "{} day{} checked\n", a.body["days"].size(), a.body["days"].size() == 1 ? "" : "s");
    return cli_result::ok;
}

std::unique_ptr<rule> make(const settings& s, const rule_deps& deps, std::string* error) {
    if (!s.enabled) {
        return nullptr;
    }
    const auto it = std::find_if(deps.connectors.begin(),
                                 deps.connectors.end(),
                                 [&](const auto& c) { return c.name == s.connector; });
    if (it == deps.connectors.end()) {
        if (error != nullptr) {
            *error = "[draft_time] connector '" + s.connector + "' is not an enabled connector";
        }
        return nullptr;
    }
    // Any time connector will do whose kind performs the draft (chosen by what it does, not by
    // vendor).
    if (std::find(it->actions.begin(), it->actions.end(), "time_entry.create") ==
        it->actions.end()) {
        if (error != nullptr) {
            *error = "[draft_time] connector '" + s.connector +
                     "' does not draft time entries (its kind does not perform "
                     "time_entry.create)";
        }
        return nullptr;
    }
    auto copy = s;
    if (copy.time_zone.empty()) {
        copy.time_zone = deps.time_zone;
    }
    // Reminders go through the configured email connector, else the first one carrying email.
    std::string email;
    for (const auto& c : deps.connectors) {
        if (copy.email_connector.empty() ? c.channel == "email" : c.name == copy.email_connector) {
            email = c.name;
            break;
        }
    }
    if ((copy.missing.remind || copy.review_email) && email.empty()) {
        if (error != nullptr) {
            *error = copy.email_connector.empty()
                         ? std::string(copy.review_email ? "[draft_time] review_email"
                                                         : "[draft_time.missing_time] remind") +
                               " = true but no email connector is enabled"
                         : "[draft_time] email_connector '" + copy.email_connector +
                               "' is not an enabled email connector";
        }
        return nullptr;
    }
    return std::make_unique<draft_time_rule>(std::move(copy), std::move(email));
}

}  // namespace billsync::workflows::draft_time
