#include "dashboard.hpp"

#include <span>
#include <string>

#include "townhall/platform/embedded.hpp"
#include "townhall/platform/http.hpp"

namespace townhall::app {

std::span<const EmbeddedFile> embedded_dashboard_files();

namespace {

namespace asio = boost::asio;

constexpr std::string_view kPolicy =
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

}  // namespace

std::string_view embedded_content_type(std::string_view path) {
  if (path.ends_with(".html")) return "text/html; charset=utf-8";
  if (path.ends_with(".js")) return "text/javascript; charset=utf-8";
  if (path.ends_with(".css")) return "text/css; charset=utf-8";
  if (path.ends_with(".svg")) return "image/svg+xml";
  if (path.ends_with(".json")) return "application/json";
  return "application/octet-stream";
}

http::Response embedded_file_response(const EmbeddedFile& file) {
  http::Response response;
  response.content_type = std::string(embedded_content_type(file.path));
  response.body = std::string(file.contents);
  response.set_header("Content-Security-Policy", std::string(kPolicy));
  // The binary is the version: a browser revalidates, never runs a stale script.
  response.set_header("Cache-Control", "no-cache");
  return response;
}

namespace {

const EmbeddedFile* find_file(std::string_view path) {
  for (const auto& file : embedded_dashboard_files())
    if (file.path == path) return &file;
  return nullptr;
}

}  // namespace

void add_dashboard_routes(http::Router& router) {
  router.add(
      http::Method::get, "/admin/",
      [](http::Request&) -> asio::awaitable<http::Response> {
        co_return embedded_file_response(*find_file("index.html"));
      },
      http::Access::public_route);
  for (const auto& file : embedded_dashboard_files()) {
    if (file.path == "index.html") continue;
    router.add(
        http::Method::get, "/admin/" + std::string(file.path),
        [&file](http::Request&) -> asio::awaitable<http::Response> { co_return embedded_file_response(file); },
        http::Access::public_route);
  }
  router.document(http::Method::get, "/admin/", {"The operator dashboard (HTML)", "", "", 200, "text/html"});
  for (const auto& file : embedded_dashboard_files())
    if (file.path != "index.html")
      router.document(
          http::Method::get, "/admin/" + std::string(file.path),
          {"The operator dashboard's " + std::string(file.path), "", "", 200,
           std::string(embedded_content_type(file.path).substr(0, embedded_content_type(file.path).find(';')))});
}

}  // namespace townhall::app
