// The gateway and HTTP server over a real loopback socket (issue: foundation).
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fstream>
#include <nlohmann/json.hpp>

#include "server_fixture.hpp"

namespace townhall {
namespace {

using namespace std::chrono_literals;
using testing::HttpResponse;
using testing::RawConnection;
using testing::TempDir;
using testing::TestServer;

void add_echo_route(app::Application& application) {
  application.router().add(
      http::Method::get, "/test/echo/{name}",
      [](http::Request& request) -> boost::asio::awaitable<http::Response> {
        nlohmann::json body = {{"name", *request.param("name")}};
        co_return http::json_response(200, body.dump());
      },
      http::Access::public_route);
  application.router().add(
      http::Method::post, "/test/echo",
      [](http::Request& request) -> boost::asio::awaitable<http::Response> {
        co_return http::json_response(200, std::to_string(request.body.size()));
      },
      http::Access::public_route);
  // Registered without saying who may call it: closed to anonymous callers.
  application.router().add(
      http::Method::get, "/test/private",
      [](http::Request&) -> boost::asio::awaitable<http::Response> { co_return http::json_response(200, "{}"); });
}

class HttpServerTest : public ::testing::Test {
 protected:
  TempDir dir_;
};

TEST_F(HttpServerTest, RoutesWithPathParameters) {
  TestServer server(testing::test_config(dir_.path()), add_echo_route);
  auto response = server.get("/test/echo/hello%20world");
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(nlohmann::json::parse(response.body)["name"], "hello world");
  EXPECT_EQ(response.header("content-type"), "application/json");
}

TEST_F(HttpServerTest, RoutesAreSignedInUnlessDeclaredPublic) {
  TestServer server(testing::test_config(dir_.path()), add_echo_route);
  auto anonymous = server.get("/test/private");
  EXPECT_EQ(anonymous.status, 401);
  EXPECT_EQ(anonymous.header("content-type"), "application/problem+json");
  EXPECT_EQ(anonymous.header("www-authenticate"), R"(Bearer realm="townhall")");
  auto forged = testing::http_request(server.port(), "GET", "/test/private", {},
                                      {"Authorization: Bearer AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"});
  EXPECT_EQ(forged.status, 401);
  // A public route ignores a bad token rather than refusing the request.
  auto public_route = testing::http_request(server.port(), "GET", "/test/echo/x", {}, {"Authorization: Bearer nope"});
  EXPECT_EQ(public_route.status, 200);
}

TEST_F(HttpServerTest, UnknownPathIs404ProblemJson) {
  TestServer server(testing::test_config(dir_.path()));
  auto response = server.get("/nope");
  EXPECT_EQ(response.status, 404);
  EXPECT_EQ(response.header("content-type"), "application/problem+json");
  auto body = nlohmann::json::parse(response.body);
  EXPECT_EQ(body["status"], 404);
  EXPECT_EQ(body["title"], "Not Found");
}

TEST_F(HttpServerTest, WrongMethodIs405WithAllow) {
  TestServer server(testing::test_config(dir_.path()));
  auto response = testing::http_request(server.port(), "DELETE", "/healthz");
  EXPECT_EQ(response.status, 405);
  EXPECT_EQ(response.header("allow"), "GET");
  EXPECT_EQ(response.header("content-type"), "application/problem+json");
}

TEST_F(HttpServerTest, OversizeBodyIs413AndNothingReachesTheHandler) {
  TestServer server(testing::test_config(dir_.path()), add_echo_route);
  RawConnection connection(server.port());
  // Declared length over the limit: refused from the headers alone.
  connection.send("POST /test/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n\r\n");
  auto response = connection.read_response();
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 413);
  EXPECT_EQ(response->header("content-type"), "application/problem+json");
  EXPECT_TRUE(connection.wait_closed());

  // Chunked body that grows past the limit.
  RawConnection chunked(server.port());
  std::string chunk(64 * 1024, 'a');
  std::string request = "POST /test/echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
  chunked.send(request);
  for (int i = 0; i < 20; ++i) {
    char size[16];
    std::snprintf(size, sizeof size, "%zx\r\n", chunk.size());
    if (!chunked.send(size + chunk + "\r\n")) break;
  }
  auto chunked_response = chunked.read_response();
  ASSERT_TRUE(chunked_response);
  EXPECT_EQ(chunked_response->status, 413);

