// The HTTP server's listener: binds, accepts (within the per-address and global
// connection limits), reaps connections past their deadlines, and shuts down gracefully.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <limits>
#include <list>
#include <mutex>
#include <unordered_map>

#include "server_impl.hpp"
#include "townhall/platform/metrics.hpp"

namespace townhall::http {

Server::Impl::Impl(asio::io_context& io_context, ServerOptions server_options, Dispatcher dispatch,
                   metrics::Registry& registry)
    : io(io_context),
      options(std::move(server_options)),
      dispatcher(std::move(dispatch)),
      acceptor(io_context),
      requests(registry.counter("townhall_http_requests_total", "HTTP requests served", {"method", "route", "status"})),
      durations(registry.histogram("townhall_http_request_duration_seconds",
                                   "Time from the first byte of a request to its response being ready",
                                   {"method", "route"})),
      open_connections(registry.gauge("townhall_http_open_connections", "Open HTTP connections").with({})),
      refused_connections(registry.counter("townhall_http_refused_connections_total",
                                           "Connections closed at accept: the client address held its share "
                                           "(per_address) or the server was full with none idle (capacity)",
                                           {"reason"})),
      shed_connections(registry
                           .counter("townhall_http_shed_connections_total",
                                    "Idle connections closed to make room for a new one at max_connections")
                           .with({})) {}

void Server::Impl::report_drained(bool drained) {
  if (drained_reported.exchange(true)) return;
  std::function<void(bool)> callback;
  {
    std::lock_guard lock(mutex);
    callback = std::move(on_drained);
    if (drain_timer) drain_timer->cancel();
  }
  if (callback) callback(drained);
}

template <class Socket>
std::string Server::Impl::peer_address(const Socket& socket) {
  boost::system::error_code ec;
  auto endpoint = socket.remote_endpoint(ec);
  if (ec) return {};
  auto address = endpoint.address();
  if (address.is_v6() && address.to_v6().is_v4_mapped())
    address = asio::ip::make_address_v4(asio::ip::v4_mapped, address.to_v6());
  return address.to_string();
}

bool Server::Impl::is_trusted_proxy(const std::string& address) const {
  return std::any_of(options.trusted_proxies.begin(), options.trusted_proxies.end(),
                     [&](const Network& network) { return network.contains(address); });
}

asio::awaitable<void> Server::Impl::accept_loop() {
  auto self = shared_from_this();
  asio::steady_timer backoff(io);
  while (!stopping) {
    auto [ec, socket] = co_await acceptor.async_accept(asio::make_strand(io), kTuple);
    if (stopping) co_return;
    if (ec) {
      if (ec == asio::error::operation_aborted) co_return;
      // Out of descriptors or similar: log and breathe instead of spinning.
      spdlog::warn("accept failed: {}", ec.message());
      backoff.expires_after(std::chrono::milliseconds(50));
      co_await backoff.async_wait(kTuple);
      continue;
    }
    auto peer = peer_address(socket);
    // One address may not hold more than its share (a proxy in front carries many
    // clients: trusted proxies are exempt). At the global limit, the connection idle
    // longest makes room; with none idle the new one is refused.
    bool exempt = is_trusted_proxy(peer);
    std::string_view refusal;
    std::shared_ptr<Session> session;
    {
      std::lock_guard lock(mutex);
      auto held = per_address.find(peer);
      if (!exempt && held != per_address.end() && held->second >= options.max_connections_per_address)
        refusal = "per_address";
      else if (active.load() >= options.max_connections && !shed_idle_connection())
        refusal = "capacity";
      if (refusal.empty()) {
        session = std::make_shared<Session>(std::move(socket), peer);
        ++per_address[peer];
        std::erase_if(sessions, [](const auto& weak) { return weak.expired(); });
        sessions.push_back(session);
      }
    }
    if (!refusal.empty()) {
      refused_connections.with({std::string(refusal)}).inc();
      boost::system::error_code ignored;
      socket.close(ignored);
      continue;
    }
    ++active;
    open_connections.add(1);
    asio::co_spawn(session->stream.get_executor(), serve(session), asio::detached);
  }
}

// Asks the connection idle longest to close; false when none is idle. Under `mutex`.
bool Server::Impl::shed_idle_connection() {
  std::shared_ptr<Session> oldest;
  std::int64_t oldest_since = std::numeric_limits<std::int64_t>::max();
  for (auto& weak : sessions) {
    auto session = weak.lock();
    if (!session || !session->idle.load() || session->shedding.load()) continue;
    auto since = session->last_active.load();
    if (since < oldest_since) oldest = std::move(session), oldest_since = since;
  }
  if (!oldest) return false;
  oldest->shedding = true;
  shed_connections.inc();
  // On its strand it is still idle unless a request began meanwhile (then it stays,
  // and the server is one over its limit until a connection closes).
  asio::post(oldest->stream.get_executor(), [oldest] {
    if (oldest->idle.load()) oldest->stream.cancel();
  });
  return true;
}

// Closes connections whose current phase has outlived its deadline.
asio::awaitable<void> Server::Impl::reap_loop() {
  auto self = shared_from_this();
  auto shortest = std::min({options.idle_timeout, options.read_timeout, options.write_timeout});
  auto interval = std::clamp(shortest / 4, std::chrono::milliseconds(10), std::chrono::milliseconds(250));
  asio::steady_timer timer(io);
  while (!stopping || active.load() > 0) {
    timer.expires_after(interval);
    auto [ec] = co_await timer.async_wait(kTuple);
    if (ec) co_return;
    auto now = Clock::now().time_since_epoch().count();
    std::vector<std::shared_ptr<Session>> expired;
    {
      std::lock_guard lock(mutex);
      for (auto& weak : sessions) {
        auto session = weak.lock();
        if (!session) continue;
        auto deadline = session->deadline.load(std::memory_order_relaxed);
        if (deadline != 0 && deadline < now) expired.push_back(std::move(session));
      }
    }
    for (auto& session : expired) asio::post(session->stream.get_executor(), [session] { session->stream.cancel(); });
  }
}

Server::Server(asio::io_context& io, ServerOptions options, Dispatcher dispatcher, metrics::Registry& metrics)
    : impl_(std::make_shared<Impl>(io, std::move(options), std::move(dispatcher), metrics)) {}

Server::~Server() = default;

std::uint16_t Server::listen() {
  auto address = asio::ip::make_address(impl_->options.address);
  tcp::endpoint endpoint(address, impl_->options.port);
  auto& acceptor = impl_->acceptor;
  acceptor.open(endpoint.protocol());
  acceptor.set_option(asio::socket_base::reuse_address(true));
  acceptor.bind(endpoint);
  acceptor.listen(asio::socket_base::max_listen_connections);
  return acceptor.local_endpoint().port();
}

void Server::start() {
  asio::co_spawn(impl_->acceptor.get_executor(), impl_->accept_loop(), asio::detached);
  asio::co_spawn(impl_->io, impl_->reap_loop(), asio::detached);
}

void Server::shutdown(std::chrono::milliseconds grace, std::function<void(bool)> done) {
  auto impl = impl_;
  asio::post(impl->acceptor.get_executor(), [impl, grace, done = std::move(done)]() mutable {
    if (impl->stopping.load()) return;
    {
      std::lock_guard lock(impl->mutex);
      impl->on_drained = std::move(done);
      impl->drain_timer = std::make_unique<asio::steady_timer>(impl->io, grace);
      impl->drain_timer->async_wait([impl](const boost::system::error_code& ec) {
        if (!ec) impl->report_drained(impl->active.load() == 0);
      });
    }
    impl->stopping = true;
    boost::system::error_code ignored;
    impl->acceptor.close(ignored);
    std::vector<std::shared_ptr<Session>> open;
    {
      std::lock_guard lock(impl->mutex);
      for (auto& weak : impl->sessions)
        if (auto session = weak.lock()) open.push_back(session);
    }
    // Idle connections close now; busy ones close after their response.
    for (auto& session : open)
      asio::post(session->stream.get_executor(), [session] {
        if (!session->busy) session->stream.cancel();
      });
    if (impl->active.load() == 0) impl->report_drained(true);
  });
}

std::size_t Server::active_connections() const { return impl_->active.load(); }
bool Server::stopping() const { return impl_->stopping.load(); }

}  // namespace townhall::http
