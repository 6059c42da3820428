// Business licenses: application, decision, fees and renewals, and the daily job that
// expires and lapses them.
#include <spdlog/spdlog.h>

#include "service_internal.hpp"
#include "townhall/platform/time.hpp"
#include "townhall/revenue/events.hpp"

namespace townhall::revenue {

namespace asio = boost::asio;

namespace {

// A change of `license` recorded and announced: its time, one more event version, `event`.
void save_license(db::Connection& service, store::BusinessLicense& license, std::string_view event,
                  const std::string& now, const std::string& correlation) {
  license.updated_at = now;
  license.event_version += 1;
  store::update_license(service, license);
  append(service, events::kLicenseTopic, event, "business_license", license.id, license.event_version,
         license_json(license), correlation);
}

// A license's invoices are keyed by their term: "<license id>.<term>" (the invoice's
// idempotency key; a paid invoice finds its license by the license's links, not by this).
Source license_source(std::int64_t license_id, std::int64_t term) {
  return {"revenue", "business_license", std::to_string(license_id) + "." + std::to_string(term)};
}

std::string days_after(std::chrono::system_clock::time_point from, int days) {
  return utc::format(from + std::chrono::hours(24) * days);
}

}  // namespace

Result<store::BusinessLicense> approve_license(db::Connection& service, store::BusinessLicense& license,
                                               std::chrono::system_clock::time_point now, const Settings& settings,
                                               const std::string& correlation) {
  auto invoice = open_invoice(
      service, license_source(license.id, 1), license.citizen_id, settings.license_fee_cents, settings.currency,
      "Business license fee: " + license.business_name + " (license " + std::to_string(license.id) + ")", correlation,
      {});
  if (!invoice) return make_error(Errc::conflict, "the fee of this license was invoiced already");
  license.status = "approved_unpaid";
  license.term = 0;
  license.expires_at.reset();
  license.fee_invoice_id = invoice->id;
  license.fee_due_at = days_after(now, settings.license_fee_due_days);
  save_license(service, license, events::kLicenseApproved, utc::format(now), correlation);
  return license;
}

void license_fee_paid(db::Connection& service, const store::Invoice& invoice, const Settings& settings,
                      const std::string& correlation) {
  auto license = store::find_license_of_invoice(service, invoice.id);
  if (!license) return;  // not a license's fee
  auto now = std::chrono::system_clock::now();
  std::string_view event;
  if (license->status == "approved_unpaid" && license->fee_invoice_id == invoice.id) {
    license->status = "active";
    license->term = 1;
    license->expires_at = days_after(now, settings.license_term_days);
    event = events::kLicenseActivated;
  } else if (license->renewal_invoice_id == invoice.id && license->status != "approved_unpaid") {
    auto base = now;
    if (license->expires_at)
      if (auto expiry = utc::parse(*license->expires_at); expiry && *expiry > base) base = *expiry;
    license->term += 1;
    license->expires_at = days_after(base, settings.license_term_days);
    license->status = "active";
    license->renewal_invoice_id.reset();
    event = events::kLicenseRenewed;
  } else {
    spdlog::warn("revenue: invoice {} paid for business license {}, which does not wait for it ({})", invoice.id,
                 license->id, license->status);
    return;
  }
  save_license(service, *license, event, utc::format(now), correlation);
}

asio::awaitable<Result<store::BusinessLicense>> RevenueService::apply_for_license(CallContext context,
                                                                                  NewLicense input) {
  const auto* principal = context.principal.get();
  if (!principal || !principal->is_citizen() || !principal->has("revenue:apply"))
    co_return forbidden("only citizens apply for business licenses");
  if (auto ok = usable(); !ok) co_return ok.error();
  co_return co_await writes_.run([&](db::Connection& service) -> Result<store::BusinessLicense> {
    store::BusinessLicense license;
    license.citizen_id = principal->id;
    license.business_name = input.business_name;
    license.activity = input.activity;
    license.address = input.address;
    license.status = "applied";
    license.created_at = license.updated_at = utc::now();
    store::insert_license(service, license);
    append(service, events::kLicenseTopic, events::kLicenseApplied, "business_license", license.id, 1,
           license_json(license), context.correlation_id);
    return license;
  });
}

Result<store::BusinessLicense> RevenueService::get_license(const CallContext& context, std::int64_t id) {
  auto scope = read_scope(context.principal.get());
  if (!scope) return scope.error();
  return read_one("business license", [&](db::Connection& reader) { return store::find_license(reader, id, *scope); });
}

Result<Listed<store::BusinessLicense>> RevenueService::list_licenses(const CallContext& context, input::Page page) {
  auto scope = read_scope(context.principal.get());
  if (!scope) return scope.error();
  return read_page(page, PagedQuery<store::BusinessLicense>{
                             "revenue.licenses", citizen_view(scope->citizen_id),
                             [&](db::Connection& reader, const std::optional<PageAfter>& after, int limit) {
                               return store::list_licenses(reader, *scope, after, limit);
                             },
                             [&](db::Connection& reader) { return store::count_licenses(reader, *scope); }});
}

asio::awaitable<Result<store::BusinessLicense>> RevenueService::decide_license(CallContext context, std::int64_t id,
                                                                               Decision decision,
                                                                               std::optional<std::string> reason) {
  if (auto current = get_license(context, id); !current) co_return current.error();
  const auto* principal = context.principal.get();
  if (!principal || !principal->has("revenue:manage")) co_return forbidden("needs permission revenue:manage");
  co_return co_await writes_.run([&](db::Connection& service) -> Result<store::BusinessLicense> {
    auto license = store::find_license(service, id, store::Scope::everything());
    if (!license) return make_error(Errc::not_found, "no such business license");
    if (license->status != "applied")
      return make_error(Errc::conflict, "business license " + std::to_string(id) + " is " + license->status +
                                            "; only applied licenses can be decided");
    auto now = std::chrono::system_clock::now();
    license->decided_by = principal->id;
    license->decision_reason = reason;
    if (decision == Decision::approve)
      return approve_license(service, *license, now, settings_, context.correlation_id);
    license->status = "rejected";
    save_license(service, *license, events::kLicenseRejected, utc::format(now), context.correlation_id);
    return *license;
  });
}

asio::awaitable<Result<store::BusinessLicense>> RevenueService::renew_license(CallContext context, std::int64_t id) {
  if (auto current = get_license(context, id); !current) co_return current.error();
  const auto* principal = context.principal.get();
  if (!principal || !(principal->has("revenue:manage") || (principal->is_citizen() && principal->has("revenue:apply"))))
    co_return forbidden("needs permission revenue:manage, or to be the license holder");
  co_return co_await writes_.run([&](db::Connection& service) -> Result<store::BusinessLicense> {
    auto license = store::find_license(service, id, store::Scope::everything());
    if (!license) return make_error(Errc::not_found, "no such business license");
    if (license->status != "active" && license->status != "expired")
      return make_error(Errc::conflict, "business license " + std::to_string(id) + " is " + license->status +
                                            "; only active or expired licenses can be renewed");
    // Renewing buys the next term: the current one must have been paid for.
    auto current_fee =
        store::find_invoice_by_source(service, "revenue", "business_license", license_source(id, license->term).id);
    if (license->term < 1 || !current_fee || current_fee->status != "paid")
      return make_error(Errc::conflict, "the fee of business license " + std::to_string(id) + "'s term " +
                                            std::to_string(license->term) + " is not paid; pay it before renewing");
    if (license->renewal_invoice_id)
      if (auto open = store::find_invoice(service, *license->renewal_invoice_id, store::Scope::everything());
          open && open->status == "open")
        return make_error(Errc::conflict, "renewal invoice " + std::to_string(open->id) + " is open; pay it");
    auto invoice = open_invoice(service, license_source(id, license->term + 1), license->citizen_id,
                                settings_.license_fee_cents, settings_.currency,
                                "Business license renewal: " + license->business_name + " (license " +
                                    std::to_string(id) + ", term " + std::to_string(license->term + 1) + ")",
                                context.correlation_id, {});
    if (!invoice) return make_error(Errc::conflict, "the renewal of this term was invoiced already");
    license->renewal_invoice_id = invoice->id;
    license->updated_at = utc::now();
    store::update_license(service, *license);
    return *license;
  });
}

asio::awaitable<Result<LicenseSweep>> RevenueService::expire_licenses(CallContext context) {
  if (!context.is_service() && (!context.principal || !context.principal->has("revenue:manage")))
    co_return forbidden("needs permission revenue:manage");
  if (auto ok = usable(); !ok) co_return ok.error();
  co_return co_await writes_.run([&](db::Connection& service) -> Result<LicenseSweep> {
    return close_due_licenses(service, context.correlation_id);
  });
}

LicenseSweep close_due_licenses(db::Connection& service, const std::string& correlation) {
  LicenseSweep sweep;
  auto now = utc::now();
  for (auto& license : store::expired_licenses(service, now, 10000)) {
    license.status = "expired";
    save_license(service, license, events::kLicenseExpired, now, correlation);
    ++sweep.expired;
  }
  for (auto& license : store::unpaid_past_due(service, now, 10000)) {
    auto invoice = store::find_invoice(service, *license.fee_invoice_id, store::Scope::everything());
    // A payment of the fee being charged right now decides: paid, the license is active;
    // failed, the next run lapses it.
    if (invoice && store::find_live_payment(service, invoice->id)) continue;
    if (invoice && invoice->status == "open") void_invoice(service, *invoice, now, correlation);
    license.status = "lapsed";
    save_license(service, license, events::kLicenseLapsed, now, correlation);
    ++sweep.lapsed;
  }
  if (sweep.expired > 0) spdlog::info("revenue: {} business license(s) expired", sweep.expired);
  if (sweep.lapsed > 0) spdlog::info("revenue: {} approved business license(s) lapsed unpaid", sweep.lapsed);
  return sweep;
}

asio::awaitable<void> RevenueService::expiry_loop() {
  return run_periodic(deps_.gate, *expiry_timer_, settings_.license_expiry_interval, "license expiry job", expiry_done_,
                      [this] { return expire_licenses(CallContext::as_service("revenue", "license-expiry")); });
}

}  // namespace townhall::revenue
