// The Karbon connector in-process against the Karbon simulator over loopback: subscription
// reconcile, signed deliveries only, fetch after notify with burst coalescing and 404 deletes,
// the polling safety net and backfill under the rate limit, tenant stages, and task.create
// exactly once.

#include "connectors/karbon/karbon_connector.hpp"

#include <gtest/gtest.h>

#include <array>
#include <nlohmann/json.hpp>

#include "connectors/karbon/karbon_kind.hpp"
#include "connectors/karbon/karbon_webhook.hpp"
#include "connectors/runtime/rate_limit.hpp"
#include "sim/karbon_simulator.hpp"
#include "sim/sim_server.hpp"
#include "state/store.hpp"
#include "state/tables.hpp"
#include "tests/fakes/temp_dir.hpp"
#include "tests/unit/connectors/runtime/runtime_test_support.hpp"

namespace billsync::connectors::karbon {
namespace {

using json = nlohmann::json;
using connectors::testing::run;
using simulators::scripted_response;

constexpr std::string_view signing_key = "billsync-karbon-signing-key-42";
const std::string public_url = "https://billsync.smithlee.example";

util::instant at(std::string_view text) {
    util::instant t{};
    EXPECT_TRUE(util::parse_rfc3339(text, t)) << text;
    return t;
}

net::awaitable<http::response> fail_delivery(http::request) {
    co_return http::response::json(500, "{}");
}

class karbon_connector_test : public ::testing::Test {
protected:
    void SetUp() override { start(1.0, false); }

    // `real`: the limiter and retry waits on real time (the simulator's windows are real time);
    // otherwise on manual time, where a wait completes at once.
    void start(double scale, bool real) {
        time_ = real ? real_time() : steady_.source();
        limiter_ = std::make_unique<rate_limiter>(time_);
        simulators::karbon_options o;
        o.now = [this] { return clock_.now(); };
        o.scale = scale;
        sim_ = std::make_unique<simulators::karbon_simulator>(o);
        server_ = std::make_unique<simulators::sim_server>();
        sim_->add_routes(server_->routes());
        sim_->configure(*server_);
        ASSERT_EQ(server_->start(), "");
        auto st = state::store::open(dir_.path() / "state");
        ASSERT_TRUE(st.ok());
        store_ = std::move(st.value);
        limiter_->set_limits("karbon", scale == 1.0 ? rate_limits() : scaled(rate_limits(), scale));
        settings_.name = "practice";
        settings_.base_url = server_->base_url();
        settings_.bearer_token = o.bearer_token;
        settings_.access_key = o.access_key;
        settings_.signing_key = std::string(signing_key);
        settings_.public_url = public_url;
        settings_.time_zone = "America/Chicago";
        settings_.poll_reserve = 0;
        settings_.task_assignee_email = "dana@smithlee.example";
    }

    karbon_connector& connector() {
        if (!connector_) {
            runtime_deps rt;
            rt.executor = ioc_.get_executor();
            rt.clock = &clock_;
            rt.limiter = limiter_.get();
            rt.http = connectors::testing::test_settings();
            rt.time = time_;
            connector_ = std::make_unique<karbon_connector>(settings_, rt);
        }
        return *connector_;
    }

    json status() { return json::parse(connector().status_json()); }

    // One poll, committed as the pipeline commits it.
    poll_outcome poll() {
        auto out = run(ioc_, connector().poll(*store_));
        if (out.error.empty()) {
            state::batch b(*store_);
            for (const auto& [k, v] : out.cursors) {
                state::put_cursor(b, k, v);
            }
            EXPECT_TRUE(store_->write(b, true).ok);
        }
        return out;
    }

    std::vector<mappings::change> process(const state::inbox_event& e) {
        state::batch b(*store_);
        auto r = connector().process(e, *store_, b);
        EXPECT_TRUE(r.ok()) << r.st.message;
        EXPECT_TRUE(store_->write(b, true).ok);
        return r.value;
    }

    // Processes every event of a poll; returns the changes.
    // Polls until the sweep that is due has run (the next poll is in the future); the changes it
    // found, processed.
    std::vector<mappings::change> run_due_sweep() {
        std::vector<mappings::change> found;
        for (int i = 0; i < 20; ++i) {
            const auto out = poll();
            EXPECT_EQ(out.error, "");
            if (!out.error.empty()) {
                break;
            }
            for (auto& c : process_all(out)) {
                found.push_back(std::move(c));
            }
            if (*connector().next_poll() > clock_.now()) {
                break;
            }
        }
        return found;
    }

    std::vector<mappings::change> process_all(const poll_outcome& out) {
        std::vector<mappings::change> all;
        for (const auto& ev : out.events) {
            state::inbox_event e;
            e.connector = settings_.name;
            e.kind = ev.kind;
            e.body = ev.body;
            for (auto& c : process(e)) {
                all.push_back(std::move(c));
            }
        }
        return all;
    }

    http::request delivery(const std::string& body, std::optional<std::string> signature = {}) {
        http::request req;
        req.method = "POST";
        req.target = req.path = "/webhooks/practice";
        req.body = body;
        req.headers.push_back({"Content-Type", "application/json"});
        req.headers.push_back(
            {"Signature", signature.value_or(sign(std::string(signing_key), body))});
        return req;
    }

