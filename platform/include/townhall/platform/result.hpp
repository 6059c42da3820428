#pragma once

#include <cassert>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace townhall {

// Expected failure categories. They mirror what a remote call can answer, so an Api
// implemented over HTTP later maps onto the same codes.
enum class Errc {
  invalid_argument,   // 400
  unauthorized,       // 401
  forbidden,          // 403
  not_found,          // 404
  conflict,           // 409
  unprocessable,      // 422
  too_many_requests,  // 429
  unavailable,        // 503
  deadline_exceeded,  // 504
  internal,           // 500
};

std::string_view to_string(Errc code);

struct Error {
  Errc code = Errc::internal;
  std::string message;
  int retry_after_seconds = 0;  // > 0: when to try again (429, 503)
};

// Result<T>: a value or an Error. Expected outcomes travel as values; exceptions are
// reserved for the exceptional (I/O failure, corruption, programming errors).
template <class T>
class [[nodiscard]] Result {
 public:
  // Default: an internal error. Exists because asio::co_spawn needs default-constructible
  // results; real code always returns a value or an Error.
  Result() : state_(std::in_place_index<1>, Error{Errc::internal, "no result", 0}) {}
  Result(T value) : state_(std::in_place_index<0>, std::move(value)) {}
  Result(Error error) : state_(std::in_place_index<1>, std::move(error)) {}

  bool ok() const { return state_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & {
    assert(ok());
    return std::get<0>(state_);
  }
  const T& value() const& {
    assert(ok());
    return std::get<0>(state_);
  }
  T&& value() && {
    assert(ok());
    return std::get<0>(std::move(state_));
  }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() { return value(); }

  const Error& error() const {
    assert(!ok());
    return std::get<1>(state_);
  }

 private:
  std::variant<T, Error> state_;
};

struct Unit {};

inline Error make_error(Errc code, std::string message, int retry_after_seconds = 0) {
  return Error{code, std::move(message), retry_after_seconds};
}

}  // namespace townhall
