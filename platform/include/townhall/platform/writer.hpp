#pragma once

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <functional>
#include <string>
#include <thread>
#include <type_traits>

namespace townhall::db {

// The one thread that writes a module's file. Request handlers and event consumers of
// the module both run their write transactions here, so SQLite never sees two writers
// of one file (no busy-waiting on the write lock) and group commit comes naturally.
class Writer {
 public:
  explicit Writer(std::string name);
  ~Writer();
  Writer(const Writer&) = delete;
  Writer& operator=(const Writer&) = delete;

  void post(std::function<void()> task) { boost::asio::post(io_, std::move(task)); }

  // Runs `task` on the writer thread; the caller's coroutine resumes on its own executor.
  template <class F>
  boost::asio::awaitable<std::invoke_result_t<F>> run(F task) {
    static_assert(
        std::is_trivially_destructible_v<F>,
        "Writer::run: capture by reference ([&]), not by value (GCC 12 coroutine argument bug: write_path.hpp)");
    using R = std::invoke_result_t<F>;
    co_return co_await boost::asio::co_spawn(
        io_.get_executor(), [task = std::move(task)]() mutable -> boost::asio::awaitable<R> { co_return task(); },
        boost::asio::use_awaitable);
  }

  // Runs `task` on the writer thread and waits for it, rethrowing what it throws; runs it
  // in place when called on the writer thread. For start/stop, not for request paths.
  void call(const std::function<void()>& task);

  // Blocks until every task posted before this call has run (not from the writer thread).
  void drain();
  // Finishes queued tasks, then stops the thread. Idempotent.
  void stop();

  boost::asio::io_context& context() { return io_; }
  bool on_writer_thread() const { return std::this_thread::get_id() == thread_.get_id(); }
  const std::string& name() const { return name_; }

 private:
  std::string name_;
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  std::thread thread_;
};

}  // namespace townhall::db