    // A delivery verified and turned into an inbox event as the intake does.
    state::inbox_event accepted(const std::string& body) {
        const auto v = connector().verify(delivery(body));
        EXPECT_TRUE(v.accepted) << v.reason;
        state::inbox_event e;
        e.connector = settings_.name;
        e.dedup_key = v.dedup_key;
        e.received_at = clock_.now();
        e.body = body;
        return e;
    }

    // resolve() then process(), as the pipeline does.
    std::vector<mappings::change> resolve_and_process(state::inbox_event e) {
        const auto r = run(ioc_, connector().resolve(e));
        EXPECT_EQ(r.k, resolve_outcome::kind::ready) << r.detail;
        if (r.body) {
            e.body = *r.body;
        }
        return process(e);
    }

    std::size_t reads_of(const std::string& path) {
        std::size_t n = 0;
        for (const auto& r : server_->requests()) {
            n += r.method == "GET" && r.path == path ? 1 : 0;
        }
        return n;
    }

    state::action task_action(std::string id) {
        state::action a;
        a.id = std::move(id);
        a.connector = "practice";
        a.kind = "task.create";
        a.attempts = 0;  // as the outbox hands over a first attempt
        a.payload = json{{"title", "Account hold: Acme"},
                         {"client_key", "3Org5Acme7Key"},
                         {"client_type", "Organization"},
                         {"description", "Client replied: \"we dispute line 2\""}}
                        .dump();
        return a;
    }

