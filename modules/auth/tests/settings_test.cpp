// The auth section of the registry, parsed strictly.
#include "fixture.hpp"

namespace townhall::auth {
namespace {

TEST(AuthSettings, UnknownOrBadKeysAreNamed) {
  EXPECT_NO_THROW(parse_settings(json::object()));
  auto message = [](const json& section) { return testing::thrown_message([&] { parse_settings(section); }); };
  EXPECT_NE(message({{"session_ttl", 5}}).find("modules.auth.settings.session_ttl: unknown"), std::string::npos);
  EXPECT_NE(message({{"session_ttl_seconds", 0}}).find("session_ttl_seconds"), std::string::npos);
  EXPECT_NE(message({{"password_hash", {{"memory_kib", 1}}}}).find("password_hash.memory_kib"), std::string::npos);
  EXPECT_NE(message({{"login_throttle", {{"x", 1}}}}).find("login_throttle.x"), std::string::npos);
  EXPECT_NE(message({{"password_reset_ttl_seconds", 0}}).find("password_reset_ttl_seconds"), std::string::npos);
  EXPECT_EQ(parse_settings({{"password_reset_ttl_seconds", 600}}).password_reset_ttl, std::chrono::seconds(600));
  EXPECT_NE(message({{"login_throttle", {{"max_logins_per_account", 0}}}}).find("max_logins_per_account"),
            std::string::npos);
  EXPECT_NE(message({{"password_hash", {{"max_queued", 0}}}}).find("password_hash.max_queued"), std::string::npos);
  auto parsed = parse_settings(
      {{"login_throttle", {{"max_logins_per_account", 4}, {"max_logins_per_ip", 9}, {"login_window_seconds", 30}}},
       {"password_hash", {{"max_queued", 3}}}});
  EXPECT_EQ(parsed.login_throttle.max_logins_per_account, 4);
  EXPECT_EQ(parsed.login_throttle.max_logins_per_ip, 9);
  EXPECT_EQ(parsed.login_throttle.login_window, std::chrono::seconds(30));
  EXPECT_EQ(parsed.max_queued_password_hashes, 3u);
}

TEST(AuthSettings, AuditRetentionIsBoundedAndItsExportDirNamed) {
  auto message = [](const json& section) { return testing::thrown_message([&] { parse_settings(section); }); };
  EXPECT_EQ(parse_settings(json::object()).audit_retention_days, 400);
  EXPECT_EQ(parse_settings(json::object()).audit_export_dir, "audit-exports");
  EXPECT_EQ(parse_settings({{"audit_retention_days", 30}}).audit_retention_days, 30);
  EXPECT_NE(message({{"audit_retention_days", 29}}).find("audit_retention_days"), std::string::npos);
  EXPECT_NE(message({{"audit_retention_days", 3651}}).find("audit_retention_days"), std::string::npos);
  EXPECT_NE(message({{"audit_export_dir", ""}}).find("audit_export_dir"), std::string::npos);
  EXPECT_EQ(parse_settings({{"audit_export_dir", "/var/audit"}}).audit_export_dir, "/var/audit");
}

}  // namespace
}  // namespace townhall::auth
