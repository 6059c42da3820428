#include "townhall/platform/server.hpp"

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
#include <charconv>
#include <chrono>
#include <limits>
#include <list>
#include <mutex>
#include <nlohmann/json.hpp>
#include <unordered_map>

#include "townhall/platform/logging.hpp"
#include "townhall/platform/metrics.hpp"

namespace townhall::http {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
// How long and how much a refused request's body is drained before closing, and how
// long a pause in it ends the draining (nginx's lingering_time and lingering_timeout).
constexpr std::chrono::seconds kLingerTime{5};
constexpr std::chrono::milliseconds kLingerPause{1000};
constexpr std::size_t kLingerBytes = 64 * 1024 * 1024;

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

bool is_parse_error(const boost::system::error_code& ec) {
  return ec.category() == bhttp::make_error_code(bhttp::error::bad_target).category();
}

struct FramingProblem {
  int status;
  std::string detail;
};

using RequestParser = bhttp::request_parser<bhttp::string_body>;

struct ReadOutcome {
  boost::system::error_code ec;
  std::optional<FramingProblem> problem;  // refused before the parser finished
};

// The input the parser has not consumed yet.
std::string_view unparsed(const beast::flat_buffer& buffer) {
  return {static_cast<const char*>(buffer.data().data()), buffer.size()};
}

// Feeds `parser` from `stream` until `finished(parser)`. `check_input(unparsed input,
// scanned)` runs before every parse (`scanned`: how much of the input it has already
// searched; kept across parses), `check_leftover(unparsed input)` after a parse that
// needs more input; either ends the read with the problem it returns. (Beast's async_read
// bounds only the header, with header_limit, and the body, with body_limit: whatever else
// its parser waits to see whole, it would keep reading into the buffer until the read
// timeout.)
template <class Finished, class CheckInput, class CheckLeftover>
asio::awaitable<ReadOutcome> read_message(beast::tcp_stream& stream, beast::flat_buffer& buffer, RequestParser& parser,
                                          Finished finished, CheckInput check_input, CheckLeftover check_leftover) {
  boost::system::error_code ec;
  std::size_t scanned = 0;
  for (;;) {
    if (buffer.size() > 0) {
      if (auto problem = check_input(unparsed(buffer), scanned)) co_return ReadOutcome{{}, std::move(problem)};
      auto used = parser.put(buffer.data(), ec);
      buffer.consume(used);
      scanned -= std::min(scanned, used);
      if (ec && ec != bhttp::error::need_more) co_return ReadOutcome{ec, {}};
      if (finished(parser)) co_return ReadOutcome{};
      if (!ec && used > 0 && buffer.size() > 0) continue;
      if (auto problem = check_leftover(unparsed(buffer))) co_return ReadOutcome{{}, std::move(problem)};
    }
    auto [read_ec, n] = co_await stream.async_read_some(buffer.prepare(beast::read_size(buffer, 65536)), kTuple);
    buffer.commit(n);
    if (read_ec == asio::error::eof) {
      // As Beast's read: the end of a message that declares no length, or a partial one.
      if (!parser.got_some()) co_return ReadOutcome{bhttp::error::end_of_stream, {}};
      parser.put_eof(ec);
      if (!ec && finished(parser)) co_return ReadOutcome{};
      co_return ReadOutcome{ec ? ec : make_error_code(bhttp::error::partial_message), {}};
    }
    if (read_ec) co_return ReadOutcome{read_ec, {}};
  }
}

constexpr auto kNoCheck = [](std::string_view) { return std::optional<FramingProblem>(); };
constexpr auto kNoInputCheck = [](std::string_view, std::size_t&) { return std::optional<FramingProblem>(); };

// RFC 9112 §5.2: a field value continued on the next line (obs-fold: CRLF, then SP or
// HTAB) is refused. Beast joins the lines; a proxy in front may read them otherwise (the
// first line alone, or the continuation as a field of its own), which for Content-Length
// or Transfer-Encoding is request smuggling. Searches the header in `pending` (up to its
// empty line) from `scanned` on, and advances `scanned` past what it has searched.
std::optional<FramingProblem> check_obs_fold(std::string_view pending, std::size_t& scanned) {
  for (; scanned + 2 < pending.size(); ++scanned) {
    if (pending[scanned] != '\r' || pending[scanned + 1] != '\n') continue;
    char next = pending[scanned + 2];
    if (next == ' ' || next == '\t')
      return FramingProblem{400, "a header field is folded onto a second line (obsolete line folding)"};
    if (next == '\r') {
      scanned = pending.size();  // the header's empty line: what follows is the body
      break;
    }
  }
  return std::nullopt;
}

// A chunked body's unparsed input is only ever framing: the parser moves chunk data into
// the body as it arrives (body_limit counts it) and waits for a chunk-size line, or for
// the last chunk's line and the trailer section, to be complete. Bound both.
std::optional<FramingProblem> check_chunk_framing(std::string_view pending, std::size_t chunk_line_limit,
                                                  std::size_t trailer_limit) {
  if (pending.size() <= std::min(chunk_line_limit, trailer_limit)) return std::nullopt;
  if (pending.starts_with("\r\n")) pending.remove_prefix(2);  // the previous chunk's end
  auto line_end = pending.find("\r\n");
  if (line_end == std::string_view::npos) {
    if (pending.size() <= chunk_line_limit) return std::nullopt;
    return FramingProblem{
        400, "a chunk-size line (with its extensions) exceeds " + std::to_string(chunk_line_limit) + " bytes"};
  }
  if (line_end > chunk_line_limit)
    return FramingProblem{
        400, "a chunk-size line (with its extensions) exceeds " + std::to_string(chunk_line_limit) + " bytes"};
  // A whole line the parser did not consume is the last chunk's: trailer fields follow.
  if (pending.size() - line_end - 2 <= trailer_limit) return std::nullopt;
  return FramingProblem{431, "the request's trailer section exceeds " + std::to_string(trailer_limit) + " bytes"};
}

// RFC 9112 §6: the only transfer coding this server decodes is a single "chunked". Any
// other list leaves the body's length to interpretation (the root of request smuggling),
// so it is answered and the connection closed before any body byte is read.
std::optional<FramingProblem> check_framing(const bhttp::request_parser<bhttp::string_body>& parser) {
  const auto& message = parser.get();
  std::vector<std::string_view> codings;
  bool any = false;
  for (const auto& field : message) {
    if (field.name() != bhttp::field::transfer_encoding) continue;
    any = true;
    std::string_view list(field.value().data(), field.value().size());
    while (true) {
      auto comma = list.find(',');
      auto item = list.substr(0, comma);
      while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
      while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
      codings.push_back(item);
      if (comma == std::string_view::npos) break;
      list.remove_prefix(comma + 1);
    }
  }
  if (!any) return std::nullopt;
  if (message.version() < 11) return FramingProblem{400, "Transfer-Encoding is not allowed in an HTTP/1.0 request"};
  if (message.find(bhttp::field::content_length) != message.end())
    return FramingProblem{400, "a request must not carry both Transfer-Encoding and Content-Length"};
  if (codings.empty() || !iequals(codings.back(), "chunked"))
    return FramingProblem{400, "Transfer-Encoding must end with 'chunked'"};
  for (std::size_t i = 0; i + 1 < codings.size(); ++i) {
    auto coding = codings[i];
    if (iequals(coding, "chunked")) return FramingProblem{400, "'chunked' may be applied only once"};
    if (iequals(coding, "gzip") || iequals(coding, "x-gzip") || iequals(coding, "deflate") ||
        iequals(coding, "compress") || iequals(coding, "x-compress"))
      return FramingProblem{501, "transfer coding '" + std::string(coding) +
                                     "' is not supported; send the body "
                                     "with 'Transfer-Encoding: chunked' alone"};
    return FramingProblem{400, "unknown transfer coding"};
  }
  return std::nullopt;
}

}  // namespace

