// The restore drill (issue 21): a backup taken beside a running server under write load,
// restored into an empty data directory (a new machine), serves every national id, and
// its caches converge; a key that is not the data's is found at start and answered 503
// with the fix, never 500.
#include <SQLiteCpp/Database.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <atomic>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "server_fixture.hpp"
#include "support.hpp"
#include "townhall/platform/data_lock.hpp"

namespace townhall {
namespace {

using json = nlohmann::json;
using testing::HttpResponse;

constexpr const char* kPassword = "a long enough password";

int mode_of(const std::filesystem::path& path) {
  struct stat info {};
  return ::stat(path.c_str(), &info) == 0 ? static_cast<int>(info.st_mode & 0777) : -1;
}

// An installation's directory, owner-only, as `migrate --init` makes it.
config::Config installation(const std::filesystem::path& data_dir) {
  std::filesystem::create_directories(data_dir);
  std::filesystem::permissions(data_dir, std::filesystem::perms::owner_all);
  return testing::test_config(data_dir);
}

// A server on `config` with an admin (who holds citizens:sensitive) signed in.
struct Site {
  explicit Site(config::Config config) : server(std::make_unique<testing::TestServer>(std::move(config))) {
    admin = testing::login(server->port(), "admin@example.org", "staff password 1");
  }
  HttpResponse call(const std::string& method, const std::string& path, const std::string& body = {},
                    const std::string& token = {}) {
    return testing::call(server->port(), method, path, body, token);
  }
  bool caught_up() {
    return testing::wait_until([&] { return server->app().bus().caught_up(); }, std::chrono::seconds(20));
  }
  std::unique_ptr<testing::TestServer> server;
  std::string admin;
};

std::int64_t register_citizen(Site& site, const std::string& email, const std::string& national_id) {
  json body{{"email", email}, {"password", kPassword}, {"name", "Citizen " + email}};
  if (!national_id.empty()) body["national_id"] = national_id;
  auto registered = site.call("POST", "/api/v1/auth/register", body.dump());
  EXPECT_EQ(registered.status, 201) << registered.body;
  return json::parse(registered.body).value("id", std::int64_t{0});
}

TEST(BackupRestore, ABackupRestoredOnANewMachineReadsEveryNationalIdAndConverges) {
  testing::TempDir dir;
  const auto old_machine = dir.path() / "old";
  const auto backup_dir = dir.path() / "backup";
  auto config = installation(old_machine);
  ASSERT_TRUE(app::create_staff_user(
      config, auth::StaffUser{"admin@example.org", "staff password 1", "Admin", "admin", std::nullopt}));

  std::vector<std::pair<std::int64_t, std::string>> tax_records;  // record id, national id
  {
    Site site(config);
    for (int i = 0; i < 5; ++i) {
      auto national_id = "NID-" + std::to_string(1000 + i);
      auto citizen = register_citizen(site, "c" + std::to_string(i) + "@example.org", national_id);
      ASSERT_TRUE(site.caught_up());
      auto created = site.call(
          "POST", "/api/v1/revenue/tax-records",
          json{{"citizen_id", citizen}, {"tax_year", 2025}, {"assessed_value_cents", 100000}, {"tax_due_cents", 1250}}
              .dump(),
          site.admin);
      ASSERT_EQ(created.status, 201) << created.body;
      tax_records.emplace_back(json::parse(created.body)["id"].get<std::int64_t>(), national_id);
    }

    // Write load while the backup runs: registrations and renames from another thread.
    std::atomic<bool> stop{false};
    std::atomic<int> written{0};
    std::thread load([&] {
      for (int i = 0; !stop && i < 2000; ++i) {
        auto id = register_citizen(site, "load" + std::to_string(i) + "@example.org", "");
        if (id > 0 && site.call("PATCH", "/api/v1/auth/citizens/" + std::to_string(id),
                                json{{"name", "Renamed " + std::to_string(i)}}.dump(), site.admin)
                              .status == 200)
          ++written;
      }
    });
    ASSERT_TRUE(testing::wait_until([&] { return written >= 3; }));
    std::vector<std::string> report;
    const bool backed_up = app::backup_all(config, backup_dir, report);
    ASSERT_TRUE(testing::wait_until([&] { return written >= 6; }));  // writes went on during it
    stop = true;
    load.join();
    std::string lines;
    for (const auto& line : report) lines += line + "\n";
    ASSERT_TRUE(backed_up) << lines;
    EXPECT_NE(lines.find("verified"), std::string::npos) << lines;
  }

  // The backup holds the key (0600) and a manifest that lists every file with its digest.
  EXPECT_EQ(mode_of(backup_dir / "auth.key"), 0600);
  std::ifstream manifest_file(backup_dir / "manifest.json");
  auto manifest = json::parse(manifest_file);
  EXPECT_EQ(manifest["format"], "townhall-backup/1");
  EXPECT_TRUE(manifest["complete"].get<bool>());
  std::set<std::string> listed;
  for (const auto& file : manifest["files"]) {
    listed.insert(file["name"].get<std::string>());
    EXPECT_EQ(file["sha256"].get<std::string>().size(), 64u);
    if (file["kind"] == "module") {
      EXPECT_TRUE(file["schema"].contains("bus")) << file.dump();
    }
  }
  EXPECT_EQ(listed,
            (std::set<std::string>{"auth.db", "auth.key", "permits.db", "revenue.db", "parks.db", "notify.db"}));

  // A new machine: an empty data directory, the backup restored into it.
  const auto new_machine = dir.path() / "new" / "data";
  auto restored_config = testing::test_config(new_machine);
  std::vector<std::string> restore_report;
  ASSERT_TRUE(app::restore_backup(restored_config, {backup_dir, std::nullopt}, restore_report))
      << restore_report.back();
  EXPECT_EQ(mode_of(new_machine), 0700);
  for (const char* file : {"auth.db", "auth.key", "permits.db", "revenue.db", "parks.db", "notify.db"})
    EXPECT_EQ(mode_of(new_machine / file), 0600) << file;

  Site site(restored_config);
  ASSERT_FALSE(site.admin.empty());
  for (const auto& [record, national_id] : tax_records) {
    auto read = site.call("GET", "/api/v1/revenue/tax-records/" + std::to_string(record) + "?include=national_id", {},
                          site.admin);
    ASSERT_EQ(read.status, 200) << read.body;
    EXPECT_EQ(json::parse(read.body)["national_id"], national_id);
  }
  // The digests still match: a new claim of a national id on file is found beside it.
  auto claimant = register_citizen(site, "claimant@example.org", "NID-1000");
  auto claims =
      site.call("GET", "/api/v1/auth/citizens/" + std::to_string(claimant) + "/national-id-claims", {}, site.admin);
  ASSERT_EQ(claims.status, 200) << claims.body;
  EXPECT_EQ(json::parse(claims.body)["claims"].size(), 2u) << claims.body;
  // Every cache converges on what the restored auth.db holds, and the site serves writes.
  EXPECT_GT(register_citizen(site, "after@example.org", "NID-2000"), 0);
  ASSERT_TRUE(site.caught_up());
  auto check = site.server->app().check_consistency(std::nullopt, false);
  ASSERT_TRUE(check) << check.error().message;
  EXPECT_TRUE(check->consistent()) << consistency::to_json(*check).dump();
  EXPECT_EQ(json::parse(site.call("GET", "/readyz").body)["status"], "ready");
}

TEST(BackupRestore, AKeyThatIsNotTheDatasIsFoundAtStartAnswers503AndReadyzSaysSo) {
  testing::TempDir dir;
  auto config = installation(dir.path() / "data");
  ASSERT_TRUE(app::create_staff_user(
      config, auth::StaffUser{"admin@example.org", "staff password 1", "Admin", "admin", std::nullopt}));
  std::string tax_record;
  {
    Site site(config);
    auto citizen = register_citizen(site, "maria@example.org", "NID-4242");
    ASSERT_TRUE(site.caught_up());
    auto created = site.call(
        "POST", "/api/v1/revenue/tax-records",
        json{{"citizen_id", citizen}, {"tax_year", 2025}, {"assessed_value_cents", 1}, {"tax_due_cents", 1}}.dump(),
        site.admin);
    ASSERT_EQ(created.status, 201) << created.body;
    tax_record = "/api/v1/revenue/tax-records/" + std::to_string(json::parse(created.body)["id"].get<std::int64_t>());
  }
  // The key of another installation (what a restore without auth.key used to leave).
  std::filesystem::remove(dir.path() / "data" / "auth.key");
  {
    std::ofstream other(dir.path() / "data" / "auth.key", std::ios::binary);
    other << std::string(32, 'k');
  }
  std::filesystem::permissions(dir.path() / "data" / "auth.key", std::filesystem::perms::owner_read);

  Site site(config);
  auto read = site.call("GET", tax_record + "?include=national_id", {}, site.admin);
  EXPECT_EQ(read.status, 503) << read.body;
  EXPECT_EQ(read.header("content-type"), "application/problem+json");
  EXPECT_NE(read.body.find("does not match"), std::string::npos) << read.body;
  EXPECT_NE(read.body.find("townhall restore"), std::string::npos) << read.body;
  EXPECT_EQ(site.call("GET", tax_record, {}, site.admin).status, 200);  // the rest of the record serves
  json claim{{"email", "li@example.org"}, {"password", kPassword}, {"name", "Li"}, {"national_id", "NID-4242"}};
  EXPECT_EQ(site.call("POST", "/api/v1/auth/register", claim.dump()).status, 503);  // never accepted unchecked

  auto ready = site.call("GET", "/readyz");
  EXPECT_EQ(ready.status, 200);  // the site serves: logins, permits, parks
  auto body = json::parse(ready.body);
  EXPECT_EQ(body["status"], "degraded");
  EXPECT_EQ(body["modules"]["auth"]["state"], "degraded");
  EXPECT_NE(body["modules"]["auth"]["detail"].get<std::string>().find("auth.key"), std::string::npos) << body.dump();
  auto metrics = site.call("GET", "/metrics").body;
  EXPECT_NE(metrics.find("townhall_auth_key_ok 0"), std::string::npos);
  EXPECT_NE(metrics.find("townhall_module_degraded{module=\"auth\"} 1"), std::string::npos);
}

TEST(BackupRestore, ARestoreVerifiesBeforeItInstallsAndRefusesARunningServer) {
  testing::TempDir dir;
  auto config = installation(dir.path() / "data");
  const auto backup_dir = dir.path() / "backup";
  {
    Site site(config);
    register_citizen(site, "maria@example.org", "NID-1");
    std::vector<std::string> report;
    ASSERT_TRUE(app::backup_all(config, backup_dir, report));
    // Nothing is overwritten: a second backup into the same directory is refused.
    std::vector<std::string> again;
    EXPECT_FALSE(app::backup_all(config, backup_dir, again));
    EXPECT_NE(again.front().find("already holds a backup"), std::string::npos) << again.front();
    // A running server holds the data directory: the restore refuses before touching it.
    std::vector<std::string> refused;
    EXPECT_THROW(app::restore_backup(config, {backup_dir, std::nullopt}, refused), db::DataDirInUse);
  }

  // A damaged copy: nothing is installed.
  auto damaged = dir.path() / "damaged";
  std::filesystem::copy(backup_dir, damaged);
  {
    std::fstream file(damaged / "permits.db", std::ios::in | std::ios::out | std::ios::binary);
    file.seekp(5000);
    file.put('\x7f');
  }
  auto fresh = testing::test_config(dir.path() / "fresh");
  std::vector<std::string> report;
  EXPECT_FALSE(app::restore_backup(fresh, {damaged, std::nullopt}, report));
  EXPECT_NE(report.back().find("permits.db does not match the manifest"), std::string::npos) << report.back();
  EXPECT_NE(report.back().find("nothing was installed"), std::string::npos) << report.back();
  EXPECT_FALSE(std::filesystem::exists(dir.path() / "fresh" / "auth.db"));
  // A backup without its key is not a backup that restores.
  auto keyless = dir.path() / "keyless";
  std::filesystem::copy(backup_dir, keyless);
  std::filesystem::remove(keyless / "auth.key");
  report.clear();
  EXPECT_FALSE(app::restore_backup(fresh, {keyless, std::nullopt}, report));
  EXPECT_NE(report.back().find("auth.key is listed in the manifest but missing"), std::string::npos) << report.back();
  // A manifest that names a path outside the backup is refused.
  auto escaping = dir.path() / "escaping";
  std::filesystem::copy(backup_dir, escaping);
  {
    std::ifstream in(escaping / "manifest.json");
    auto manifest = json::parse(in);
    manifest["files"][0]["name"] = "../../etc/passwd";
    std::ofstream(escaping / "manifest.json", std::ios::trunc) << manifest.dump();
  }
  report.clear();
  EXPECT_FALSE(app::restore_backup(fresh, {escaping, std::nullopt}, report));
  EXPECT_NE(report.back().find("not a plain file name"), std::string::npos) << report.back();

  // One module alone, beside stale -wal/-shm: those go aside with the file they belonged to.
  {
    std::ofstream(dir.path() / "data" / "permits.db-wal") << "stale";
    std::ofstream(dir.path() / "data" / "permits.db-shm") << "stale";
  }
  auto auth_before = std::filesystem::last_write_time(dir.path() / "data" / "auth.db");
  report.clear();
  ASSERT_TRUE(app::restore_backup(config, {backup_dir, std::string("permits")}, report)) << report.back();
  EXPECT_FALSE(std::filesystem::exists(dir.path() / "data" / "permits.db-wal"));
  EXPECT_FALSE(std::filesystem::exists(dir.path() / "data" / "permits.db-shm"));
  EXPECT_EQ(std::filesystem::last_write_time(dir.path() / "data" / "auth.db"), auth_before);  // untouched
  bool aside = false;
  for (const auto& entry : std::filesystem::directory_iterator(dir.path() / "data"))
    if (entry.path().filename().string().starts_with("replaced-"))
      aside = std::filesystem::exists(entry.path() / "permits.db") &&
              std::filesystem::exists(entry.path() / "permits.db-wal");
  EXPECT_TRUE(aside);
  Site site(config);  // and the server starts on it
  EXPECT_EQ(json::parse(site.call("GET", "/readyz").body)["status"], "ready");
}

// `backup --prune-days N` (the timer's retention, and the cron line's): removes only the
// backups townhall made that are older than N days, never the new one or anything else.
TEST(BackupRestore, PruningRemovesOnlyOldTownhallBackups) {
  testing::TempDir dir;
  auto config = installation(dir.path() / "data");
  { Site site(config); }
  auto backups = dir.path() / "backups";
  std::vector<std::string> report;
  ASSERT_TRUE(app::backup_all(config, backups / "old", report));
  ASSERT_TRUE(app::backup_all(config, backups / "recent", report));
  {
    std::ifstream in(backups / "old" / "manifest.json");
    auto manifest = json::parse(in);
    manifest["created_at"] = "2020-01-01T00:00:00.000Z";
    std::ofstream(backups / "old" / "manifest.json", std::ios::trunc) << manifest.dump();
  }
  std::filesystem::create_directories(backups / "someone-elses");
  std::ofstream(backups / "someone-elses" / "notes.txt") << "keep me";
  ASSERT_TRUE(app::backup_all(config, backups / "new", report));
  auto removed = app::prune_backups(backups / "new", 14, report);
  EXPECT_EQ(removed, std::vector<std::filesystem::path>{backups / "old"});
  EXPECT_FALSE(std::filesystem::exists(backups / "old"));
  for (const char* kept : {"recent", "new", "someone-elses"}) EXPECT_TRUE(std::filesystem::exists(backups / kept));
}

}  // namespace
}  // namespace townhall
