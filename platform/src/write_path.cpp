#include "townhall/platform/write_path.hpp"

#include <spdlog/spdlog.h>

namespace townhall::db {

WritePath::WritePath(const ModuleDb& database, Writer& writer, std::function<void()> outbox_grew)
    : database_(database), writer_(writer), outbox_grew_(std::move(outbox_grew)) {}

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
