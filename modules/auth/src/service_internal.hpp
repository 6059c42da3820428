#pragma once

// What the files of AuthService share; private to the module.

#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <string>
#include <string_view>

#include "service.hpp"

namespace townhall::auth {

// Who a write is audited as: "<kind>:<id>", "module:<name>" or "anonymous".
std::string actor_of(const CallContext& context);

// The shape of a session or password reset token (43 base64url characters), checked before
// any lookup.
bool looks_like_token(std::string_view token);

Result<Unit> not_before_deadline(const CallContext& context);

inline const Error kInvalidToken{Errc::unauthorized, "the token is invalid, expired or revoked"};

// `task` is borrowed: the caller's frame outlives the call. (GCC 12 destroys a lambda
// temporary with non-trivial captures twice when it appears in a co_await expression;
// callers pass a named lambda that captures by reference only.)
template <class F>
boost::asio::awaitable<Result<std::invoke_result_t<F>>> AuthService::hash_off_thread(const F& task) {
  using R = std::invoke_result_t<F>;
  if (hashes_queued_.fetch_add(1) >= settings_.max_queued_password_hashes) {
    --hashes_queued_;
    co_return make_error(Errc::unavailable, "the server is busy checking passwords; retry after 1 s", 1);
  }
  struct Admitted {
    std::atomic<std::size_t>& queued;
    ~Admitted() { --queued; }
  } admitted{hashes_queued_};
  co_return co_await boost::asio::co_spawn(
      hashing_.get_executor(), [&task]() -> boost::asio::awaitable<R> { co_return task(); },
      boost::asio::use_awaitable);
}

}  // namespace townhall::auth
