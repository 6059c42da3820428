// libFuzzer: an event envelope through the bus's strict decoding, then through a real
// consumer's handlers (permits' citizen and department caches, sync role) on a temp
// file, inside a transaction that is rolled back. An invalid envelope is an Error; a
// handler may refuse a payload with an exception the bus dead-letters (PermanentError,
// a JSON type error); nothing may crash, and the authorizer must never object.
#include <SQLiteCpp/Transaction.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "service.hpp"
#include "townhall/bus/event.hpp"
#include "townhall/migrations.hpp"
#include "townhall/permits/module.hpp"
#include "townhall/platform/db.hpp"
#include "townhall/platform/logging.hpp"
#include "townhall/platform/migrator.hpp"

namespace {
townhall::db::ModuleDb* g_database = nullptr;
std::unique_ptr<townhall::db::Connection> g_sync;
}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  using namespace townhall;
  logging::init(logging::Options{.level = "off", .access_log = logging::AccessLogFormat::off});
  char dir_template[] = "/tmp/townhall-fuzz-event-XXXXXX";
  if (!::mkdtemp(dir_template)) std::abort();
  g_database =
      new db::ModuleDb("permits", std::filesystem::path(dir_template) / "permits.db", permits::table_manifest());
  auto owner = g_database->open(db::Role::owner);
  db::Migrator migrator(*owner);
  auto files = migrations::embedded_migrations();
  auto all = db::migrations_for(files, "bus");
  auto own = db::migrations_for(files, "permits");
  all.insert(all.end(), own.begin(), own.end());
  migrator.apply(all);
  g_sync = g_database->open(db::Role::sync);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace townhall;
  auto event = bus::parse_event(std::string_view(reinterpret_cast<const char*>(data), size));
  if (!event) return 0;
  (void)bus::to_json(*event);
  SQLite::Transaction transaction(g_sync->sql());  // rolled back when it goes out of scope
  try {
    if (bus::topic_matches("gov.auth.citizen", event->topic))
      (void)permits::PermitsService::apply_citizen_event(*event, *g_sync);
    else if (bus::topic_matches("gov.auth.department", event->topic))
      (void)permits::PermitsService::apply_department_event(*event, *g_sync);
  } catch (const db::BoundaryViolation&) {
    std::abort();  // a handler touched what its role may not
  } catch (const std::exception&) {
    // refused: the bus retries, then dead-letters it
  }
  return 0;
}
