// auth::HttpApi: auth::Api over HTTP for a process auth does not run in (README
// "Internal API"). One request per call on a small keep-alive pool; transport failures
// map to the codes an unreachable in-process auth would give.
#include "townhall/auth/http_api.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <charconv>
#include <mutex>

#include "credentials.hpp"
#include "token_cache.hpp"
#include "townhall/auth/wire.hpp"

namespace townhall::auth {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using SteadyClock = std::chrono::steady_clock;

// What the listener answered.
struct Answer {
  int status = 0;
  std::string body;
  int retry_after_seconds = 0;
};

// A transport failure: the deadline passing is deadline_exceeded, everything else
// (refused, reset, closed, garbled) unavailable.
Error transport_error(const boost::system::error_code& ec) {
  if (ec == beast::error::timeout)
    return make_error(Errc::deadline_exceeded, "auth's internal listener did not answer before the deadline");
  return make_error(Errc::unavailable, "auth's internal listener is unreachable: " + ec.message(), 1);
}

// A request on a reused connection that the listener closed meanwhile (idle timeout,
// restart) fails like this before any reply: it is sent again on a fresh connection.
bool stale_connection(const boost::system::error_code& ec) {
  return ec == bhttp::error::end_of_stream || ec == asio::error::eof || ec == asio::error::connection_reset ||
         ec == asio::error::broken_pipe || ec == asio::error::connection_aborted;
}

// An answer that is not a success, as the Errc the in-process Api would have given; a
// 5xx other than 504 means auth cannot answer now (unavailable).
Error error_of(const Answer& reply) {
  std::string detail;
  try {
    auto problem = nlohmann::json::parse(reply.body);
    if (problem.is_object() && problem.contains("detail") && problem["detail"].is_string())
      detail = problem["detail"].get<std::string>();
  } catch (const nlohmann::json::exception&) {
  }
  if (detail.empty()) detail = "auth answered " + std::to_string(reply.status);
  Errc code = Errc::invalid_argument;
  switch (reply.status) {
    case 401: code = Errc::unauthorized; break;
    case 403: code = Errc::forbidden; break;
    case 404: code = Errc::not_found; break;
    case 409: code = Errc::conflict; break;
    case 422: code = Errc::unprocessable; break;
    case 429: code = Errc::too_many_requests; break;
    case 504: code = Errc::deadline_exceeded; break;
    default: code = reply.status >= 500 ? Errc::unavailable : Errc::invalid_argument;
  }
  return make_error(code, std::move(detail), reply.retry_after_seconds);
}

int retry_after_of(std::string_view text) {
  int seconds = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), seconds);
  return ec == std::errc() && end == text.data() + text.size() && seconds > 0 ? seconds : 0;
}

}  // namespace

struct HttpApi::Impl {
  Impl(asio::io_context& context, HttpApiOptions opts)
      : io(context),
        options(std::move(opts)),
        endpoint(asio::ip::make_address(options.address), options.port),
        host(options.address + ":" + std::to_string(options.port)),
        tokens(options.token_cache_ttl) {}

  struct Idle {
    std::unique_ptr<beast::tcp_stream> stream;
    SteadyClock::time_point since;
  };

  std::unique_ptr<beast::tcp_stream> take() {
    std::lock_guard lock(mutex);
    auto now = SteadyClock::now();
    while (!idle.empty()) {
      auto connection = std::move(idle.back());
      idle.pop_back();
      if (now - connection.since < options.idle_lifetime) return std::move(connection.stream);
    }
    return nullptr;
  }

  void give_back(std::unique_ptr<beast::tcp_stream> stream) {
    std::lock_guard lock(mutex);
    if (idle.size() < options.max_idle_connections) idle.push_back({std::move(stream), SteadyClock::now()});
  }

  // One request and its reply, on a pooled connection or a new one, by `deadline`.
  static asio::awaitable<Result<Answer>> exchange(std::shared_ptr<Impl> self, std::string target, std::string body,
                                                  std::vector<http::Header> headers, SteadyClock::time_point deadline) {
    try {
      for (int attempt = 0;; ++attempt) {
        auto stream = attempt == 0 ? self->take() : nullptr;
        bool reused = stream != nullptr;
        if (!stream) {
          stream = std::make_unique<beast::tcp_stream>(self->io);
          stream->expires_at(deadline);
          auto [ec] = co_await stream->async_connect(self->endpoint, asio::as_tuple(asio::use_awaitable));
          if (ec) co_return transport_error(ec);
        }
        stream->expires_at(deadline);
        bhttp::request<bhttp::string_body> request{bhttp::verb::post, target, 11};
        request.set(bhttp::field::host, self->host);
        request.set(bhttp::field::content_type, "application/json");
        for (const auto& header : headers) request.set(header.name, header.value);
        request.body() = body;
        request.keep_alive(true);
        request.prepare_payload();
        auto [write_error, written] =
            co_await bhttp::async_write(*stream, request, asio::as_tuple(asio::use_awaitable));
        (void)written;
        if (write_error) {
          if (reused && stale_connection(write_error)) continue;
          co_return transport_error(write_error);
        }
        beast::flat_buffer buffer;
        bhttp::response_parser<bhttp::string_body> parser;
        parser.body_limit(self->options.max_reply_bytes);
        auto [read_error, read] =
            co_await bhttp::async_read(*stream, buffer, parser, asio::as_tuple(asio::use_awaitable));
        if (read_error) {
          if (reused && read == 0 && stale_connection(read_error)) continue;
          co_return transport_error(read_error);
        }
        auto& response = parser.get();
        Answer reply{static_cast<int>(response.result_int()), std::move(response.body()),
                     retry_after_of(response[bhttp::field::retry_after])};
        if (response.keep_alive() && buffer.size() == 0) {
          stream->expires_never();
          self->give_back(std::move(stream));
        }
        co_return reply;
      }
    } catch (const std::exception& error) {
      co_return make_error(Errc::unavailable, std::string("auth's internal listener: ") + error.what(), 1);
    }
  }

