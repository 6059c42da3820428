// Opening a module's file and bringing it to the current schema: the one way to a
// module file, for the server and the offline tools alike.
#include <stdexcept>

#include "application_impl.hpp"
#include "townhall/migrations.hpp"
#include "townhall/platform/migrator.hpp"

namespace townhall::app {
namespace {

std::vector<db::Migration> migrations_of(std::string_view module) {
  auto files = migrations::embedded_migrations();
  auto all = db::migrations_for(files, "bus");
  auto own = db::migrations_for(files, module);
  all.insert(all.end(), own.begin(), own.end());
  return all;
}

}  // namespace

std::unique_ptr<db::ModuleDb> open_module_db(const config::Config& config, const config::Module& module,
                                             metrics::Registry* metrics) {
  // Every way to a module file passes here: new files owner-only, exposed ones refused.
  db::restrict_new_files();
  db::check_private(config.data_dir, config.data_dir / module.db_file);
  return std::make_unique<db::ModuleDb>(module.name, config.data_dir / module.db_file,
                                        factory_for(module.name).manifest(), config.database, metrics);
}

// Brings a module file to the current schema; throws on any failure.
std::vector<db::AppliedMigration> migrate(db::ModuleDb& database) {
  auto owner = database.open(db::Role::owner);
  db::Migrator migrator(*owner);
  auto migrations = migrations_of(database.module());
  auto applied = migrator.apply(migrations);
  auto undeclared = database.undeclared_tables(*owner);
  if (!undeclared.empty()) {
    std::string list;
    for (const auto& table : undeclared) list += (list.empty() ? "" : ", ") + table;
    throw std::runtime_error("module '" + database.module() + "': tables not declared in its manifest: " + list);
  }
  return applied;
}

}  // namespace townhall::app
