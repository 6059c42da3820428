#include "service.hpp"

#include <spdlog/spdlog.h>

#include <charconv>
#include <nlohmann/json.hpp>

#include "townhall/auth/citizen_refs.hpp"
#include "townhall/auth/events.hpp"
#include "townhall/permits/events.hpp"
#include "townhall/platform/coro.hpp"
#include "townhall/platform/json.hpp"
#include "townhall/platform/time.hpp"
#include "townhall/revenue/events.hpp"

namespace townhall::permits {
namespace {

using json = nlohmann::json;

void append(db::Connection& service, std::string_view topic, std::string_view type, std::string_view aggregate_type,
            std::int64_t id, std::int64_t version, json data, const CallContext& context) {
  bus::append(service,
              bus::aggregate_event(topic, type, aggregate_type, id, version, std::move(data), context.correlation_id));
}

// Whose view of a list a scope is: what its cursors are sealed for.
std::string owner_of(const store::Scope& scope) {
  if (scope.citizen_id) return "citizen " + std::to_string(*scope.citizen_id);
  if (scope.department_code) return "department " + *scope.department_code;
  return "all";
}

}  // namespace

json permit_json(const store::Permit& p) { return events::permit_json(p); }

Result<store::Scope> scope_for(const Principal* principal) {
  if (!principal) return store::Scope::everything();
  if (principal->is_citizen()) return store::Scope{principal->id, std::nullopt};
  if (principal->has("*")) return store::Scope::everything();
  if (!principal->has("permits:review") && !principal->has("permits:inspect"))
    return make_error(Errc::forbidden, "needs permission permits:review or permits:inspect");
  if (principal->department.empty())
    return make_error(Errc::forbidden, "permits staff must belong to a department to see applications");
  return store::Scope{std::nullopt, principal->department};
}

PermitsService::PermitsService(Settings settings, ServiceDependencies dependencies, auth::Api& auth)
    : ModuleService(std::move(dependencies)), settings_(std::move(settings)), auth_(auth) {}

void PermitsService::start() {
  writes_.open();
  seed_permit_types();
  deps_.gate.open();
}

void PermitsService::stop() {
  deps_.gate.close();
  writes_.close();
}

boost::asio::awaitable<Result<store::Application>> PermitsService::submit(const CallContext& context,
                                                                          NewApplication input) {
  const auto* principal = context.principal.get();
  if (!principal || !principal->is_citizen() || !principal->has("permits:apply"))
    co_return make_error(Errc::forbidden, "only citizens submit permit applications");
  if (auto ok = usable(); !ok) co_return ok.error();
  auto checked = deps_.readers.read([&](db::Connection& reader) -> Result<store::PermitTypeVersion> {
    auto type = store::find_permit_type(reader, input.permit_type);
    if (!type || !type->active) {
      std::string known;
      for (const auto& t : store::list_permit_types(reader, false, std::nullopt, 50))
        known += (known.empty() ? "" : ", ") + t.permit_type;
      return make_error(Errc::unprocessable, "unknown permit_type '" + input.permit_type + "'; known types: " + known);
    }
    auto department = store::find_department_ref(reader, input.department_code);
    if (!department) return make_error(Errc::unprocessable, "unknown department_code '" + input.department_code + "'");
    if (!department->is_active)
      return make_error(Errc::unprocessable,
                        "department '" + input.department_code + "' is inactive and takes no new applications");
    return *type;
  });
  if (!checked) co_return checked.error();
  const auto& type = *checked;
  auto written = co_await writes_.run([&](db::Connection& service) -> Result<store::Application> {
    store::Application a;
    a.citizen_id = principal->id;
    a.permit_type = input.permit_type;
    a.description = input.description;
    a.property_address = input.property_address;
    a.department_code = input.department_code;
    a.fee_cents = type.fee_cents;  // the application keeps the fee it was submitted with
    a.currency = type.currency;
    a.permit_type_version = type.version;
    a.status = a.fee_cents > 0 ? "fee_due" : "under_review";
    a.submitted_at = a.updated_at = utc::now();
    store::insert_application(service, a);
    append(service, events::kApplicationTopic, events::kApplicationSubmitted, "application", a.id, 1,
           events::application_data(a), context);
    return *store::find_application(service, a.id, store::Scope::everything());
  });
  if (written) {
    spdlog::info("permits: application {} submitted by citizen {} ({})", written->id, principal->id, written->status);
  }
  co_return written;
}

Result<store::Application> PermitsService::get_application(const CallContext& context, std::int64_t id) {
  auto scope = scope_for(context.principal.get());
  if (!scope) return scope.error();
  return read_one("application", [&](db::Connection& reader) { return store::find_application(reader, id, *scope); });
}

Result<ApplicationList> PermitsService::list_applications(const CallContext& context, store::ApplicationFilter filter,
                                                          input::Page page) {
  auto scope = scope_for(context.principal.get());
  if (!scope) return scope.error();
  return read_page(page, "permits.applications", owner_of(*scope), store::applications(*scope, filter));
}

boost::asio::awaitable<Result<Unit>> PermitsService::check_identity(const CallContext& context,
                                                                    std::int64_t citizen_id) {
  // The module asks as itself, in the request's correlation.
  auto fresh = co_await auth_.get_citizen(
      CallContext::as_service("permits", context.correlation_id, std::chrono::seconds(2)), citizen_id);
  bool active = false, verified = false;
  if (fresh) {
    active = fresh->is_active;
    verified = fresh->identity_verified;
  } else if (fresh.error().code == Errc::not_found) {
    co_return make_error(Errc::unprocessable, "the applicant's account no longer exists");
  } else if (fresh.error().code != Errc::unavailable && fresh.error().code != Errc::deadline_exceeded) {
    // Only an auth that cannot answer justifies the cache; any other refusal is a fault.
    spdlog::error("permits: identity check of citizen {} refused by auth: {}", citizen_id, fresh.error().message);
    co_return make_error(Errc::internal, "the identity check failed; see the log");
  } else {
    // Auth cannot answer: a recent cache row will do (the seeds' hybrid strategy).
    auto read = deps_.readers.read([&](db::Connection& reader) -> Result<std::optional<store::CitizenRef>> {
      return store::find_citizen_ref(reader, citizen_id);
    });
    if (!read) co_return read.error();
    auto& cached = *read;
    auto max_age = settings_.identity_fallback_max_age;
    auto synced = cached ? utc::parse(cached->last_synced_at)
                         : Result<std::chrono::system_clock::time_point>(make_error(Errc::not_found, "no row"));
    if (!cached || !synced || std::chrono::system_clock::now() - *synced > max_age) {
      spdlog::warn("permits: identity check of citizen {} impossible: auth {} and no cache row fresher than {} s",
                   citizen_id, to_string(fresh.error().code), max_age.count());
      co_return make_error(Errc::unavailable,
                           "cannot confirm the applicant's identity: the auth module is unavailable and the cached "
                           "copy is older than " +
                               std::to_string(max_age.count()) + " s; try again later",
                           30);
    }
    spdlog::info("permits: auth unavailable; identity of citizen {} from the cache (synced {})", citizen_id,
                 cached->last_synced_at);
    active = cached->is_active;
    verified = cached->identity_verified;
  }
  if (!active) co_return make_error(Errc::unprocessable, "the applicant's account is closed");
  if (!verified) co_return make_error(Errc::unprocessable, "the applicant's identity is not verified");
  co_return Unit{};
}

boost::asio::awaitable<Result<store::Application>> PermitsService::decide(const CallContext& context, std::int64_t id,
                                                                          Decision decision,
                                                                          std::optional<std::string> reason) {
  auto current = get_application(context, id);
  if (!current) co_return current.error();
  const auto* principal = context.principal.get();
  if (!principal || !principal->has("permits:review"))
    co_return make_error(Errc::forbidden, "needs permission permits:review");
  auto check_state = [&](const store::Application& a) -> Result<Unit> {
    bool allowed = decision == Decision::approve ? a.status == "under_review"
                                                 : a.status == "under_review" || a.status == "fee_due";
    if (!allowed)
      return make_error(Errc::conflict, "application " + std::to_string(a.id) + " is " + a.status + "; only " +
                                            (decision == Decision::approve ? "applications under_review"
                                                                           : "applications fee_due or under_review") +
                                            " can be " + (decision == Decision::approve ? "approved" : "rejected"));
    return Unit{};
  };
  if (auto ok = check_state(*current); !ok) co_return ok.error();
  // Whether it needs an inspection is what its type said when it was submitted.
  auto type = deps_.readers.read([&](db::Connection& reader) -> Result<std::optional<store::PermitTypeVersion>> {
    return store::find_permit_type(reader, current->permit_type, current->permit_type_version.value_or(1));
  });
  if (!type) co_return type.error();
  const bool inspection_required = *type && (*type)->inspection_required;
  if (decision == Decision::approve) {
    if (auto identity = co_await check_identity(context, current->citizen_id); !identity) co_return identity.error();
  }

  auto written = co_await writes_.run([&](db::Connection& service) -> Result<store::Application> {
    auto a = store::find_application(service, id, store::Scope::everything());
    if (!a) return make_error(Errc::not_found, "no such application");
    if (auto ok = check_state(*a); !ok) return ok.error();  // it may have moved meanwhile
    if (decision == Decision::approve && inspection_required && !store::has_passed_inspection(service, id))
      return make_error(Errc::conflict, "application " + std::to_string(id) + " needs a passed inspection before " +
                                            "approval (permit type " + a->permit_type + ")");
    auto now = utc::now();
    a->status = decision == Decision::approve ? "approved" : "rejected";
    a->decision_reason = reason;
    a->decided_by = principal->id;
    a->decided_at = now;
    a->updated_at = now;
    a->event_version += 1;
    store::update_application(service, *a);
    append(service, events::kApplicationTopic,
           decision == Decision::approve ? events::kApplicationApproved : events::kApplicationRejected, "application",
           a->id, a->event_version, events::application_data(*a), context);
    if (decision == Decision::approve) {
      store::Permit permit{
          {0, a->id, a->citizen_id, a->permit_type, a->department_code, "active", now, {}, {}}, 1, principal->id, {}};
      store::insert_permit(service, permit);
      append(service, events::kPermitTopic, events::kPermitIssued, "permit", permit.id, 1, events::permit_data(permit),
             context);
    }
    return *store::find_application(service, id, store::Scope::everything());
  });
  if (written) {
    spdlog::info("permits: application {} {} by employee {}", id, written->status, principal->id);
  }
  co_return written;
}

Result<input::Listed<store::Inspection>> PermitsService::list_inspections(const CallContext& context,
                                                                          std::int64_t application_id,
                                                                          input::Page page) {
  auto application = get_application(context, application_id);
  if (!application) return application.error();
  return read_page(page, PagedQuery<store::Inspection>{
                             "permits.inspections", "application " + std::to_string(application_id),
                             [&](db::Connection& reader, const std::optional<PageAfter>& after, int limit) {
                               return store::list_inspections(reader, application_id, after, limit);
                             },
                             [&](db::Connection& reader) { return store::count_inspections(reader, application_id); }});
}

boost::asio::awaitable<Result<store::Inspection>> PermitsService::schedule_inspection(const CallContext& context,
                                                                                      std::int64_t application_id,
                                                                                      std::string scheduled_for) {
  auto application = get_application(context, application_id);
  if (!application) co_return make_error(Errc::unprocessable, "no such application " + std::to_string(application_id));
  const auto* principal = context.principal.get();
  if (!principal || !principal->has("permits:inspect"))
    co_return make_error(Errc::forbidden, "needs permission permits:inspect");
  // An inspection is booked ahead, within two years.
  auto when =
      input::parse_time("scheduled_for", scheduled_for, {.not_past = true, .max_ahead = std::chrono::hours(24 * 731)});
  if (!when) co_return when.error();
  auto written = co_await writes_.run([&](db::Connection& service) -> Result<store::Inspection> {
    auto a = store::find_application(service, application_id, store::Scope::everything());
    if (!a || (a->status != "fee_due" && a->status != "under_review"))
      return make_error(Errc::conflict, "application " + std::to_string(application_id) + " is " +
                                            (a ? a->status : "gone") + "; inspections are for open applications");
    store::Inspection inspection;
    inspection.application_id = application_id;
    inspection.scheduled_for = utc::format(*when);
    inspection.status = "scheduled";
    inspection.scheduled_by = principal->id;
    inspection.created_at = utc::now();
    store::insert_inspection(service, inspection);
    return inspection;
  });
  co_return written;
}

boost::asio::awaitable<Result<store::Inspection>> PermitsService::record_inspection(const CallContext& context,
                                                                                    std::int64_t id, bool passed,
                                                                                    std::optional<std::string> notes) {
  if (auto ok = usable(); !ok) co_return ok.error();
  auto inspection = deps_.readers.read([&](db::Connection& reader) -> Result<store::Inspection> {
    auto found = store::find_inspection(reader, id);
    if (!found) return make_error(Errc::not_found, "no such inspection");
    return *found;
  });
  if (!inspection) co_return inspection.error();
  if (auto application = get_application(context, inspection->application_id); !application)
    co_return application.error().code == Errc::not_found ? make_error(Errc::not_found, "no such inspection")
                                                          : application.error();
  const auto* principal = context.principal.get();
  if (!principal || !principal->has("permits:inspect"))
    co_return make_error(Errc::forbidden, "needs permission permits:inspect");
  auto written = co_await writes_.run([&](db::Connection& service) -> Result<store::Inspection> {
    auto current = store::find_inspection(service, id);
    if (!current) return make_error(Errc::not_found, "no such inspection");
    if (current->status != "scheduled")
      return make_error(Errc::conflict, "inspection " + std::to_string(id) + " is already " + current->status);
    current->status = passed ? "passed" : "failed";
    current->notes = notes;
    current->recorded_by = principal->id;
    current->recorded_at = utc::now();
    store::update_inspection(service, *current);
    return *current;
  });
  co_return written;
}

Result<store::Permit> PermitsService::get_permit(const CallContext& context, std::int64_t id) {
  auto scope = scope_for(context.principal.get());
  if (!scope) return scope.error();
  return read_one("permit", [&](db::Connection& reader) { return store::find_permit(reader, id, *scope); });
}

boost::asio::awaitable<Result<store::Permit>> PermitsService::revoke_permit(const CallContext& context, std::int64_t id,
                                                                            std::string reason) {
  auto current = get_permit(context, id);
  if (!current) co_return current.error();
  const auto* principal = context.principal.get();
  if (!principal || !principal->has("permits:review"))
    co_return make_error(Errc::forbidden, "needs permission permits:review");
  auto written = co_await writes_.run([&](db::Connection& service) -> Result<store::Permit> {
    auto permit = store::find_permit(service, id, store::Scope::everything());
    if (!permit) return make_error(Errc::not_found, "no such permit");
    if (permit->status != "active")
      return make_error(Errc::conflict, "permit " + std::to_string(id) + " is already " + permit->status);
    permit->status = "revoked";
    permit->revoked_at = utc::now();
    permit->revoked_by = principal->id;
    permit->revoke_reason = reason;
    permit->event_version += 1;
    store::update_permit(service, *permit);
    append(service, events::kPermitTopic, events::kPermitRevoked, "permit", permit->id, permit->event_version,
           events::permit_data(*permit), context);
    return *permit;
  });
  if (written) {
    spdlog::info("permits: permit {} revoked by employee {}", id, principal->id);
  }
  co_return written;
}

// --- events ----------------------------------------------------------------------------

std::vector<bus::Subscription> PermitsService::subscriptions() {
  return {
      auth::CitizenRefs(auth_, "permits", citizen_table()).subscription(),
      {"department_refs",
       {std::string(auth::events::kDepartmentTopic)},
       db::Role::sync,
       &PermitsService::apply_department_event,
       [this](db::Connection& sync) { bootstrap_departments(sync); },
       /*versioned=*/true},  // store::upsert_department_ref keeps the newest event_version
      {"payments",
       {std::string(revenue::events::kPaymentTopic)},
       db::Role::service,
       [this](const bus::Event& event, db::Connection& service) { return apply_payment_event(event, service); }},
  };
}

namespace {

// A bootstrap's Api call, on the consumer's writer thread (see bus::Bootstrap).
CallContext bootstrap_call(const char* what) {
  return CallContext::as_service("permits", std::string("bootstrap:") + what, std::chrono::seconds(30));
}

}  // namespace

// The columns citizen_refs keeps, compared by content with what auth holds; a closed
// account keeps a name for old applications and no contact data.
const auth::CitizenRefTable& PermitsService::citizen_table() {
  using auth::CitizenField;
  static const auth::CitizenRefTable table({CitizenField::name, CitizenField::email, CitizenField::phone,
                                            CitizenField::address, CitizenField::city, CitizenField::postal_code,
                                            CitizenField::email_verified, CitizenField::identity_verified,
                                            CitizenField::is_active});
  return table;
}

bus::Outcome PermitsService::apply_citizen_event(const bus::Event& event, db::Connection& sync) {
  return citizen_table().apply(event, sync);
}

std::vector<consistency::Cache> PermitsService::caches() {
  return {auth::CitizenRefs(auth_, "permits", citizen_table()).cache()};
}

namespace {

// department_refs' source for the consistency check: every department from auth's Api
// (a few dozen), each with the upsert that stores it.
class DepartmentCacheSource final : public consistency::KeyedSource {
 public:
  explicit DepartmentCacheSource(auth::Api& auth) : auth_(auth) {}

