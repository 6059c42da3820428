#include "townhall/platform/migrator.hpp"

#include <SQLiteCpp/Transaction.h>
#include <sodium.h>

#include <algorithm>
#include <map>
#include <set>

#include "townhall/platform/db.hpp"
#include "townhall/platform/time.hpp"

namespace townhall::db {
namespace {

bool valid_file_name(std::string_view name) {
  // NNNN_description.sql, description in [a-z0-9_]
  if (name.size() < 10 || !name.ends_with(".sql")) return false;
  for (int i = 0; i < 4; ++i)
    if (name[i] < '0' || name[i] > '9') return false;
  if (name[4] != '_') return false;
  auto description = name.substr(5, name.size() - 9);
  if (description.empty()) return false;
  return std::all_of(description.begin(), description.end(),
                     [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'; });
}

}  // namespace

std::vector<Migration> migrations_for(std::span<const EmbeddedFile> files, std::string_view component) {
  std::vector<Migration> out;
  std::string prefix = std::string(component) + "/";
  for (const auto& file : files) {
    if (!file.path.starts_with(prefix)) continue;
    std::string_view name = file.path.substr(prefix.size());
    if (name.find('/') != std::string_view::npos) continue;
    if (!valid_file_name(name))
      throw MigrationError("migration file name '" + std::string(file.path) +
                           "' does not match NNNN_description.sql (lowercase, digits, underscores)");
    Migration migration;
    migration.component = std::string(component);
    migration.version = std::stoi(std::string(name.substr(0, 4)));
    migration.name = std::string(name);
    migration.sql = file.contents;
    out.push_back(std::move(migration));
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.version < b.version; });
  for (std::size_t i = 1; i < out.size(); ++i)
    if (out[i].version == out[i - 1].version)
      throw MigrationError("two migrations of '" + std::string(component) + "' share version " +
                           std::to_string(out[i].version) + ": " + out[i - 1].name + " and " + out[i].name);
  return out;
}

std::string checksum(std::string_view sql) {
  unsigned char digest[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(digest, reinterpret_cast<const unsigned char*>(sql.data()), sql.size());
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char byte : digest) {
    out += kHex[byte >> 4];
    out += kHex[byte & 0xf];
  }
  return out;
}

Migrator::Migrator(Connection& owner) : owner_(owner) {
  if (owner.role() != Role::owner) throw MigrationError("the migrator needs an owner connection");
}

void Migrator::ensure_table() {
  owner_.exec(
      "CREATE TABLE IF NOT EXISTS schema_migrations ("
      " component TEXT NOT NULL, version INTEGER NOT NULL, name TEXT NOT NULL,"
      " checksum TEXT NOT NULL, applied_at TEXT NOT NULL, PRIMARY KEY (component, version))");
}

std::vector<AppliedMigration> Migrator::applied(std::string_view component) {
  ensure_table();
  std::vector<AppliedMigration> out;
  auto query = owner_.prepare("SELECT version, name FROM schema_migrations WHERE component = ? ORDER BY version");
  query.bind(1, std::string(component));
  while (query.executeStep())
    out.push_back({std::string(component), query.getColumn(0).getInt(), query.getColumn(1).getString()});
  return out;
}

std::vector<AppliedMigration> Migrator::apply(std::span<const Migration> migrations) {
  ensure_table();
  const std::string& module = owner_.module();

  // Verify what is recorded before changing anything.
  std::set<std::string> components;
  for (const auto& m : migrations) components.insert(m.component);
  std::set<std::pair<std::string, int>> done;
  for (const auto& component : components) {
    auto query = owner_.prepare("SELECT version, name, checksum FROM schema_migrations WHERE component = ?");
    query.bind(1, component);
    while (query.executeStep()) {
      int version = query.getColumn(0).getInt();
      std::string name = query.getColumn(1).getString();
      std::string recorded = query.getColumn(2).getString();
      auto it = std::find_if(migrations.begin(), migrations.end(),
                             [&](const Migration& m) { return m.component == component && m.version == version; });
      if (it == migrations.end())
        throw MigrationError("module '" + module + "': migration " + component + "/" + name +
                             " was applied to this database but is missing from this build; refusing to start");
      if (checksum(it->sql) != recorded || it->name != name)
        throw MigrationError("module '" + module + "': migration " + component + "/" + name +
                             " changed after it was applied (checksum mismatch); refusing to start");
      done.emplace(component, version);
    }
  }

  std::vector<AppliedMigration> applied_now;
  for (const auto& migration : migrations) {
    if (done.count({migration.component, migration.version})) continue;
    SQLite::Transaction transaction(owner_.sql(), SQLite::TransactionBehavior::IMMEDIATE);
    try {
      owner_.exec(std::string(migration.sql));
    } catch (const std::exception& error) {
      throw MigrationError("module '" + module + "': migration " + migration.component + "/" + migration.name +
                           " failed: " + error.what());
    }
    auto record = owner_.prepare(
        "INSERT INTO schema_migrations (component, version, name, checksum, applied_at) VALUES (?, ?, ?, ?, ?)");
    record.bind(1, migration.component);
    record.bind(2, migration.version);
    record.bind(3, migration.name);
    record.bind(4, checksum(migration.sql));
    record.bind(5, utc::now());
    record.exec();
    transaction.commit();
    applied_now.push_back({migration.component, migration.version, migration.name});
  }
  return applied_now;
}

}  // namespace townhall::db