  // Exactly at the limit is fine.
  auto ok = testing::http_request(server.port(), "POST", "/test/echo", std::string(1024 * 1024, 'x'));
  EXPECT_EQ(ok.status, 200);
  EXPECT_EQ(ok.body, std::to_string(1024 * 1024));
}

// A client that sends its whole oversized body before reading still reads the 413: the
// server drains what it refused (bounded) instead of closing on unread bytes, which
// would reset the connection and lose the answer (issue 13, item 7).
TEST_F(HttpServerTest, AClientSendingAnOversizedBodyWholeStillReadsThe413) {
  TestServer server(testing::test_config(dir_.path()), add_echo_route);
  RawConnection connection(server.port());
  const std::size_t size = 8 * 1024 * 1024;
  ASSERT_TRUE(
      connection.send("POST /test/echo HTTP/1.1\r\nHost: x\r\nContent-Length: " + std::to_string(size) + "\r\n\r\n"));
  std::string chunk(256 * 1024, 'b');
  bool sent_all = true;
  for (std::size_t sent = 0; sent < size; sent += chunk.size()) sent_all = sent_all && connection.send(chunk);
  EXPECT_TRUE(sent_all) << "the server reset the connection while the body was being sent";
  auto response = connection.read_response();
  ASSERT_TRUE(response) << "no answer: the refusal was lost";
  EXPECT_EQ(response->status, 413);
  EXPECT_TRUE(connection.wait_closed());
}

// Behind a reverse proxy (server.trusted_proxies) the rate limit counts the client the
// proxy names in X-Forwarded-For; from anyone else the header is ignored, so a client
// cannot dodge the limit by inventing addresses (issue 13, item 7).
TEST_F(HttpServerTest, TheRateLimitSeesTheClientBehindATrustedProxyOnly) {
  auto limited = [&](std::vector<http::Network> trusted) {
    auto config = testing::test_config(dir_.path());
    config.server.rate_limit = {.enabled = true, .requests_per_second = 0.001, .burst = 2};
    config.server.http.trusted_proxies = std::move(trusted);
    return config;
  };
  auto from = [](unsigned short port, const std::string& client) {
    return testing::http_request(port, "GET", "/healthz", {}, {"X-Forwarded-For: " + client}).status;
  };
  {
    TestServer server(limited({*http::parse_network("127.0.0.1/32")}));
    EXPECT_EQ(from(server.port(), "203.0.113.7"), 200);
    EXPECT_EQ(from(server.port(), "203.0.113.7"), 200);
    EXPECT_EQ(from(server.port(), "203.0.113.7"), 429);
    EXPECT_EQ(from(server.port(), "203.0.113.8"), 200);  // another client behind the proxy
  }
  {
    TestServer server(limited({}));
    EXPECT_EQ(from(server.port(), "203.0.113.7"), 200);
    EXPECT_EQ(from(server.port(), "203.0.113.8"), 200);
    EXPECT_EQ(from(server.port(), "203.0.113.9"), 429);  // all one client: the peer
  }
}

// The resident memory of this process (the server runs in it), in bytes.
std::size_t resident_bytes() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line))
    if (line.starts_with("VmRSS:")) return std::stoul(line.substr(6)) * 1024;
  return 0;
}

const std::string kChunkedEcho = "POST /test/echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";

// A chunk-size line (its extensions) and the trailer section are counted by neither the
// header nor the body limit; Beast's parser waits for each to end while the server reads
// on. Each has a limit of its own (issue 21 §3.1).
TEST_F(HttpServerTest, AChunkLineOrATrailerBeyondItsLimitIsRefused) {
  TestServer server(testing::test_config(dir_.path()), add_echo_route);
  const std::string long_value(256 * 1024, 'e');
  struct Case {
    std::string body;
    int status;
  };
  for (const auto& [body, status] :
       std::vector<Case>{{"3;ext=" + long_value + "\r\nabc\r\n0\r\n\r\n", 400},
                         {"3\r\nabc\r\n4;ext=" + long_value + "\r\nabcd\r\n0\r\n\r\n", 400},
                         {"3\r\nabc\r\n0;ext=" + long_value + "\r\n\r\n", 400},
                         {"3\r\nabc\r\n0\r\nX-Pad: " + long_value + "\r\n\r\n", 431},
                         {"3\r\nabc\r\n0\r\n" +
                              [] {
                                std::string many;
                                for (int i = 0; i < 4000; ++i) many += "X-T" + std::to_string(i) + ": v\r\n";
                                return many;
                              }() +
                              "\r\n",
                          431}}) {
    RawConnection connection(server.port());
    connection.send(kChunkedEcho + body);
    auto response = connection.read_response();
    ASSERT_TRUE(response) << status;
    EXPECT_EQ(response->status, status) << body.substr(0, 16);
    EXPECT_EQ(response->header("content-type"), "application/problem+json");
    EXPECT_EQ(response->header("connection"), "close");
    EXPECT_TRUE(connection.wait_closed());
  }
  // Within the limits: extensions are ignored, the connection stays open.
  RawConnection fine(server.port());
  fine.send(kChunkedEcho + "3;name=value;flag\r\nabc\r\n0;last=1\r\nX-Checksum: 1\r\n\r\n");
  auto answer = fine.read_response();
  ASSERT_TRUE(answer);
  EXPECT_EQ(answer->status, 200);
  EXPECT_EQ(answer->body, "3");
  fine.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
  auto next = fine.read_response();
  ASSERT_TRUE(next);
  EXPECT_EQ(next->status, 200);
}

