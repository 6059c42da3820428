#pragma once

// Positional row reading and parameter binding for the module stores. The SQL stays
// written out where it runs; these only replace the `x.a = row.getColumn(7).getInt64()`
// and `statement.bind(7, x.a)` ladders with one list of fields in the SQL's order,
// converted by each field's type, and check that the list is as long as the SQL's.

#include <SQLiteCpp/Column.h>
#include <SQLiteCpp/Statement.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "townhall/platform/db.hpp"
#include "townhall/platform/page_cursor.hpp"

namespace townhall::db {

// A parameter bound as a BLOB (bytes), or NULL when there are none; a plain string binds
// as TEXT, and the two never compare equal in SQLite.
struct Blob {
  const std::string* bytes;
};
inline Blob blob(const std::string& bytes) { return {&bytes}; }
inline Blob blob(const std::optional<std::string>& bytes) { return {bytes ? &*bytes : nullptr}; }

inline void bind_value(SQLite::Statement& statement, int index, bool value) { statement.bind(index, value ? 1 : 0); }
inline void bind_value(SQLite::Statement& statement, int index, int value) { statement.bind(index, value); }
inline void bind_value(SQLite::Statement& statement, int index, std::int64_t value) { statement.bind(index, value); }
inline void bind_value(SQLite::Statement& statement, int index, const std::string& value) {
  statement.bind(index, value);
}
// A string literal binds as TEXT (not as the bool its pointer would convert to).
inline void bind_value(SQLite::Statement& statement, int index, const char* value) { statement.bind(index, value); }
inline void bind_value(SQLite::Statement& statement, int index, Blob value) {
  if (value.bytes)
    statement.bind(index, value.bytes->data(), static_cast<int>(value.bytes->size()));
  else
    statement.bind(index);
}
template <class T>
void bind_value(SQLite::Statement& statement, int index, const std::optional<T>& value) {
  if (value)
    bind_value(statement, index, *value);
  else
    statement.bind(index);
}

// Binds ?1..?N to `values` in order. The statement must take exactly N parameters.
template <class... Values>
void bind_params(SQLite::Statement& statement, const Values&... values) {
  if (statement.getBindParameterCount() != static_cast<int>(sizeof...(values)))
    throw std::logic_error("bind_params: " + std::to_string(sizeof...(values)) + " values for " +
                           std::to_string(statement.getBindParameterCount()) + " parameters in " +
                           statement.getQuery());
  int index = 0;
  (bind_value(statement, ++index, values), ...);
}

// Column readers by field type. getString reads BLOB columns byte for byte too.
inline void read_value(const SQLite::Column& column, bool& out) { out = column.getInt() != 0; }
inline void read_value(const SQLite::Column& column, std::int64_t& out) { out = column.getInt64(); }
inline void read_value(const SQLite::Column& column, std::string& out) { out = column.getString(); }
inline void read_value(const SQLite::Column& column, std::optional<std::string>& out) { out = optional_text(column); }
inline void read_value(const SQLite::Column& column, std::optional<std::int64_t>& out) { out = optional_int(column); }

// Reads the row's columns, in order, into `fields`. The row must have exactly as many.
template <class... Fields>
void read_columns(const SQLite::Statement& row, Fields&... fields) {
  if (row.getColumnCount() != static_cast<int>(sizeof...(fields)))
    throw std::logic_error("read_columns: " + std::to_string(sizeof...(fields)) + " fields for " +
                           std::to_string(row.getColumnCount()) + " columns in " + row.getQuery());
  int index = 0;
  (read_value(row.getColumn(index++), fields), ...);
}

// The columns a select reads, described once with each name beside the member it fills:
// the SELECT list and the row reader both come from it, so they cannot drift apart.
//   constexpr auto kItems = columns<Item>("items", "id", &Item::id, "name", &Item::name);
//   first_row(connection, kItems.select() + "WHERE id = ?", kItems.reader(), id);
template <class T, class Member>
struct Column {
  std::string_view name;
  Member T::*member;
};

template <class T, class... Members>
class Columns {
 public:
  constexpr Columns(std::string_view from, std::tuple<Column<T, Members>...> columns)
      : from_(from), columns_(columns) {}

