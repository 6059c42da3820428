// The citizen journey (tests/support/citizen_journey.cpp) against `townhall serve --demo`,
// one process with every module: the same journey tests/split/split_test.cpp walks through
// nginx in front of the split deployment.
#include <gtest/gtest.h>
#include <signal.h>

#include "citizen_journey.hpp"
#include "support.hpp"

namespace townhall {
namespace {

TEST(Journey, ACitizensPermitAndBookingOnOneProcess) {
  testing::TempDir dir;
  testing::ChildProcess server(
      {TOWNHALL_BINARY, "serve", "--demo", "--port", "0", "--data-dir", (dir.path() / "data").string()}, {}, true);
  auto port = testing::wait_for_port(server);
  ASSERT_NE(port, 0) << server.output();
  auto passwords = testing::demo_passwords(server.output());
  ASSERT_EQ(passwords.size(), 8u) << server.output();  // five staff, three citizens

  testing::walk_the_citizen_journey(port, passwords, "jo.journey@example.org");

  server.signal(SIGTERM);
  EXPECT_EQ(server.wait_exit(), 0) << server.output();
}

}  // namespace
}  // namespace townhall
