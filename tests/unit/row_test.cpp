// Positional binding and reading (row.hpp): types by field, NULL for empty optionals,
// BLOBs kept apart from TEXT, and a list that does not match the SQL refused.
#include "townhall/platform/row.hpp"

#include <gtest/gtest.h>

#include "support.hpp"

namespace townhall::db {
namespace {

class RowTest : public ::testing::Test {
 protected:
  RowTest() : database_("rows", dir_.path() / "rows.db", TableManifest{.owned = {"items", "named"}, .cache = {}}) {
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

// A row that extends another struct, as a module's row extends its contract's snapshot.
struct Named {
  std::int64_t id = 0;
  std::string name;
};
struct Flagged : Named {
  bool flag = false;
  std::optional<std::string> note;
};
constexpr auto kFlagged = columns<Flagged>("items i", "i.id", &Flagged::id, "i.name", &Flagged::name, "i.flag",
                                           &Flagged::flag, "i.note", &Flagged::note);

TEST_F(RowTest, ColumnsDescribedOnceGiveTheSelectAndTheReader) {
  EXPECT_EQ(kFlagged.select(), "SELECT i.id, i.name, i.flag, i.note FROM items i ");
  auto id = insert_row(*owner_, "items", "name", std::string("a"), "flag", true, "note", std::optional<std::string>());
  auto row = first_row(*owner_, kFlagged.select() + "WHERE i.id = ?", kFlagged.reader(), id);
  ASSERT_TRUE(row);
  EXPECT_EQ(row->id, id);
  EXPECT_EQ(row->name, "a");
  EXPECT_TRUE(row->flag);
  EXPECT_FALSE(row->note);
}

TEST_F(RowTest, InsertsNameBesideValue) {
  // A string literal binds as TEXT, not as the true its pointer converts to.
  auto id = insert_row(*owner_, "items", "name", "literal", "flag", false);
  EXPECT_EQ(single_int(*owner_, "SELECT count(*) FROM items WHERE id = ? AND name = 'literal' AND flag = 0", id), 1);
  owner_->exec("CREATE UNIQUE INDEX items_name ON items (name)");
  auto added = insert_new_row(*owner_, "items", "name", "name", std::string("b"), "flag", true);
  ASSERT_TRUE(added);
  EXPECT_GT(*added, id);
  EXPECT_FALSE(insert_new_row(*owner_, "items", "name", "name", std::string("b"), "flag", false));
  EXPECT_EQ(single_int(*owner_, "SELECT flag FROM items WHERE name = 'b'"), 1);
}

// SQLite rewrites an index entry for each indexed column an UPDATE names, changed or not;
// an `AFTER UPDATE OF` trigger fires on the same rule, so it shows what was named.
TEST_F(RowTest, UpdatesNameAConditionalColumnOnlyWhenItsValueChanged) {
  owner_->exec(
      "CREATE TABLE named (what TEXT); "
      "CREATE TRIGGER name_named AFTER UPDATE OF name ON items BEGIN INSERT INTO named VALUES ('name'); END; "
      "CREATE TRIGGER key_named AFTER UPDATE OF key ON items BEGIN INSERT INTO named VALUES ('key'); END; "
      "CREATE TRIGGER note_named AFTER UPDATE OF note ON items BEGIN INSERT INTO named VALUES ('note'); END");
  const std::string key("k\0y", 3), same_key = key, other_key("k\0z", 3);
  auto id = insert_row(*owner_, "items", "name", std::string("a"), "key", blob(key));
  auto named = [&] {
    auto out = all_rows(*owner_, "SELECT what FROM named ORDER BY what",
                        [](SQLite::Statement& row) { return row.getColumn(0).getString(); });
    owner_->exec("DELETE FROM named");
    return out;
  };
  const std::string name = "a", renamed = "b";
  const std::optional<std::string> note = "n";
  EXPECT_EQ(update_row(*owner_, "items", "id = ?", id, set_if_changed("name", name, name), set("note", note),
                       set_if_changed("key", blob(key), blob(same_key))),
            1);
  EXPECT_EQ(named(), std::vector<std::string>{"note"});
  EXPECT_EQ(update_row(*owner_, "items", "id = ?", id, set_if_changed("name", name, renamed), set("note", note),
                       set_if_changed("key", blob(key), blob(other_key))),
            1);
  EXPECT_EQ(named(), (std::vector<std::string>{"key", "name", "note"}));
  auto item = first_row(*owner_, "SELECT id, name, note, flag, key FROM items WHERE id = ?", read_item, id);
  ASSERT_TRUE(item);
  EXPECT_EQ(item->name, "b");
  EXPECT_EQ(item->key, other_key);
  // A key that goes (NULL) changed; a missing row is 0 rows.
  const std::optional<std::string> none;
  EXPECT_EQ(update_row(*owner_, "items", "id = ?", id, set_if_changed("key", blob(other_key), blob(none))), 1);
  EXPECT_EQ(named(), std::vector<std::string>{"key"});
  EXPECT_EQ(update_row(*owner_, "items", "id = ?", id + 1, set("note", note)), 0);
  // Nothing to write is the caller's mistake, not an UPDATE without SET.
  EXPECT_THROW(update_row(*owner_, "items", "id = ?", id, set_if_changed("name", name, name)), std::logic_error);
}

}  // namespace
}  // namespace townhall::db