struct Server::Impl : std::enable_shared_from_this<Impl> {
  Impl(asio::io_context& io_context, ServerOptions server_options, Dispatcher dispatch, metrics::Registry& registry)
      : io(io_context),
        options(std::move(server_options)),
        dispatcher(std::move(dispatch)),
        acceptor(io_context),
        requests(
            registry.counter("townhall_http_requests_total", "HTTP requests served", {"method", "route", "status"})),
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

  void record(Method method, std::string_view route, int status, double seconds) {
    if (route.empty()) route = "unmatched";
    SeriesKey key{method, route.data(), route.size(), status};
    RequestSeries found;
    {
      std::lock_guard lock(series_mutex);
      auto it = series_cache.find(key);
      if (it == series_cache.end()) {
        std::string method_label(method == Method::other ? "-" : to_string(method));
        std::string route_label(route);
        RequestSeries created{&requests.with({method_label, route_label, std::to_string(status)}),
                              &durations.with({method_label, route_label})};
        it = series_cache.emplace(key, created).first;
      }
      found = it->second;
    }
    found.count->inc();
    found.duration->observe(seconds);
  }
  std::atomic<bool> drained_reported{false};
  std::unique_ptr<asio::steady_timer> drain_timer;

  void report_drained(bool drained) {
    if (drained_reported.exchange(true)) return;
    std::function<void(bool)> callback;
    {
      std::lock_guard lock(mutex);
      callback = std::move(on_drained);
      if (drain_timer) drain_timer->cancel();
    }
    if (callback) callback(drained);
  }