    util::manual_clock clock_{at("2026-01-05T15:05:00Z")};
    std::unique_ptr<simulators::karbon_simulator> sim_;
    std::unique_ptr<simulators::sim_server> server_;
    billsync::testing::temp_dir dir_;
    std::unique_ptr<state::store> store_;
    manual_steady_time steady_;
    time_source time_;
    std::unique_ptr<rate_limiter> limiter_;
    settings settings_;
    net::io_context ioc_;
    std::unique_ptr<karbon_connector> connector_;  // after ioc_: destroyed first
};

// ---- auth ------------------------------------------------------------------------------------

TEST_F(karbon_connector_test, every_call_carries_the_bearer_token_and_the_access_key) {
    run(ioc_, connector().check_subscriptions());
    const auto reqs = server_->requests();
    ASSERT_FALSE(reqs.empty());
    for (const auto& r : reqs) {
        EXPECT_EQ(r.header_value("Authorization"), "Bearer " + settings_.bearer_token) << r.target;
        EXPECT_EQ(r.header_value("AccessKey"), settings_.access_key) << r.target;
        EXPECT_EQ(r.target.find(settings_.access_key), std::string::npos);
    }
}

// ---- subscriptions ------------------------------------------------------------------------------

TEST_F(karbon_connector_test, missing_subscriptions_are_created_with_our_url_and_signing_key) {
    run(ioc_, connector().check_subscriptions());
    const auto subs = sim_->subscriptions();
    ASSERT_EQ(subs.size(), 2u);
    for (const auto* type : {"Work", "Contact"}) {
        ASSERT_TRUE(subs.contains(type)) << type;
        EXPECT_EQ(subs.at(type)["TargetUrl"], public_url + "/webhooks/practice");
        EXPECT_EQ(subs.at(type)["SigningKey"], signing_key);
    }
    const auto s = status()["subscriptions"];
    EXPECT_TRUE(s["Work"]["active"].get<bool>());
    EXPECT_EQ(s["Work"]["recreated_at"], "2026-01-05T15:05:00Z");
    // A second check finds them in place and creates nothing.
    server_->clear_requests();
    run(ioc_, connector().check_subscriptions());
    EXPECT_TRUE(server_->requests_to("/v3/WebhookSubscriptions").empty());
    EXPECT_EQ(status()["subscriptions"]["Work"]["recreated"], 1);
}

TEST_F(karbon_connector_test, a_subscription_pointing_elsewhere_is_deleted_and_recreated) {
    sim_->set_subscription(
        "Work", "https://old-host.example/hooks/karbon", "old-signing-key-000000");
    run(ioc_, connector().check_subscriptions());
    std::size_t deletes = 0;
    for (const auto& r : server_->requests_to("/v3/WebhookSubscriptions/Work")) {
        deletes += r.method == "DELETE" ? 1 : 0;
    }
    EXPECT_EQ(deletes, 1u);
    const auto subs = sim_->subscriptions();
    EXPECT_EQ(subs.at("Work")["TargetUrl"], public_url + "/webhooks/practice");
    EXPECT_EQ(subs.at("Work")["SigningKey"], signing_key);
}

TEST_F(karbon_connector_test, a_subscription_cancelled_after_ten_failed_deliveries_comes_back) {
    simulators::sim_server receiver;
    receiver.routes().add_prefix("POST", "/webhooks/", "/webhooks/:any", fail_delivery);
    ASSERT_EQ(receiver.start(), "");
    sim_->set_delivery_base(receiver.base_url());
    run(ioc_, connector().check_subscriptions());
    const auto item = sim_->add_work_item({{"Title", "T"}, {"ClientKey", "c1"}});
    for (int i = 0; i < 9; ++i) {
        EXPECT_EQ(sim_->notify("Work", "Work", item["WorkItemKey"], "Updated"), 500u);
    }
    EXPECT_TRUE(sim_->subscriptions().contains("Work"));  // nine failures: still there
    EXPECT_EQ(sim_->notify("Work", "Work", item["WorkItemKey"], "Updated"), 500u);
    EXPECT_FALSE(sim_->subscriptions().contains("Work"));  // the tenth cancelled it

    // The periodic check (due after subscription_check) re-creates it and sweeps at once.
    (void)poll();
    clock_.advance(settings_.subscription_check);
    ASSERT_TRUE(connector().next_poll());
    EXPECT_LE(*connector().next_poll(), clock_.now());
    (void)poll();
    EXPECT_TRUE(sim_->subscriptions().contains("Work"));
    EXPECT_EQ(status()["subscriptions"]["Work"]["recreated"], 2);
    EXPECT_EQ(status()["subscriptions"]["Work"]["recreated_at"],
              util::format_rfc3339(clock_.now()));
    EXPECT_LE(*connector().next_poll(), clock_.now());  // catch-up sweep right away
}

// ---- signed deliveries only -----------------------------------------------------------------

TEST_F(karbon_connector_test, forged_unsigned_and_replayed_deliveries_are_refused_and_counted) {
    const auto body = sim_->payload("Work", "4ndQ2tSh7yPk", "Updated");
    EXPECT_TRUE(connector().verify(delivery(body)).accepted);

    auto forged = delivery(body);
    forged.body = sim_->payload("Contact", "4ndQ2tSh7yPk", "Deleted");  // signature of the other
    const auto f = connector().verify(forged);
    EXPECT_FALSE(f.accepted);
    EXPECT_EQ(f.reason, "signature mismatch");

    auto unsigned_req = delivery(body);
    unsigned_req.headers.pop_back();
    EXPECT_EQ(connector().verify(unsigned_req).reason, "missing Signature header");

    const auto other_key = delivery(body, sign("someone-elses-key-0000", body));
    EXPECT_FALSE(connector().verify(other_key).accepted);

    // Correctly signed, but its TimeStamp is older than the replay window (1 day).
    clock_.advance(settings_.replay_window + std::chrono::seconds(1));
    const auto replay = connector().verify(delivery(body));
    EXPECT_FALSE(replay.accepted);
    EXPECT_NE(replay.reason.find("replay"), std::string::npos) << replay.reason;
    EXPECT_EQ(replay.reason.find(signing_key), std::string::npos);

    const auto s = status()["webhooks"];
    EXPECT_EQ(s["rejected_signature"], 3);
    EXPECT_EQ(s["rejected_replay"], 1);
}

// ---- fetch after notify ---------------------------------------------------------------------

TEST_F(karbon_connector_test, a_delivery_is_resolved_by_reading_the_work_item) {
    const auto item = sim_->add_work_item({{"Title", "1040 - Archer"},
                                           {"ClientKey", "2Hk9wLmP3xQz"},
                                           {"ClientType", "Contact"},
                                           {"AssigneeKey", "u1"},
                                           {"AssigneeName", "Dana Smith"},
                                           {"AssigneeEmailAddress", "dana@smithlee.example"},
                                           {"PrimaryStatus", "In Progress"},
                                           {"SecondaryStatus", "Return Filed"},
                                           {"StartDate", "2026-01-05T00:00:00Z"}});
    const std::string key = item["WorkItemKey"];
    const auto changes = resolve_and_process(accepted(sim_->payload("Work", key, "Updated")));
    ASSERT_EQ(changes.size(), 2u);
    EXPECT_EQ(changes[0].entity_type, "staff");
    EXPECT_EQ(changes[1].entity_type, "work_item");
    const auto* w = changes[1].as<mappings::work_item>();
    ASSERT_NE(w, nullptr);
    EXPECT_EQ(w->status, "in_progress");  // the single read's unspaced spelling
    EXPECT_EQ(w->stage, "Return Filed");
    EXPECT_EQ(w->client_id, "practice:client:2Hk9wLmP3xQz");
    EXPECT_EQ(reads_of("/v3/WorkItems/" + key), 1u);
}

TEST_F(karbon_connector_test, a_burst_for_one_key_costs_one_read) {
    const auto item = sim_->add_work_item({{"Title", "Bulk edit"}, {"ClientKey", "c1"}});
    const std::string key = item["WorkItemKey"];
    std::vector<state::inbox_event> burst;
    for (int i = 0; i < 5; ++i) {
        burst.push_back(accepted(sim_->payload("Work", key, "Updated")));
        clock_.advance(std::chrono::seconds(1));  // distinct bodies (TimeStamp)
    }
    std::size_t changes = 0;
    for (auto& e : burst) {
        changes += resolve_and_process(e).size();
    }
    EXPECT_EQ(reads_of("/v3/WorkItems/" + key), 1u);
    EXPECT_EQ(changes, 1u);
    EXPECT_EQ(status()["webhooks"]["coalesced_reads"], 4);
    // A delivery that arrives after the read needs a read of its own.
    sim_->update_work_item(key, {{"Title", "Bulk edit, again"}});
    EXPECT_EQ(resolve_and_process(accepted(sim_->payload("Work", key, "Updated"))).size(), 1u);
    EXPECT_EQ(reads_of("/v3/WorkItems/" + key), 2u);
}

TEST_F(karbon_connector_test, a_read_answering_404_confirms_a_delete) {
    const auto contact =
        sim_->add_contact({{"FullName", "Ann Archer"}, {"EmailAddress", "ann@client.example"}});
    const std::string key = contact["ContactKey"];
    auto created = resolve_and_process(accepted(sim_->payload("Contact", key, "Inserted")));
    ASSERT_EQ(created.size(), 1u);
    EXPECT_EQ(created[0].what, mappings::change::op::created);
    ASSERT_TRUE(sim_->remove(key));
    clock_.advance(std::chrono::seconds(5));
    auto gone = resolve_and_process(accepted(sim_->payload("Contact", key, "Deleted")));
    ASSERT_EQ(gone.size(), 1u);
    EXPECT_EQ(gone[0].what, mappings::change::op::deleted);
    EXPECT_EQ(gone[0].entity_id, "practice:client:" + key);
    // Contacts and organizations share the Contact webhook: both were asked before deciding.
    EXPECT_EQ(reads_of("/v3/Organizations/" + key), 1u);
}

// ---- invoices: read-only facts -----------------------------------------------------------------

json acme_invoice() {
    return {{"InvoiceNumber", "INV-00042"},
            {"InvoiceStatus", "AwaitingPayment"},
            {"CurrencyCode", "USD"},
            {"InvoiceTotal", 1450.25},
            {"TotalAmountDue", 450.25},
            {"InvoiceDate", "2026-01-15T00:00:00Z"},
            {"PaymentDueDate", "2026-02-14T00:00:00Z"},
            {"Client",
             {{"ClientKey", "3Org5Acme7Key"},
              {"ClientType", "Organization"},
              {"Name", "Acme Holdings LLC"}}},
            {"LineItems",
             json::array({{{"Description", "2025 Form 1040"},
                           {"Quantity", 1},
                           {"UnitPrice", "1450.25"},
                           {"Amount", 1450.25}}})},
            {"Payments",
             json::array({{{"PaymentKey", "pay-1"},
                           {"PaymentReference", "Check 1042"},
                           {"PaymentType", "ManualPayment"},
                           {"PaymentDate", "2026-01-25T00:00:00Z"},
                           {"Amount", 1000}}})}};
}

std::optional<json> stored(const state::store& st, std::string_view type, std::string_view id) {
    auto row = state::get_entity(st, type, id);
    if (!row.ok() || !row.value) {
        return std::nullopt;
    }
    return json::parse(*row.value);
}

TEST_F(karbon_connector_test, an_invoice_delivery_is_read_and_stored_as_a_fact) {
    const auto inv = sim_->add_invoice(acme_invoice());
    const std::string key = inv["InvoiceKey"];
    const auto changes = resolve_and_process(accepted(sim_->payload("Invoice", key, "Updated")));
    // Not the [sources] invoices owner: stored, but no change reaches the workflows.
    EXPECT_TRUE(changes.empty());
    EXPECT_EQ(reads_of("/v3/Invoices/" + key), 1u);
    const auto row = stored(*store_, "invoice", "practice:invoice:" + key);
    ASSERT_TRUE(row.has_value());
    std::string error;
    const auto back = mappings::invoice_from_json(*row, error);
    ASSERT_TRUE(back) << error;
    EXPECT_EQ(back->number, "INV-00042");
    EXPECT_EQ(back->total.minor, 145'025);  // exact through the JSON number 1450.25
    EXPECT_EQ(back->balance.minor, 45'025);
    EXPECT_EQ(back->client_id, "practice:client:3Org5Acme7Key");
    ASSERT_EQ(back->lines.size(), 1u);
    EXPECT_EQ(back->lines[0].unit_price, "1450.25");
    EXPECT_TRUE(stored(*store_, "payment", "practice:payment:pay-1").has_value());
    EXPECT_EQ(sim_->writes_to_invoices(), 0u);
}

TEST_F(karbon_connector_test, the_invoices_source_hands_its_invoices_to_the_workflows) {
    settings_.invoices_source = true;
    const auto inv = sim_->add_invoice(acme_invoice());
    const std::string key = inv["InvoiceKey"];
    const auto changes = resolve_and_process(accepted(sim_->payload("Invoice", key, "Updated")));
    ASSERT_EQ(changes.size(), 2u);
    EXPECT_EQ(changes[0].entity_type, "invoice");
    EXPECT_EQ(changes[0].entity_id, "practice:invoice:" + key);
    EXPECT_EQ(changes[1].entity_type, "payment");
    // A status change (voided in Karbon) arrives as another Invoice delivery.
    sim_->update_invoice(key, {{"InvoiceStatus", "Voided"}});
    clock_.advance(std::chrono::seconds(70));
    const auto voided = resolve_and_process(accepted(sim_->payload("Invoice", key, "Updated")));
    ASSERT_FALSE(voided.empty());
    const auto* v = voided[0].as<mappings::invoice>();
    ASSERT_NE(v, nullptr);
    EXPECT_EQ(v->status, mappings::invoice_status::voided);
    EXPECT_EQ(sim_->writes_to_invoices(), 0u);
}

TEST_F(karbon_connector_test, an_invoice_read_answering_404_confirms_its_delete) {
    settings_.invoices_source = true;
    const auto inv = sim_->add_invoice(acme_invoice());
    const std::string key = inv["InvoiceKey"];
    ASSERT_EQ(resolve_and_process(accepted(sim_->payload("Invoice", key, "Updated"))).size(), 2u);
    ASSERT_TRUE(sim_->remove(key));
    clock_.advance(std::chrono::seconds(5));
    const auto gone = resolve_and_process(accepted(sim_->payload("Invoice", key, "Updated")));
    ASSERT_EQ(gone.size(), 1u);
    EXPECT_EQ(gone[0].what, mappings::change::op::deleted);
    EXPECT_EQ(gone[0].entity_id, "practice:invoice:" + key);
    EXPECT_EQ(reads_of("/v3/Invoices/" + key), 2u);
}

TEST_F(karbon_connector_test, an_unmappable_invoice_is_skipped_and_counted) {
    auto fields = acme_invoice();
    fields["LineItems"][0]["UnitPrice"] = "one thousand";
    const auto inv = sim_->add_invoice(fields);
    const std::string key = inv["InvoiceKey"];
    settings_.invoices_source = true;
    EXPECT_TRUE(resolve_and_process(accepted(sim_->payload("Invoice", key, "Updated"))).empty());
    EXPECT_FALSE(stored(*store_, "invoice", "practice:invoice:" + key).has_value());
    EXPECT_EQ(status()["skipped_records"], 1);
}

TEST_F(karbon_connector_test, no_action_writes_a_karbon_invoice) {
    for (const auto* kind : {"invoice.create", "invoice.send", "payment.create"}) {
        state::action a;
        a.id = std::string("late-fee:") + kind;
        a.connector = "practice";
        a.kind = kind;
        a.payload = R"({"invoice_id":"practice:invoice:inv1"})";
        const auto o = run(ioc_, connector().perform(a));
        EXPECT_EQ(o.k, action_outcome::kind::permanent) << kind;
        EXPECT_NE(o.detail.find("read-only"), std::string::npos) << o.detail;
    }
    EXPECT_TRUE(server_->requests().empty());
    EXPECT_EQ(sim_->writes_to_invoices(), 0u);
}

TEST_F(karbon_connector_test, a_deleted_event_whose_record_still_exists_is_not_a_delete) {
    const auto org = sim_->add_organization({{"FullName", "Acme Holdings LLC"}});
    const std::string key = org["OrganizationKey"];
    auto changes = resolve_and_process(accepted(sim_->payload("Contact", key, "Deleted")));
    ASSERT_EQ(changes.size(), 1u);
    EXPECT_EQ(changes[0].what, mappings::change::op::created);  // forged or stale: the read wins
}

TEST_F(karbon_connector_test, throttled_reads_keep_the_event_and_pass_on_the_wait) {
    const auto item = sim_->add_work_item({{"Title", "T"}, {"ClientKey", "c1"}});
    const std::string key = item["WorkItemKey"];
    auto r429 = scripted_response::rate_limited(
        std::chrono::seconds(10),
        R"({"statusCode": "429", "message": "Rate limit is exceeded. Try again in 10 seconds."})");
    server_->script("GET", "/v3/WorkItems/" + key, {r429, r429, r429});
    settings_.poll_reserve = 0;
    const auto e = accepted(sim_->payload("Work", key, "Updated"));
    // Retry-After 10 s is within the policy's cap, so the call waits it out (on manual time) up
    // to 3 attempts; here every attempt is throttled.
    const auto started = steady_.now();
    const auto r = run(ioc_, connector().resolve(e));
    EXPECT_GE(steady_.now() - started, std::chrono::seconds(20));
    EXPECT_EQ(reads_of("/v3/WorkItems/" + key), 3u);
    EXPECT_EQ(r.k, resolve_outcome::kind::retry);
    ASSERT_TRUE(r.retry_after);
    EXPECT_EQ(*r.retry_after, std::chrono::seconds(10));
}

// ---- polling ----------------------------------------------------------------------------------

TEST_F(karbon_connector_test, polling_finds_what_a_lost_webhook_missed) {
    const auto item = sim_->add_work_item({{"Title", "Q4 review"},
                                           {"ClientKey", "c1"},
                                           {"PrimaryStatus", "Waiting"},
                                           {"StartDate", "2026-01-02T00:00:00Z"}});
    sim_->add_contact(
        {{"FullName", "Ann Archer"}, {"LastModifiedDateTime", "2026-01-01T10:00:00Z"}});
    // First connect: a backfill, page by page, until the sweep phase.
    std::size_t records = 0;
    for (int i = 0; i < 20; ++i) {
        const auto out = poll();
        ASSERT_EQ(out.error, "");
        records += process_all(out).size();
        if (json::parse(status()["cursor"].dump())["phase"] == "sweep") {
            break;
        }
    }
    EXPECT_EQ(records, 2u);
    EXPECT_EQ(status()["cursor"]["phase"], "sweep");
    EXPECT_GT(*connector().next_poll(), clock_.now());

    // A change whose webhook never arrived, and a contact changed since.
    sim_->update_work_item(item["WorkItemKey"],
                           {{"PrimaryStatus", "InProgress"}, {"SecondaryStatus", "Return Filed"}});
    clock_.advance(settings_.poll_interval);
    sim_->add_contact({{"FullName", "New Client"}});
    const auto found = run_due_sweep();
    ASSERT_EQ(found.size(), 2u);
    const auto* w = found[0].as<mappings::work_item>();
    ASSERT_NE(w, nullptr);
    EXPECT_EQ(w->stage, "Return Filed");
    EXPECT_EQ(w->status, "in_progress");
    const auto* c = found[1].as<mappings::client>();
    ASSERT_NE(c, nullptr);
    EXPECT_EQ(c->display_name, "New Client");
    // The old contact was not re-read as a change, and the sweep stopped at it: the list filter
    // uses the spaced status spelling, the only one Karbon matches.
    for (const auto& r : server_->requests_to("/v3/WorkItems")) {
        EXPECT_EQ(r.query.find("ReadyToStart"), std::string::npos);
        EXPECT_EQ(r.query.find("InProgress"), std::string::npos);
    }
}

// A completion whose webhook was lost is found by the sweep's last step (completed work items),
// so draft time still drafts it; work completed before the last sweep began is not listed as
// news, and a first connect takes open work only.
TEST_F(karbon_connector_test, the_sweep_finds_a_completion_whose_webhook_was_lost) {
    const auto item = sim_->add_work_item({{"Title", "1040 return"},
                                           {"ClientKey", "c1"},
                                           {"PrimaryStatus", "In Progress"},
                                           {"StartDate", "2025-11-03T00:00:00Z"}});
    sim_->add_work_item({{"Title", "Last year's return"},
                         {"ClientKey", "c2"},
                         {"PrimaryStatus", "Completed"},
                         {"StartDate", "2025-02-03T00:00:00Z"},
                         {"CompletedDate", "2025-04-10T00:00:00Z"}});
    std::size_t records = 0;
    for (int i = 0; i < 20; ++i) {
        const auto out = poll();
        ASSERT_EQ(out.error, "");
        records += process_all(out).size();
        if (status()["cursor"]["phase"] == "sweep") {
            break;
        }
    }
    EXPECT_EQ(records, 1u) << "the backfill takes open work only";
    for (const auto& r : server_->requests_to("/v3/WorkItems")) {
        EXPECT_EQ(r.query.find("Completed"), std::string::npos) << r.query;
    }

    clock_.advance(std::chrono::hours(2));
    sim_->update_work_item(
        item["WorkItemKey"],
        {{"PrimaryStatus", "Completed"}, {"CompletedDate", util::format_rfc3339(clock_.now())}});
    clock_.advance(settings_.poll_interval);
    const auto found = run_due_sweep();
    ASSERT_EQ(found.size(), 1u);
    const auto* w = found[0].as<mappings::work_item>();
    ASSERT_NE(w, nullptr);
    EXPECT_EQ(w->title, "1040 return");
    EXPECT_EQ(w->status, "completed");
}

// With the Invoice webhook type, the sweep's last step lists invoices by UpdatedAt desc and reads
// in full only those changed since their last read: an invoice whose delivery was lost is still
// stored, one whose delivery was read costs no second read, and a first connect lists none.
TEST_F(karbon_connector_test, the_sweep_reads_an_invoice_whose_webhook_was_lost) {
    settings_.webhook_types = {"Work", "Contact", "Invoice"};
    const auto sweep = [&] {
        for (int i = 0; i < 20; ++i) {
            const auto out = poll();
            EXPECT_EQ(out.error, "");
            for (const auto& ev : out.events) {
                state::inbox_event e;
                e.connector = settings_.name;
                e.kind = ev.kind;
                e.body = ev.body;
                const auto r = run(ioc_, connector().resolve(e));
                EXPECT_EQ(r.k, resolve_outcome::kind::ready) << r.detail;
                if (r.body) {
                    e.body = *r.body;
                }
                process(e);
            }
            if (status()["cursor"]["phase"] == "sweep" && status()["cursor"]["step"] == 0 &&
                *connector().next_poll() > clock_.now()) {
                return;
            }
        }
        ADD_FAILURE() << "the sweep did not finish";
    };
    sim_->add_invoice(acme_invoice());
    sweep();  // the backfill
    EXPECT_TRUE(server_->requests_to("/v3/Invoices").empty()) << "a first connect lists none";

    clock_.advance(std::chrono::minutes(10));
    const auto read = sim_->add_invoice(acme_invoice());
    const std::string read_key = read["InvoiceKey"];
    resolve_and_process(accepted(sim_->payload("Invoice", read_key, "Updated")));
    auto lost_fields = acme_invoice();
    lost_fields["InvoiceNumber"] = "INV-00043";
    const auto lost = sim_->add_invoice(lost_fields);
    const std::string lost_key = lost["InvoiceKey"];
    clock_.advance(settings_.poll_interval);
    sweep();
    EXPECT_EQ(reads_of("/v3/Invoices/" + lost_key), 1u);
    EXPECT_EQ(reads_of("/v3/Invoices/" + read_key), 1u) << "read by its delivery already";
    const auto row = stored(*store_, "invoice", "practice:invoice:" + lost_key);
    ASSERT_TRUE(row.has_value());
    EXPECT_EQ((*row)["number"], "INV-00043");
    const auto lists = server_->requests_to("/v3/Invoices");
    ASSERT_EQ(lists.size(), 1u);
    EXPECT_NE(lists[0].query.find("UpdatedAt"), std::string::npos) << lists[0].query;
    EXPECT_EQ(sim_->writes_to_invoices(), 0u);
}

TEST_F(karbon_connector_test, the_sweep_leaves_room_for_webhook_reads) {
    settings_.poll_reserve = 121;  // more than the window holds: the sweep must wait
    const auto out = poll();
    EXPECT_EQ(out.error, "");
    EXPECT_TRUE(out.events.empty());
    EXPECT_TRUE(out.cursors.empty());
    EXPECT_TRUE(server_->requests_to("/v3/WorkItems").empty());
    EXPECT_GT(*connector().next_poll(), clock_.now());
}

TEST_F(karbon_connector_test, tenant_stages_that_do_not_exist_are_reported) {
    settings_.stages = {"Return Filed", "Retrun Filed"};
    run(ioc_, connector().check_subscriptions());
    const auto s = status();
    EXPECT_EQ(s["tenant"]["missing_stages"], json::array({"Retrun Filed"}));
    EXPECT_NE(s["action_needed"].get<std::string>().find("stages"), std::string::npos);
}

TEST_F(karbon_connector_test, cursor_round_trips_and_refuses_garbage) {
    sync_cursor c;
    c.ph = sync_cursor::phase::sweep;
    c.step = 4;
    c.next = "/v3/Contacts?$skip=100";
    c.done = 7;
    c.total = 9;
    c.started_at = at("2026-01-05T15:00:00Z");
    c.since = at("2026-01-05T14:55:00Z");
    const auto d = sync_cursor::decode(c.encode());
    ASSERT_TRUE(d);
    EXPECT_EQ(d->step, 4u);
    EXPECT_EQ(d->next, c.next);
    EXPECT_EQ(d->since, c.since);
    EXPECT_FALSE(sync_cursor::decode("{}"));
    EXPECT_FALSE(sync_cursor::decode(
        R"({"phase":"sweep","step":9,"started_at":"2026-01-05T15:00:00Z","since":"2026-01-05T15:00:00Z"})"));
}

// First connect reads every open work item and every contact and organization, page by page, at
// the vendor's ceiling and never beyond it. Limits scaled 60x (120 per second) on both sides.
class karbon_backfill_test : public karbon_connector_test {
protected:
    void SetUp() override { start(60.0, true); }
};

TEST_F(karbon_backfill_test, two_thousand_work_items_backfill_with_progress_and_no_429) {
    const std::array<std::string, 5> statuses = {
        "Planned", "ReadyToStart", "In Progress", "Waiting", "Completed"};
    for (int i = 0; i < 2000; ++i) {
        sim_->add_work_item({{"Title", "Item " + std::to_string(i)},
                             {"ClientKey", "c" + std::to_string(i % 40)},
                             {"PrimaryStatus", statuses.at(static_cast<std::size_t>(i % 4))},
                             {"StartDate", "2026-01-05T00:00:00Z"}});
    }
    sim_->add_work_item(
        {{"Title", "Done long ago"}, {"ClientKey", "c1"}, {"PrimaryStatus", "Completed"}});
    for (int i = 0; i < 30; ++i) {
        sim_->add_contact({{"FullName", "Contact " + std::to_string(i)}});
        sim_->add_organization({{"FullName", "Org " + std::to_string(i)}});
    }
    settings_.page_size = 10;
    std::size_t records = 0;
    std::uint64_t seen_total = 0;
    for (int i = 0; i < 400; ++i) {
        const auto out = poll();
        ASSERT_EQ(out.error, "") << out.error;
        records += process_all(out).size();
        const auto cur = status()["cursor"];
        if (cur["phase"] == "sweep") {
            break;
        }
        seen_total = cur["progress"]["total"].get<std::uint64_t>();
        EXPECT_EQ(cur["progress"]["done"].get<std::uint64_t>() <= seen_total, true);
    }
    EXPECT_EQ(status()["cursor"]["phase"], "sweep");
    // 2,000 open work items (the completed one is not read), their 40 clients are not records
    // here, plus 30 contacts and 30 organizations.
    std::size_t work_items = 0;
    ASSERT_TRUE(
        state::for_each_entity(*store_, "work_item", [&](std::string_view, std::string_view) {
            ++work_items;
            return true;
        }).ok);
    EXPECT_EQ(work_items, 2000u);
    EXPECT_EQ(records, 2060u);
    EXPECT_EQ(seen_total, 2060u);
    EXPECT_EQ(server_->limit_rejections(), 0u);
    EXPECT_GE(server_->request_count(), 2060u / 10u);
}

// ---- actions -----------------------------------------------------------------------------------

TEST_F(karbon_connector_test, task_create_posts_a_keyed_work_item_and_a_resend_adopts_it) {
    const auto a = task_action("act-touch3-inv-1042");
    EXPECT_EQ(run(ioc_, connector().reconcile(a)).k, reconcile_outcome::kind::absent);
    server_->clear_requests();
    const auto first = run(ioc_, connector().perform(a));
    EXPECT_EQ(server_->request_count(), 1u);  // a first attempt posts without a look-up
    ASSERT_EQ(first.k, action_outcome::kind::done) << first.detail;
    ASSERT_EQ(sim_->work_item_count(), 1u);
    const auto made = sim_->work_items().front();
    EXPECT_EQ(made["Title"], keyed_title("Account hold: Acme", a.id));
    EXPECT_EQ(made["AssigneeEmailAddress"], "dana@smithlee.example");
    EXPECT_EQ(made["ClientKey"], "3Org5Acme7Key");
    EXPECT_EQ(made["StartDate"], "2026-01-05");
    EXPECT_EQ(made["DueDate"], "2026-01-08");
    EXPECT_EQ(made["Description"], "Client replied: \"we dispute line 2\"");
    EXPECT_EQ(first.detail, "WorkItem/" + made["WorkItemKey"].get<std::string>());
    ASSERT_EQ(first.writes.size(), 1u);

    // The answer was lost (crash, timeout): the next attempt looks the title up and adopts it.
    auto again = a;
    again.attempts = 1;  // one side effect started before
    EXPECT_EQ(run(ioc_, connector().reconcile(again)).k, reconcile_outcome::kind::happened);
    const auto second = run(ioc_, connector().perform(again));
    EXPECT_EQ(second.k, action_outcome::kind::done) << second.detail;
    EXPECT_EQ(sim_->work_item_count(), 1u);
    std::size_t posts = 0;
    for (const auto& r : server_->requests_to("/v3/WorkItems")) {
        posts += r.method == "POST" ? 1 : 0;
    }
    EXPECT_EQ(posts, 1u);
}

TEST_F(karbon_connector_test, a_task_without_a_client_type_looks_the_key_up_first) {
    const auto contact = sim_->add_contact(json{{"FullName", "Jane Roe"}});
    const auto org = sim_->add_organization(json{{"FullName", "Acme Dental"}});
    const auto without_type = [](std::string id, std::string key) {
        state::action a;
        a.id = std::move(id);
        a.connector = "practice";
        a.kind = "task.create";
        a.payload = json{{"title", "Dispute: invoice 1042"}, {"client_key", std::move(key)}}.dump();
        return a;
    };
    const auto one = run(
        ioc_, connector().perform(without_type("act-a", contact["ContactKey"].get<std::string>())));
    ASSERT_EQ(one.k, action_outcome::kind::done) << one.detail;
    const auto two =
        run(ioc_,
            connector().perform(without_type("act-b", org["OrganizationKey"].get<std::string>())));
    ASSERT_EQ(two.k, action_outcome::kind::done) << two.detail;
    const auto made = sim_->work_items();
    ASSERT_EQ(made.size(), 2u);
    EXPECT_EQ(made[0]["ClientType"], "Contact");
    EXPECT_EQ(made[1]["ClientType"], "Organization");

    // A key Karbon does not know is refused before anything is posted.
    server_->clear_requests();
    const auto none = run(ioc_, connector().perform(without_type("act-c", "no-such-key")));
    EXPECT_EQ(none.k, action_outcome::kind::permanent);
    EXPECT_NE(none.detail.find("no-such-key"), std::string::npos);
    for (const auto& r : server_->requests_to("/v3/WorkItems")) {
        EXPECT_NE(r.method, "POST");
    }
    EXPECT_EQ(sim_->work_item_count(), 2u);
}

TEST_F(karbon_connector_test, a_task_without_an_assignee_or_a_refused_one_is_permanent) {
    settings_.task_assignee_email.clear();
    auto a = task_action("act-1");
    EXPECT_EQ(run(ioc_, connector().perform(a)).k, action_outcome::kind::permanent);
    EXPECT_TRUE(server_->requests_to("/v3/WorkItems").empty());
    a.payload = json{{"title", "T"}, {"client_key", "c"}, {"assignee_email", "x@y.example"}}.dump();
    server_->script(
        "POST",
        "/v3/WorkItems",
        {scripted_response::status_code(400, R"({"error":{"code":"4000","message":"bad"}})")});
    EXPECT_EQ(run(ioc_, connector().perform(a)).k, action_outcome::kind::permanent);
}

}  // namespace
}  // namespace billsync::connectors::karbon
