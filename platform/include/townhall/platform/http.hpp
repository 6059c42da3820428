#pragma once

#include <boost/asio/awaitable.hpp>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "townhall/platform/principal.hpp"
#include "townhall/platform/result.hpp"

namespace townhall::http {

enum class Method { get, head, post, put, patch, del, options, other };

std::string_view to_string(Method method);
Method parse_method(std::string_view name);

struct Header {
  std::string name;
  std::string value;
};

// A parsed HTTP request, independent of Beast so module code and its tests do not pull
// in the network stack.
struct Request {
  Method method = Method::get;
  std::string target;  // as sent: path and query
  std::string path;    // path as sent (still percent-encoded), without the query
  std::string query;   // raw query string, without '?'
  std::vector<Header> headers;
  std::string body;
  std::string client_ip;
  std::string request_id;
  std::vector<std::pair<std::string, std::string>> path_params;  // percent-decoded
  std::string_view route;                                        // matched route pattern, for metrics and logs
  std::shared_ptr<const Principal> principal;  // set by the gateway from the bearer token; null: anonymous

  // The context of Api calls made on behalf of this request (principal, request id).
  CallContext call_context() const;

  // Case-insensitive header lookup; empty when absent.
  std::string_view header(std::string_view name) const;
  std::optional<std::string_view> param(std::string_view name) const;
  // First value of a query parameter, percent-decoded.
  std::optional<std::string> query_param(std::string_view name) const;
};

struct Response {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<Header> headers;
  bool close = false;  // close the connection after this response

  void set_header(std::string name, std::string value);
  std::string_view header(std::string_view name) const;
};

Response json_response(int status, std::string body);

// application/problem+json (RFC 9457). `type` is a short slug ("not-found") that is
// expanded to "/problems/<slug>". Never put SQL, paths or stack traces in `detail`.
Response problem(int status, std::string_view slug, std::string_view title, std::string_view detail);

// The one place that maps an Error to its problem+json response.
Response problem(const Error& error);
int status_for(Errc code);

std::string_view reason_phrase(int status);

// ASCII case-insensitive equality (header names, tokens such as transfer codings).
bool iequals(std::string_view a, std::string_view b);

using Handler = std::function<boost::asio::awaitable<Response>(Request&)>;

// Who may reach a route. Routes are signed_in unless registered otherwise, so a route
// that forgets to say is closed, not open. Public routes still get the principal when
// the request carries a valid token.
enum class Access { signed_in, public_route };

// What /openapi.json says about a route beyond its method, path and access: a summary
// and JSON Schemas (as JSON text) of its request body and success response.
struct RouteDoc {
  std::string summary;
  std::string request_schema;   // empty: any JSON object (or no body)
  std::string response_schema;  // empty: a JSON object
  int status = 200;             // the success status
  std::string content_type = "application/json";
};

// Method + path router with {name} path parameters.
class Router {
 public:
  enum class Outcome { found, not_found, method_not_allowed };

  struct Match {
    Outcome outcome = Outcome::not_found;
    const Handler* handler = nullptr;
    std::string_view pattern;
    Access access = Access::signed_in;
    std::string allow;  // for 405: the methods the path does accept
  };

  // Throws std::invalid_argument on a malformed pattern or a duplicate route.
  void add(Method method, std::string pattern, Handler handler, Access access = Access::signed_in);

  // Fills request.path_params on success.
  Match match(Method method, std::string_view path, std::vector<std::pair<std::string, std::string>>& params) const;

  std::size_t size() const { return routes_.size(); }

  // What is registered, in registration order (the API inventory: tests, docs).
  struct Entry {
    Method method;
    std::string pattern;
    Access access;
    RouteDoc doc;
  };
  std::vector<Entry> entries() const;
  // Attaches `doc` to a registered route; throws std::invalid_argument when there is none.
  void document(Method method, std::string_view pattern, RouteDoc doc);

 private:
  struct Segment {
    std::string text;
    bool is_param = false;
  };
  struct Route {
    Method method;
    std::string pattern;
    std::vector<Segment> segments;
    Handler handler;
    Access access;
    RouteDoc doc;
  };
  std::vector<Route> routes_;
};

std::string percent_decode(std::string_view text, bool plus_as_space = false);
std::string generate_request_id();
bool is_acceptable_request_id(std::string_view id);

}  // namespace townhall::http