  asio::awaitable<void> accept_loop() {
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

  template <class Socket>
  static std::string peer_address(const Socket& socket) {
    boost::system::error_code ec;
    auto endpoint = socket.remote_endpoint(ec);
    if (ec) return {};
    auto address = endpoint.address();
    if (address.is_v6() && address.to_v6().is_v4_mapped())
      address = asio::ip::make_address_v4(asio::ip::v4_mapped, address.to_v6());
    return address.to_string();
  }

  bool is_trusted_proxy(const std::string& address) const {
    return std::any_of(options.trusted_proxies.begin(), options.trusted_proxies.end(),
                       [&](const Network& network) { return network.contains(address); });
  }

  // Asks the connection idle longest to close; false when none is idle. Under `mutex`.
  bool shed_idle_connection() {
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
  asio::awaitable<void> reap_loop() {
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

  Response protocol_error(int status, std::string_view slug, std::string_view detail) {
    Response response = problem(status, slug, reason_phrase(status), detail);
    response.close = true;
    return response;
  }

  Request convert(bhttp::request<bhttp::string_body>& message, std::vector<Header> header_fields,
                  const std::string& client_ip) {
    Request request;
    request.method = parse_method(std::string_view(message.method_string().data(), message.method_string().size()));
    request.target = std::string(message.target());
    auto question = request.target.find('?');
    request.path = request.target.substr(0, question);
    if (question != std::string::npos) request.query = request.target.substr(question + 1);
    request.headers = std::move(header_fields);
    request.body = std::move(message.body());
    std::string forwarded;
    if (!options.trusted_proxies.empty())
      for (const auto& field : request.headers)
        if (iequals(field.name, "X-Forwarded-For")) forwarded += (forwarded.empty() ? "" : ",") + field.value;
    request.client_ip = client_address(client_ip, forwarded, options.trusted_proxies);
    auto offered = request.header("X-Request-Id");
    request.request_id = is_acceptable_request_id(offered) ? std::string(offered) : generate_request_id();
    return request;
  }

  void log_access(const std::string& client_ip, std::string_view method, std::string_view path, int status,
                  std::size_t bytes, double seconds, const std::string& request_id) {
    auto format = logging::access_log_format();
    if (format == logging::AccessLogFormat::off) return;
    auto logger = logging::access_logger();
    if (format == logging::AccessLogFormat::json) {
      nlohmann::json line = {{"ts", std::chrono::duration_cast<std::chrono::milliseconds>(
                                        std::chrono::system_clock::now().time_since_epoch())
                                        .count()},
                             {"client", client_ip},
                             {"method", method},
                             {"path", path},
                             {"status", status},
                             {"bytes", bytes},
                             {"duration_ms", seconds * 1000.0},
                             {"request_id", request_id}};
      logger->info("{}", line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
    } else {
      logger->info("{} \"{} {}\" {} {} {:.3f}ms {}", client_ip, method, path, status, bytes, seconds * 1000.0,
                   request_id);
    }
  }

  asio::awaitable<void> serve(std::shared_ptr<Session> session) {
    auto self = shared_from_this();
    auto& stream = session->stream;
    beast::flat_buffer buffer;
    boost::system::error_code ec;
    std::string client_ip;
    bool unread_body = false;  // an answer was given before the request's body was read
    auto endpoint = stream.socket().remote_endpoint(ec);
    if (!ec) client_ip = endpoint.address().to_string();

    for (;;) {
      if (stopping) break;
      if (buffer.size() == 0) {
        // Keep-alive: wait for the first byte of the next request under the idle timeout.
        session->expires_after(options.idle_timeout);
        session->shedding = false;
        session->idle = true;
        auto [read_ec, n] = co_await stream.async_read_some(buffer.prepare(4096), kTuple);
        session->idle = false;
        if (read_ec) break;
        buffer.commit(n);
      }
      session->busy = true;
      auto started = Clock::now();
      session->expires_after(options.read_timeout);
      RequestParser parser;
      parser.header_limit(static_cast<std::uint32_t>(options.header_limit));
      parser.body_limit(options.body_limit);
      parser.eager(false);  // stop after the header: it is checked before any body byte is read
      auto header_read = co_await read_message(
          stream, buffer, parser, [](const RequestParser& p) { return p.is_header_done(); }, check_obs_fold, kNoCheck);
      auto read_ec = header_read.ec;
      std::optional<FramingProblem> framing = std::move(header_read.problem);
      if (!read_ec && !framing) framing = check_framing(parser);
      // The header's fields as sent: the parser adds trailer fields to the same message,
      // and nothing may pass them off as header fields (RFC 9110 §6.5.1).
      std::vector<Header> header_fields;
      bool wants_keep_alive = false;
      if (!read_ec && !framing) {
        header_fields.reserve(8);
        for (const auto& field : parser.get())
          header_fields.push_back({std::string(field.name_string()), std::string(field.value())});
        wants_keep_alive = parser.get().keep_alive();
      }
      if (!read_ec && !framing && !parser.is_done()) {
        parser.eager(true);
        auto body = co_await read_message(
            stream, buffer, parser, [](const RequestParser& p) { return p.is_done(); }, kNoInputCheck,
            [this](std::string_view leftover) {
              return check_chunk_framing(leftover, options.chunk_line_limit, options.trailer_limit);
            });
        read_ec = body.ec;
        framing = std::move(body.problem);
      }

      session->deadline.store(0, std::memory_order_relaxed);  // the handler bounds its own time
      Response response;
      Request request;
      std::string_view method_label = "-";
      unsigned version = 11;
      bool keep_alive = false;
      bool head = false;
      if (framing) {
        unread_body = true;
        request.request_id = generate_request_id();
        std::string_view slug = framing->status == 501   ? "not-implemented"
                                : framing->status == 431 ? "header-too-large"
                                                         : "malformed-request";
        response = protocol_error(framing->status, slug, framing->detail);
      } else if (read_ec) {
        if (read_ec == bhttp::error::body_limit) unread_body = true;
        if (read_ec == bhttp::error::end_of_stream || read_ec == beast::error::timeout ||
            read_ec == asio::error::operation_aborted || read_ec == asio::error::connection_reset ||
            read_ec == asio::error::eof)
          break;
        request.request_id = generate_request_id();
        if (read_ec == bhttp::error::body_limit)
          response = protocol_error(413, "payload-too-large",
                                    "the request body exceeds " + std::to_string(options.body_limit) + " bytes");
        else if (read_ec == bhttp::error::header_limit)
          response = protocol_error(431, "header-too-large",
                                    "the request headers exceed " + std::to_string(options.header_limit) + " bytes");
        else if (is_parse_error(read_ec))
          response =
              protocol_error(400, "malformed-request", "the request is not valid HTTP/1.1: " + read_ec.message());
        else
          break;
      } else {
        auto& message = parser.get();
        version = message.version();
        request = convert(message, std::move(header_fields), client_ip);
        method_label = to_string(request.method);
        head = request.method == Method::head;
        if (request.path.empty() || request.path.front() != '/') {
          response = protocol_error(400, "malformed-request", "the request target must be an absolute path");
        } else {
          try {
            response = co_await dispatcher(request);
          } catch (const std::exception& error) {
            spdlog::error("request {} {} failed: {}", method_label, request.path, error.what());
            response =
                problem(500, "internal", "Internal Server Error",
                        "the server failed to handle this request; see its log for request id " + request.request_id);
          }
        }
        keep_alive = wants_keep_alive && !response.close && !stopping;
      }

      bhttp::response<bhttp::string_body> out{static_cast<bhttp::status>(response.status), version};
      out.set(bhttp::field::server, "townhall");
      if (!response.body.empty() || response.status != 204) out.set(bhttp::field::content_type, response.content_type);
      out.set("X-Request-Id", request.request_id);
      // Every answer may carry personal data or a token unless its handler says
      // otherwise (a handler's own headers below replace these): no shared or browser
      // cache keeps it, and no browser sniffs its type.
      out.set(bhttp::field::cache_control, "no-store");
      out.set("X-Content-Type-Options", "nosniff");
      // Nothing this server answers is a page to frame, run scripts in or leak a URL
      // from; the dashboard's pages will set their own (strict) policy.
      out.set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'");
      out.set("Referrer-Policy", "no-referrer");
      for (const auto& header : response.headers) out.set(header.name, header.value);
      out.keep_alive(keep_alive);
      std::size_t body_size = response.body.size();
      if (head) {
        out.content_length(body_size);
      } else {
        out.body() = std::move(response.body);
        out.prepare_payload();
      }
      // Counted before the write, so a client that has its answer also sees it counted.
      double seconds = std::chrono::duration<double>(Clock::now() - started).count();
      record(read_ec || framing ? Method::other : request.method, request.route, response.status, seconds);

      session->last_active = Clock::now().time_since_epoch().count();
      session->expires_after(options.write_timeout);
      auto [write_ec, written] = co_await bhttp::async_write(stream, out, kTuple);
      (void)written;
      log_access(request.client_ip.empty() ? client_ip : request.client_ip, method_label,
                 request.path.empty() ? std::string_view("-") : request.path, response.status, body_size, seconds,
                 request.request_id);
      session->busy = false;
      if (write_ec || !keep_alive) break;
    }

    stream.socket().shutdown(tcp::socket::shutdown_send, ec);
    if (unread_body) {
      // Lingering close: a client still sending the body we refused would get a reset,
      // not our answer, if we closed with its bytes unread. Read and drop them until it
      // stops, bounded in time and bytes.
      const auto give_up = Clock::now() + kLingerTime;
      std::size_t dropped = 0;
      std::array<char, 16384> sink;
      while (dropped < kLingerBytes && Clock::now() < give_up) {
        session->expires_after(kLingerPause);  // a client gone quiet is done
        auto [linger_ec, n] = co_await stream.async_read_some(asio::buffer(sink), kTuple);
        if (linger_ec) break;
        dropped += n;
      }
    }
    stream.close();
    {
      std::lock_guard lock(mutex);
      if (auto held = per_address.find(session->peer); held != per_address.end() && --held->second == 0)
        per_address.erase(held);
    }
    open_connections.add(-1);
    if (--active == 0 && stopping) report_drained(true);
  }
};

std::optional<Network> parse_network(std::string_view text) {
  auto slash = text.find('/');
  boost::system::error_code ec;
  auto address = asio::ip::make_address(std::string(text.substr(0, slash)), ec);
  if (ec) return std::nullopt;
  Network network;
  network.v4 = address.is_v4();
  const int bits = network.v4 ? 32 : 128;
  network.prefix = bits;
  if (slash != std::string_view::npos) {
    auto digits = text.substr(slash + 1);
    int prefix = -1;
    auto [end, parse_ec] = std::from_chars(digits.data(), digits.data() + digits.size(), prefix);
    if (parse_ec != std::errc() || end != digits.data() + digits.size() || digits.empty() || prefix < 0 ||
        prefix > bits)
      return std::nullopt;
    network.prefix = prefix;
  }
  if (network.v4) {
    auto raw = address.to_v4().to_bytes();
    std::copy(raw.begin(), raw.end(), network.bytes.begin());
  } else {
    network.bytes = address.to_v6().to_bytes();
  }
  return network;
}

bool Network::contains(std::string_view text) const {
  boost::system::error_code ec;
  auto address = asio::ip::make_address(std::string(text), ec);
  if (ec) return false;
  if (address.is_v6() && address.to_v6().is_v4_mapped())
    address = asio::ip::make_address_v4(asio::ip::v4_mapped, address.to_v6());
  if (address.is_v4() != v4) return false;
  std::array<unsigned char, 16> raw{};
  if (v4) {
    auto b = address.to_v4().to_bytes();
    std::copy(b.begin(), b.end(), raw.begin());
  } else {
    raw = address.to_v6().to_bytes();
  }
  int full = prefix / 8, rest = prefix % 8;
  if (!std::equal(raw.begin(), raw.begin() + full, bytes.begin())) return false;
  if (rest == 0) return true;
  unsigned char mask = static_cast<unsigned char>(0xFF << (8 - rest));
  return (raw[static_cast<std::size_t>(full)] & mask) == (bytes[static_cast<std::size_t>(full)] & mask);
}

std::string client_address(std::string_view peer, std::string_view forwarded_for, const std::vector<Network>& trusted) {
  auto is_trusted = [&](std::string_view address) {
    return std::any_of(trusted.begin(), trusted.end(), [&](const Network& n) { return n.contains(address); });
  };
  std::string client(peer);
  if (trusted.empty() || !is_trusted(peer)) return client;
  // Walk X-Forwarded-For from the right: each hop was appended by the one after it.
  std::string_view rest = forwarded_for;
  while (!rest.empty()) {
    auto comma = rest.rfind(',');
    auto entry = comma == std::string_view::npos ? rest : rest.substr(comma + 1);
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(0, comma);
    while (!entry.empty() && (entry.front() == ' ' || entry.front() == '\t')) entry.remove_prefix(1);
    while (!entry.empty() && (entry.back() == ' ' || entry.back() == '\t')) entry.remove_suffix(1);
    boost::system::error_code ec;
    asio::ip::make_address(std::string(entry), ec);
    if (ec) break;  // not an address: nothing further left is trustworthy
    client = std::string(entry);
    if (!is_trusted(entry)) break;
  }
  return client;
}

MetricsAccess metrics_access(const Request& request, std::string_view token) {
  if (!token.empty()) {
    auto authorization = request.header("Authorization");
    constexpr std::string_view kScheme = "Bearer ";
    if (authorization.size() < kScheme.size() || !iequals(authorization.substr(0, kScheme.size()), kScheme))
      return MetricsAccess::needs_token;
    auto presented = authorization.substr(kScheme.size());
    // Constant time in the token's content: a wrong guess tells nothing of how close it was.
    unsigned char differ = presented.size() == token.size() ? 0 : 1;
    for (std::size_t i = 0; i < presented.size() && i < token.size(); ++i)
      differ |= static_cast<unsigned char>(presented[i] ^ token[i]);
    return differ == 0 ? MetricsAccess::allowed : MetricsAccess::needs_token;
  }
  for (auto forwarded : {"X-Forwarded-For", "Forwarded", "X-Real-IP"})
    if (!request.header(forwarded).empty()) return MetricsAccess::refused;
  boost::system::error_code ec;
  auto address = asio::ip::make_address(request.client_ip, ec);
  if (ec) return MetricsAccess::refused;
  if (address.is_v6() && address.to_v6().is_v4_mapped())
    address = asio::ip::make_address_v4(asio::ip::v4_mapped, address.to_v6());
  return address.is_loopback() ? MetricsAccess::allowed : MetricsAccess::refused;
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
