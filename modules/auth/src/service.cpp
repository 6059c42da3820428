#include <spdlog/spdlog.h>

#include <boost/asio/detached.hpp>

#include "service_internal.hpp"
#include "townhall/platform/metrics.hpp"
#include "townhall/platform/time.hpp"

namespace townhall::auth {

std::string actor_of(const CallContext& context) {
  if (!context.principal) return context.service.empty() ? "anonymous" : "module:" + context.service;
  return std::string(to_string(context.principal->kind)) + ":" + std::to_string(context.principal->id);
}

bool looks_like_token(std::string_view token) {
  if (token.size() != 43) return false;
  for (char c : token)
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_'))
      return false;
  return true;
}

Result<Unit> not_before_deadline(const CallContext& context) {
  if (context.expired()) return make_error(Errc::deadline_exceeded, "the caller's deadline has passed");
  return Unit{};
}

AuthService::AuthService(Settings settings, ServiceDependencies dependencies, std::filesystem::path key_file)
    : ModuleService(std::move(dependencies)),
      settings_(std::move(settings)),
      key_file_(std::move(key_file)),
      token_cache_(settings_.token_cache_ttl),
      throttle_(settings_.login_throttle),
      reset_requests_(settings_.login_throttle),
      audit_export_dir_(settings_.audit_export_dir.is_absolute()
                            ? settings_.audit_export_dir
                            : deps_.database.path().parent_path() / settings_.audit_export_dir) {
  auto& logins = deps_.metrics.counter("townhall_auth_logins_total", "Login attempts by outcome", {"outcome"});
  login_success_ = &logins.with({"success"});
  login_failure_ = &logins.with({"failure"});
  login_throttled_ = &logins.with({"throttled"});
  login_busy_ = &logins.with({"busy"});
  auto& cache =
      deps_.metrics.counter("townhall_auth_token_cache_total",
                            "Token authentications answered from the cache (hit) or the database (miss)", {"result"});
  cache_hits_ = &cache.with({"hit"});
  cache_misses_ = &cache.with({"miss"});
  key_ok_ = &deps_.metrics
                 .gauge("townhall_auth_key_ok",
                        "1 when auth.key matches the national ids sealed in auth.db (its key check value), 0 when "
                        "the key is missing or not theirs (national ids cannot be read or written)")
                 .with({});
}

AuthService::~AuthService() {
  if (retention_timer_) stop();  // its retention loop must not outlive it
  hashing_.join();
}

void AuthService::start() {
  writes_.open();
  auto maintained = writes_.call([this](db::Connection& service) -> Result<Unit> {
    open_key(service);
    store::prune_sessions(service, utc::now());
    store::prune_password_resets(service, utc::now());
    if (secrets_) backfill_national_id_digests(service);
    return Unit{};
  });
  if (!maintained) throw std::runtime_error("auth: " + maintained.error().message);
  key_ok_->set(secrets_ ? 1 : 0);
  if (!secrets_) spdlog::critical("auth: {}", key_problem_);
  retention_timer_ = std::make_unique<boost::asio::steady_timer>(deps_.writer.context());
  retention_done_ = std::make_shared<Latch>();
  deps_.gate.open();
  boost::asio::co_spawn(deps_.writer.context(), retention_loop(), boost::asio::detached);
}
void AuthService::stop() {
  deps_.gate.close();
  if (retention_timer_) {  // started: the loop ends at its next look at the gate
    deps_.writer.post([this] { retention_timer_->cancel(); });
    retention_done_->wait_blocking();
    deps_.writer.call([this] { retention_timer_.reset(); });
  }
  writes_.close();
}

commands::WriteContext AuthService::write_context(const CallContext& context) const {
  return {actor_of(context), context.correlation_id, fault_hook_};
}

}  // namespace townhall::auth
