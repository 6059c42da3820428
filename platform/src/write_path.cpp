#include "townhall/platform/write_path.hpp"

#include <spdlog/spdlog.h>

namespace townhall::db {

std::int64_t outbox_head(Connection& connection) {
  auto query = connection.cached("SELECT coalesce(max(id), 0) FROM outbox");
  query->executeStep();
  auto head = query->getColumn(0).getInt64();
  query->reset();
  return head;
}

WritePath::WritePath(const ModuleDb& database, Writer& writer, std::function<void()> outbox_grew)
    : database_(database), writer_(writer), outbox_grew_(std::move(outbox_grew)) {}

WritePath::~WritePath() = default;

void WritePath::open() {
  writer_.call([this] { service_ = database_.open(Role::service); });
}

void WritePath::close() {
  writer_.call([this] { service_.reset(); });
}

Error WritePath::unavailable() const {
  return make_error(Errc::unavailable, "the " + database_.module() + " module is unavailable");
}

Error WritePath::storage_failed(const std::exception& error) const {
  spdlog::error("{}: database write failed: {}", database_.module(), error.what());
  return make_error(Errc::unavailable, "the " + database_.module() + " module's storage failed; try again later");
}

}  // namespace townhall::db
