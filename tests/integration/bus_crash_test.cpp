// kill -9 at random moments and at chosen points of the delivery path; afterwards every
// committed change is applied exactly once in every consumer and every file is intact.
#include <gtest/gtest.h>
#include <signal.h>

#include <random>

#include "bus_fixture.hpp"
#include "support.hpp"

namespace townhall {
namespace {

using namespace std::chrono_literals;
using testing::ChildProcess;

std::string integrity(const db::ModuleDb& database) {
  auto reader = database.open(db::Role::reader);
  auto query = reader->prepare("PRAGMA integrity_check");
  query.executeStep();
  return query.getColumn(0).getString();
}

TEST(BusCrash, NothingCommittedIsLostOrAppliedTwice) {
  testing::TempDir dir;
  const std::vector<std::string> points{"after_source_commit", "before_apply", "after_apply",
                                        "after_commit",        "after_pass",   "none"};
  std::mt19937 random(12345);
  std::map<std::string, int> crashed_at;
  constexpr int kRounds = 30;
  for (int round = 0; round < kRounds; ++round) {
    const std::string& point = points[static_cast<std::size_t>(round) % points.size()];
    std::string after = std::to_string(1 + random() % 60);
    ChildProcess child({TOWNHALL_BUS_CRASH_CHILD, dir.path().string(), "run", std::to_string(round), point, after});
    ASSERT_TRUE(child.wait_for_line("running")) << "round " << round;
    // Either the child kills itself at its point, or we kill it at a random moment.
    auto deadline = std::chrono::milliseconds(100 + random() % 400);
    auto code = child.wait_exit(point == "none" ? deadline : 5s);
    if (!code) {
      child.signal(SIGKILL);
      code = child.wait_exit();
    }
    ASSERT_EQ(code, 128 + SIGKILL) << "round " << round << ": " << child.output();
    if (child.output().find("crash at " + point) != std::string::npos) ++crashed_at[point];
  }
  // Every chosen point was hit at least once (a random kill covers the rest).
  for (std::size_t i = 0; i + 1 < points.size(); ++i) EXPECT_GE(crashed_at[points[i]], 1) << points[i];

  ChildProcess drain({TOWNHALL_BUS_CRASH_CHILD, dir.path().string(), "drain"});
  ASSERT_EQ(drain.wait_exit_while_progressing(60s), 0) << drain.output();

  testing::TestModule source(dir.path(), "src", false);
  auto versions = testing::read_item_versions(*source.database);
  ASSERT_FALSE(versions.empty());
  std::int64_t total = 0;
  for (const auto& [id, version] : versions) total += version;
  EXPECT_GT(total, 100);  // the rounds did real work
  EXPECT_EQ(integrity(*source.database), "ok");
  for (std::string name : {"c1", "c2", "c3", "c4"}) {
    testing::expect_each_version_applied_once(dir.path(), name, versions, /*versioned=*/name == "c4");
    testing::TestModule consumer(dir.path(), name, false);
    EXPECT_EQ(integrity(*consumer.database), "ok") << name;
  }
}

}  // namespace
}  // namespace townhall