  template <class Request>
  static asio::awaitable<Result<typename Request::Reply>> call(std::shared_ptr<Impl> self, CallContext context,
                                                               Request request) {
    using Reply = typename Request::Reply;
    auto remaining = std::chrono::ceil<std::chrono::milliseconds>(context.deadline - CallContext::Clock::now());
    if (remaining.count() <= 0)
      co_return Result<Reply>(make_error(Errc::deadline_exceeded, "the call's deadline passed"));
    auto target = wire::path<Request>();
    auto body = wire::encode_text(request);
    std::vector<http::Header> headers;
    if (context.principal) {
      if (context.bearer_token.empty())
        co_return Result<Reply>(make_error(Errc::unauthorized,
                                           "a user's call to auth over HTTP needs the user's bearer "
                                           "token in its CallContext"));
      headers.push_back({"Authorization", "Bearer " + context.bearer_token});
    } else if (context.is_service()) {
      if (!self->options.key)
        co_return Result<Reply>(make_error(
            Errc::unauthorized, "module " + self->options.module + " has no key to sign calls to auth with"));
      headers = signing::sign(*self->options.key, self->options.module, "POST", target, body);
    }  // anonymous: sent as it is, and refused by the listener as by the in-process Api
    headers.push_back({std::string(kDeadlineHeader), std::to_string(remaining.count())});
    if (http::is_acceptable_request_id(context.correlation_id))
      headers.push_back({"X-Request-Id", context.correlation_id});
    auto reply = co_await asio::co_spawn(
        self->io,
        exchange(self, std::move(target), std::move(body), std::move(headers), SteadyClock::now() + remaining),
        asio::use_awaitable);
    if (!reply) co_return Result<Reply>(reply.error());
    if (reply->status != 200) co_return Result<Reply>(error_of(*reply));
    auto decoded = wire::decode_text<Reply>(reply->body);
    if (!decoded)
      co_return Result<Reply>(
          make_error(Errc::unavailable, "auth's reply is malformed: " + decoded.error().message, 1));
    co_return decoded;
  }

  asio::io_context& io;
  HttpApiOptions options;
  tcp::endpoint endpoint;
  std::string host;
  mutable std::mutex mutex;
  std::vector<Idle> idle;
  TokenCache tokens;
};

HttpApi::HttpApi(asio::io_context& io, HttpApiOptions options)
    : impl_(std::make_shared<Impl>(io, std::move(options))) {}

HttpApi::~HttpApi() = default;

std::size_t HttpApi::idle_connections() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->idle.size();
}

std::size_t HttpApi::cached_tokens() const { return impl_->tokens.size(); }

asio::awaitable<Result<std::shared_ptr<const Principal>>> HttpApi::authenticate(CallContext context,
                                                                                std::string token) {
  auto hashed = impl_->tokens.enabled() ? token_hash(token) : std::string();
  if (!hashed.empty())
    if (auto cached = impl_->tokens.find(hashed)) co_return cached;
  auto generation = impl_->tokens.generation();
  // The call is a named awaitable: GCC 12 destroys the temporaries of a full expression
  // that co_awaits twice.
  auto call = Impl::call(impl_, std::move(context), wire::Authenticate{std::move(token)});
  auto answer = co_await std::move(call);
  // The session's own end is auth's to know: the entry lives its TTL at most.
  if (answer && !hashed.empty())
    impl_->tokens.insert(hashed, *answer, std::chrono::system_clock::now() + impl_->options.token_cache_ttl,
                         generation);
  co_return answer;
}

asio::awaitable<Result<Citizen>> HttpApi::get_citizen(CallContext context, std::int64_t citizen_id) {
  return Impl::call(impl_, std::move(context), wire::GetCitizen{citizen_id});
}

asio::awaitable<Result<std::optional<std::string>>> HttpApi::get_sensitive(CallContext context, std::int64_t citizen_id,
                                                                           std::string purpose) {
  return Impl::call(impl_, std::move(context), wire::GetSensitive{citizen_id, std::move(purpose)});
}

asio::awaitable<Result<std::vector<CitizenVersion>>> HttpApi::citizen_versions(CallContext context,
                                                                               std::int64_t after_id, int limit,
                                                                               CitizenFields fields) {
  return Impl::call(impl_, std::move(context), wire::CitizenVersions{after_id, limit, std::move(fields)});
}

asio::awaitable<Result<consistency::Digest>> HttpApi::citizen_digest(CallContext context, std::int64_t from_id,
                                                                     std::int64_t to_id, CitizenFields fields) {
  return Impl::call(impl_, std::move(context), wire::CitizenDigest{from_id, to_id, std::move(fields)});
}

asio::awaitable<Result<CitizenChanges>> HttpApi::citizens_since(CallContext context, std::int64_t change_seq,
                                                                int limit) {
  return Impl::call(impl_, std::move(context), wire::CitizensSince{change_seq, limit});
}

asio::awaitable<Result<std::vector<DepartmentRef>>> HttpApi::departments(CallContext context) {
  return Impl::call(impl_, std::move(context), wire::Departments{});
}

asio::awaitable<Result<PasswordResetMail>> HttpApi::password_reset_mail(CallContext context, std::string reference) {
  return Impl::call(impl_, std::move(context), wire::ResetMail{std::move(reference)});
}

}  // namespace townhall::auth
