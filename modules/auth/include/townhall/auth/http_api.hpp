#pragma once

// auth::Api over HTTP (DESIGN.md §9, README "Internal API"): the handler of auth's
// internal listener, and HttpApi, the client other processes call auth with. The wire
// format is wire.hpp's; Beast stays out of this header.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "townhall/auth/api.hpp"
#include "townhall/platform/http.hpp"
#include "townhall/platform/service_signing.hpp"

namespace boost::asio {
class io_context;
}

namespace townhall::auth {

// Header the caller's remaining time travels in, in milliseconds (a wall-clock instant
// would need the two hosts' clocks to agree).
inline constexpr std::string_view kDeadlineHeader = "X-Townhall-Deadline-Ms";
// The longest deadline a caller may ask the listener for.
inline constexpr std::chrono::milliseconds kMaxRemoteDeadline{60'000};

// Serves `api` at POST /internal/v1/auth/<method> (wire.hpp). Who calls: the user whose
// bearer token the request carries (authenticated again here, by `api`), or the module
// whose signature `verifier` accepts (401 for a forged, expired or replayed one); a call
// with neither is refused (403). The deadline comes from X-Townhall-Deadline-Ms, the
// correlation id from X-Request-Id (the server's request id). `api` and `verifier` must
// outlive the handler.
http::Handler internal_handler(Api& api, signing::Verifier& verifier);

struct HttpApiOptions {
  std::string address = "127.0.0.1";  // auth's internal listener
  std::uint16_t port = 0;
  // The calling module and its key: service calls (CallContext::as_service) are signed as
  // this module, whatever name the context gives. Without a key, service calls fail with
  // unauthorized before anything is sent.
  std::string module;
  std::optional<signing::Key> key;
  std::size_t max_idle_connections = 8;
  // A pooled connection idle longer is not reused (below the listener's idle timeout, so
  // a request does not race the listener closing it).
  std::chrono::milliseconds idle_lifetime{10'000};
  std::size_t max_reply_bytes = 16 * 1024 * 1024;
  // How long a token auth accepted is accepted again without asking (0: always ask), as
  // auth's own token cache (token_cache_ttl(), design note 59): the gateway's per-request
  // check is a lookup, and a signed-in user keeps working for that long while auth's process
  // is unreachable. Auth's logout cannot reach this cache: a token stays accepted here
  // until its entry ages.
  std::chrono::milliseconds token_cache_ttl{0};
};

// The auth::Api of a process auth does not run in. Every call is one HTTP request on a
// small keep-alive pool; it fails the way the in-process object does, plus transport
// failures: refused, reset or a 5xx → unavailable, the deadline passing → deadline_exceeded,
// so callers' cache fallbacks behave the same. A user's call needs the user's bearer token
// in its context (Request::call_context() puts it there); without one it is unauthorized.
// Connections live on `io`, which must run while calls are made and outlive this object.
class HttpApi final : public Api {
 public:
  HttpApi(boost::asio::io_context& io, HttpApiOptions options);
  ~HttpApi() override;
  HttpApi(const HttpApi&) = delete;
  HttpApi& operator=(const HttpApi&) = delete;

  boost::asio::awaitable<Result<std::shared_ptr<const Principal>>> authenticate(CallContext context,
                                                                                std::string token) override;
  boost::asio::awaitable<Result<Citizen>> get_citizen(CallContext context, std::int64_t citizen_id) override;
  boost::asio::awaitable<Result<std::optional<std::string>>> get_sensitive(CallContext context, std::int64_t citizen_id,
                                                                           std::string purpose) override;
  boost::asio::awaitable<Result<std::vector<CitizenVersion>>> citizen_versions(CallContext context,
                                                                               std::int64_t after_id, int limit,
                                                                               CitizenFields fields) override;
  boost::asio::awaitable<Result<consistency::Digest>> citizen_digest(CallContext context, std::int64_t from_id,
                                                                     std::int64_t to_id, CitizenFields fields) override;
  boost::asio::awaitable<Result<CitizenChanges>> citizens_since(CallContext context, std::int64_t change_seq,
                                                                int limit) override;
  boost::asio::awaitable<Result<std::vector<DepartmentRef>>> departments(CallContext context) override;
  boost::asio::awaitable<Result<PasswordResetMail>> password_reset_mail(CallContext context,
                                                                        std::string reference) override;

  // Connections kept for reuse right now (tests).
  std::size_t idle_connections() const;
  // Tokens whose authentication is kept right now (tests).
  std::size_t cached_tokens() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace townhall::auth
