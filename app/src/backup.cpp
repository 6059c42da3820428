// `townhall backup` and `townhall restore`: a backup is a directory holding a consistent
// copy of every file the data directory needs to be whole (each module file, and the key
// that opens auth.db's sealed national ids) and a manifest that lists each with its size,
// SHA-256 and schema; a restore verifies all of that before it installs anything.
#include <SQLiteCpp/Backup.h>
#include <SQLiteCpp/Database.h>
#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "townhall/app/application.hpp"
#include "townhall/auth/module.hpp"
#include "townhall/migrations.hpp"
#include "townhall/platform/data_lock.hpp"
#include "townhall/platform/migrator.hpp"
#include "townhall/platform/time.hpp"

namespace townhall::app {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

constexpr std::string_view kFormat = "townhall-backup/1";
constexpr std::string_view kManifest = "manifest.json";

[[noreturn]] void fail(const std::string& what) { throw std::runtime_error(what); }

std::string hex(const unsigned char* bytes, std::size_t size) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(size * 2);
  for (std::size_t i = 0; i < size; ++i) {
    out.push_back(digits[bytes[i] >> 4]);
    out.push_back(digits[bytes[i] & 15]);
  }
  return out;
}

struct FileDigest {
  std::uintmax_t bytes = 0;
  std::string sha256;
};

FileDigest digest_of(const fs::path& file) {
  if (sodium_init() < 0) fail("libsodium cannot initialize");
  std::ifstream in(file, std::ios::binary);
  if (!in) fail("cannot read " + file.string());
  crypto_hash_sha256_state state;
  crypto_hash_sha256_init(&state);
  std::vector<char> buffer(1 << 16);
  FileDigest out;
  while (in) {
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    auto got = static_cast<std::size_t>(in.gcount());
    crypto_hash_sha256_update(&state, reinterpret_cast<const unsigned char*>(buffer.data()), got);
    out.bytes += got;
  }
  if (in.bad()) fail("cannot read " + file.string());
  unsigned char hash[crypto_hash_sha256_BYTES];
  crypto_hash_sha256_final(&state, hash);
  out.sha256 = hex(hash, sizeof hash);
  return out;
}

void fsync_path(const fs::path& path, int flags) {
  int fd = ::open(path.c_str(), flags | O_CLOEXEC);
  if (fd < 0) fail("cannot open " + path.string() + ": " + std::strerror(errno));
  bool ok = ::fsync(fd) == 0;
  ::close(fd);
  if (!ok) fail("cannot flush " + path.string() + ": " + std::strerror(errno));
}

// Copies `from` to `to` (which must not exist) with mode 0600, flushed to disk.
void copy_private(const fs::path& from, const fs::path& to) {
  std::ifstream in(from, std::ios::binary);
  if (!in) fail("cannot read " + from.string());
  int fd = ::open(to.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) fail("cannot create " + to.string() + ": " + std::strerror(errno));
  std::vector<char> buffer(1 << 16);
  bool ok = true;
  while (ok && in) {
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    auto got = in.gcount();
    ok = got == 0 || ::write(fd, buffer.data(), static_cast<std::size_t>(got)) == got;
  }
  ok = ok && !in.bad() && ::fchmod(fd, 0600) == 0 && ::fsync(fd) == 0;
  ::close(fd);
  if (!ok) {
    fs::remove(to);
    fail("cannot copy " + from.string() + " to " + to.string());
  }
}

// Applied migrations of a module file, by component: what its schema is.
json schema_of(SQLite::Database& database) {
  json out = json::object();
  SQLite::Statement query(database, "SELECT component, name FROM schema_migrations ORDER BY component, version");
  while (query.executeStep()) out[query.getColumn(0).getString()].push_back(query.getColumn(1).getString());
  return out;
}

std::string integrity_of(const fs::path& file) {
  SQLite::Database database(file.string(), SQLite::OPEN_READONLY);
  return database.execAndGet("PRAGMA integrity_check").getString();
}

