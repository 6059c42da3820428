#pragma once

#include <functional>
#include <memory>
#include <nlohmann/json.hpp>

#include "settings.hpp"
#include "store.hpp"
#include "townhall/auth/api.hpp"
#include "townhall/bus/bus.hpp"
#include "townhall/platform/consistency.hpp"
#include "townhall/platform/db.hpp"
#include "townhall/platform/input.hpp"
#include "townhall/platform/service_kit.hpp"

namespace townhall::auth {
class CitizenRefTable;
}

namespace townhall::permits {

struct NewApplication {
  std::string permit_type;
  std::string description;
  std::string property_address;
  std::string department_code;
};

using ApplicationList = input::Listed<store::Application>;

// Permit types as data (issue 26.5).
struct NewPermitType {
  std::string permit_type;
  std::int64_t fee_cents = 0;
  std::string currency;
  bool inspection_required = false;
};
struct PermitTypeChange {  // absent: unchanged
  std::optional<std::int64_t> fee_cents;
  std::optional<std::string> currency;
  std::optional<bool> inspection_required;
  std::optional<bool> active;
};
using PermitTypeList = input::Listed<store::PermitTypeVersion>;
struct PermitTypeDetail {
  store::PermitTypeVersion current;
  std::optional<std::vector<store::PermitTypeVersion>> history;  // for those who manage types
};
// Who manages permit types and their fees (administrators hold it through "*").
inline constexpr const char* kManageTypes = "permits:types";

// One row of the applications report: a department's applications in one status.
struct ApplicationsReportRow {
  std::string department_code;
  std::string status;
  std::int64_t applications = 0;
  std::optional<double> median_hours_to_decision;  // decided statuses only
};
struct ApplicationsReport {
  std::vector<ApplicationsReportRow> rows;  // by department, then status
  std::int64_t applications = 0;
  std::int64_t decided = 0;
  std::optional<double> median_hours_to_decision;
};

enum class Decision { approve, reject };

// The permits module's behaviour, reachable without sockets: applications, decisions,
// inspections and permits, with the row-level rule applied through store::Scope, and
// the event handlers that keep citizen_refs and department_refs and follow payments.
class PermitsService : private ModuleService {
 public:
  PermitsService(Settings settings, ServiceDependencies dependencies, auth::Api& auth);

  // Opens the service connection on the writer and the gate; throws when it cannot.
  void start();
  void stop();
  const Settings& settings() const { return settings_; }

  boost::asio::awaitable<Result<store::Application>> submit(const CallContext& context, NewApplication input);
  Result<store::Application> get_application(const CallContext& context, std::int64_t id);
  Result<ApplicationList> list_applications(const CallContext& context, store::ApplicationFilter filter,
                                            input::Page page);
  boost::asio::awaitable<Result<store::Application>> decide(const CallContext& context, std::int64_t id,
                                                            Decision decision, std::optional<std::string> reason);
  // An application's inspections, to whoever may read the application (its citizen, its
  // department's staff); not_found otherwise.
  Result<input::Listed<store::Inspection>> list_inspections(const CallContext& context, std::int64_t application_id,
                                                            input::Page page);
  boost::asio::awaitable<Result<store::Inspection>> schedule_inspection(const CallContext& context,
                                                                        std::int64_t application_id,
                                                                        std::string scheduled_for);
  boost::asio::awaitable<Result<store::Inspection>> record_inspection(const CallContext& context, std::int64_t id,
                                                                      bool passed, std::optional<std::string> notes);
  Result<store::Permit> get_permit(const CallContext& context, std::int64_t id);
  boost::asio::awaitable<Result<store::Permit>> revoke_permit(const CallContext& context, std::int64_t id,
                                                              std::string reason);

  // Permit types: the current ones (active only unless `all`, which needs kManageTypes),
  // one with its versions, and an administrator's new type or change (a new version).
  Result<PermitTypeList> list_permit_types(const CallContext& context, bool all, input::Page page);
  Result<PermitTypeDetail> get_permit_type(const CallContext& context, const std::string& permit_type);
  boost::asio::awaitable<Result<store::PermitTypeVersion>> create_permit_type(const CallContext& context,
                                                                              NewPermitType input);
  boost::asio::awaitable<Result<store::PermitTypeVersion>> change_permit_type(const CallContext& context,
                                                                              const std::string& permit_type,
                                                                              PermitTypeChange change);

  // Applications submitted in [start, end) by department and status, with the median
  // time to decision: staff of a department see theirs (`department_code` must be it or
  // absent), administrators any; citizens are refused.
  Result<ApplicationsReport> applications_report(const CallContext& context, const std::string& start,
                                                 const std::string& end, std::optional<std::string> department_code);

  // The subscriptions app/ registers with the bus.
  std::vector<bus::Subscription> subscriptions();

  // Event handlers (on the writer thread, inside the bus's transaction).
  // citizen_refs: the fields this module keeps of auth's citizens (auth/citizen_refs.hpp).
  static const auth::CitizenRefTable& citizen_table();
  static bus::Outcome apply_citizen_event(const bus::Event& event, db::Connection& sync);
  static bus::Outcome apply_department_event(const bus::Event& event, db::Connection& sync);
  bus::Outcome apply_payment_event(const bus::Event& event, db::Connection& service);
  // citizen_refs for the consistency check (platform/consistency.hpp).
  std::vector<consistency::Cache> caches();
  std::vector<consistency::KeyedCache> keyed_caches();
  // department_refs filled from auth's Api, version-checked (bus::Bootstrap).
  void bootstrap_departments(db::Connection& sync);

 private:
  // The applicant's identity, fresh from auth, or from a recent cache row when auth
  // cannot answer; unavailable when neither.
  boost::asio::awaitable<Result<Unit>> check_identity(const CallContext& context, std::int64_t citizen_id);

  // First start: version 1 of each type in the registry, when permits has none yet.
  void seed_permit_types();

  Settings settings_;
  auth::Api& auth_;
};

// The permit as events and responses show it.
nlohmann::json permit_json(const store::Permit& permit);

// Which applications a principal sees (the seeds' row-level rule); forbidden for staff
// with no permits permission or no department.
Result<store::Scope> scope_for(const Principal* principal);

}  // namespace townhall::permits
