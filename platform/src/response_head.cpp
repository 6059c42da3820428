#include "response_head.hpp"

#include <array>
#include <boost/beast/http/status.hpp>

namespace townhall::http {
namespace {

struct DefaultHeader {
  std::string_view name;
  std::string_view value;
};

// Every answer may carry personal data or a token unless its handler says otherwise: no
// shared or browser cache keeps it, and no browser sniffs its type. Nothing this server
// answers is a page to frame, run scripts in or leak a URL from (the dashboard's pages
// set their own strict policy).
constexpr std::array<DefaultHeader, 4> kEveryAnswer{{
    {"Cache-Control", "no-store"},
    {"X-Content-Type-Options", "nosniff"},
    {"Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'"},
    {"Referrer-Policy", "no-referrer"},
}};

bool is_framing_header(std::string_view name) {
  return iequals(name, "Content-Length") || iequals(name, "Transfer-Encoding") || iequals(name, "Connection");
}

void append_field(std::string& out, std::string_view name, std::string_view value) {
  out += name;
  out += ": ";
  for (char c : value)
    if (static_cast<unsigned char>(c) >= 0x20 || c == '\t') out += c;  // no CR, LF or NUL
  out += "\r\n";
}

}  // namespace

std::string response_head(const Response& response, const ResponseFraming& framing) {
  const auto overridden = [&](std::string_view name) {
    for (const auto& header : response.headers)
      if (iequals(header.name, name)) return true;
    return false;
  };
  std::string out;
  out.reserve(320 + 64 * response.headers.size());
  out += framing.version == 10 ? "HTTP/1.0 " : "HTTP/1.1 ";
  out += std::to_string(response.status);
  out += ' ';
  out += boost::beast::http::obsolete_reason(static_cast<boost::beast::http::status>(response.status));
  out += "\r\n";
  if (!overridden("Server")) append_field(out, "Server", "townhall");
  if ((!response.body.empty() || response.status != 204) && !overridden("Content-Type"))
    append_field(out, "Content-Type", response.content_type);
  if (!overridden("X-Request-Id")) append_field(out, "X-Request-Id", framing.request_id);
  for (const auto& header : kEveryAnswer)
    if (!overridden(header.name)) append_field(out, header.name, header.value);
  for (const auto& header : response.headers)
    if (!is_framing_header(header.name)) append_field(out, header.name, header.value);
  const bool bodiless_status = response.status / 100 == 1 || response.status == 204 || response.status == 304;
  if (!bodiless_status) append_field(out, "Content-Length", std::to_string(response.body.size()));
  if (framing.version == 10 && framing.keep_alive)
    out += "Connection: keep-alive\r\n";
  else if (framing.version != 10 && !framing.keep_alive)
    out += "Connection: close\r\n";
  out += "\r\n";
  return out;
}

}  // namespace townhall::http
