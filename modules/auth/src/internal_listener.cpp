// auth's internal listener (README "Internal API"): auth::Api served over HTTP to other
// processes, one POST route per method, in wire.hpp's encoding.
#include <charconv>
#include <functional>
#include <map>

#include "townhall/auth/http_api.hpp"
#include "townhall/auth/wire.hpp"

namespace townhall::auth {
namespace {

http::Response error_response(const Error& error) {
  auto response = http::problem(error);
  if (error.retry_after_seconds > 0) response.set_header("Retry-After", std::to_string(error.retry_after_seconds));
  return response;
}

// "Authorization: Bearer <token>": the token, empty when there is none.
std::string bearer_token(const http::Request& request) {
  constexpr std::string_view scheme = "bearer ";
  auto header = request.header("Authorization");
  if (header.size() <= scheme.size() || !http::iequals(header.substr(0, scheme.size()), scheme)) return {};
  auto token = header.substr(scheme.size());
  while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
  while (!token.empty() && token.back() == ' ') token.remove_suffix(1);
  return std::string(token);
}

// The caller's remaining time: absent → the default a CallContext has; ≤ 0 → already
// over; capped at kMaxRemoteDeadline.
Result<std::chrono::milliseconds> remaining_time(const http::Request& request) {
  auto text = request.header(kDeadlineHeader);
  if (text.empty()) return std::chrono::milliseconds(10'000);
  std::int64_t ms = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), ms);
  if (ec != std::errc() || end != text.data() + text.size())
    return make_error(Errc::invalid_argument, std::string(kDeadlineHeader) + " must be an integer (milliseconds)");
  if (ms <= 0) return make_error(Errc::deadline_exceeded, "the caller's deadline passed before the call arrived");
  return std::min(std::chrono::milliseconds(ms), kMaxRemoteDeadline);
}

template <class Request>
using Call = std::function<boost::asio::awaitable<Result<typename Request::Reply>>(Api&, CallContext, Request)>;

template <class Request>
std::pair<std::string, Call<Request>> route(Call<Request> call) {
  return {wire::path<Request>(), std::move(call)};
}

class Listener {
 public:
  Listener(Api& api, signing::Verifier& verifier) : api_(api), verifier_(verifier) {
    add(route<wire::Authenticate>([](Api& api, CallContext context, wire::Authenticate r) {
      return api.authenticate(std::move(context), std::move(r.token));
    }));
    add(route<wire::GetCitizen>([](Api& api, CallContext context, wire::GetCitizen r) {
      return api.get_citizen(std::move(context), r.citizen_id);
    }));
    add(route<wire::GetSensitive>([](Api& api, CallContext context, wire::GetSensitive r) {
      return api.get_sensitive(std::move(context), r.citizen_id, std::move(r.purpose));
    }));
    add(route<wire::CitizenVersions>([](Api& api, CallContext context, wire::CitizenVersions r) {
      return api.citizen_versions(std::move(context), r.after_id, r.limit, std::move(r.fields));
    }));
    add(route<wire::CitizenDigest>([](Api& api, CallContext context, wire::CitizenDigest r) {
      return api.citizen_digest(std::move(context), r.from_id, r.to_id, std::move(r.fields));
    }));
    add(route<wire::CitizensSince>([](Api& api, CallContext context, wire::CitizensSince r) {
      return api.citizens_since(std::move(context), r.change_seq, r.limit);
    }));
    add(route<wire::Departments>(
        [](Api& api, CallContext context, wire::Departments) { return api.departments(std::move(context)); }));
    add(route<wire::ResetMail>([](Api& api, CallContext context, wire::ResetMail r) {
      return api.password_reset_mail(std::move(context), std::move(r.reference));
    }));
  }

  boost::asio::awaitable<http::Response> handle(http::Request& request) {
    auto found = routes_.find(request.path);
    if (found == routes_.end())
      co_return http::problem(404, "not-found", "Not Found", "no internal auth method at this path");
    request.route = found->first;  // the request metrics' route label (the listener outlives it)
    if (request.method != http::Method::post) {
      auto response = http::problem(405, "method-not-allowed", "Method Not Allowed", "internal calls are POST");
      response.set_header("Allow", "POST");
      co_return response;
    }
    auto remaining = remaining_time(request);
    if (!remaining) co_return error_response(remaining.error());
    CallContext context;
    context.correlation_id = request.request_id;
    context.deadline = CallContext::Clock::now() + *remaining;
    if (auto token = bearer_token(request); !token.empty()) {
      // The user's own token, authenticated here: a principal is never taken on trust.
      auto principal =
          co_await api_.authenticate(CallContext::as_service("auth", request.request_id, *remaining), token);
      if (!principal) co_return error_response(principal.error());
      context.principal = std::move(principal.value());
      context.bearer_token = std::move(token);
    } else if (signing::Verifier::claims_service(request)) {
      auto caller = verifier_.verify(request);
      if (!caller) co_return error_response(caller.error());
      context.service = std::move(caller.value());
    } else {
      co_return http::problem(403, "forbidden", "Forbidden",
                              "an internal call carries its user's bearer token or its module's signature");
    }
    co_return co_await found->second(api_, std::move(context), request.body);
  }

 private:
  using Handler = std::function<boost::asio::awaitable<http::Response>(Api&, CallContext, const std::string&)>;

  template <class Request>
  void add(std::pair<std::string, Call<Request>> entry) {
    routes_.emplace(
        std::move(entry.first),
        [call = std::move(entry.second)](Api& api, CallContext context,
                                         const std::string& body) -> boost::asio::awaitable<http::Response> {
          auto decoded = wire::decode_text<Request>(body);
          if (!decoded) co_return error_response(decoded.error());
          auto result = co_await call(api, std::move(context), std::move(decoded.value()));
          if (!result) co_return error_response(result.error());
          co_return http::json_response(200, wire::encode_text(result.value()));
        });
  }

  Api& api_;
  signing::Verifier& verifier_;
  std::map<std::string, Handler, std::less<>> routes_;
};

}  // namespace

http::Handler internal_handler(Api& api, signing::Verifier& verifier) {
  auto listener = std::make_shared<Listener>(api, verifier);
  return [listener](http::Request& request) { return listener->handle(request); };
}

}  // namespace townhall::auth
