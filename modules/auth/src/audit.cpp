// The audit log through the API and its retention (issue 26 §4): GET /audit for
// administrators and auditors, and a daily job that exports the rows older than
// audit_retention_days to a dated JSON-lines file (fsync'd) before deleting them.
#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <boost/asio/as_tuple.hpp>
#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>

#include "routes.hpp"
#include "service_internal.hpp"
#include "townhall/platform/json.hpp"
#include "townhall/platform/time.hpp"

namespace townhall::auth {
namespace {

// Rows per transaction of the retention job: each batch is exported, then deleted.
constexpr int kPruneBatch = 5000;

Result<Unit> sync_fd(int fd, const std::filesystem::path& path) {
  if (::fsync(fd) != 0)
    return make_error(Errc::unavailable, "cannot fsync " + path.string() + ": " + std::strerror(errno));
  return Unit{};
}

// Appends `rows` to `file` (created 0600 with its directory when missing) and fsyncs it,
// and its directory when the file is new, so the rows are on disk before they are deleted.
Result<Unit> append_lines(const std::filesystem::path& file, const std::vector<store::AuditRow>& rows) {
  std::error_code error;
  std::filesystem::create_directories(file.parent_path(), error);
  if (error)
    return make_error(Errc::unavailable, "cannot create " + file.parent_path().string() + ": " + error.message());
  const bool existed = std::filesystem::exists(file, error);
  int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) return make_error(Errc::unavailable, "cannot open " + file.string() + ": " + std::strerror(errno));
  std::string text;
  for (const auto& row : rows) text += audit_json(row).dump() + "\n";
  std::size_t written = 0;
  while (written < text.size()) {
    auto n = ::write(fd, text.data() + written, text.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      auto why = std::string(std::strerror(errno));
      ::close(fd);
      return make_error(Errc::unavailable, "cannot write " + file.string() + ": " + why);
    }
    written += static_cast<std::size_t>(n);
  }
  auto synced = sync_fd(fd, file);
  ::close(fd);
  if (!synced) return synced;
  if (!existed) {
    int dir = ::open(file.parent_path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir < 0) return make_error(Errc::unavailable, "cannot open " + file.parent_path().string());
    auto dir_synced = sync_fd(dir, file.parent_path());
    ::close(dir);
    if (!dir_synced) return dir_synced;
  }
  return Unit{};
}

}  // namespace

Result<AuditList> AuthService::list_audit(const CallContext& context, const AuditQuery& query, input::Page page) {
  const auto& principal = context.principal;
  if (!principal || !(principal->has("auth:admin") || principal->has("audit:read")))
    return make_error(Errc::forbidden, "needs permission audit:read (or auth:admin)");
  if (query.from && query.to && *query.from > *query.to)
    return make_error(Errc::invalid_argument, "query parameter 'from' is after 'to'");
  store::AuditFilter filter;
  if (query.actor_id) filter.actor = store::subject_of(query.actor_kind, *query.actor_id);
  if (query.citizen_id) filter.subject = store::subject_of(Principal::Kind::citizen, *query.citizen_id);
  filter.action = query.action;
  if (query.from) filter.from = utc::format(*query.from);
  if (query.to) filter.to = utc::format(*query.to);
  return read_page(
      page, PagedQuery<store::AuditRow>{"auth.audit", "staff",
                                        [&](db::Connection& reader, const std::optional<PageAfter>& after, int limit) {
                                          return store::list_audit(reader, filter, after, limit);
                                        },
                                        [&](db::Connection& reader) { return store::count_audit(reader, filter); },
                                        [](const store::AuditRow& row) { return row.at; }});
}

boost::asio::awaitable<Result<std::int64_t>> AuthService::prune_audit(std::chrono::system_clock::time_point now) {
  if (auto ok = usable(); !ok) co_return ok.error();
  const auto before = utc::format(now - std::chrono::days(settings_.audit_retention_days));
  const auto day = utc::format(now).substr(0, 10);
  const auto file = audit_export_dir_ / ("audit-" + day + ".jsonl");
  auto exported = [&file](const std::vector<store::AuditRow>& rows) { return append_lines(file, rows); };
  std::int64_t total = 0;
  while (deps_.gate.is_open()) {
    auto pruned = co_await writes_.run(
        [&](db::Connection& service) { return commands::prune_audit(service, before, kPruneBatch, exported); });
    if (!pruned) co_return pruned.error();
    total += *pruned;
    if (*pruned < kPruneBatch) break;
  }
  if (total > 0)
    spdlog::info("auth: {} audit rows older than {} exported to {} and deleted", total, before, file.string());
  co_return total;
}

boost::asio::awaitable<void> AuthService::retention_loop() {
  auto done = retention_done_;
  while (deps_.gate.is_open()) {
    auto pruned = co_await prune_audit(std::chrono::system_clock::now());
    if (!pruned) spdlog::warn("auth: audit retention job: {}", pruned.error().message);
    if (!deps_.gate.is_open()) break;
    retention_timer_->expires_after(pruned ? std::chrono::hours(24) : std::chrono::hours(1));
    co_await retention_timer_->async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
  }
  done->set();
}

}  // namespace townhall::auth
