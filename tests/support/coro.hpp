#pragma once

#include "townhall/platform/coro.hpp"

namespace townhall::testing {

// Unit tests call awaitable service functions without a server.
template <class T>
T run_awaitable(boost::asio::awaitable<T> task) {
  return run_blocking(std::move(task));
}

}  // namespace townhall::testing