// Beast adds trailer fields to the message's header fields; the server does not pass them
// on as header fields (RFC 9110 §6.5.1): a proxy that checks headers only must not be
// bypassed by a trailer.
TEST_F(HttpServerTest, TrailerFieldsAreNotTakenForHeaderFields) {
  TestServer server(testing::test_config(dir_.path()), add_echo_route);
  RawConnection connection(server.port());
  connection.send(kChunkedEcho + "3\r\nabc\r\n0\r\nX-Request-Id: from-the-trailer\r\n\r\n");
  auto response = connection.read_response();
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 200);
  EXPECT_NE(response->header("x-request-id"), "from-the-trailer");
  EXPECT_EQ(response->header("x-request-id").size(), 32u);
}

// Several connections each sending an endless chunk-size line: the server's memory stays
// flat (before the limit, each held all it had read until the read timeout).
TEST_F(HttpServerTest, EndlessChunkFramingDoesNotGrowTheServersMemory) {
  TestServer server(testing::test_config(dir_.path()), add_echo_route);
  const std::size_t per_connection = 32 * 1024 * 1024;
  const std::string piece(64 * 1024, 'e');
  std::vector<std::unique_ptr<RawConnection>> connections;
  auto before = resident_bytes();
  for (int i = 0; i < 4; ++i) {
    auto& connection = connections.emplace_back(std::make_unique<RawConnection>(server.port()));
    bool open = connection->send(kChunkedEcho + "1;ext=");
    for (std::size_t sent = 0; open && sent < per_connection; sent += piece.size()) open = connection->send(piece);
  }
  auto after = resident_bytes();
  EXPECT_LT(after, before + 24 * 1024 * 1024)
      << "resident memory grew from " << before / 1024 << " KiB to " << after / 1024 << " KiB";
  EXPECT_EQ(server.get("/healthz").status, 200);
}

TEST_F(HttpServerTest, OversizeHeadersAre431) {
  TestServer server(testing::test_config(dir_.path()));
  RawConnection connection(server.port());
  connection.send("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(20 * 1024, 'h') + "\r\n\r\n");
  auto response = connection.read_response();
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 431);
  EXPECT_EQ(response->header("content-type"), "application/problem+json");
  EXPECT_FALSE(response->header("x-request-id").empty());
}

TEST_F(HttpServerTest, MalformedRequestLineIs400) {
  TestServer server(testing::test_config(dir_.path()));
  for (std::string garbage : {"GARBAGE\r\n\r\n", "GET /healthz HTTP/9.9\r\n\r\n", "GET  HTTP/1.1\r\n\r\n",
                              "\x01\x02\x03 / HTTP/1.1\r\n\r\n"}) {
    RawConnection connection(server.port());
    connection.send(garbage);
    auto response = connection.read_response();
    ASSERT_TRUE(response) << garbage;
    EXPECT_EQ(response->status, 400) << garbage;
    EXPECT_EQ(response->header("content-type"), "application/problem+json");
    EXPECT_TRUE(connection.wait_closed());
  }
  // The server is still fine afterwards.
  EXPECT_EQ(server.get("/healthz").status, 200);
}