  // "SELECT <the names> FROM <from> ", for a WHERE clause to follow.
  std::string select() const {
    std::string out = "SELECT ";
    std::apply([&](const auto&... column) { ((out += column.name, out += ", "), ...); }, columns_);
    out.resize(out.size() - 2);
    return out.append(" FROM ").append(from_).append(" ");
  }

  T read(const SQLite::Statement& row) const {
    T out;
    std::apply([&](const auto&... column) { read_columns(row, (out.*column.member)...); }, columns_);
    return out;
  }
  auto reader() const {
    return [this](SQLite::Statement& row) { return read(row); };
  }

 private:
  std::string_view from_;
  std::tuple<Column<T, Members>...> columns_;
};

namespace row_detail {
template <class T>
constexpr std::tuple<> pair_up() {
  return {};
}
// `Owner`: T or a base of T (a row that extends a contract's snapshot).
template <class T, class Member, class Owner, class... Rest>
constexpr auto pair_up(std::string_view name, Member Owner::*member, Rest... rest) {
  static_assert(std::is_base_of_v<Owner, T>, "a member of another type");
  return std::tuple_cat(std::tuple<Column<T, Member>>{Column<T, Member>{name, member}}, pair_up<T>(rest...));
}
template <class T, class... Members>
constexpr Columns<T, Members...> make_columns(std::string_view from, std::tuple<Column<T, Members>...> columns) {
  return Columns<T, Members...>(from, columns);
}
}  // namespace row_detail

// columns<T>("table", "name", &T::member, ...): T's columns in `table`, in one order.
// `table` may carry an alias ("bookings b") that the names then use ("b.id").
template <class T, class... NamesAndMembers>
constexpr auto columns(std::string_view table, NamesAndMembers... names_and_members) {
  return row_detail::make_columns(table, row_detail::pair_up<T>(names_and_members...));
}

namespace row_detail {
inline void insert_lists(std::string&, std::string&) {}
template <class Value, class... Rest>
void insert_lists(std::string& names, std::string& marks, std::string_view name, const Value&, const Rest&... rest) {
  names.append(names.empty() ? "" : ", ").append(name);
  marks.append(marks.empty() ? "?" : ", ?");
  insert_lists(names, marks, rest...);
}
inline void bind_values(SQLite::Statement&, int) {}
template <class Value, class... Rest>
void bind_values(SQLite::Statement& statement, int index, std::string_view, const Value& value, const Rest&... rest) {
  bind_value(statement, index, value);
  bind_values(statement, index + 1, rest...);
}

// "INSERT INTO <table> (<names>) VALUES (?, ...)<tail>", bound, run: the rows it changed.
template <class... NamesAndValues>
int insert_with(Connection& connection, std::string_view table, std::string_view tail,
                const NamesAndValues&... names_and_values) {
  static_assert(sizeof...(NamesAndValues) % 2 == 0, "an insert takes name, value pairs");
  std::string names, marks;
  insert_lists(names, marks, names_and_values...);
  auto statement = connection.cached(std::string("INSERT INTO ").append(table) + " (" + names + ") VALUES (" + marks +
                                     ")" + std::string(tail));
  bind_values(*statement, 1, names_and_values...);
  return statement->exec();
}
}  // namespace row_detail

// INSERT INTO `table` of the columns listed name beside value — insert_row(connection,
// "items", "name", item.name, "note", item.note) — so the column list and the bind list
// are one list. The id of the row it inserted.
template <class... NamesAndValues>
std::int64_t insert_row(Connection& connection, std::string_view table, const NamesAndValues&... names_and_values) {
  row_detail::insert_with(connection, table, "", names_and_values...);
  return connection.sql().getLastInsertRowid();
}

// The same, unless a row with the same `unique` columns ("a, b") exists: then nothing.
template <class... NamesAndValues>
std::optional<std::int64_t> insert_new_row(Connection& connection, std::string_view table, std::string_view unique,
                                           const NamesAndValues&... names_and_values) {
  auto tail = " ON CONFLICT (" + std::string(unique) + ") DO NOTHING";
  if (row_detail::insert_with(connection, table, tail, names_and_values...) == 0) return std::nullopt;
  return connection.sql().getLastInsertRowid();
}

// One column of update_row's SET list. `set` always writes it; `set_if_changed` only when
// `after` differs from `before`, for indexed columns: SQLite rewrites an index's entry
// for every column named in SET whether its value changed or not, which is a page more
// in the commit per index (a citizen's phone change: its UPDATE wrote 6 pages naming all
// 16 columns and 3 naming the changed ones; the whole PATCH with its event, 7 and 4).
// Unindexed columns go with `set`: the row's own page is written anyway,
// and each conditional column doubles the statements a connection may keep prepared.
template <class T>
struct SetColumn {
  std::string_view name;
  const T& value;
  bool changed;
};
template <class T>
SetColumn<T> set(std::string_view name, const T& value) {
  return {name, value, true};
}
template <class T>
SetColumn<T> set_if_changed(std::string_view name, const T& before, const T& after) {
  return {name, after, !(before == after)};
}
inline bool operator==(Blob a, Blob b) { return a.bytes && b.bytes ? *a.bytes == *b.bytes : a.bytes == b.bytes; }

// UPDATE `table` SET <the columns to write> WHERE `where`, with the `where`'s one
// parameter bound to `key`: the rows it changed.
template <class Key, class... Values>
int update_row(Connection& connection, std::string_view table, std::string_view where, const Key& key,
               const SetColumn<Values>&... columns) {
  std::string sql = std::string("UPDATE ").append(table).append(" SET ");
  bool first = true;
  auto name = [&](const auto& column) {
    if (!column.changed) return;
    sql.append(first ? "" : ", ").append(column.name).append(" = ?");
    first = false;
  };
  (name(columns), ...);
  if (first) throw std::logic_error("update_row: no column of " + std::string(table) + " to write");
  auto statement = connection.cached(sql.append(" WHERE ").append(where));
  int index = 0;
  auto bind = [&](const auto& column) {
    if (column.changed) bind_value(*statement, ++index, column.value);
  };
  (bind(columns), ...);
  bind_value(*statement, ++index, key);
  return statement->exec();
}

// Each runs `sql` as the connection's cached statement with ?1..?N bound to `params`.

// The rows it changed.
template <class... Params>
int execute(Connection& connection, std::string_view sql, const Params&... params) {
  auto statement = connection.cached(sql);
  bind_params(*statement, params...);
  return statement->exec();
}

// The id of the row it inserted.
template <class... Params>
std::int64_t insert(Connection& connection, std::string_view sql, const Params&... params) {
  execute(connection, sql, params...);
  return connection.sql().getLastInsertRowid();
}

// Its first row as `read` makes it, or nothing.
template <class Read, class... Params>
auto first_row(Connection& connection, std::string_view sql, Read&& read, const Params&... params)
    -> std::optional<std::invoke_result_t<Read&, SQLite::Statement&>> {
  auto query = connection.cached(sql);
  bind_params(*query, params...);
  if (!query->executeStep()) return std::nullopt;
  return read(*query);
}

// Every row as `read` makes it.
template <class Read, class... Params>
auto all_rows(Connection& connection, std::string_view sql, Read&& read, const Params&... params)
    -> std::vector<std::invoke_result_t<Read&, SQLite::Statement&>> {
  auto query = connection.cached(sql);
  bind_params(*query, params...);
  std::vector<std::invoke_result_t<Read&, SQLite::Statement&>> out;
  while (query->executeStep()) out.push_back(read(*query));
  return out;
}

// The first column of its first row as an integer: a count(*) and the like.
template <class... Params>
std::int64_t single_int(Connection& connection, std::string_view sql, const Params&... params) {
  auto query = connection.cached(sql);
  bind_params(*query, params...);
  query->executeStep();
  return query->getColumn(0).getInt64();
}

// A WHERE clause of fixed fragments, one for each filter a request uses, with the values
// of its '?'s in order. Each combination is a statement of its own, so the planner picks
// the index that serves it ("?1 IS NULL OR col = ?1" keeps it from using any). Fragments
// are the store's literals, never built from input.
class Filter {
 public:
  using Value = std::variant<std::int64_t, std::string>;

