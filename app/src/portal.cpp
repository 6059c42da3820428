#include "portal.hpp"

#include <nlohmann/json.hpp>
#include <span>
#include <string>

#include "dashboard.hpp"
#include "townhall/platform/embedded.hpp"
#include "townhall/platform/http.hpp"
#include "townhall/platform/schema.hpp"

namespace townhall::app {

std::span<const EmbeddedFile> embedded_portal_files();

namespace {

namespace asio = boost::asio;

const EmbeddedFile& index_file() {
  for (const auto& file : embedded_portal_files())
    if (file.path == "index.html") return file;
  throw std::logic_error("app/portal/index.html is not embedded");
}

// Revenue's currency is the municipality's (tax records and licence fees are in it).
std::string municipal_currency(const config::Config& config) {
  if (const auto* revenue = config.module("revenue"))
    if (auto it = revenue->settings.find("currency"); it != revenue->settings.end() && it->is_string())
      return it->get<std::string>();
  return "USD";
}

std::string_view mime_type(std::string_view path) {
  auto type = embedded_content_type(path);
  return type.substr(0, type.find(';'));
}

}  // namespace

void add_portal_routes(http::Router& router, const config::Config& config, bool demo) {
  if (!config.portal.enabled) return;
  router.add(
      http::Method::get, "/",
      [](http::Request&) -> asio::awaitable<http::Response> { co_return embedded_file_response(index_file()); },
      http::Access::public_route);
  router.document(http::Method::get, "/", {"The service portal (HTML)", "", "", 200, "text/html"});
  for (const auto& file : embedded_portal_files()) {
    if (file.path == "index.html") continue;
    auto path = "/portal/" + std::string(file.path);
    router.add(
        http::Method::get, path,
        [&file](http::Request&) -> asio::awaitable<http::Response> { co_return embedded_file_response(file); },
        http::Access::public_route);
    router.document(http::Method::get, path,
                    {"The service portal's " + std::string(file.path), "", "", 200, std::string(mime_type(file.path))});
  }

  auto settings = nlohmann::json{
      {"time_zone", config.portal.time_zone},
      {"currency", municipal_currency(config)},
      {"demo", demo}}.dump();
  router.add(
      http::Method::get, "/portal/settings.json",
      [settings](http::Request&) -> asio::awaitable<http::Response> {
        co_return embedded_file_response(EmbeddedFile{"settings.json", settings});
      },
      http::Access::public_route);
  namespace s = schema;
  router.document(
      http::Method::get, "/portal/settings.json",
      {"What the service portal formats with: the municipality's time zone and currency, and "
       "whether the server runs its demo",
       "", s::text(s::object({{"time_zone", s::string()}, {"currency", s::string()}, {"demo", s::boolean()}})), 200,
       "application/json"});
}

}  // namespace townhall::app