// RFC 9112 §6.3: a Transfer-Encoding other than a lone final "chunked" makes the body's
// length ambiguous; the answer is 400 (501 for a known coding we do not decode) and the
// connection closes, so the bytes after the headers are never read as a request.
TEST_F(HttpServerTest, UnacceptableTransferEncodingClosesTheConnection) {
  TestServer server(testing::test_config(dir_.path()), add_echo_route);
  const std::string smuggled = "GET /test/echo/smuggled HTTP/1.1\r\nHost: x\r\n\r\n";
  struct Case {
    std::string headers;
    int status;
  };
  for (const auto& [headers, status] :
       std::vector<Case>{{"Transfer-Encoding: xchunked\r\n", 400},
                         {"Transfer-Encoding: chunked, identity\r\n", 400},
                         {"Transfer-Encoding: gzip, chunked\r\n", 501},
                         {"Transfer-Encoding: foo, chunked\r\n", 400},
                         {"Transfer-Encoding: chunked, chunked\r\n", 400},
                         {"Transfer-Encoding: gzip\r\n", 400},
                         {"Transfer-Encoding: \r\n", 400},
                         {"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n", 400},
                         {"Transfer-Encoding: x\r\nTransfer-Encoding: chunked\r\n", 400}}) {
    RawConnection connection(server.port());
    connection.send("POST /test/echo HTTP/1.1\r\nHost: x\r\n" + headers + "\r\n0\r\n\r\n" + smuggled);
    auto response = connection.read_response();
    ASSERT_TRUE(response) << headers;
    EXPECT_EQ(response->status, status) << headers;
    EXPECT_EQ(response->header("content-type"), "application/problem+json") << headers;
    EXPECT_EQ(response->header("connection"), "close") << headers;
    // Nothing after it is answered: the server closes without a second response.
    EXPECT_FALSE(connection.read_response(500ms)) << headers;
    EXPECT_TRUE(connection.wait_closed()) << headers;
  }
  // HTTP/1.0 with Transfer-Encoding is refused too.
  RawConnection old(server.port());
  old.send("POST /test/echo HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n");
  auto refused = old.read_response();
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 400);
  // A plain chunked body still works, case-insensitively, and keeps the connection.
  RawConnection chunked(server.port());
  chunked.send("POST /test/echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n" +
               smuggled);
  auto first = chunked.read_response();
  ASSERT_TRUE(first);
  EXPECT_EQ(first->status, 200);
  EXPECT_EQ(first->body, "3");
  auto second = chunked.read_response();
  ASSERT_TRUE(second);
  EXPECT_EQ(second->status, 200);
}

// RFC 9112 §5.2: a field continued on the next line (obs-fold) is refused, in every
// field: Beast joins the lines, a proxy in front may not, and for the framing fields
// that is request smuggling (issue 28 §1). The connection closes, so what follows the
// header is never read as a request.
TEST_F(HttpServerTest, AFoldedHeaderFieldIsRefusedAndClosesTheConnection) {
  TestServer server(testing::test_config(dir_.path()), add_echo_route);
  const std::string smuggled = "GET /test/echo/smuggled HTTP/1.1\r\nHost: x\r\n\r\n";
  for (const auto& [headers, body] : std::vector<std::pair<std::string, std::string>>{
           {"Transfer-Encoding:\r\n chunked\r\n", "3\r\nabc\r\n0\r\n\r\n"},
           {"Transfer-Encoding: chunked\r\n\t, identity\r\n", "3\r\nabc\r\n0\r\n\r\n"},
           {"Transfer-Encoding: gzip,\r\n chunked\r\n", "0\r\n\r\n"},
           {"Transfer-Encoding:\r\n chunked\r\n", ""},
           {"Content-Length:\r\n 3\r\n", "abc"},
           {"Content-Length: 3\r\n \r\n", "abc"},
           {"Content-Length:\r\n\t0\r\n", ""},
           {"X-Note: first\r\n  second\r\n", ""}}) {
    RawConnection connection(server.port());
    connection.send("POST /test/echo HTTP/1.1\r\nHost: x\r\n" + headers + "\r\n" + body + smuggled);
    auto response = connection.read_response();
    ASSERT_TRUE(response) << headers;
    EXPECT_EQ(response->status, 400) << headers;
    EXPECT_EQ(response->header("content-type"), "application/problem+json") << headers;
    EXPECT_EQ(response->header("connection"), "close") << headers;
    EXPECT_FALSE(connection.read_response(500ms)) << headers;
    EXPECT_TRUE(connection.wait_closed()) << headers;
  }
  // A fold that arrives in pieces is found too.
  RawConnection pieces(server.port());
  pieces.send("POST /test/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n");
  ASSERT_FALSE(pieces.read_response(200ms));
  pieces.send(" \r\n\r\nabc");
  auto refused = pieces.read_response();
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 400);
  // Spaces and tabs inside a value, and CRLF in a body, are no fold.
  RawConnection fine(server.port());
  fine.send("POST /test/echo HTTP/1.1\r\nHost: x\r\nX-Note: a \t b\r\nContent-Length: 4\r\n\r\n\r\n \t");
  auto answer = fine.read_response();
  ASSERT_TRUE(answer);
  EXPECT_EQ(answer->status, 200);
  EXPECT_EQ(answer->body, "4");
}

