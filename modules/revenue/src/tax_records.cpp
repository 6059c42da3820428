#include "service_internal.hpp"
#include "townhall/platform/time.hpp"

namespace townhall::revenue {

namespace asio = boost::asio;

bool open_tax_record(db::Connection& service, store::TaxRecord& record, const std::string& correlation) {
  if (!store::insert_tax_record(service, record)) return false;
  append(service, events::kTaxRecordTopic, events::kTaxRecordOpened, "tax_record", record.id, 1,
         events::tax_record_snapshot(record), correlation);
  return true;
}

asio::awaitable<Result<store::TaxRecord>> RevenueService::record_tax(CallContext context, NewTaxRecord input) {
  const auto* principal = context.principal.get();
  if (!principal || !principal->has("revenue:manage")) co_return forbidden("needs permission revenue:manage");
  if (auto ok = usable(); !ok) co_return ok.error();
  auto citizen = deps_.readers.read([&](db::Connection& reader) -> Result<std::optional<store::CitizenRef>> {
    return store::find_citizen_ref(reader, input.citizen_id);
  });
  if (!citizen) co_return citizen.error();
  if (!*citizen)
    co_return make_error(Errc::unprocessable, "citizen " + std::to_string(input.citizen_id) + " is unknown");
  if (!(*citizen)->is_active)
    co_return make_error(Errc::unprocessable, "citizen " + std::to_string(input.citizen_id) + "'s account is closed");
  co_return co_await writes_.run([&](db::Connection& service) -> Result<store::TaxRecord> {
    store::TaxRecord record;
    record.citizen_id = input.citizen_id;
    record.tax_year = input.tax_year;
    record.assessed_value_cents = input.assessed_value_cents;
    record.tax_due_cents = input.tax_due_cents;
    record.currency = settings_.currency;
    record.recorded_by = principal->id;
    record.created_at = utc::now();
    if (!open_tax_record(service, record, context.correlation_id))
      return make_error(Errc::conflict, "citizen " + std::to_string(input.citizen_id) + " has a tax record for " +
                                            std::to_string(input.tax_year) + " already");
    return record;
  });
}

asio::awaitable<Result<TaxRecordView>> RevenueService::get_tax_record(CallContext context, std::int64_t id,
                                                                      bool include_national_id) {
  auto scope = read_scope(context.principal.get());
  if (!scope) co_return scope.error();
  if (auto ok = usable(); !ok) co_return ok.error();
  auto record = deps_.readers.read([&](db::Connection& reader) -> Result<store::TaxRecord> {
    auto found = store::find_tax_record(reader, id, *scope);
    if (!found) return make_error(Errc::not_found, "no such tax record");
    return *found;
  });
  if (!record) co_return record.error();
  TaxRecordView view{*record, std::nullopt, false};
  if (!include_national_id) co_return view;
  if (!context.principal || !context.principal->has("revenue:read"))
    co_return forbidden("only revenue staff may include the national id");
  // Read from its owner for this response only (audited there); never kept here, and no
  // stale copy to fall back on when auth cannot answer.
  auto national_id = co_await auth_.get_sensitive(context, record->citizen_id, "tax-record");
  if (!national_id) {
    auto code = national_id.error().code;
    if (code == Errc::unavailable || code == Errc::deadline_exceeded)
      co_return make_error(Errc::unavailable, "the national id cannot be read now: " + national_id.error().message, 5);
    if (code == Errc::not_found) co_return make_error(Errc::not_found, "the citizen of this tax record is gone");
    co_return national_id.error();
  }
  view.national_id = *national_id;
  view.national_id_included = true;
  co_return view;
}

}  // namespace townhall::revenue
