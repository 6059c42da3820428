#include "townhall/platform/migrator.hpp"

#include <gtest/gtest.h>

#include "support.hpp"
#include "townhall/migrations.hpp"
#include "townhall/platform/db.hpp"

namespace townhall::db {
namespace {

class MigratorTest : public ::testing::Test {
 protected:
  MigratorTest()
      : database_("shop", dir_.path() / "shop.db", TableManifest{.owned = {"items", "prices"}, .cache = {}}) {}

  std::vector<AppliedMigration> apply(const std::vector<Migration>& migrations) {
    auto owner = database_.open(Role::owner);
    Migrator migrator(*owner);
    return migrator.apply(migrations);
  }

  std::vector<std::string> columns(const std::string& table) {
    auto reader = database_.open(Role::reader);
    auto query = reader->prepare("PRAGMA table_info(" + table + ")");
    std::vector<std::string> out;
    while (query.executeStep()) out.push_back(query.getColumn(1).getString());
    return out;
  }

  testing::TempDir dir_;
  ModuleDb database_;
};

Migration make(int version, std::string name, std::string_view sql) { return {"shop", version, std::move(name), sql}; }

TEST_F(MigratorTest, AppliesInVersionOrderAndRecordsChecksums) {
  std::vector<EmbeddedFile> files{
      {"shop/0002_add_price.sql", "ALTER TABLE items ADD COLUMN price_cents INTEGER;"},
      {"shop/0001_items.sql", "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT);"},
      {"other/0001_unrelated.sql", "CREATE TABLE nope (id INTEGER);"},
  };
  auto migrations = migrations_for(files, "shop");
  ASSERT_EQ(migrations.size(), 2u);
  EXPECT_EQ(migrations[0].name, "0001_items.sql");

  auto applied = apply(migrations);
  ASSERT_EQ(applied.size(), 2u);
  EXPECT_EQ(applied[0].version, 1);
  EXPECT_EQ(applied[1].version, 2);
  EXPECT_EQ(columns("items"), (std::vector<std::string>{"id", "name", "price_cents"}));

  auto reader = database_.open(Role::reader);
  auto query = reader->prepare("SELECT checksum FROM schema_migrations WHERE component = 'shop' AND version = 1");
  ASSERT_TRUE(query.executeStep());
  EXPECT_EQ(query.getColumn(0).getString(), checksum("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT);"));
  EXPECT_EQ(query.getColumn(0).getString().size(), 64u);
}

TEST_F(MigratorTest, SecondRunIsANoOp) {
  std::vector<Migration> migrations{make(1, "0001_items.sql", "CREATE TABLE items (id INTEGER PRIMARY KEY);")};
  EXPECT_EQ(apply(migrations).size(), 1u);
  EXPECT_TRUE(apply(migrations).empty());
  EXPECT_TRUE(apply(migrations).empty());
}

TEST_F(MigratorTest, LaterMigrationsApplyOnTopOfEarlierOnes) {
  std::vector<Migration> first{make(1, "0001_items.sql", "CREATE TABLE items (id INTEGER PRIMARY KEY);")};
  apply(first);
  auto second = first;
  second.push_back(make(2, "0002_prices.sql", "CREATE TABLE prices (item INTEGER);"));
  auto applied = apply(second);
  ASSERT_EQ(applied.size(), 1u);
  EXPECT_EQ(applied[0].name, "0002_prices.sql");
}

TEST_F(MigratorTest, RefusesATamperedMigration) {
  apply({make(1, "0001_items.sql", "CREATE TABLE items (id INTEGER PRIMARY KEY);")});
  try {
    apply({make(1, "0001_items.sql", "CREATE TABLE items (id INTEGER PRIMARY KEY, sneaky TEXT);")});
    FAIL() << "a changed migration was accepted";
  } catch (const MigrationError& error) {
    EXPECT_NE(std::string(error.what()).find("checksum"), std::string::npos) << error.what();
    EXPECT_NE(std::string(error.what()).find("0001_items.sql"), std::string::npos) << error.what();
  }
}

TEST_F(MigratorTest, RefusesWhenAnAppliedMigrationIsMissing) {
  apply({make(1, "0001_items.sql", "CREATE TABLE items (id INTEGER PRIMARY KEY);"),
         make(2, "0002_prices.sql", "CREATE TABLE prices (item INTEGER);")});
  try {
    apply({make(1, "0001_items.sql", "CREATE TABLE items (id INTEGER PRIMARY KEY);")});
    FAIL() << "a missing migration was accepted";
  } catch (const MigrationError& error) {
    EXPECT_NE(std::string(error.what()).find("missing"), std::string::npos) << error.what();
    EXPECT_NE(std::string(error.what()).find("0002_prices.sql"), std::string::npos) << error.what();
  }
}

TEST_F(MigratorTest, AFailingMigrationLeavesNoTrace) {
  apply({make(1, "0001_items.sql", "CREATE TABLE items (id INTEGER PRIMARY KEY);")});
  std::vector<Migration> broken{make(1, "0001_items.sql", "CREATE TABLE items (id INTEGER PRIMARY KEY);"),
                                make(2, "0002_broken.sql", "CREATE TABLE prices (item INTEGER); SELEC nonsense;")};
  EXPECT_THROW(apply(broken), MigrationError);
  EXPECT_TRUE(columns("prices").empty());  // the first statement of 0002 was rolled back
  auto owner = database_.open(Role::owner);
  Migrator migrator(*owner);
  EXPECT_EQ(migrator.applied("shop").size(), 1u);
}

TEST_F(MigratorTest, RejectsBadFileNamesAndDuplicateVersions) {
  std::vector<EmbeddedFile> bad_name{{"shop/1_items.sql", "SELECT 1;"}};
  EXPECT_THROW(migrations_for(bad_name, "shop"), MigrationError);
  std::vector<EmbeddedFile> upper{{"shop/0001_Items.sql", "SELECT 1;"}};
  EXPECT_THROW(migrations_for(upper, "shop"), MigrationError);
  std::vector<EmbeddedFile> duplicate{{"shop/0001_a.sql", "SELECT 1;"}, {"shop/0001_b.sql", "SELECT 2;"}};
  EXPECT_THROW(migrations_for(duplicate, "shop"), MigrationError);
}

TEST_F(MigratorTest, NeedsAnOwnerConnection) {
  apply({make(1, "0001_items.sql", "CREATE TABLE items (id INTEGER PRIMARY KEY);")});
  auto service = database_.open(Role::service);
  EXPECT_THROW(Migrator{*service}, MigrationError);
}

TEST(EmbeddedMigrations, BusBookkeepingIsCompiledIn) {
  auto bus = migrations_for(migrations::embedded_migrations(), "bus");
  ASSERT_FALSE(bus.empty());
  EXPECT_EQ(bus.front().name, "0001_bookkeeping.sql");
  EXPECT_NE(bus.front().sql.find("CREATE TABLE outbox"), std::string_view::npos);
}

}  // namespace
}  // namespace townhall::db
