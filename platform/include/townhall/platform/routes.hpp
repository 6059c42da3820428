#pragma once

#include <boost/asio/awaitable.hpp>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "townhall/platform/http.hpp"
#include "townhall/platform/input.hpp"
#include "townhall/platform/json.hpp"
#include "townhall/platform/result.hpp"
#include "townhall/platform/schema.hpp"

// What every module's routes.cpp does after it has parsed a request and called its
// service: the answer as a response. For routes.cpp files only (it pulls in nlohmann's
// JSON); module headers include http.hpp.
namespace townhall::routes {

// What a route handler returns.
using Reply = boost::asio::awaitable<http::Response>;

// Router handlers calling member functions of one shared handler object (a module's
// `Routes`, which holds its service): router.add(..., bind(&Routes::me)). A handler may
// take, after the request, what every route of its kind reads first:
//  - the {id} path parameter: bind(&Routes::get_permit, "no such permit") answers 404
//    with that detail, without calling the handler, when the segment cannot be an id;
//  - the page of a list (?cursor= ?page_size= ?include=total, input::parse_page): 400
//    when malformed.
template <class Handlers>
class MemberBinder {
 public:
  using Plain = Reply (Handlers::*)(http::Request&);
  using WithId = Reply (Handlers::*)(http::Request&, std::int64_t id);
  using WithPage = Reply (Handlers::*)(http::Request&, input::Page page);

  explicit MemberBinder(std::shared_ptr<Handlers> handlers) : handlers_(std::move(handlers)) {}

  http::Handler operator()(Plain method) const {
    return [handlers = handlers_, method](http::Request& request) { return ((*handlers).*method)(request); };
  }
  http::Handler operator()(WithId method, std::string no_such) const {
    return [handlers = handlers_, method, no_such = std::move(no_such)](http::Request& request) {
      return call_with_id(handlers, method, no_such, request);
    };
  }
  http::Handler operator()(WithPage method) const {
    return [handlers = handlers_, method](http::Request& request) { return call_with_page(handlers, method, request); };
  }

 private:
  // Coroutines taking their arguments by value, so nothing they use lives in a lambda.
  static Reply call_with_id(std::shared_ptr<Handlers> handlers, WithId method, std::string no_such,
                            http::Request& request) {
    auto id = input::path_id(request, no_such);
    if (!id) co_return http::problem(id.error());
    co_return co_await ((*handlers).*method)(request, *id);
  }
  static Reply call_with_page(std::shared_ptr<Handlers> handlers, WithPage method, http::Request& request) {
    auto page = input::parse_page(request);
    if (!page) co_return http::problem(page.error());
    co_return co_await ((*handlers).*method)(request, *page);
  }

  std::shared_ptr<Handlers> handlers_;
};

template <class Handlers>
MemberBinder<Handlers> member_binder(std::shared_ptr<Handlers> handlers) {
  return MemberBinder<Handlers>(std::move(handlers));
}

// A module's routes under its prefix, each added with what /openapi.json says of it
// (issue 13, item 5; AuthorizationMatrix checks every success answer against it): the
// summary, the request and response schemas (a null one documents none) and the
// success status.
class RouteTable {
 public:
  RouteTable(http::Router& router, std::string prefix) : router_(router), docs_(router, prefix), prefix_(prefix) {}

  // A route for signed-in callers (the service then says who may).
  void add(http::Method method, const std::string& path, http::Handler handler, std::string summary,
           const schema::Json& request, const schema::Json& response, int status = 200) const;
  // A route anyone may call.
  void add_public(http::Method method, const std::string& path, http::Handler handler, std::string summary,
                  const schema::Json& request, const schema::Json& response, int status = 200) const;

 private:
  http::Router& router_;
  schema::RouteDocs docs_;
  std::string prefix_;
};

// An optional "currency" field of a body: an ISO 4217 code such as "USD".
std::optional<std::string> optional_currency(input::Body& body);

// The service's answer: `status` with to_json(value), or its problem.
template <class T, class ToJson>
http::Response answer(const Result<T>& result, ToJson&& to_json, int status = 200) {
  if (!result) return http::problem(result.error());
  return json_body(status, to_json(result.value()));
}

// One page of a list (an input::Listed or the like) as listed_json shows it, or the problem.
template <class List, class ToJson>
http::Response answer_page(const Result<List>& result, ToJson&& to_json) {
  if (!result) return http::problem(result.error());
  return json_body(200, listed_json(result.value(), to_json));
}

// 201 Created with `body` and a Location header.
http::Response created_at(std::string location, const nlohmann::json& body);

// A resource POSTed to the request's collection path: 201 with to_json(value) and
// Location <path>/<id>, or the problem.
template <class T, class ToJson>
http::Response created(const http::Request& request, const Result<T>& result, ToJson&& to_json) {
  if (!result) return http::problem(result.error());
  return created_at(request.path + "/" + std::to_string(result.value().id), to_json(result.value()));
}

// 204 No Content, or the problem.
http::Response no_content(const Result<Unit>& result);

}  // namespace townhall::routes
