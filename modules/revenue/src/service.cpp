#include <sodium.h>
#include <spdlog/spdlog.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <future>

#include "service_internal.hpp"
#include "townhall/platform/time.hpp"
#include "townhall/revenue/events.hpp"

namespace townhall::revenue {

namespace asio = boost::asio;
using json = nlohmann::json;

Error forbidden(std::string message) { return make_error(Errc::forbidden, std::move(message)); }

Result<store::Scope> read_scope(const Principal* principal) {
  if (!principal) return store::Scope::everything();  // a module calling as itself
  if (principal->is_citizen()) return store::Scope{principal->id};
  if (principal->has("revenue:read")) return store::Scope::everything();
  return forbidden("needs permission revenue:read");
}

void append(db::Connection& service, std::string_view topic, std::string_view type, std::string_view aggregate,
            std::int64_t id, std::int64_t version, json snapshot, const std::string& correlation,
            const std::string& causation) {
  bus::append(service, bus::aggregate_event(topic, type, aggregate, id, version,
                                            events::event_data(std::move(snapshot)), correlation, causation));
}

RevenueService::RevenueService(Settings settings, ServiceDependencies dependencies, auth::Api& auth,
                               PaymentProvider& provider)
    : ModuleService(std::move(dependencies)), settings_(std::move(settings)), auth_(auth), provider_(provider) {
  if (sodium_init() < 0) throw std::runtime_error("libsodium failed to initialise");
}

RevenueService::~RevenueService() { stop(); }

void RevenueService::start() {
  writes_.open();
  // What a crash left between a charge and its outcome is settled before anyone pays.
  auto resolved = run_blocking(reconcile());
  if (resolved > 0) spdlog::info("revenue: {} payment(s) left unresolved by the last run settled", resolved);
  auto& io = deps_.writer.context();
  reconcile_timer_ = std::make_unique<asio::steady_timer>(io);
  expiry_timer_ = std::make_unique<asio::steady_timer>(io);
  overdue_timer_ = std::make_unique<asio::steady_timer>(io);
  reconcile_done_ = std::make_shared<Latch>();
  expiry_done_ = std::make_shared<Latch>();
  overdue_done_ = std::make_shared<Latch>();
  deps_.gate.open();
  asio::co_spawn(io, reconcile_loop(), asio::detached);
  asio::co_spawn(io, expiry_loop(), asio::detached);
  asio::co_spawn(io, overdue_loop(), asio::detached);
}

void RevenueService::stop() {
  if (deps_.gate.close()) {
    deps_.writer.post([this] {
      reconcile_timer_->cancel();
      expiry_timer_->cancel();
      overdue_timer_->cancel();
    });
    reconcile_done_->wait_blocking();
    expiry_done_->wait_blocking();
    overdue_done_->wait_blocking();
    deps_.writer.call([this] {
      reconcile_timer_.reset();
      expiry_timer_.reset();
      overdue_timer_.reset();
    });
  }
  writes_.close();  // also after a start that failed half way
}

void RevenueService::seed_demo() {
  auto citizens = run_blocking(
      auth_.citizens_since(CallContext::as_service("revenue", "demo-seed", std::chrono::seconds(30)), 0, 100));
  if (!citizens) throw std::runtime_error("revenue demo seed: auth answered: " + citizens.error().message);
  const auth::Citizen* maria = nullptr;
  for (const auto& citizen : citizens->citizens)
    if (citizen.email == "maria@demo.townhall") maria = &citizen;
  if (!maria) {
    spdlog::warn("revenue: no demo citizen maria@demo.townhall in auth; no revenue demo data");
    return;
  }
  auto seeded = writes_.call([&](db::Connection& service) -> Result<bool> {
    store::TaxRecord record{{0, maria->id, 2025, 32'500'000, 406'250, settings_.currency, utc::now()}, 0};
    if (!open_tax_record(service, record, "demo")) return false;  // seeded by an earlier start
    // Applied and approved as staff would: its fee invoice open, due in fee_due_days.
    auto now = std::chrono::system_clock::now();
    store::BusinessLicense license;
    license.citizen_id = maria->id;
    license.business_name = "Garcia Bakery";
    license.activity = "bakery and cafe";
    license.address = "12 Elm Street";
    license.status = "applied";
    license.created_at = license.updated_at = utc::format(now);
    store::insert_license(service, license);
    append(service, events::kLicenseTopic, events::kLicenseApplied, "business_license", license.id, 1,
           license_json(license), "demo-seed");
    if (auto approved = approve_license(service, license, now, settings_, "demo-seed"); !approved)
      return approved.error();
    return true;
  });
  if (!seeded) throw std::runtime_error("revenue demo seed failed: " + seeded.error().message);
  if (*seeded) spdlog::info("revenue: demo data seeded (a tax record, an approved license and its open fee invoice)");
}

}  // namespace townhall::revenue
