#pragma once

// Positional row reading and parameter binding for the module stores. The SQL stays
// written out where it runs; these only replace the `x.a = row.getColumn(7).getInt64()`
// and `statement.bind(7, x.a)` ladders with one list of fields in the SQL's order,
// converted by each field's type, and check that the list is as long as the SQL's.

#include <SQLiteCpp/Column.h>
#include <SQLiteCpp/Statement.h>

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "townhall/platform/db.hpp"

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

// Readers of a one-column row.
inline std::int64_t int_column(SQLite::Statement& row) { return row.getColumn(0).getInt64(); }
inline std::string text_column(SQLite::Statement& row) { return row.getColumn(0).getString(); }

}  // namespace townhall::db
