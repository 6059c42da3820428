#pragma once

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <exception>
#include <optional>

namespace townhall {

// Runs a coroutine to completion on a private io_context on this thread and returns its
// value (rethrowing its exception). For the few places that must wait for an Api call
// outside a coroutine: a bus bootstrap on a writer thread, unit tests. Never on a
// network thread.
template <class T>
T run_blocking(boost::asio::awaitable<T> task) {
  boost::asio::io_context io;
  std::optional<T> out;
  std::exception_ptr error;
  boost::asio::co_spawn(io, std::move(task), [&](std::exception_ptr e, T value) {
    error = e;
    if (!e) out.emplace(std::move(value));
  });
  io.run();
  if (error) std::rethrow_exception(error);
  return std::move(*out);
}

}  // namespace townhall
