// The audit log through the service (issue 26 §4): filtered, newest first, naming each
// actor; retention exports the old rows to a dated JSON-lines file before deleting them.
#include <fstream>

#include "fixture.hpp"

namespace townhall::auth {
namespace {

std::vector<std::string> actions_of(const AuditList& list) {
  std::vector<std::string> out;
  for (const auto& row : list.items) out.push_back(row.action);
  return out;
}

TEST_F(AuthServiceTest, ANationalIdReadIsFoundByCitizenAndByActor) {
  auto maria = register_citizen("maria@example.org", "AB-123456");
  auto clerk = create_staff("rosa@example.org", {"revenue_clerk"});
  auto rosa = employee(clerk, {"citizens:sensitive"});
  auto read = run_awaitable(service->get_sensitive(as(rosa), maria.id, "tax-record"));
  ASSERT_TRUE(read) << read.error().message;
  EXPECT_EQ(*read, "AB-123456");

  auto auditor = as(employee(77, {"audit:read"}));
  AuditQuery by_citizen;
  by_citizen.citizen_id = maria.id;
  auto about_maria = service->list_audit(auditor, by_citizen, {});
  ASSERT_TRUE(about_maria) << about_maria.error().message;
  // Newest first: the read, then the national id set at registration.
  EXPECT_EQ(actions_of(*about_maria),
            (std::vector<std::string>{"citizen.national_id.read", "citizen.national_id.set"}));
  const auto& row = about_maria->items[0];
  EXPECT_EQ(row.actor, "employee:" + std::to_string(clerk));
  EXPECT_EQ(row.actor_email, "rosa@example.org");
  EXPECT_EQ(row.purpose, "tax-record");

  AuditQuery by_actor;
  by_actor.actor_id = clerk;
  by_actor.action = "citizen.national_id.read";
  auto by_rosa = service->list_audit(auditor, by_actor, {});
  ASSERT_TRUE(by_rosa);
  ASSERT_EQ(by_rosa->items.size(), 1u);
  EXPECT_EQ(by_rosa->items[0].subject, "citizen:" + std::to_string(maria.id));

  // A time window around now finds it; one in the past does not.
  AuditQuery window = by_actor;
  window.from = std::chrono::system_clock::now() - std::chrono::hours(1);
  window.to = std::chrono::system_clock::now() + std::chrono::hours(1);
  EXPECT_EQ(service->list_audit(auditor, window, {})->items.size(), 1u);
  window.to = window.from;
  window.from = *window.to - std::chrono::hours(1);
  EXPECT_TRUE(service->list_audit(auditor, window, {})->items.empty());
}

TEST_F(AuthServiceTest, TheAuditLogIsForAdminsAndAuditorsAndPagesNewestFirst) {
  for (int i = 0; i < 3; ++i) register_citizen("c" + std::to_string(i) + "@example.org", "ID-" + std::to_string(i));
  auto forbidden = service->list_audit(as(employee(5, {"citizens:read"})), {}, {});
  ASSERT_FALSE(forbidden);
  EXPECT_EQ(forbidden.error().code, Errc::forbidden);
  EXPECT_FALSE(service->list_audit(as(citizen(1)), {}, {}));

  AuditQuery backwards;
  backwards.from = std::chrono::system_clock::now();
  backwards.to = *backwards.from - std::chrono::seconds(1);
  auto reversed = service->list_audit(as(employee(1, {"*"})), backwards, {});
  ASSERT_FALSE(reversed);
  EXPECT_EQ(reversed.error().code, Errc::invalid_argument);

  auto admin = as(employee(1, {"auth:admin"}));
  auto first = service->list_audit(admin, {}, {2, "", true});
  ASSERT_TRUE(first);
  EXPECT_EQ(first->total, 3);
  ASSERT_EQ(first->items.size(), 2u);
  ASSERT_TRUE(first->next_cursor);
  auto rest = service->list_audit(admin, {}, {2, *first->next_cursor, false});
  ASSERT_TRUE(rest);
  ASSERT_EQ(rest->items.size(), 1u);
  EXPECT_FALSE(rest->next_cursor);
  EXPECT_GT(first->items[0].id, first->items[1].id);
  EXPECT_GT(first->items[1].id, rest->items[0].id);
}

TEST_F(AuthServiceTest, RetentionExportsTheOldRowsDurablyThenDeletesThem) {
  // The retention loop's pass at start first, or it may take the rows below: on the
  // writer, its start, its command and its answer (each drain runs what the one before
  // posted).
  for (int hop = 0; hop < 3; ++hop) writer.drain();
  {
    auto connection = database.open(db::Role::service);
    auto now = std::chrono::system_clock::now();
    for (int days : {500, 450, 401, 399, 10}) {
      store::audit(*connection,
                   {"employee:7", "citizen.national_id.read", "citizen:" + std::to_string(days), "old",
                    "c" + std::to_string(days), std::nullopt},
                   utc::format(now - std::chrono::days(days)));
    }
  }
  auto pruned = run_awaitable(service->prune_audit(std::chrono::system_clock::now()));
  ASSERT_TRUE(pruned) << pruned.error().message;
  EXPECT_EQ(*pruned, 3);
  auto day = utc::now().substr(0, 10);
  auto file = service->audit_export_dir() / ("audit-" + day + ".jsonl");
  EXPECT_EQ(service->audit_export_dir(), dir.path() / "audit-exports");
  std::ifstream in(file);
  std::vector<json> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(json::parse(line));
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0]["subject"], "citizen:500");  // oldest first
  EXPECT_EQ(lines[2]["subject"], "citizen:401");
  EXPECT_EQ(lines[0]["actor"], "employee:7");
  EXPECT_EQ(lines[0]["purpose"], "old");

  auto left = service->list_audit(as(employee(1, {"*"})), {}, {});
  ASSERT_TRUE(left);
  std::vector<std::string> subjects;
  for (const auto& row : left->items) subjects.push_back(row.subject);
  EXPECT_EQ(subjects, (std::vector<std::string>{"citizen:10", "citizen:399"}));
  // Nothing more to prune: the file is not touched again.
  EXPECT_EQ(*run_awaitable(service->prune_audit(std::chrono::system_clock::now())), 0);
}

TEST_F(AuthServiceTest, AnExportThatCannotBeWrittenKeepsTheRows) {
  settings.audit_export_dir = dir.path() / "not-a-dir";
  { std::ofstream(dir.path() / "not-a-dir") << "a file where the directory should be"; }
  make_service();
  {
    auto connection = database.open(db::Role::service);
    store::audit(*connection, {"cli", "x", "citizen:1", std::nullopt, "c", std::nullopt},
                 utc::format(std::chrono::system_clock::now() - std::chrono::days(500)));
  }
  auto pruned = run_awaitable(service->prune_audit(std::chrono::system_clock::now()));
  ASSERT_FALSE(pruned);
  EXPECT_EQ(pruned.error().code, Errc::unavailable);
  auto reader = database.open(db::Role::reader);
  EXPECT_EQ(store::count_audit(*reader, "x", "citizen:1"), 1);
}

}  // namespace
}  // namespace townhall::auth
