#pragma once

#include <memory>

#include "townhall/auth/api.hpp"
#include "townhall/platform/db.hpp"
#include "townhall/platform/module.hpp"
#include "townhall/platform/result.hpp"

namespace townhall::revenue {

// The tables revenue.db may hold (DESIGN.md §2); drives the connection-role authorizer.
db::TableManifest table_manifest();

// `auth` is the identity owner's Api (the citizen_refs bootstrap, national ids for tax
// records). The module is also a bus::Consumer (citizens, permit fees, bookings).
// Throws config::ConfigError on bad `modules.revenue.settings`.
std::unique_ptr<Module> make_module(ModuleContext& context, auth::Api& auth);

// Runs the daily license job in `database` now (for the CLI when no server runs): expires
// active licenses past their expiry and lapses approved ones whose fee is unpaid past its
// due date; how many it closed. The events wait in the outbox for the next start.
Result<std::int64_t> expire_lapsed_licenses(const db::ModuleDb& database);

// Runs the daily overdue job in `database` now (for the CLI when no server runs): marks
// open invoices whose due date has passed overdue; how many it marked. The events
// (invoice.overdue) wait in the outbox for the next start.
Result<std::int64_t> mark_invoices_overdue(const db::ModuleDb& database);

}  // namespace townhall::revenue
