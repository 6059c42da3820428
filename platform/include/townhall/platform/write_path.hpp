#pragma once

#include <SQLiteCpp/Transaction.h>

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "townhall/platform/db.hpp"
#include "townhall/platform/result.hpp"
#include "townhall/platform/writer.hpp"

// A module's one way to change its file (docs/modules.md). Commands are synchronous
// functions `Result<T>(db::Connection& service, ...)` that run inside the caller's
// transaction; this is the caller: one IMMEDIATE transaction per command, committed when
// the command returns a value and rolled back when it returns an Error or throws, and
// the bus woken when the commit grew the outbox. Request paths use WritePath::run (on
// the module's writer thread); the CLI and the demo seed use run_in_transaction on a
// connection of their own; the bus runs event handlers (saga steps) in its own
// transaction, so the same command serves all of them.
namespace townhall::metrics {
class Counter;
class Histogram;
class Registry;
}  // namespace townhall::metrics

namespace townhall::db {

template <class F>
auto run_in_transaction(Connection& connection, F&& command, const std::function<void()>& outbox_grew)
    -> std::invoke_result_t<F, Connection&> {
  SQLite::Transaction transaction(connection.sql(), SQLite::TransactionBehavior::IMMEDIATE);
  const auto appended = connection.events_appended();
  auto result = command(connection);
  if (!result) return result;  // the transaction's destructor rolls back
  const bool grew = connection.events_appended() > appended;
  transaction.commit();
  if (grew && outbox_grew) outbox_grew();
  return result;
}

// A command waiting on the write path for the next group commit (WritePath::run).
class PendingCommand {
 public:
  virtual ~PendingCommand() = default;
  // Runs the command on `service` inside the group's transaction; true when it returned
  // a value (kept), false when it returned an Error. Throws what the command throws.
  virtual bool execute(Connection& service) = 0;
  // Its answer instead of what it returned: its own exception, or an Error (a storage
  // failure of the group, the path closed).
  virtual void fail(std::exception_ptr error) = 0;
  virtual void fail(Error error) = 0;
  // Hands the answer to the waiting caller, on the caller's executor.
  virtual void answer() = 0;
};

class WritePath {
 public:
  // `outbox_grew` wakes the bus (Bus::notify for this module). With `metrics`, the path
  // counts its commits and the commands each one held. `fault_hook` (crash tests only)
  // is called at "<module>.group.before_commit" and "<module>.group.after_commit" around
  // the commit of a group holding two or more commands (none of them answered yet).
  WritePath(const ModuleDb& database, Writer& writer, std::function<void()> outbox_grew,
            metrics::Registry* metrics = nullptr, std::function<void(std::string_view point)> fault_hook = {});
  ~WritePath();
  WritePath(const WritePath&) = delete;
  WritePath& operator=(const WritePath&) = delete;

  // Opens the service connection on the writer thread; throws when the file cannot be used.
  void open();
  // Closes it; commands then answer unavailable.
  void close();

  // The most commands one transaction holds (group commit).
  static constexpr std::size_t kMaxGroup = 64;

  // Runs `command` on the writer thread with group commit (issue 24 §2): commands that
  // queue while the writer is busy run together in one IMMEDIATE transaction, each in a
  // savepoint, so one that returns an Error or throws is rolled back alone and answered
  // alone, and every other is answered only after the commit that holds it. The bus is
  // woken once per commit that grew the outbox. A storage failure (I/O, a full disk,
  // corruption, a locked or missing file) is recorded on the ModuleDb (the module
  // reports itself down) and answers every command of the group `unavailable` (none of
  // them is kept); the next group reopens the connection. A boundary violation (a
  // programming error) is rethrown to its caller.
  template <class F>
  boost::asio::awaitable<std::invoke_result_t<F, Connection&>> run(F command) {
    // GCC 12 destroys a coroutine's by-value argument twice when it owns memory (a lambda
    // capturing a std::string by value frees it twice). Capture by reference: the caller's
    // frame outlives the command, which it awaits.
    static_assert(std::is_trivially_destructible_v<F>,
                  "WritePath::run: capture by reference ([&]), not by value (GCC 12 coroutine argument bug)");
    using R = std::invoke_result_t<F, Connection&>;
    co_return co_await boost::asio::async_initiate<decltype(boost::asio::use_awaitable), void(std::exception_ptr, R)>(
        [this, command = std::move(command)](auto handler) mutable {
          enqueue(std::make_unique<Command<R, F, decltype(handler)>>(std::move(command), std::move(handler)));
        },
        boost::asio::use_awaitable);
  }

