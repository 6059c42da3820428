#pragma once

#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "townhall/platform/embedded.hpp"

namespace townhall::db {

class Connection;

struct Migration {
  std::string component;  // "bus" or a module name: the folder under migrations/
  int version = 0;        // NNNN from the file name
  std::string name;       // file name, e.g. 0001_init.sql
  std::string_view sql;
};

class MigrationError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Parses embedded files named "<component>/NNNN_description.sql" into migrations of
// `component`, sorted by version. Throws MigrationError on a malformed name or a
// duplicate version.
std::vector<Migration> migrations_for(std::span<const EmbeddedFile> files, std::string_view component);

// SHA-256 hex digest of a migration's text.
std::string checksum(std::string_view sql);

struct AppliedMigration {
  std::string component;
  int version = 0;
  std::string name;
};

// Applies migrations in order, each in its own transaction, recording them in
// schema_migrations with their checksum. Refuses (MigrationError) when an applied
// migration's checksum changed or its file is gone. Needs an owner connection.
class Migrator {
 public:
  explicit Migrator(Connection& owner);

  std::vector<AppliedMigration> apply(std::span<const Migration> migrations);
  // The migrations already recorded for a component.
  std::vector<AppliedMigration> applied(std::string_view component);

 private:
  void ensure_table();
  Connection& owner_;
};

}  // namespace townhall::db
