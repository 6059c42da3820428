#pragma once

#include <SQLiteCpp/Transaction.h>

#include <boost/asio/awaitable.hpp>
#include <functional>
#include <memory>
#include <string>
#include <type_traits>

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

class WritePath {
 public:
  // `outbox_grew` wakes the bus (Bus::notify for this module).
  WritePath(const ModuleDb& database, Writer& writer, std::function<void()> outbox_grew);
  ~WritePath();
  WritePath(const WritePath&) = delete;
  WritePath& operator=(const WritePath&) = delete;

  // Opens the service connection on the writer thread; throws when the file cannot be used.
  void open();
  // Closes it; commands then answer unavailable.
  void close();

  // Runs `command` on the writer thread in one transaction (run_in_transaction). A
  // storage failure (I/O, a full disk, corruption, a locked or missing file) is recorded
  // on the ModuleDb (the module reports itself down) and answered `unavailable`; the
  // next command reopens the connection. A boundary violation (a programming error)
  // propagates.
  template <class F>
  boost::asio::awaitable<std::invoke_result_t<F, Connection&>> run(F command) {
    using R = std::invoke_result_t<F, Connection&>;
    co_return co_await writer_.run([this, command = std::move(command)]() mutable -> R { return run_here(command); });
  }

  // The same, waited for from any thread (start-time maintenance, not request paths).
  template <class F>
  auto call(F command) -> std::invoke_result_t<F, Connection&> {
    std::invoke_result_t<F, Connection&> out;
    writer_.call([&] { out = run_here(command); });
    return out;
  }

 private:
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
};

}  // namespace townhall::db