  Filter& add(std::string_view fragment, std::initializer_list<Value> values = {}) {
    sql_ += sql_.empty() ? " WHERE " : " AND ";
    sql_ += fragment;
    values_.insert(values_.end(), values);
    return *this;
  }
  template <class T>
  Filter& add_if(const std::optional<T>& value, std::string_view fragment) {
    return value ? add(fragment, {Value(*value)}) : *this;
  }
  // " WHERE a AND b" (empty without filters), then `tail` (ORDER BY ... LIMIT ?).
  std::string sql(std::string_view head, std::string_view tail = {}) const {
    return std::string(head) + sql_ + " " + std::string(tail);
  }
  // Binds the filters' values from ?1; the next free index.
  int bind(SQLite::Statement& statement) const {
    int index = 1;
    for (const auto& value : values_) std::visit([&](const auto& v) { bind_value(statement, index++, v); }, value);
    return index;
  }

 private:
  std::string sql_;
  std::vector<Value> values_;
};

// The rows of `head` (SELECT ... FROM ...) under `filter`, in `order`, at most `limit`.
template <class Read>
auto filtered_rows(Connection& connection, std::string_view head, const Filter& filter, std::string_view order,
                   int limit, Read&& read) -> std::vector<std::invoke_result_t<Read&, SQLite::Statement&>> {
  auto query = connection.cached(filter.sql(head, std::string(order) + " LIMIT ?"));
  query->bind(filter.bind(*query), limit);
  std::vector<std::invoke_result_t<Read&, SQLite::Statement&>> out;
  while (query->executeStep()) out.push_back(read(*query));
  return out;
}

// How many rows of `from` (FROM ..., with its alias) `filter` keeps.
inline std::int64_t filtered_count(Connection& connection, std::string_view from, const Filter& filter) {
  auto query = connection.cached(filter.sql(std::string("SELECT count(*) ") + std::string(from)));
  filter.bind(*query);
  query->executeStep();
  return query->getColumn(0).getInt64();
}

// A list read in keyset pages (ModuleService::read_page) from one SELECT: the rows its
// filter keeps past a page's last row, in the list's fixed order, and how many it keeps in
// all. A store describes each of its lists with one, so reading a page and counting the
// list are written once.
template <class T>
struct KeysetList {
  std::string select;      // SELECT ... FROM ..., with the alias the fragments use
  std::string_view from;   // FROM ... with that alias, for the count
  Filter where = {};       // the caller's scope and the request's filters
  std::string_view past;   // keeps the rows after a page's last: "id < ?", "(starts_at, id) > (?, ?)"
  std::string_view order;  // the ORDER BY that `past` follows
  std::function<T(SQLite::Statement&)> read;
  // The sort key `past` compares before the id; empty when the list is ordered by id alone.
  std::function<std::string(const T&)> key_of = {};

  // Up to `limit` rows past `after` (none: from the first), in order.
  std::vector<T> rows(Connection& connection, const std::optional<PageAfter>& after, int limit) const {
    Filter page = where;
    if (after && key_of)
      page.add(past, {after->key, after->id});
    else if (after)
      page.add(past, {after->id});
    return filtered_rows(connection, select, page, order, limit, read);
  }
  std::int64_t count(Connection& connection) const { return filtered_count(connection, from, where); }
};

// Readers of a one-column row.
inline std::int64_t int_column(SQLite::Statement& row) { return row.getColumn(0).getInt64(); }
inline std::string text_column(SQLite::Statement& row) { return row.getColumn(0).getString(); }

}  // namespace townhall::db