// One module file through SQLite's backup API: one read transaction, so one consistent
// snapshot while a server may be writing. Returns its manifest entry.
json backup_module_file(const config::Config& config, const config::Module& module, const fs::path& out_dir,
                        std::vector<std::string>& report) {
  auto source_path = config.data_dir / module.db_file;
  auto target = out_dir / module.db_file;
  if (!fs::exists(source_path)) fail("no file " + source_path.string());
  if (fs::exists(target)) fail(target.string() + " exists; not overwritten");
  fs::create_directories(target.parent_path());
  // Written under another name and renamed when complete and checked: a file with the
  // module's name in the backup is always a whole one.
  auto partial = target;
  partial += ".partial";
  fs::remove(partial);
  int pages = 0;
  json schema;
  {
    SQLite::Database source(source_path.string(), SQLite::OPEN_READONLY);
    source.setBusyTimeout(static_cast<int>(config.database.busy_timeout.count()));
    SQLite::Database copy(partial.string(), SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    SQLite::Backup backup(copy, source);
    backup.executeStep(-1);  // every page in one step: one read transaction, one snapshot
    pages = backup.getTotalPageCount();
    std::string check = copy.execAndGet("PRAGMA integrity_check").getString();
    if (check != "ok") {
      fs::remove(partial);
      fail("the copy fails integrity_check: " + check);
    }
    copy.exec("PRAGMA journal_mode=DELETE");  // one self-contained file, no -wal beside it
    schema = schema_of(copy);
  }
  fsync_path(partial, O_RDONLY);
  fs::rename(partial, target);
  auto digest = digest_of(target);
  report.push_back(module.name + ": " + source_path.string() + " -> " + target.string() + " (" + std::to_string(pages) +
                   " pages, " + std::to_string(digest.bytes) + " bytes, integrity ok)");
  return {{"name", module.db_file}, {"kind", "module"},        {"module", module.name},
          {"bytes", digest.bytes},  {"sha256", digest.sha256}, {"schema", schema}};
}

// The files a module needs beside its database: auth's key file.
std::vector<std::pair<std::string, fs::path>> companion_files(const config::Config& config,
                                                              const config::Module& module) {
  if (module.name == "auth") return {{"auth.key", auth::key_file(module.settings, config.data_dir)}};
  return {};
}

json backup_companion(const std::string& module, const std::string& name, const fs::path& source,
                      const fs::path& out_dir, std::vector<std::string>& report) {
  if (!fs::exists(source))
    fail("no key file " + source.string() + ": without it the backup could not read any national id");
  auto target = out_dir / name;
  if (fs::exists(target)) fail(target.string() + " exists; not overwritten");
  copy_private(source, target);
  auto digest = digest_of(target);
  report.push_back(module + ": " + source.string() + " -> " + target.string() + " (key, mode 0600)");
  return {{"name", name}, {"kind", "key"}, {"module", module}, {"bytes", digest.bytes}, {"sha256", digest.sha256}};
}

json read_manifest(const fs::path& dir) {
  auto path = dir / kManifest;
  std::ifstream in(path);
  if (!in) fail(path.string() + " is missing: not a backup made by `townhall backup` (or one it did not finish)");
  json manifest;
  try {
    manifest = json::parse(in);
  } catch (const json::exception& error) {
    fail(path.string() + " is not valid JSON: " + error.what());
  }
  if (!manifest.is_object() || manifest.value("format", "") != kFormat || !manifest.contains("files") ||
      !manifest["files"].is_array())
    fail(path.string() + " is not a " + std::string(kFormat) + " manifest");
  for (const auto& file : manifest["files"]) {
    if (!file.is_object() || !file.contains("name") || !file["name"].is_string() || !file.contains("sha256") ||
        !file.contains("bytes") || !file.contains("module") || !file.contains("kind"))
      fail(path.string() + ": a file entry lacks name, kind, module, bytes or sha256");
    // Names are plain file names: a manifest must not install anything outside the target.
    auto name = file["name"].get<std::string>();
    if (name.empty() || name.find('/') != std::string::npos || name == "." || name == "..")
      fail(path.string() + ": file name '" + name + "' is not a plain file name");
  }
  return manifest;
}

// Every listed file is there, has its size and SHA-256, and (module files) passes
// integrity_check with a schema this binary knows. Appends a line per file.
void verify_files(const fs::path& dir, const json& files, std::vector<std::string>& report) {
  auto known = migrations::embedded_migrations();
  for (const auto& file : files) {
    auto name = file["name"].get<std::string>();
    auto path = dir / name;
    if (!fs::is_regular_file(path)) fail(name + " is listed in the manifest but missing from " + dir.string());
    auto digest = digest_of(path);
    if (digest.bytes != file["bytes"].get<std::uintmax_t>() || digest.sha256 != file["sha256"].get<std::string>())
      fail(name + " does not match the manifest (size or SHA-256 differs): the backup is damaged");
    if (file["kind"] == "module") {
      auto check = integrity_of(path);
      if (check != "ok") fail(name + " fails integrity_check: " + check);
      const auto schema = file.value("schema", json::object());
      for (const auto& [component, names] : schema.items()) {
        std::set<std::string> ours;
        for (const auto& m : db::migrations_for(known, component)) ours.insert(m.name);
        for (const auto& applied : names)
          if (!ours.contains(applied.get<std::string>()))
            fail(name + " has migration " + component + "/" + applied.get<std::string>() +
                 ", which this townhall does not know: the backup was made by a newer version; restore it with "
                 "that version");
      }
    }
    report.push_back("verified " + name + " (" + std::to_string(digest.bytes) + " bytes, sha256 " +
                     digest.sha256.substr(0, 16) + "…)");
  }
}

// Moves `path` (and its -wal, -shm, -journal) into `aside`, creating it; true when
// anything was there.
bool move_aside(const fs::path& path, const fs::path& aside) {
  bool moved = false;
  for (const char* suffix : {"", "-wal", "-shm", "-journal"}) {
    auto file = path;
    file += suffix;
    if (!fs::exists(fs::symlink_status(file))) continue;
    fs::create_directories(aside);
    fs::rename(file, aside / file.filename());
    moved = true;
  }
  return moved;
}

// Installs `from` as `to`: copied beside it under a temporary name, flushed, renamed
// over, and the directory flushed, so a crash leaves the old file or the new one.
void install(const fs::path& from, const fs::path& to) {
  auto temporary = to;
  temporary += ".restoring";
  fs::remove(temporary);
  copy_private(from, temporary);
  fs::rename(temporary, to);
  fsync_path(to.parent_path(), O_RDONLY | O_DIRECTORY);
}

}  // namespace

