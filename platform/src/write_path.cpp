#include "townhall/platform/write_path.hpp"

#include <spdlog/spdlog.h>

#include <optional>

#include "townhall/platform/metrics.hpp"

namespace townhall::db {

WritePath::WritePath(const ModuleDb& database, Writer& writer, std::function<void()> outbox_grew,
                     metrics::Registry* metrics, std::function<void(std::string_view point)> fault_hook)
    : database_(database),
      writer_(writer),
      outbox_grew_(std::move(outbox_grew)),
      fault_hook_(std::move(fault_hook)),
      before_commit_point_(database_.module() + ".group.before_commit"),
      after_commit_point_(database_.module() + ".group.after_commit") {
  if (metrics) {
    commits_ =
        &metrics->counter("townhall_write_commits_total", "Transactions committed by a module's write path", {"module"})
             .with({database_.module()});
    group_sizes_ = &metrics
                        ->histogram("townhall_write_group_commands", "Commands one commit of a write path held",
                                    {"module"}, {1, 2, 4, 8, 16, 32, 64})
                        .with({database_.module()});
  }
}

WritePath::~WritePath() = default;

void WritePath::open() {
  writer_.call([this] {
    service_ = database_.open(Role::service);
    open_ = true;
  });
}

void WritePath::close() {
  writer_.call([this] {
    open_ = false;
    service_.reset();
  });
}

void WritePath::enqueue(std::unique_ptr<PendingCommand> command) {
  std::lock_guard lock(queue_mutex_);
  queue_.push_back(std::move(command));
  if (group_posted_) return;
  group_posted_ = true;
  writer_.post([this] { run_group(); });
}

void WritePath::run_group() {
  std::vector<std::unique_ptr<PendingCommand>> group;
  {
    std::lock_guard lock(queue_mutex_);
    auto take = std::min(queue_.size(), kMaxGroup);
    group.assign(std::make_move_iterator(queue_.begin()), std::make_move_iterator(queue_.begin() + take));
    queue_.erase(queue_.begin(), queue_.begin() + take);
    // What arrives from now on (or did not fit) runs in the next group, after this one.
    group_posted_ = !queue_.empty();
    if (group_posted_) writer_.post([this] { run_group(); });
  }
  auto answer_all = [&] {
    for (auto& command : group) command->answer();
  };
  if (!open_) {
    for (auto& command : group) command->fail(unavailable());
    return answer_all();
  }
  try {
    if (!service_ || service_->generation() != database_.generation()) reopen();
    std::optional<SQLite::Transaction> transaction;
    transaction.emplace(service_->sql(), SQLite::TransactionBehavior::IMMEDIATE);
    const auto appended = service_->events_appended();
    // Each command of a group in a savepoint, so one that fails is undone alone; a
    // command alone needs none (the transaction is its savepoint). Prepared once per
    // connection: these run around every command.
    const bool alone = group.size() == 1;
    bool any_kept = false;
    for (auto& command : group) {
      if (!alone) service_->cached("SAVEPOINT command")->exec();
      bool kept = false;
      try {
        kept = command->execute(*service_);
      } catch (const SQLite::Exception& error) {
        if (is_storage_failure(error)) throw;  // the whole group: the transaction is lost
        command->fail(storage_failed(error));
      } catch (...) {
        command->fail(std::current_exception());  // its own exception, rethrown to its caller
      }
      any_kept = any_kept || kept;
      if (alone) break;
      if (!kept) service_->cached("ROLLBACK TO command")->exec();
      service_->cached("RELEASE command")->exec();
    }
    if (!any_kept) {
      transaction.reset();  // rolled back: nothing to keep, no commit to write or wake anyone for
      return answer_all();
    }
    const bool grew = service_->events_appended() > appended;
    const bool crash_points = fault_hook_ && group.size() > 1;
    if (crash_points) fault_hook_(before_commit_point_);
    transaction->commit();
    if (crash_points) fault_hook_(after_commit_point_);
    database_.note_success(ModuleDb::Access::write);
    if (commits_) commits_->inc();
    if (group_sizes_) group_sizes_->observe(static_cast<double>(group.size()));
    if (grew && outbox_grew_) outbox_grew_();
  } catch (const SQLite::Exception& error) {
    // Nothing of the group was kept (the transaction's destructor rolled back): every
    // command that had succeeded is answered unavailable; its own errors stay.
    auto failure = storage_failed(error);
    for (auto& command : group) command->fail(failure);
  }
  answer_all();
}

void WritePath::reopen() {
  service_.reset();
  service_ = database_.open(Role::service);
}

Error WritePath::unavailable() const {
  return make_error(Errc::unavailable, "the " + database_.module() + " module is unavailable");
}

Error WritePath::storage_failed(const SQLite::Exception& error) {
  if (is_storage_failure(error)) {
    database_.note_failure(ModuleDb::Access::write, error.what());
    service_.reset();  // reopened by the next command
  } else {
    spdlog::error("{}: database write failed: {}", database_.module(), error.what());
  }
  return make_error(Errc::unavailable, "the " + database_.module() + " module's storage failed; try again later");
}

}  // namespace townhall::db
