#pragma once

#include <spdlog/spdlog.h>

#include <string>
#include <utility>

#include "townhall/auth/api.hpp"
#include "townhall/auth/bootstrap.hpp"
#include "townhall/auth/events.hpp"
#include "townhall/bus/bus.hpp"
#include "townhall/platform/db.hpp"
#include "townhall/platform/time.hpp"

// A module's cache of auth's citizens, described once: the table `citizen_refs`
// (citizen_id, one column per kept CitizenField named by column_name, event_version,
// last_synced_at) and the fields it keeps. From that description come the event
// subscription, its bootstrap from auth's Api, the version-checked upsert both use, and
// the consistency check's source — the same in every module that keeps the cache. The
// module reads the table with its own queries. Include it in .cpp files only.
namespace townhall::auth {

// The table and the fields it keeps: what a module's handler and tests need.
class CitizenRefTable {
 public:
  explicit CitizenRefTable(CitizenFields fields) : fields_(std::move(fields)), upsert_sql_(upsert_sql(fields_)) {}

  const CitizenFields& fields() const { return fields_; }

  // Stores `citizen` unless the cache holds this version or a newer one (then false). A
  // closed account keeps its name and flags, not its contact data.
  bool upsert(db::Connection& sync, const Citizen& citizen) const {
    auto statement = sync.cached(upsert_sql_);
    int index = 1;
    statement->bind(index++, citizen.id);
    auto contact = [&](const auto& value) {
      if (citizen.is_active)
        db::bind_optional(*statement, index, std::optional<std::string>(value));
      else
        statement->bind(index);
      ++index;
    };
    for (auto field : fields_) {
      switch (field) {
        case CitizenField::name: statement->bind(index++, citizen.name); break;
        case CitizenField::email: contact(citizen.email); break;
        case CitizenField::phone: contact(citizen.phone); break;
        case CitizenField::address: contact(citizen.address); break;
        case CitizenField::city: contact(citizen.city); break;
        case CitizenField::postal_code: contact(citizen.postal_code); break;
        case CitizenField::email_verified: statement->bind(index++, citizen.email_verified ? 1 : 0); break;
        case CitizenField::identity_verified: statement->bind(index++, citizen.identity_verified ? 1 : 0); break;
        case CitizenField::is_active: statement->bind(index++, citizen.is_active ? 1 : 0); break;
      }
    }
    statement->bind(index++, citizen.event_version);
    statement->bind(index, utc::now());
    return statement->exec() > 0;
  }

  // One of auth's citizen events (decoded strictly by auth's contract) into the cache.
  bus::Outcome apply(const bus::Event& event, db::Connection& sync) const {
    return upsert(sync, events::citizen_of(event)) ? bus::Outcome::applied : bus::Outcome::stale;
  }

 private:
  static std::string upsert_sql(const CitizenFields& fields) {
    std::string columns = "citizen_id", values = "?", updates;
    for (auto field : fields) {
      auto column = std::string(column_name(field));
      columns += ", " + column;
      values += ", ?";
      updates += column + " = excluded." + column + ", ";
    }
    return "INSERT INTO citizen_refs (" + columns + ", event_version, last_synced_at) VALUES (" + values +
           ", ?, ?) ON CONFLICT (citizen_id) DO UPDATE SET " + updates +
           "event_version = excluded.event_version, last_synced_at = excluded.last_synced_at "
           "WHERE excluded.event_version > citizen_refs.event_version";
  }

  CitizenFields fields_;
  std::string upsert_sql_;
};

// `module`'s citizen_refs kept from auth: the subscription (auth's citizen events, with a
// bootstrap from auth's Api when auth pruned events it never read) and the consistency
// check's view of it, both writing through the table's one upsert.
class CitizenRefs {
 public:
  static constexpr const char* kSubscription = "citizen_refs";

  CitizenRefs(Api& auth, std::string module, CitizenRefTable table)
      : auth_(&auth), module_(std::move(module)), table_(std::move(table)) {}

  bus::Subscription subscription() const {
    return {kSubscription,
            {std::string(events::kCitizenTopic)},
            db::Role::sync,
            [table = table_](const bus::Event& event, db::Connection& sync) { return table.apply(event, sync); },
            [refs = *this](db::Connection& sync) {
              auto count = for_each_citizen(*refs.auth_, refs.module_,
                                            [&](const Citizen& citizen) { refs.table_.upsert(sync, citizen); });
              spdlog::info("{}: citizen_refs bootstrapped from auth ({} citizens)", refs.module_, count);
            },
            /*versioned=*/true};  // the upsert keeps the newest event_version
  }

  // The cache as the consistency check compares it with auth (by content of the fields).
  consistency::Cache cache() const {
    return citizen_cache(
        *auth_, module_, table_.fields(),
        [table = table_](db::Connection& sync, const Citizen& citizen) { table.upsert(sync, citizen); });
  }

 private:
  Api* auth_;
  std::string module_;
  CitizenRefTable table_;
};

}  // namespace townhall::auth