bool backup_all(const config::Config& config, const fs::path& out_dir, std::vector<std::string>& report) {
  if (fs::exists(out_dir / kManifest)) {
    report.push_back("FAILED: " + (out_dir / kManifest).string() + " exists: " + out_dir.string() +
                     " already holds a backup; not overwritten");
    return false;
  }
  bool ok = true;
  json files = json::array();
  std::vector<std::string> failures;
  // Dependents first, the modules they depend on after (config.modules is in dependency
  // order): a cache's file is copied before its source's, so a restored set never holds a
  // cache ahead of its source. A versioned cache records no ranges (design note 70), and
  // the open's restore check could not see that it ran ahead.
  for (auto it = config.modules.rbegin(); it != config.modules.rend(); ++it) {
    const auto& module = *it;
    try {
      files.push_back(backup_module_file(config, module, out_dir, report));
      for (const auto& [name, source] : companion_files(config, module))
        files.push_back(backup_companion(module.name, name, source, out_dir, report));
    } catch (const std::exception& error) {
      ok = false;
      report.push_back(module.name + ": FAILED: " + error.what());
      failures.push_back(module.name + ": " + error.what());
    }
  }
  if (files.empty()) return false;
  try {
    // The manifest last: its presence says the copy was made, `complete` whether every
    // module's files are in it.
    json manifest = {{"format", kFormat},
                     {"townhall_version", TOWNHALL_VERSION},
                     {"created_at", utc::now()},
                     {"data_dir", fs::absolute(config.data_dir).lexically_normal().string()},
                     {"complete", ok},
                     {"failures", failures},
                     {"files", files}};
    auto partial = out_dir / (std::string(kManifest) + ".partial");
    {
      std::ofstream out(partial, std::ios::trunc);
      out << manifest.dump(2) << "\n";
      if (!out.flush()) fail("cannot write " + partial.string());
    }
    fsync_path(partial, O_RDONLY);
    fs::rename(partial, out_dir / kManifest);
    fsync_path(out_dir, O_RDONLY | O_DIRECTORY);
    // Read back what was written: every file as the manifest says.
    std::vector<std::string> verified;
    verify_files(out_dir, read_manifest(out_dir)["files"], verified);
    report.push_back("manifest: " + (out_dir / kManifest).string() + " (" + std::to_string(files.size()) +
                     " files, verified" + (ok ? "" : "; INCOMPLETE: see the failures above") + ")");
  } catch (const std::exception& error) {
    report.push_back("manifest: FAILED: " + std::string(error.what()));
    return false;
  }
  return ok;
}

