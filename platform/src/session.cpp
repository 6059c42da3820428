// One connection's requests: each read (its framing checked before any body byte),
// dispatched, answered, counted and logged; then the connection closed, lingering
// while a refused body is still arriving.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <boost/asio/write.hpp>
#include <nlohmann/json.hpp>
#include <optional>

#include "request_framing.hpp"
#include "response_head.hpp"
#include "server_impl.hpp"
#include "townhall/platform/logging.hpp"

namespace townhall::http {

namespace {

// How long and how much a refused request's body is drained before closing, and how
// long a pause in it ends the draining (nginx's lingering_time and lingering_timeout).
constexpr std::chrono::seconds kLingerTime{5};
constexpr std::chrono::milliseconds kLingerPause{1000};
constexpr std::size_t kLingerBytes = 64 * 1024 * 1024;

bool is_parse_error(const boost::system::error_code& ec) {
  return ec.category() == bhttp::make_error_code(bhttp::error::bad_target).category();
}

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

}  // namespace

asio::awaitable<void> Server::Impl::serve(std::shared_ptr<Session> session) {
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
        response = protocol_error(400, "malformed-request", "the request is not valid HTTP/1.1: " + read_ec.message());
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

    std::size_t body_size = response.body.size();
    const auto head_bytes = response_head(response, {version, keep_alive, head, request.request_id});
    // Counted before the write, so a client that has its answer also sees it counted.
    double seconds = std::chrono::duration<double>(Clock::now() - started).count();
    record(read_ec || framing ? Method::other : request.method, request.route, response.status, seconds);

    session->last_active = Clock::now().time_since_epoch().count();
    session->expires_after(options.write_timeout);
    const std::array<asio::const_buffer, 2> answer{asio::buffer(head_bytes),
                                                   asio::buffer(response.body.data(), head ? 0 : body_size)};
    auto [write_ec, written] = co_await asio::async_write(stream, answer, kTuple);
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

void Server::Impl::record(Method method, std::string_view route, int status, double seconds) {
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

Response Server::Impl::protocol_error(int status, std::string_view slug, std::string_view detail) {
  Response response = problem(status, slug, reason_phrase(status), detail);
  response.close = true;
  return response;
}

Request Server::Impl::convert(bhttp::request<bhttp::string_body>& message, std::vector<Header> header_fields,
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

void Server::Impl::log_access(const std::string& client_ip, std::string_view method, std::string_view path, int status,
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

}  // namespace townhall::http
