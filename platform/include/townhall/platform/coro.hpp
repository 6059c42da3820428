#pragma once

#include <boost/asio/async_result.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <condition_variable>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

namespace townhall {

// Runs a coroutine to completion on this thread and returns its value (rethrowing its
// exception). For the few places that must wait for an Api call outside a coroutine: a
// bus bootstrap on a writer thread, a module's start, unit tests. Never on a network
// thread.
//
// The io_context is the thread's own and outlives the call: a coroutine that awaited
// work on another thread (a module's writer) is resumed by that thread posting here, and
// destroying the io_context right after run() returned would race with the end of that
// post (ThreadSanitizer reports it). A nested call gets a fresh one.
template <class T>
T run_blocking(boost::asio::awaitable<T> task) {
  thread_local boost::asio::io_context reused;
  thread_local int depth = 0;
  std::optional<boost::asio::io_context> nested;
  boost::asio::io_context& io = depth == 0 ? reused : nested.emplace();
  ++depth;
  struct Leave {
    int& depth;
    ~Leave() { --depth; }
  } leave{depth};
  io.restart();
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

// A one-shot event coroutines on any executor can wait for: set() once, from any thread,
// resumes every waiter on its own executor (waiters arriving later resume at once).
class Latch {
 public:
  void set() {
    std::vector<std::function<void()>> waiters;
    {
      std::lock_guard lock(mutex_);
      if (set_) return;
      set_ = true;
      waiters.swap(waiters_);
    }
    set_cv_.notify_all();
    for (auto& resume : waiters) resume();
  }

  // Blocks this thread until set() (start/stop code, never a network thread).
  void wait_blocking() {
    std::unique_lock lock(mutex_);
    set_cv_.wait(lock, [this] { return set_; });
  }

  boost::asio::awaitable<void> wait() {
    auto executor = co_await boost::asio::this_coro::executor;
    // A named initiation: GCC 12 may destroy a lambda temporary of a co_await twice.
    auto initiation = [this, executor](auto handler) {
      auto shared = std::make_shared<decltype(handler)>(std::move(handler));
      auto resume = [executor, shared] { boost::asio::post(executor, std::move(*shared)); };
      std::unique_lock lock(mutex_);
      if (!set_) {
        waiters_.push_back(std::move(resume));
        return;
      }
      lock.unlock();
      resume();
    };
    co_await boost::asio::async_initiate<decltype(boost::asio::use_awaitable), void()>(std::move(initiation),
                                                                                       boost::asio::use_awaitable);
  }

 private:
  std::mutex mutex_;
  std::condition_variable set_cv_;
  bool set_ = false;
  std::vector<std::function<void()>> waiters_;
};

}  // namespace townhall
