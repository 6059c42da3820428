// The bus's admin routes on the real server: feeds, dead letters, replay, and who may.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <set>

#include "json_schema.hpp"
#include "server_fixture.hpp"
#include "townhall/auth/module.hpp"
#include "townhall/bus/event.hpp"
#include "townhall/platform/db.hpp"

namespace townhall {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using testing::HttpResponse;
using testing::TestServer;

class AdminBusHttp : public ::testing::Test {
 protected:
  void SetUp() override {
    auto config = testing::test_config(dir.path());
    config.bus.backoff_initial = 2ms;
    config.bus.backoff_max = 10ms;
    config.bus.sweep_interval = 50ms;
    ASSERT_TRUE(app::create_staff_user(
        config, auth::StaffUser{"admin@example.org", "admin password 1", "Admin", "admin", std::nullopt}));
    ASSERT_TRUE(app::create_staff_user(
        config, auth::StaffUser{"clerk@example.org", "clerk password 1", "Clerk", "clerk", std::nullopt}));
    server = std::make_unique<TestServer>(std::move(config));
    admin = testing::login(server->port(), "admin@example.org", "admin password 1");
    clerk = testing::login(server->port(), "clerk@example.org", "clerk password 1");
    ASSERT_FALSE(admin.empty());
    ASSERT_FALSE(clerk.empty());
  }

  HttpResponse call(const std::string& method, const std::string& target, const std::string& token) {
    return testing::call(server->port(), method, target, {}, token);
  }

  // A citizen event permits' citizen_refs handler cannot apply (its snapshot has no id),
  // written into auth's outbox as a buggy producer would.
  void publish_poison() {
    db::ModuleDb auth("auth", dir.path() / "auth.db", {});
    auto owner = auth.open(db::Role::owner);
    owner->exec(
        "INSERT INTO outbox (topic, event_type, aggregate_type, aggregate_id, event_version, occurred_at, data) "
        "VALUES ('gov.auth.citizen', 'citizen.updated', 'citizen', '999', 1, '2026-11-22T00:00:00.000Z', "
        "'{\"snapshot\":{\"name\":\"no id\"}}')");
  }

  // The answer is what /openapi.json documents for the route.
  void expect_documented(const std::string& method, const std::string& pattern, const HttpResponse& response) {
    for (const auto& entry : server->app().router().entries())
      if (http::to_string(entry.method) == method && entry.pattern == pattern) {
        ASSERT_FALSE(entry.doc.response_schema.empty()) << pattern;
        auto violation = testing::schema_violation(json::parse(entry.doc.response_schema), json::parse(response.body));
        EXPECT_FALSE(violation) << pattern << ": " << *violation;
        return;
      }
    ADD_FAILURE() << "no route " << method << " " << pattern;
  }

  json pending_letters() {
    auto response = call("GET", "/admin/dead-letters?module=permits&state=pending", admin);
    EXPECT_EQ(response.status, 200) << response.body;
    return json::parse(response.body)["items"];
  }

