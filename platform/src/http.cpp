#include "townhall/platform/http.hpp"

#include <array>
#include <nlohmann/json.hpp>
#include <random>
#include <stdexcept>

namespace townhall {

std::string_view to_string(Principal::Kind kind) { return kind == Principal::Kind::citizen ? "citizen" : "employee"; }

std::string_view to_string(Errc code) {
  switch (code) {
    case Errc::invalid_argument: return "invalid_argument";
    case Errc::unauthorized: return "unauthorized";
    case Errc::forbidden: return "forbidden";
    case Errc::not_found: return "not_found";
    case Errc::conflict: return "conflict";
    case Errc::unprocessable: return "unprocessable";
    case Errc::too_many_requests: return "too_many_requests";
    case Errc::unavailable: return "unavailable";
    case Errc::deadline_exceeded: return "deadline_exceeded";
    case Errc::internal: return "internal";
  }
  return "internal";
}

}  // namespace townhall

namespace townhall::http {
namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Path segments without allocating; paths deeper than kMaxSegments match no route.
constexpr std::size_t kMaxSegments = 32;
struct Segments {
  std::array<std::string_view, kMaxSegments> parts;
  std::size_t count = 0;
  bool overflow = false;
};

Segments split_path(std::string_view path) {
  Segments out;
  std::size_t pos = 0;
  while (pos < path.size()) {
    if (path[pos] == '/') {
      ++pos;
      continue;
    }
    std::size_t end = path.find('/', pos);
    if (end == std::string_view::npos) end = path.size();
    if (out.count == kMaxSegments) {
      out.overflow = true;
      break;
    }
    out.parts[out.count++] = path.substr(pos, end - pos);
    pos = end;
  }
  return out;
}

}  // namespace

std::string_view to_string(Method method) {
  switch (method) {
    case Method::get: return "GET";
    case Method::head: return "HEAD";
    case Method::post: return "POST";
    case Method::put: return "PUT";
    case Method::patch: return "PATCH";
    case Method::del: return "DELETE";
    case Method::options: return "OPTIONS";
    case Method::other: return "OTHER";
  }
  return "OTHER";
}

Method parse_method(std::string_view name) {
  if (name == "GET") return Method::get;
  if (name == "HEAD") return Method::head;
  if (name == "POST") return Method::post;
  if (name == "PUT") return Method::put;
  if (name == "PATCH") return Method::patch;
  if (name == "DELETE") return Method::del;
  if (name == "OPTIONS") return Method::options;
  return Method::other;
}

std::string_view Request::header(std::string_view name) const {
  for (const auto& h : headers)
    if (iequals(h.name, name)) return h.value;
  return {};
}

CallContext Request::call_context() const {
  CallContext context;
  context.principal = principal;
  context.correlation_id = request_id;
  if (principal) {
    constexpr std::string_view scheme = "bearer ";
    auto authorization = header("Authorization");
    if (authorization.size() > scheme.size() && iequals(authorization.substr(0, scheme.size()), scheme)) {
      auto token = authorization.substr(scheme.size());
      while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
      while (!token.empty() && token.back() == ' ') token.remove_suffix(1);
      context.bearer_token = std::string(token);
    }
  }
  return context;
}

std::optional<std::string_view> Request::param(std::string_view name) const {
  for (const auto& [key, value] : path_params)
    if (key == name) return std::string_view(value);
  return std::nullopt;
}

std::optional<std::string> Request::query_param(std::string_view name) const {
  std::string_view rest = query;
  while (!rest.empty()) {
    std::size_t amp = rest.find('&');
    std::string_view pair = rest.substr(0, amp);
    rest = amp == std::string_view::npos ? std::string_view{} : rest.substr(amp + 1);
    std::size_t eq = pair.find('=');
    std::string key = percent_decode(pair.substr(0, eq), true);
    if (key == name) return eq == std::string_view::npos ? std::string() : percent_decode(pair.substr(eq + 1), true);
  }
  return std::nullopt;
}

void Response::set_header(std::string name, std::string value) {
  for (auto& h : headers) {
    if (iequals(h.name, name)) {
      h.value = std::move(value);
      return;
    }
  }
  headers.push_back({std::move(name), std::move(value)});
}

std::string_view Response::header(std::string_view name) const {
  for (const auto& h : headers)
    if (iequals(h.name, name)) return h.value;
  return {};
}

Response json_response(int status, std::string body) {
  Response response;
  response.status = status;
  response.body = std::move(body);
  return response;
}

Response problem(int status, std::string_view slug, std::string_view title, std::string_view detail) {
  nlohmann::json body = {{"type", "/problems/" + std::string(slug)},
                         {"title", std::string(title)},
                         {"status", status},
                         {"detail", std::string(detail)}};
  Response response;
  response.status = status;
  response.content_type = "application/problem+json";
  // Replace invalid UTF-8 rather than throwing: detail may echo client input.
  response.body = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return response;
}

int status_for(Errc code) {
  switch (code) {
    case Errc::invalid_argument: return 400;
    case Errc::unauthorized: return 401;
    case Errc::forbidden: return 403;
    case Errc::not_found: return 404;
    case Errc::conflict: return 409;
    case Errc::unprocessable: return 422;
    case Errc::too_many_requests: return 429;
    case Errc::unavailable: return 503;
    case Errc::deadline_exceeded: return 504;
    case Errc::internal: return 500;
  }
  return 500;
}