std::vector<fs::path> prune_backups(const fs::path& made, int keep_days, std::vector<std::string>& report) {
  std::vector<fs::path> removed;
  const auto parent = fs::absolute(made).lexically_normal().parent_path();
  const auto cutoff = std::chrono::system_clock::now() - std::chrono::hours(24) * keep_days;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(parent, ec)) {
    if (!entry.is_directory() || fs::equivalent(entry.path(), made, ec)) continue;
    // Only what `townhall backup` made: a directory whose manifest says so and when.
    std::ifstream in(entry.path() / kManifest);
    if (!in) continue;
    auto manifest = json::parse(in, nullptr, false);
    if (!manifest.is_object() || manifest.value("format", "") != kFormat) continue;
    auto created = utc::parse(manifest.value("created_at", std::string()));
    if (!created || *created >= cutoff) continue;
    fs::remove_all(entry.path(), ec);
    if (ec) {
      report.push_back("prune: cannot remove " + entry.path().string() + ": " + ec.message());
      continue;
    }
    report.push_back("prune: removed " + entry.path().string() + " (made " + manifest.value("created_at", "") + ")");
    removed.push_back(entry.path());
  }
  return removed;
}

bool restore_backup(const config::Config& config, const RestoreRequest& request, std::vector<std::string>& report) {
  std::vector<std::string> installed;
  try {
    auto manifest = read_manifest(request.from);
    if (request.module && !config.module(*request.module)) fail("no module '" + *request.module + "' in the registry");
    // What to install: every file of the backup, or one module's.
    json chosen = json::array();
    std::set<std::string> modules_in_backup;
    for (const auto& file : manifest["files"]) {
      modules_in_backup.insert(file["module"].get<std::string>());
      if (!request.module || file["module"] == *request.module) chosen.push_back(file);
    }
    if (request.module && chosen.empty()) fail("the backup holds no file of module '" + *request.module + "'");
    if (!request.module) {
      if (!manifest.value("complete", false))
        fail("the backup is incomplete (" + manifest.value("failures", json::array()).dump() +
             "); restore the modules it holds one by one with --module");
      for (const auto& module : config.modules)
        if (!modules_in_backup.contains(module.name))
          fail("the backup holds no file of module '" + module.name + "' that the registry lists");
    }
    verify_files(request.from, chosen, report);

    db::restrict_new_files();
    db::DataDirLock lock(config.data_dir);  // creates it (0700); refuses while a server holds it
    const auto aside = config.data_dir / ("replaced-" + utc::now());
    for (const auto& file : chosen) {
      auto name = file["name"].get<std::string>();
      auto module = file["module"].get<std::string>();
      fs::path target;
      if (file["kind"] == "key") {
        target = auth::key_file(config.module(module)->settings, config.data_dir);
      } else {
        const auto* module_config = config.module(module);
        if (!module_config) fail("the backup's " + name + " belongs to module '" + module + "', not in the registry");
        target = config.data_dir / module_config->db_file;
      }
      fs::create_directories(target.parent_path());
      bool replaced = move_aside(target, aside);
      install(request.from / name, target);
      if (digest_of(target).sha256 != file["sha256"].get<std::string>())
        fail("the installed " + target.string() + " differs from the backup's");
      installed.push_back(target.string());
      report.push_back("restored " + target.string() +
                       (replaced ? " (the file it replaced is in " + aside.string() + ")" : ""));
    }
    report.push_back("restore complete: " + std::to_string(chosen.size()) + " file(s) from " + request.from.string() +
                     " (made " + manifest.value("created_at", std::string("?")) + " by townhall " +
                     manifest.value("townhall_version", std::string("?")) + ") into " + config.data_dir.string() +
                     ". Start the server: caches and sagas catch up from the restored files.");
    return true;
  } catch (const db::DataDirInUse&) {
    throw;
  } catch (const std::exception& error) {
    std::string done;
    for (const auto& file : installed) done += (done.empty() ? "" : ", ") + file;
    report.push_back("FAILED: " + std::string(error.what()) + "; " +
                     (installed.empty() ? "nothing was installed"
                                        : "installed before the failure: " + done +
                                              " (what they replaced is in DATA_DIR/replaced-*)"));
    return false;
  }
}

}  // namespace townhall::app
