#include "townhall/platform/writer.hpp"

#include <spdlog/spdlog.h>

#include <future>

#include "townhall/platform/thread_name.hpp"

namespace townhall::db {

Writer::Writer(std::string name) : name_(std::move(name)), work_(io_.get_executor()) {
  thread_ = std::thread([this] {
    name_this_thread("w:" + name_);
    for (;;) {
      try {
        io_.run();
        return;
      } catch (const std::exception& error) {
        // A task must not take the writer down with it.
        spdlog::error("writer {}: task failed: {}", name_, error.what());
      } catch (...) {
        spdlog::error("writer {}: task failed with a non-standard exception", name_);
      }
    }
  });
}

Writer::~Writer() { stop(); }

void Writer::call(const std::function<void()>& task) {
  if (on_writer_thread() || !thread_.joinable()) return task();
  std::promise<void> done;
  auto future = done.get_future();
  post([&task, &done] {
    try {
      task();
      done.set_value();
    } catch (...) {
      done.set_exception(std::current_exception());
    }
  });
  future.get();
}

void Writer::drain() {
  if (!thread_.joinable() || on_writer_thread()) return;
  std::promise<void> done;
  auto future = done.get_future();
  post([&done] { done.set_value(); });
  future.wait();
}

void Writer::stop() {
  if (!thread_.joinable()) return;
  work_.reset();
  if (on_writer_thread()) return;
  thread_.join();
}

}  // namespace townhall::db