  testing::TempDir dir;
  std::unique_ptr<TestServer> server;
  std::string admin, clerk;
};

TEST_F(AdminBusHttp, OnlyBusAdminsMayUseTheRoutes) {
  EXPECT_EQ(call("GET", "/admin/bus", "").status, 401);
  EXPECT_EQ(call("GET", "/admin/bus", clerk).status, 403);
  EXPECT_EQ(call("GET", "/admin/dead-letters", clerk).status, 403);
  EXPECT_EQ(call("POST", "/admin/dead-letters/permits/1/replay", clerk).status, 403);
  auto forbidden = call("GET", "/admin/bus", clerk);
  EXPECT_EQ(forbidden.header("content-type"), "application/problem+json");
}

TEST_F(AdminBusHttp, TheDashboardsDataRoutesAreForBusAdminsOnly) {
  for (const char* target : {"/admin/bus/history", "/admin/registry"}) {
    EXPECT_EQ(call("GET", target, "").status, 401) << target;
    EXPECT_EQ(call("GET", target, clerk).status, 403) << target;
  }
  EXPECT_EQ(call("POST", "/admin/dead-letters/permits/1/discard", clerk).status, 403);
}

TEST_F(AdminBusHttp, OutboxesAndLagHistoryAreReported) {
  auto bus = json::parse(call("GET", "/admin/bus", admin).body);
  std::set<std::string> outboxes;
  for (const auto& outbox : bus["outboxes"]) {
    outboxes.insert(outbox["module"].get<std::string>());
    EXPECT_TRUE(outbox["readable"].get<bool>()) << outbox.dump();
    EXPECT_GE(outbox["head"].get<std::int64_t>(), outbox["pending"].get<std::int64_t>());
  }
  EXPECT_EQ(outboxes, (std::set<std::string>{"auth", "permits", "revenue", "parks", "notify"}));
  for (const auto& feed : bus["feeds"]) EXPECT_TRUE(feed["lag_seconds"].is_number()) << feed.dump();

  // Sampled at start, then every interval: the first sample is there at once.
  auto history = json::parse(call("GET", "/admin/bus/history", admin).body);
  EXPECT_EQ(history["interval_seconds"], 15);
  ASSERT_GE(history["samples"].size(), 1u);
  const auto& first = history["samples"][0];
  EXPECT_TRUE(first["at"].is_string());
  ASSERT_TRUE(first["feeds"].contains("permits.citizen_refs<-auth")) << first.dump();
  EXPECT_TRUE(first["feeds"]["permits.citizen_refs<-auth"]["lag_events"].is_number());
}

TEST_F(AdminBusHttp, TheRegistryGraphIsWhatTheCliPrints) {
  auto graph = json::parse(call("GET", "/admin/registry", admin).body);
  ASSERT_EQ(graph["modules"].size(), 5u);
  EXPECT_EQ(graph["modules"][0]["name"], "auth");
  EXPECT_EQ(graph["modules"][0]["db_file"], "auth.db");
  // Every edge is a line of `townhall registry --graph`, and every arrow line an edge.
  auto mermaid = app::registry_graph(server->app().config());
  std::size_t arrows = 0;
  for (std::size_t at = mermaid.find("-->"); at != std::string::npos; at = mermaid.find("-->", at + 1)) ++arrows;
  for (std::size_t at = mermaid.find(".->"); at != std::string::npos; at = mermaid.find(".->", at + 1)) ++arrows;
  EXPECT_EQ(graph["edges"].size(), arrows);
  bool citizens_to_permits = false, permits_calls_auth = false;
  for (const auto& edge : graph["edges"]) {
    auto line = edge["kind"] == "events"
                    ? edge["from"].get<std::string>() + " -- \"" + edge["label"].get<std::string>() + "\" --> " +
                          edge["to"].get<std::string>()
                    : edge["from"].get<std::string>() + " -. Api .-> " + edge["to"].get<std::string>();
    EXPECT_NE(mermaid.find(line), std::string::npos) << line;
    citizens_to_permits |= edge["from"] == "auth" && edge["to"] == "permits" && edge["label"] == "gov.auth.citizen";
    permits_calls_auth |= edge["from"] == "permits" && edge["to"] == "auth" && edge["kind"] == "api";
  }
  EXPECT_TRUE(citizens_to_permits);
  EXPECT_TRUE(permits_calls_auth);
}

TEST_F(AdminBusHttp, FeedsShowCursorsAndHeads) {
  auto response = call("GET", "/admin/bus", admin);
  ASSERT_EQ(response.status, 200) << response.body;
  auto feeds = json::parse(response.body)["feeds"];
  bool found = false;
  for (const auto& feed : feeds)
    if (feed["consumer"] == "permits" && feed["subscription"] == "citizen_refs" && feed["source"] == "auth") {
      found = true;
      EXPECT_TRUE(feed["consumer_up"].get<bool>());
      EXPECT_GE(feed["lag_events"].get<std::int64_t>(), 0);
    }
  EXPECT_TRUE(found) << feeds.dump();
}

TEST_F(AdminBusHttp, PoisonEventIsListedAndReplayedOnce) {
  publish_poison();
  ASSERT_TRUE(testing::wait_until([&] { return pending_letters().size() == 1; }, 20s));
  auto letter = pending_letters().front();
  EXPECT_EQ(letter["subscription"], "citizen_refs");
  EXPECT_EQ(letter["event"]["topic"], "gov.auth.citizen");
  EXPECT_NE(letter["error"].get<std::string>().find("id"), std::string::npos) << letter.dump();
  auto path = "/admin/dead-letters/permits/" + std::to_string(letter["id"].get<std::int64_t>()) + "/replay";

  // The handler still cannot apply it: 422, and it stays pending.
  auto failed = call("POST", path, admin);
  EXPECT_EQ(failed.status, 422) << failed.body;
  EXPECT_EQ(pending_letters().size(), 1u);

  EXPECT_EQ(call("POST", "/admin/dead-letters/permits/999999/replay", admin).status, 404);
  EXPECT_EQ(call("POST", "/admin/dead-letters/nosuch/1/replay", admin).status, 404);
  EXPECT_EQ(call("POST", "/admin/dead-letters/permits/abc/replay", admin).status, 404);
  EXPECT_EQ(call("GET", "/admin/dead-letters?state=later", admin).status, 400);
  EXPECT_EQ(call("GET", "/admin/dead-letters?module=nosuch", admin).status, 400);
}

TEST_F(AdminBusHttp, ReplayAppliesALetterOnceThenConflicts) {
  // A valid citizen event that failed for a passing reason (as if auth's file had been
  // briefly unreadable), kept in permits' dead letters.
  testing::insert_citizen_dead_letter(dir.path(), 999, "Replayed Citizen", 4242);
  db::ModuleDb permits("permits", dir.path() / "permits.db", {});
  auto letters = pending_letters();
  ASSERT_EQ(letters.size(), 1u);
  auto path = "/admin/dead-letters/permits/" + std::to_string(letters.front()["id"].get<std::int64_t>()) + "/replay";
  auto replayed = call("POST", path, admin);
  ASSERT_EQ(replayed.status, 200) << replayed.body;
  EXPECT_EQ(json::parse(replayed.body)["state"], "replayed");
  expect_documented("POST", "/admin/dead-letters/{module}/{id}/replay", replayed);
  auto reader = permits.open(db::Role::owner);  // this handle has no manifest: only the owner reads
  auto name = reader->prepare("SELECT name FROM citizen_refs WHERE citizen_id = 999");
  ASSERT_TRUE(name.executeStep());
  EXPECT_EQ(name.getColumn(0).getString(), "Replayed Citizen");
  EXPECT_TRUE(pending_letters().empty());
  auto all = json::parse(call("GET", "/admin/dead-letters?module=permits", admin).body)["items"];
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all.front()["state"], "replayed");
  EXPECT_EQ(call("POST", path, admin).status, 409);  // never applied twice
  EXPECT_EQ(call("POST", path.substr(0, path.rfind('/')) + "/discard", admin).status, 409);
}

