#pragma once

// What the server's parts share: its state (Server::Impl) and one connection's
// (Session). server.cpp listens, accepts and shuts down; session.cpp serves one
// connection's requests.
#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "townhall/platform/metrics.hpp"
#include "townhall/platform/server.hpp"

namespace townhall::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

struct Session {
  Session(tcp::socket socket, std::string peer_address) : stream(std::move(socket)), peer(std::move(peer_address)) {}
  beast::tcp_stream stream;
  const std::string peer;  // the address its connection slot is counted under
  bool busy = false;       // touched only on the session's strand
  // Read by the acceptor to pick the connection idle longest when it must make room:
  // whether it waits for a request (a new or kept-alive connection), and when it was
  // accepted or last had an answer ready (steady-clock nanoseconds).
  std::atomic<bool> idle{false};
  std::atomic<std::int64_t> last_active{Clock::now().time_since_epoch().count()};
  std::atomic<bool> shedding{false};  // the acceptor has asked it to close
  // When the current phase (idle wait, request read, response write) must be over, in
  // steady-clock nanoseconds; 0 = no deadline. Checked by the server's reaper, so a
  // request costs no timer syscalls (timeouts are coarse: a few ms to 250 ms late).
  std::atomic<std::int64_t> deadline{0};

  void expires_after(std::chrono::milliseconds timeout) {
    deadline.store((Clock::now() + timeout).time_since_epoch().count(), std::memory_order_relaxed);
  }
};

struct Server::Impl : std::enable_shared_from_this<Impl> {
  Impl(asio::io_context& io_context, ServerOptions server_options, Dispatcher dispatch, metrics::Registry& registry);

  asio::io_context& io;
  ServerOptions options;
  Dispatcher dispatcher;
  tcp::acceptor acceptor;
  metrics::CounterFamily& requests;
  metrics::HistogramFamily& durations;
  metrics::Gauge& open_connections;
  metrics::CounterFamily& refused_connections;
  metrics::Counter& shed_connections;
  // Open connections per client address (the TCP peer), under `mutex`.
  std::unordered_map<std::string, std::size_t> per_address;

  std::atomic<bool> stopping{false};
  std::atomic<std::size_t> active{0};
  std::mutex mutex;
  std::list<std::weak_ptr<Session>> sessions;
  std::function<void(bool)> on_drained;

  // Series per (method, route, status), found without allocating: route patterns are
  // stable strings owned by the router or gateway, so their address identifies them.
  struct SeriesKey {
    Method method;
    const char* route;
    std::size_t route_size;
    int status;
    bool operator==(const SeriesKey&) const = default;
  };
  struct SeriesKeyHash {
    std::size_t operator()(const SeriesKey& k) const {
      return std::hash<const void*>()(k.route) ^ (static_cast<std::size_t>(k.status) << 8) ^
             static_cast<std::size_t>(k.method);
    }
  };
  struct RequestSeries {
    metrics::Counter* count;
    metrics::Histogram* duration;
  };
  std::mutex series_mutex;
  std::unordered_map<SeriesKey, RequestSeries, SeriesKeyHash> series_cache;
  std::atomic<bool> drained_reported{false};
  std::unique_ptr<asio::steady_timer> drain_timer;

  // Listening, accepting and shutting down (server.cpp).
  void report_drained(bool drained);
  asio::awaitable<void> accept_loop();
  template <class Socket>
  static std::string peer_address(const Socket& socket);
  bool is_trusted_proxy(const std::string& address) const;
  // Asks the connection idle longest to close; false when none is idle. Under `mutex`.
  bool shed_idle_connection();
  // Closes connections whose current phase has outlived its deadline.
  asio::awaitable<void> reap_loop();

  // One connection's requests (session.cpp).
  asio::awaitable<void> serve(std::shared_ptr<Session> session);
  void record(Method method, std::string_view route, int status, double seconds);
  Response protocol_error(int status, std::string_view slug, std::string_view detail);
  Request convert(bhttp::request<bhttp::string_body>& message, std::vector<Header> header_fields,
                  const std::string& client_ip);
  void log_access(const std::string& client_ip, std::string_view method, std::string_view path, int status,
                  std::size_t bytes, double seconds, const std::string& request_id);
};

}  // namespace townhall::http