TEST_F(HttpServerTest, EveryResponseForbidsCachingAndSniffing) {
  TestServer server(testing::test_config(dir_.path()), add_echo_route);
  for (const auto& target :
       {"/healthz", "/readyz", "/metrics", "/test/echo/x", "/test/private", "/nowhere", "/api/v1/auth/me"}) {
    auto response = server.get(target);
    EXPECT_EQ(response.header("x-content-type-options"), "nosniff") << target;
    EXPECT_EQ(response.header("cache-control"), "no-store") << target;
    EXPECT_EQ(response.header("content-security-policy"), "default-src 'none'; frame-ancestors 'none'") << target;
    EXPECT_EQ(response.header("referrer-policy"), "no-referrer") << target;
  }
  RawConnection connection(server.port());
  connection.send("GARBAGE\r\n\r\n");
  auto refused = connection.read_response();
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->header("x-content-type-options"), "nosniff");
}

TEST_F(HttpServerTest, TheDashboardsFilesCarryAStrictPolicy) {
  TestServer server(testing::test_config(dir_.path()));
  const std::string policy =
      "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; "
      "base-uri 'none'; form-action 'self'; frame-ancestors 'none'";
  for (auto [target, type] :
       {std::pair{"/admin/", "text/html; charset=utf-8"}, std::pair{"/admin", "text/html; charset=utf-8"},
        std::pair{"/admin/dashboard.js", "text/javascript; charset=utf-8"},
        std::pair{"/admin/dashboard.css", "text/css; charset=utf-8"},
        std::pair{"/admin/favicon.svg", "image/svg+xml"}}) {
    auto response = server.get(target);
    EXPECT_EQ(response.status, 200) << target;  // public: the files hold no data
    EXPECT_EQ(response.header("content-type"), type) << target;
    EXPECT_EQ(response.header("content-security-policy"), policy) << target;
    EXPECT_EQ(response.header("x-content-type-options"), "nosniff") << target;
    EXPECT_EQ(response.header("referrer-policy"), "no-referrer") << target;
    EXPECT_EQ(response.header("cache-control"), "no-cache") << target;
  }
  // The page runs no inline script or style: everything comes from the files above.
  auto page = server.get("/admin/").body;
  EXPECT_EQ(page.find("<script>"), std::string::npos);
  EXPECT_EQ(page.find("style="), std::string::npos);
  EXPECT_EQ(page.find("<style"), std::string::npos);
  EXPECT_NE(page.find(R"(<script type="module" src="/admin/dashboard.js">)"), std::string::npos);
  EXPECT_EQ(server.get("/admin/nosuch.js").status, 404);
}