  // The same alone in its own transaction, waited for from any thread (start-time
  // maintenance, not request paths).
  template <class F>
  auto call(F command) -> std::invoke_result_t<F, Connection&> {
    std::invoke_result_t<F, Connection&> out;
    writer_.call([&] { out = run_here(command); });
    return out;
  }

 private:
  template <class R, class F, class Handler>
  class Command final : public PendingCommand {
   public:
    Command(F command, Handler handler)
        : command_(std::move(command)),
          handler_(std::move(handler)),
          caller_(boost::asio::prefer(boost::asio::get_associated_executor(handler_),
                                      boost::asio::execution::outstanding_work.tracked)) {}
    bool execute(Connection& service) override {
      result_ = command_(service);
      return static_cast<bool>(*result_);
    }
    void fail(std::exception_ptr error) override {
      result_.reset();
      error_ = std::move(error);
    }
    void fail(Error error) override {
      if (!result_ || *result_) result_.emplace(std::move(error));  // a command's own Error stays
    }
    void answer() override {
      boost::asio::post(
          caller_, [handler = std::move(handler_), error = std::move(error_), result = std::move(result_)]() mutable {
            std::move(handler)(error, result ? std::move(*result) : R{});
          });
    }

   private:
    F command_;
    Handler handler_;
    // The caller's executor, kept busy while its command waits (its io_context does not
    // run out of work and return while a coroutine waits for the writer).
    decltype(boost::asio::prefer(std::declval<boost::asio::associated_executor_t<Handler>>(),
                                 boost::asio::execution::outstanding_work.tracked)) caller_;
    std::optional<R> result_;
    std::exception_ptr error_;
  };

  // Queues a command and makes sure a group will run it (on the writer thread).
  void enqueue(std::unique_ptr<PendingCommand> command);
  // On the writer thread: takes up to kMaxGroup queued commands and runs them as one group.
  void run_group();

  template <class F>
  auto run_here(F& command) -> std::invoke_result_t<F, Connection&> {
    if (!open_) return unavailable();
    try {
      if (!service_ || service_->generation() != database_.generation()) reopen();
      auto result = run_in_transaction(*service_, command, outbox_grew_);
      if (result) database_.note_success(ModuleDb::Access::write);
      return result;
    } catch (const BoundaryViolation&) {
      throw;
    } catch (const SQLite::Exception& error) {
      return storage_failed(error);
    }
  }
  void reopen();
  Error unavailable() const;
  Error storage_failed(const SQLite::Exception& error);

  const ModuleDb& database_;
  Writer& writer_;
  std::function<void()> outbox_grew_;
  std::unique_ptr<Connection> service_;  // writer thread only
  bool open_ = false;                    // writer thread only: between open() and close()

  std::mutex queue_mutex_;
  std::vector<std::unique_ptr<PendingCommand>> queue_;  // guarded by queue_mutex_
  bool group_posted_ = false;                           // guarded: a run_group is on the writer's queue

  std::function<void(std::string_view point)> fault_hook_;
  std::string before_commit_point_, after_commit_point_;
  metrics::Counter* commits_ = nullptr;
  metrics::Histogram* group_sizes_ = nullptr;
};

}  // namespace townhall::db