TEST_F(AdminBusHttp, ADiscardedLetterIsKeptAndNeverApplied) {
  publish_poison();
  ASSERT_TRUE(testing::wait_until([&] { return pending_letters().size() == 1; }, 20s));
  auto id = std::to_string(pending_letters().front()["id"].get<std::int64_t>());
  auto discarded = call("POST", "/admin/dead-letters/permits/" + id + "/discard", admin);
  ASSERT_EQ(discarded.status, 200) << discarded.body;
  EXPECT_EQ(json::parse(discarded.body)["state"], "discarded");
  expect_documented("POST", "/admin/dead-letters/{module}/{id}/discard", discarded);
  EXPECT_TRUE(pending_letters().empty());
  auto listed_response = call("GET", "/admin/dead-letters?state=discarded", admin);
  expect_documented("GET", "/admin/dead-letters", listed_response);  // with a letter in it
  auto listed = json::parse(listed_response.body)["items"];
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(listed.front()["id"].get<std::int64_t>(), std::stoll(id));
  EXPECT_TRUE(listed.front()["discarded_at"].is_string());
  EXPECT_TRUE(listed.front()["replayed_at"].is_null());
  EXPECT_EQ(call("POST", "/admin/dead-letters/permits/" + id + "/replay", admin).status, 409);
  EXPECT_EQ(call("POST", "/admin/dead-letters/permits/" + id + "/discard", admin).status, 409);
  EXPECT_EQ(call("POST", "/admin/dead-letters/permits/999999/discard", admin).status, 404);
  EXPECT_EQ(call("POST", "/admin/dead-letters/nosuch/1/discard", admin).status, 404);
  EXPECT_TRUE(json::parse(call("GET", "/admin/dead-letters?state=replayed", admin).body)["items"].empty());
}

}  // namespace
}  // namespace townhall
