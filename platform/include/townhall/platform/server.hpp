#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "townhall/platform/http.hpp"

namespace boost::asio {
class io_context;
}

namespace townhall::metrics {
class Registry;
}

namespace townhall::http {

// An address block ("10.0.0.0/8", "::1/128"; a bare address is one host).
struct Network {
  std::array<unsigned char, 16> bytes{};
  int prefix = 0;
  bool v4 = true;
  bool contains(std::string_view address) const;
};
// nullopt when `text` is not an IPv4/IPv6 address with an optional /prefix in range.
std::optional<Network> parse_network(std::string_view text);

// The client of a request from `peer` that carried `forwarded_for` (X-Forwarded-For, all
// of its headers joined with ","): `peer` itself unless it is a trusted proxy; then the
// right-most entry that is not one (entries to its left are the client's own claims and
// prove nothing). An entry that is not an address ends the walk at the last trusted hop.
std::string client_address(std::string_view peer, std::string_view forwarded_for, const std::vector<Network>& trusted);

// Who may read the metrics (issue 28 §5). With `token` set: whoever presents it as the
// bearer token, nobody else (needs_token). Without: a client on this host (a loopback
// client address) that came directly, not through a proxy (no X-Forwarded-For, Forwarded
// or X-Real-IP header); anyone else is refused.
enum class MetricsAccess { allowed, needs_token, refused };
MetricsAccess metrics_access(const Request& request, std::string_view token);

struct ServerOptions {
  std::string address = "127.0.0.1";
  std::uint16_t port = 8080;  // 0 = ephemeral
  std::size_t body_limit = 1024 * 1024;
  std::size_t header_limit = 16 * 1024;
  // A chunked body's framing that neither limit above counts: one chunk-size line (with
  // its extensions) and the trailer section after the last chunk (400 and 431 beyond).
  std::size_t chunk_line_limit = 4 * 1024;
  std::size_t trailer_limit = 4 * 1024;
  std::chrono::milliseconds read_timeout{10'000};  // first byte .. full request
  std::chrono::milliseconds idle_timeout{30'000};  // keep-alive wait for the next request
  std::chrono::milliseconds write_timeout{10'000};
  // At the limit, the connection idle longest is closed to make room for a new one (a
  // new one is refused only when none is idle).
  std::size_t max_connections = 10'000;
  // Connections one client address (the TCP peer) may hold, so that one client cannot
  // take every connection; trusted proxies are exempt.
  std::size_t max_connections_per_address = 256;
  // Reverse proxies in front: only from these is X-Forwarded-For believed (the rate
  // limit, login throttling and the access log see the client behind them).
  std::vector<Network> trusted_proxies;
};

// HTTP/1.1 server on Boost.Beast with one coroutine per connection. Owns the protocol:
// limits (413, 431, 400), timeouts, keep-alive, X-Request-Id, access log, request
// metrics. What a request means is the dispatcher's business.
class Server {
 public:
  using Dispatcher = std::function<boost::asio::awaitable<Response>(Request&)>;

  Server(boost::asio::io_context& io, ServerOptions options, Dispatcher dispatcher, metrics::Registry& metrics);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds and listens; returns the bound port. Throws std::system_error on failure.
  std::uint16_t listen();
  // Starts accepting (after listen()).
  void start();

  // Graceful stop: close the listener, close idle connections, let in-flight requests
  // finish (their connections close after the response). `done` runs once every
  // connection is gone or `grace` has passed, whichever is first; the bool tells whether
  // everything drained in time.
  void shutdown(std::chrono::milliseconds grace, std::function<void(bool drained)> done);

  std::size_t active_connections() const;
  bool stopping() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace townhall::http
