// Positional binding and reading (row.hpp): types by field, NULL for empty optionals,
// BLOBs kept apart from TEXT, and a list that does not match the SQL refused.
#include "townhall/platform/row.hpp"

#include <gtest/gtest.h>

#include "support.hpp"

namespace townhall::db {
namespace {

class RowTest : public ::testing::Test {
 protected:
  RowTest() : database_("rows", dir_.path() / "rows.db", TableManifest{.owned = {"items"}, .cache = {}}) {
    owner_ = database_.open(Role::owner);
    owner_->exec("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, note TEXT, flag INTEGER, key BLOB)");
  }

  testing::TempDir dir_;
  ModuleDb database_;
  std::unique_ptr<Connection> owner_;
};

struct Item {
  std::int64_t id = 0;
  std::string name;
  std::optional<std::string> note;
  bool flag = false;
  std::optional<std::string> key;
};

Item read_item(SQLite::Statement& row) {
  Item item;
  read_columns(row, item.id, item.name, item.note, item.flag, item.key);
  return item;
}

TEST_F(RowTest, BindsAndReadsByFieldType) {
  const std::string key("k\0y", 3);
  auto id = insert(*owner_, "INSERT INTO items (name, note, flag, key) VALUES (?, ?, ?, ?)", std::string("a"),
                   std::optional<std::string>(), true, blob(key));
  EXPECT_EQ(single_int(*owner_, "SELECT count(*) FROM items WHERE typeof(key) = 'blob' AND note IS NULL AND flag = 1"),
            1);
  auto item = first_row(*owner_, "SELECT id, name, note, flag, key FROM items WHERE id = ?", read_item, id);
  ASSERT_TRUE(item);
  EXPECT_EQ(item->name, "a");
  EXPECT_FALSE(item->note);
  EXPECT_TRUE(item->flag);
  EXPECT_EQ(item->key, key);
  EXPECT_EQ(execute(*owner_, "UPDATE items SET note = ?, key = ? WHERE id = ?", std::optional<std::string>("n"),
                    blob(std::optional<std::string>()), id),
            1);
  auto all = all_rows(*owner_, "SELECT id, name, note, flag, key FROM items", read_item);
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].note, "n");
  EXPECT_FALSE(all[0].key);
  EXPECT_FALSE(first_row(*owner_, "SELECT id, name, note, flag, key FROM items WHERE id = ?", read_item, id + 1));
}

TEST_F(RowTest, RefusesAListThatDoesNotMatchTheSql) {
  EXPECT_THROW(execute(*owner_, "INSERT INTO items (name, flag) VALUES (?, ?)", std::string("a")), std::logic_error);
  execute(*owner_, "INSERT INTO items (name, flag) VALUES (?, ?)", std::string("a"), false);
  EXPECT_THROW(first_row(*owner_, "SELECT id, name, note, flag FROM items", read_item), std::logic_error);
}

}  // namespace
}  // namespace townhall::db