Response problem(const Error& error) {
  int status = status_for(error.code);
  std::string slug(to_string(error.code));
  for (auto& c : slug)
    if (c == '_') c = '-';
  auto response = problem(status, slug, reason_phrase(status), error.message);
  if (error.retry_after_seconds > 0) response.set_header("Retry-After", std::to_string(error.retry_after_seconds));
  if (status == 401) response.set_header("WWW-Authenticate", R"(Bearer realm="townhall")");
  return response;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

std::string_view reason_phrase(int status) {
  switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 413: return "Content Too Large";
    case 415: return "Unsupported Media Type";
    case 422: return "Unprocessable Content";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "Error";
  }
}

void Router::add(Method method, std::string pattern, Handler handler, Access access) {
  if (pattern.empty() || pattern.front() != '/')
    throw std::invalid_argument("route pattern must start with '/': " + pattern);
  Route route{method, pattern, {}, std::move(handler), access, {}};
  auto pattern_segments = split_path(pattern);
  if (pattern_segments.overflow) throw std::invalid_argument("route pattern too deep: " + pattern);
  for (std::size_t index = 0; index < pattern_segments.count; ++index) {
    auto part = pattern_segments.parts[index];
    Segment segment;
    if (part.size() >= 2 && part.front() == '{' && part.back() == '}') {
      segment.is_param = true;
      segment.text = std::string(part.substr(1, part.size() - 2));
    } else if (part.find_first_of("{}") != std::string_view::npos) {
      throw std::invalid_argument("malformed route pattern: " + pattern);
    } else {
      segment.text = std::string(part);
    }
    route.segments.push_back(std::move(segment));
  }
  for (const auto& existing : routes_) {
    if (existing.method != method || existing.segments.size() != route.segments.size()) continue;
    bool same = true;
    for (std::size_t i = 0; i < route.segments.size() && same; ++i) {
      const auto& a = existing.segments[i];
      const auto& b = route.segments[i];
      same = a.is_param == b.is_param && (a.is_param || a.text == b.text);
    }
    if (same) throw std::invalid_argument("duplicate route: " + std::string(to_string(method)) + " " + pattern);
  }
  routes_.push_back(std::move(route));
}

std::vector<Router::Entry> Router::entries() const {
  std::vector<Entry> out;
  out.reserve(routes_.size());
  for (const auto& route : routes_) out.push_back({route.method, route.pattern, route.access, route.doc});
  return out;
}

void Router::document(Method method, std::string_view pattern, RouteDoc doc) {
  for (auto& route : routes_)
    if (route.method == method && route.pattern == pattern) {
      route.doc = std::move(doc);
      return;
    }
  throw std::invalid_argument("no route " + std::string(pattern) + " to document");
}

Router::Match Router::match(Method method, std::string_view path,
                            std::vector<std::pair<std::string, std::string>>& params) const {
  Match result;
  auto segments = split_path(path);
  if (segments.overflow) return result;
  const auto& parts = segments.parts;
  for (const auto& route : routes_) {
    if (route.segments.size() != segments.count) continue;
    bool matches = true;
    for (std::size_t i = 0; i < segments.count && matches; ++i)
      matches = route.segments[i].is_param ? !parts[i].empty() : route.segments[i].text == parts[i];
    if (!matches) continue;
    if (route.method == method || (method == Method::head && route.method == Method::get)) {
      params.clear();
      for (std::size_t i = 0; i < segments.count; ++i)
        if (route.segments[i].is_param) params.emplace_back(route.segments[i].text, percent_decode(parts[i]));
      result.outcome = Outcome::found;
      result.handler = &route.handler;
      result.pattern = route.pattern;
      result.access = route.access;
      return result;
    }
    result.outcome = Outcome::method_not_allowed;
    auto name = to_string(route.method);
    if (result.allow.find(name) == std::string::npos) {
      if (!result.allow.empty()) result.allow += ", ";
      result.allow += name;
    }
  }
  return result;
}

std::string percent_decode(std::string_view text, bool plus_as_space) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '%' && i + 2 < text.size()) {
      int hi = hex_value(text[i + 1]);
      int lo = hex_value(text[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
        continue;
      }
    }
    out.push_back(plus_as_space && c == '+' ? ' ' : c);
  }
  return out;
}

std::string generate_request_id() {
  thread_local std::mt19937_64 engine{std::random_device{}()};
  static constexpr char kHex[] = "0123456789abcdef";
  std::uint64_t a = engine(), b = engine();
  std::string id(32, '0');
  for (int i = 0; i < 16; ++i) {
    id[i] = kHex[(a >> (i * 4)) & 0xf];
    id[16 + i] = kHex[(b >> (i * 4)) & 0xf];
  }
  return id;
}

bool is_acceptable_request_id(std::string_view id) {
  if (id.empty() || id.size() > 64) return false;
  for (char c : id) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
              c == '.' || c == ':';
    if (!ok) return false;
  }
  return true;
}

}  // namespace townhall::http