TEST_F(HttpServerTest, KeepAliveReusesTheConnection) {
  TestServer server(testing::test_config(dir_.path()));
  RawConnection connection(server.port());
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(connection.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"));
    auto response = connection.read_response();
    ASSERT_TRUE(response) << "request " << i;
    EXPECT_EQ(response->status, 200);
    EXPECT_EQ(response->body, R"({"status":"ok"})");
  }
  // Pipelined requests are answered in order.
  connection.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /nope HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(connection.read_response()->status, 200);
  EXPECT_EQ(connection.read_response()->status, 404);
  // "Connection: close" closes after the response.
  connection.send("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(connection.read_response()->status, 200);
  EXPECT_TRUE(connection.wait_closed());
}

TEST_F(HttpServerTest, RequestIdIsEchoedWhenSaneAndGeneratedOtherwise) {
  TestServer server(testing::test_config(dir_.path()));
  auto echoed = testing::http_request(server.port(), "GET", "/healthz", "", {"X-Request-Id: client-id-123"});
  EXPECT_EQ(echoed.header("x-request-id"), "client-id-123");
  auto replaced = testing::http_request(server.port(), "GET", "/healthz", "", {"X-Request-Id: bad id <script>"});
  EXPECT_EQ(replaced.header("x-request-id").size(), 32u);
  auto generated = server.get("/nope");
  EXPECT_EQ(generated.header("x-request-id").size(), 32u);
}

TEST_F(HttpServerTest, RateLimitAnswers429WithRetryAfter) {
  auto config = testing::test_config(dir_.path());
  config.server.rate_limit = {.enabled = true, .requests_per_second = 0.5, .burst = 3};
  TestServer server(std::move(config));
  for (int i = 0; i < 3; ++i) EXPECT_EQ(server.get("/healthz").status, 200) << i;
  auto limited = server.get("/healthz");
  EXPECT_EQ(limited.status, 429);
  EXPECT_EQ(limited.header("content-type"), "application/problem+json");
  EXPECT_EQ(limited.header("retry-after"), "2");
}

// One client address holding idle connections cannot lock everyone else out: it gets
// max_connections_per_address of them, another client is still served (issue 28 §6).
TEST_F(HttpServerTest, OneAddressCannotTakeEveryConnection) {
  auto config = testing::test_config(dir_.path());
  config.server.http.max_connections = 8;
  config.server.http.max_connections_per_address = 4;
  TestServer server(std::move(config));
  std::vector<std::unique_ptr<RawConnection>> held;
  for (int i = 0; i < 8; ++i) held.push_back(std::make_unique<RawConnection>(server.port(), "127.0.0.1"));
  // The first four are served, the others closed unanswered.
  for (int i = 0; i < 8; ++i) {
    held[i]->send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    auto response = held[i]->read_response();
    EXPECT_EQ(response.has_value(), i < 4) << i;
  }
  RawConnection other(server.port(), "127.0.0.2");
  ASSERT_TRUE(other.connected());
  other.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
  auto response = other.read_response();
  ASSERT_TRUE(response) << "a second client was locked out";
  EXPECT_EQ(response->status, 200);
  // Closing one gives the address a slot back.
  held.front().reset();
  EXPECT_TRUE(testing::wait_until([&] {
    RawConnection again(server.port(), "127.0.0.1");
    again.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    return again.read_response(1s).has_value();
  }));
  RawConnection scrape(server.port(), "127.0.0.4");  // 127.0.0.1 still holds its share
  scrape.send("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
  auto metrics = scrape.read_response();
  ASSERT_TRUE(metrics);
  EXPECT_NE(metrics->body.find("townhall_http_refused_connections_total{reason=\"per_address\"}"), std::string::npos);
}

// At max_connections, the connection idle longest makes room for a new client; one in
// the middle of a request is never closed for it.
TEST_F(HttpServerTest, AtTheLimitTheConnectionIdleLongestMakesRoom) {
  auto config = testing::test_config(dir_.path());
  config.server.http.max_connections = 4;
  TestServer server(std::move(config));
  std::vector<std::unique_ptr<RawConnection>> idle;
  for (int i = 0; i < 3; ++i) {
    idle.push_back(std::make_unique<RawConnection>(server.port(), "127.0.0.1"));
    idle.back()->send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    ASSERT_TRUE(idle.back()->read_response()) << i;
  }
  RawConnection partial(server.port(), "127.0.0.1");  // a request under way: not idle
  partial.send("GET /healthz HTTP/1.1\r\n");
  ASSERT_FALSE(partial.read_response(200ms));
  std::vector<std::unique_ptr<RawConnection>> newcomers;  // kept open: the server stays full
  for (int round = 0; round < 3; ++round) {
    auto& newcomer = *newcomers.emplace_back(std::make_unique<RawConnection>(server.port(), "127.0.0.2"));
    newcomer.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    auto response = newcomer.read_response();
    ASSERT_TRUE(response) << "round " << round << ": refused although idle connections were open";
    EXPECT_EQ(response->status, 200);
    EXPECT_TRUE(idle[round]->wait_closed()) << "round " << round << ": not the one idle longest";
  }
  partial.send("Host: x\r\n\r\n");
  auto finished = partial.read_response();
  ASSERT_TRUE(finished);
  EXPECT_EQ(finished->status, 200);
}

// A trusted proxy carries many clients: it is not held to the per-address share.
TEST_F(HttpServerTest, TrustedProxiesAreExemptFromThePerAddressShare) {
  auto config = testing::test_config(dir_.path());
  config.server.http.max_connections_per_address = 2;
  config.server.http.trusted_proxies = {*http::parse_network("127.0.0.3")};
  TestServer server(std::move(config));
  std::vector<std::unique_ptr<RawConnection>> proxied;
  for (int i = 0; i < 6; ++i) {
    proxied.push_back(std::make_unique<RawConnection>(server.port(), "127.0.0.3"));
    proxied.back()->send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    ASSERT_TRUE(proxied.back()->read_response()) << i;
  }
}

TEST_F(HttpServerTest, IdleConnectionIsClosed) {
  auto config = testing::test_config(dir_.path());
  config.server.http.idle_timeout = 200ms;
  TestServer server(std::move(config));
  RawConnection connection(server.port());
  connection.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_TRUE(connection.read_response());
  EXPECT_TRUE(connection.wait_closed(5s));
}

TEST_F(HttpServerTest, SlowRequestIsCutByTheReadTimeout) {
  auto config = testing::test_config(dir_.path());
  config.server.http.read_timeout = 300ms;
  TestServer server(std::move(config));
  RawConnection connection(server.port());
  connection.send("GET /healthz HTTP/1.1\r\nHo");  // and never the rest
  EXPECT_TRUE(connection.wait_closed(5s));
}

TEST_F(HttpServerTest, OpsEndpoints) {
  TestServer server(testing::test_config(dir_.path()));
  EXPECT_EQ(server.get("/healthz").status, 200);
  auto ready = server.get("/readyz");
  EXPECT_EQ(ready.status, 200);
  auto body = nlohmann::json::parse(ready.body);
  EXPECT_EQ(body["status"], "ready");
  for (auto module : {"auth", "permits", "revenue", "parks"}) EXPECT_EQ(body["modules"][module]["state"], "up");
  auto metrics = server.get("/metrics");
  EXPECT_EQ(metrics.status, 200);
  EXPECT_EQ(metrics.header("content-type"), "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_NE(metrics.body.find("townhall_module_up{module=\"permits\"} 1"), std::string::npos);
  EXPECT_NE(metrics.body.find("townhall_http_requests_total{method=\"GET\",route=\"/readyz\",status=\"200\"} 1"),
            std::string::npos)
      << metrics.body;
}

// /metrics shows login outcomes, admin traffic and dead letters: not for everyone
// (issue 28 §5). Without a token it answers a client on this host that came directly,
// never one through a proxy, so a public listener or a proxy in front does not publish it.
TEST_F(HttpServerTest, WithoutATokenMetricsAreForClientsOnThisHostOnly) {
  auto config = testing::test_config(dir_.path());
  config.server.http.trusted_proxies = {*http::parse_network("127.0.0.1")};
  TestServer server(std::move(config));
  EXPECT_EQ(server.get("/metrics").status, 200);
  for (std::string forwarded : {"X-Forwarded-For: 203.0.113.7", "X-Forwarded-For: 127.0.0.1",
                                "Forwarded: for=203.0.113.7", "X-Real-IP: 203.0.113.7"}) {
    auto response = testing::http_request(server.port(), "GET", "/metrics", {}, {forwarded});
    EXPECT_EQ(response.status, 403) << forwarded;
    EXPECT_EQ(response.header("content-type"), "application/problem+json") << forwarded;
    EXPECT_EQ(response.body.find("townhall_"), std::string::npos) << forwarded;
  }
}

// With server.metrics_token_file, /metrics needs that bearer token, from anywhere.
TEST_F(HttpServerTest, WithATokenMetricsNeedIt) {
  const std::string token(48, 'm');
  auto write_token = [&](const std::string& text, std::filesystem::perms mode) {
    std::filesystem::remove(dir_.path() / "metrics.token");
    std::ofstream(dir_.path() / "metrics.token") << text;
    std::filesystem::permissions(dir_.path() / "metrics.token", mode);
  };
  auto config = testing::test_config(dir_.path());
  config.server.metrics_token_file = "metrics.token";  // relative: to the data dir
  config.server.http.trusted_proxies = {*http::parse_network("127.0.0.1")};
  write_token(token + "\n", std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  {
    TestServer server(config);
    auto anonymous = server.get("/metrics");
    EXPECT_EQ(anonymous.status, 401);
    EXPECT_EQ(anonymous.header("www-authenticate"), R"(Bearer realm="townhall-metrics")");
    EXPECT_EQ(anonymous.body.find("townhall_"), std::string::npos);
    auto scrape = [&](const std::vector<std::string>& headers) {
      return testing::http_request(server.port(), "GET", "/metrics", {}, headers);
    };
    EXPECT_EQ(scrape({"Authorization: Bearer " + std::string(47, 'm')}).status, 401);
    EXPECT_EQ(scrape({"Authorization: Bearer " + token + "m"}).status, 401);
    EXPECT_EQ(scrape({"Authorization: Basic " + token}).status, 401);
    auto scraped = scrape({"Authorization: Bearer " + token});
    EXPECT_EQ(scraped.status, 200);
    EXPECT_NE(scraped.body.find("townhall_module_up"), std::string::npos);
    EXPECT_EQ(scrape({"Authorization: Bearer " + token, "X-Forwarded-For: 203.0.113.7"}).status, 200);
  }
  // A token others can read, or one too short to resist guessing, stops the start.
  write_token(token, std::filesystem::perms::owner_read | std::filesystem::perms::others_read);
  EXPECT_THROW(TestServer{config}, std::runtime_error);
  write_token("short", std::filesystem::perms::owner_read);
  EXPECT_THROW(TestServer{config}, std::runtime_error);
}

// No metric label carries personal data: routes are labelled by pattern, never by path,
// and nothing else a client sends becomes a label.
TEST_F(HttpServerTest, NoMetricLabelCarriesPersonalData) {
  TestServer server(testing::test_config(dir_.path()));
  const std::string email = "maria.private@example.org";
  auto registered = testing::http_request(server.port(), "POST", "/api/v1/auth/register",
                                          nlohmann::json{{"email", email},
                                                         {"password", "a long enough password"},
                                                         {"name", "Maria Private"},
                                                         {"phone", "+1-555-0199"},
                                                         {"national_id", "NID-7734-PRIVATE"}}
                                              .dump());
  ASSERT_EQ(registered.status, 201) << registered.body;
  auto id = std::to_string(nlohmann::json::parse(registered.body)["id"].get<std::int64_t>());
  auto token = testing::login(server.port(), email, "a long enough password");
  ASSERT_FALSE(token.empty());
  EXPECT_EQ(testing::call(server.port(), "GET", "/api/v1/auth/citizens/" + id, {}, token).status, 200);
  EXPECT_EQ(testing::login(server.port(), "someone.else@example.org", "wrong password"), "");
  server.get("/nowhere/" + email);
  server.get("/api/v1/auth/citizens/" + id + "?email=" + email);
  auto metrics = server.get("/metrics").body;
  ASSERT_NE(metrics.find("townhall_auth_logins_total"), std::string::npos);
  for (const std::string& personal : {email, std::string("someone.else"), token, std::string("Maria Private"),
                                      std::string("NID-7734"), std::string("555-0199"), "/citizens/" + id})
    EXPECT_EQ(metrics.find(personal), std::string::npos) << personal;
  EXPECT_EQ(metrics.find('@'), std::string::npos);
}

TEST_F(HttpServerTest, ModuleStatusReadsItsOwnFile) {
  TestServer server(testing::test_config(dir_.path()));
  auto response = server.get("/api/v1/revenue/status");
  ASSERT_EQ(response.status, 200);
  auto body = nlohmann::json::parse(response.body);
  EXPECT_EQ(body["module"], "revenue");
  EXPECT_EQ(body["schema"]["bus"], 7);  // migrations/bus/0007_processed_ranges_keyed.sql
  EXPECT_EQ(body["outbox_head"], 0);
}

TEST_F(HttpServerTest, SigtermFinishesTheInFlightRequest) {
  std::atomic<bool> entered{false};
  auto config = testing::test_config(dir_.path());
  TestServer server(std::move(config), [&](app::Application& application) {
    application.router().add(
        http::Method::get, "/test/slow",
        [&entered](http::Request&) -> boost::asio::awaitable<http::Response> {
          entered = true;
          boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor, 500ms);
          co_await timer.async_wait(boost::asio::use_awaitable);
          co_return http::json_response(200, R"({"slow":true})");
        },
        http::Access::public_route);
  });
  RawConnection idle(server.port());  // an idle keep-alive connection: closed at shutdown
  RawConnection busy(server.port());
  busy.send("GET /test/slow HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_TRUE(testing::wait_until([&] { return entered.load(); }));

  ::kill(::getpid(), SIGTERM);

  auto response = busy.read_response();
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(response->body, R"({"slow":true})");
  EXPECT_EQ(response->header("connection"), "close");
  EXPECT_TRUE(busy.wait_closed());
  EXPECT_TRUE(idle.wait_closed());
  server.app().wait();
  RawConnection after(server.port());
  EXPECT_FALSE(after.connected());  // no longer accepting
}

}  // namespace
}  // namespace townhall
