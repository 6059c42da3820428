// The answer's head as the server writes it (platform/src/response_head.cpp): what every
// answer carries, what a handler may replace, and what it can never set or smuggle in.
#include "response_head.hpp"

#include <gtest/gtest.h>

namespace townhall::http {
namespace {

std::size_t count(const std::string& text, std::string_view needle) {
  std::size_t n = 0;
  for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

TEST(ResponseHead, CarriesTheStatusLineEveryDefaultHeaderAndTheBodysLength) {
  auto response = json_response(200, R"({"status":"ok"})");
  auto head = response_head(response, {11, true, false, "abc123"});
  EXPECT_EQ(head.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << head;
  for (std::string_view line :
       {"Server: townhall\r\n", "Content-Type: application/json\r\n", "X-Request-Id: abc123\r\n",
        "Cache-Control: no-store\r\n", "X-Content-Type-Options: nosniff\r\n",
        "Content-Security-Policy: default-src 'none'; frame-ancestors 'none'\r\n", "Referrer-Policy: no-referrer\r\n",
        "Content-Length: 15\r\n"})
    EXPECT_EQ(count(head, line), 1u) << line << " in\n" << head;
  EXPECT_EQ(head.find("Connection:"), std::string::npos) << "HTTP/1.1 keeps the connection by default";
  EXPECT_EQ(head.substr(head.size() - 4), "\r\n\r\n");
  EXPECT_EQ(count(head, "\r\n\r\n"), 1u);
}

TEST(ResponseHead, SaysCloseOnHttp11AndKeepAliveOnHttp10OnlyWhenItDiffersFromTheDefault) {
  auto response = json_response(404, "{}");
  EXPECT_NE(response_head(response, {11, false, false, "r"}).find("\r\nConnection: close\r\n"), std::string::npos);
  auto http10 = response_head(response, {10, true, false, "r"});
  EXPECT_EQ(http10.rfind("HTTP/1.0 404 Not Found\r\n", 0), 0u) << http10;
  EXPECT_NE(http10.find("\r\nConnection: keep-alive\r\n"), std::string::npos);
  EXPECT_EQ(response_head(response, {10, false, false, "r"}).find("Connection:"), std::string::npos);
}

TEST(ResponseHead, AHandlersHeaderReplacesADefaultButNeverTheFraming) {
  auto response = json_response(200, "<html></html>");
  response.set_header("Content-Security-Policy", "default-src 'self'");
  response.set_header("Cache-Control", "public, max-age=60");
  response.set_header("Content-Length", "999");
  response.set_header("Transfer-Encoding", "chunked");
  response.set_header("Connection", "upgrade");
  auto head = response_head(response, {11, true, false, "r"});
  EXPECT_EQ(count(head, "Content-Security-Policy:"), 1u) << head;
  EXPECT_NE(head.find("Content-Security-Policy: default-src 'self'\r\n"), std::string::npos);
  EXPECT_EQ(count(head, "Cache-Control:"), 1u);
  EXPECT_NE(head.find("Cache-Control: public, max-age=60\r\n"), std::string::npos);
  EXPECT_NE(head.find("Content-Length: 13\r\n"), std::string::npos);
  EXPECT_EQ(count(head, "Content-Length:"), 1u);
  EXPECT_EQ(head.find("Transfer-Encoding"), std::string::npos);
  EXPECT_EQ(head.find("Connection"), std::string::npos);
}

TEST(ResponseHead, AValueCannotEndTheHeaderSectionOrAddAField) {
  Response response;
  response.status = 302;
  response.set_header("Location", "/next\r\nSet-Cookie: session=stolen\r\n\r\n<script>");
  auto head = response_head(response, {11, true, false, "r"});
  EXPECT_EQ(head.find("\r\nSet-Cookie"), std::string::npos) << head;
  EXPECT_NE(head.find("Location: /nextSet-Cookie: session=stolen<script>\r\n"), std::string::npos) << head;
  EXPECT_EQ(count(head, "\r\n\r\n"), 1u);
}

TEST(ResponseHead, NoContentHasNeitherTypeNorLengthAndHeadKeepsTheBodysLength) {
  Response empty;
  empty.status = 204;
  auto head = response_head(empty, {11, true, false, "r"});
  EXPECT_EQ(head.rfind("HTTP/1.1 204 No Content\r\n", 0), 0u);
  EXPECT_EQ(head.find("\r\nContent-Type:"), std::string::npos);
  EXPECT_EQ(head.find("\r\nContent-Length:"), std::string::npos);
  // HEAD: the length of the body a GET would get, which the server does not send.
  auto answer = json_response(200, std::string(1234, 'x'));
  EXPECT_NE(response_head(answer, {11, true, true, "r"}).find("Content-Length: 1234\r\n"), std::string::npos);
}

}  // namespace
}  // namespace townhall::http