  boost::asio::awaitable<Result<std::vector<consistency::KeyedRecord>>> records() override {
    auto departments = co_await auth_.departments(
        CallContext::as_service("permits", "consistency:department_refs", std::chrono::seconds(30)));
    if (!departments) co_return departments.error();
    std::vector<consistency::KeyedRecord> out;
    for (const auto& d : *departments)
      out.push_back({d.code, d.event_version,
                     [d](db::Connection& sync, bool force) {
                       if (force) {  // the cache is ahead of auth (restored), or damaged
                         auto erase = sync.prepare("DELETE FROM department_refs WHERE code = ?");
                         erase.bind(1, d.code);
                         erase.exec();
                       }
                       store::upsert_department_ref(sync, {d.code, d.name, d.event_version, utc::now(), d.is_active});
                     },
                     consistency::ContentHash().text(d.name).integer(d.is_active ? 1 : 0).value()});
    co_return out;
  }

 private:
  auth::Api& auth_;
};

}  // namespace

std::vector<consistency::KeyedCache> PermitsService::keyed_caches() {
  return {{"permits",
           "department_refs",
           "code",
           "auth",
           std::make_shared<DepartmentCacheSource>(auth_),
           {"name", "is_active"}}};
}

void PermitsService::bootstrap_departments(db::Connection& sync) {
  auto departments = run_blocking(auth_.departments(bootstrap_call("department_refs")));
  if (!departments)
    throw std::runtime_error("department_refs bootstrap: auth answered: " + departments.error().message);
  for (const auto& d : *departments)
    store::upsert_department_ref(sync, {d.code, d.name, d.event_version, utc::now(), d.is_active});
  spdlog::info("permits: department_refs bootstrapped from auth ({} departments)", departments->size());
}

bus::Outcome PermitsService::apply_department_event(const bus::Event& event, db::Connection& sync) {
  auto department = auth::events::department_of(event);
  store::DepartmentRef ref{department.code, department.name, department.event_version, utc::now(),
                           department.is_active};
  return store::upsert_department_ref(sync, ref) ? bus::Outcome::applied : bus::Outcome::stale;
}

// payment.completed for an invoice this module asked for moves the application from
// fee_due to under_review. Anything else on the topic is not for permits.
bus::Outcome PermitsService::apply_payment_event(const bus::Event& event, db::Connection& service) {
  if (event.event_type != revenue::events::kPaymentCompleted) return bus::Outcome::applied;
  auto payment = revenue::events::payment_of(event);
  if (!payment.pays_for("permits", "application")) return bus::Outcome::applied;
  std::int64_t id = 0;
  const auto& source_id = payment.source_id;
  auto [end, ec] = std::from_chars(source_id.data(), source_id.data() + source_id.size(), id);
  if (ec != std::errc() || end != source_id.data() + source_id.size())
    throw bus::PermanentError("payment.completed names application '" + source_id + "', not an id");
  auto application = store::find_application(service, id, store::Scope::everything());
  // Retrying cannot make it exist (a permits.db restored from before it, or a forged event).
  if (!application) throw bus::PermanentError("payment.completed for unknown application " + source_id);
  if (application->status != "fee_due") return bus::Outcome::stale;  // already moved on (duplicate)
  application->status = "under_review";
  application->invoice_id = std::to_string(payment.invoice_id);
  application->updated_at = utc::now();
  store::update_application(service, *application);
  spdlog::info("permits: fee of application {} paid; under review", id);
  return bus::Outcome::applied;
}

}  // namespace townhall::permits
