#include "townhall/platform/consistency.hpp"

#include <SQLiteCpp/Transaction.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "townhall/platform/db.hpp"
#include "townhall/platform/time.hpp"
#include "townhall/platform/writer.hpp"

namespace townhall::consistency {

namespace {

// Deletes the cache rows whose `column` is one of `keys` (ids or text keys) that the
// source no longer has; in the caller's transaction.
template <class Keys>
void erase_rows(db::Connection& sync, const std::string& table, const std::string& column, const Keys& keys) {
  auto erase = sync.prepare("DELETE FROM " + table + " WHERE " + column + " = ?");
  for (const auto& key : keys) {
    erase.bind(1, key);
    erase.exec();
    erase.reset();
  }
}

std::uint64_t mix(std::uint64_t x) {  // splitmix64's finalizer
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

bool plain_identifier(const std::string& name) {
  return !name.empty() &&
         std::all_of(name.begin(), name.end(), [](char c) { return (c >= 'a' && c <= 'z') || c == '_'; });
}

bool plain_identifiers(const std::vector<std::string>& names) {
  return std::all_of(names.begin(), names.end(), plain_identifier);
}

// ", a, b" for a SELECT list.
std::string column_list(const std::vector<std::string>& columns) {
  std::string out;
  for (const auto& column : columns) out += ", " + column;
  return out;
}

// The content hash of a row's columns [first, first + count) as SQLite typed them.
std::uint64_t row_content(SQLite::Statement& row, int first, std::size_t count) {
  ContentHash hash;
  for (int i = first; i < first + static_cast<int>(count); ++i) {
    const auto column = row.getColumn(i);
    if (column.isNull())
      hash.null();
    else if (column.isInteger())
      hash.integer(column.getInt64());
    else if (column.isFloat())
      hash.real(column.getDouble());
    else if (column.isText())
      hash.text(std::string_view(column.getText(), static_cast<std::size_t>(column.getBytes())));
    else
      hash.blob(
          std::string_view(static_cast<const char*>(column.getBlob()), static_cast<std::size_t>(column.getBytes())));
  }
  return hash.value();
}

constexpr std::size_t kListedIds = 100;  // ids per kind in a JSON report

void log_outcome(const CacheReport& report) {
  if (!report.error.empty())
    spdlog::warn("consistency: {} not checked: {}", report.cache, report.error);
  else if (report.missing_count() + report.stale_count() + report.extra_count() > 0)
    spdlog::warn("consistency: {} differs from {}: {} missing, {} stale, {} extra; {} repaired{}", report.cache,
                 report.source, report.missing_count(), report.stale_count(), report.extra_count(), report.repaired,
                 report.full_resync ? " (full resync)" : "");
}

class Run {
 public:
  Run(const Cache& cache, const db::ModuleDb& database, db::Writer& writer, bool repair, Limits limits)
      : cache_(cache), database_(database), writer_(writer), repair_(repair), limits_(limits) {
    report_.cache = cache.module + "." + cache.table;
    report_.source = cache.source;
  }

  boost::asio::awaitable<CacheReport> go() {
    auto started = std::chrono::steady_clock::now();
    try {
      if (!plain_identifier(cache_.table) || !plain_identifier(cache_.id_column) ||
          !plain_identifiers(cache_.content_columns))
        throw std::invalid_argument("cache names must be plain identifiers");
      reader_ = database_.open(db::Role::reader);
      auto source = co_await cache_.from->digest(0, std::numeric_limits<std::int64_t>::max());
      ++report_.digest_calls;
      if (!source) {
        report_.error = cache_.source + " could not answer: " + source.error().message;
      } else {
        auto local = local_digest(0, std::numeric_limits<std::int64_t>::max());
        report_.source_rows = source->count;
        report_.cache_rows = local.count;
        const auto end = std::max(source->max_id, local.max_id) + 1;
        bool finished = co_await walk(0, end, *source);
        if (report_.error.empty()) {
          if (!finished || differences() > full_resync_threshold()) {
            if (repair_) co_await full_resync();
          } else if (repair_ && differences() > 0) {
            co_await resync();
          }
        }
      }
    } catch (const std::exception& error) {
      report_.error = "the check failed: " + std::string(error.what());
    }
    range_.reset();  // finalized before its connection closes
    reader_.reset();
    report_.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    log_outcome(report_);
    co_return report_;
  }

 private:
  std::size_t differences() const { return report_.missing.size() + report_.stale.size() + report_.extra.size(); }
  std::size_t full_resync_threshold() const {
    return std::max<std::size_t>(limits_.full_resync_over, static_cast<std::size_t>(report_.source_rows / 10));
  }

  SQLite::Statement& range_query() {
    if (!range_)
      range_ = std::make_unique<SQLite::Statement>(
          reader_->prepare("SELECT " + cache_.id_column + ", event_version" + column_list(cache_.content_columns) +
                           " FROM " + cache_.table + " WHERE " + cache_.id_column + " >= ? AND " + cache_.id_column +
                           " < ? ORDER BY " + cache_.id_column));
    range_->reset();
    return *range_;
  }

  Digest local_digest(std::int64_t from, std::int64_t to) {
    Digest digest;
    auto& query = range_query();
    query.bind(1, from);
    query.bind(2, to);
    while (query.executeStep())
      add(digest, query.getColumn(0).getInt64(), query.getColumn(1).getInt64(),
          row_content(query, 2, cache_.content_columns.size()));
    query.reset();
    return digest;
  }

  std::vector<Entry> local_entries(std::int64_t from, std::int64_t to) {
    std::vector<Entry> out;
    auto& query = range_query();
    query.bind(1, from);
    query.bind(2, to);
    while (query.executeStep())
      out.push_back({query.getColumn(0).getInt64(), query.getColumn(1).getInt64(),
                     row_content(query, 2, cache_.content_columns.size())});
    query.reset();
    return out;
  }

  // Compares [from, to), whose source digest is `source`; false when it stopped early
  // (an error, or more differences than a targeted repair is worth).
  boost::asio::awaitable<bool> walk(std::int64_t from, std::int64_t to, Digest source) {
    auto local = local_digest(from, to);
    if (source.same(local)) co_return true;
    if (static_cast<std::size_t>(source.count + local.count) <= limits_.leaf_rows || to - from <= 1)
      co_return co_await leaf(from, to);
    const auto mid = from + (to - from) / 2;
    auto left = co_await cache_.from->digest(from, mid);
    ++report_.digest_calls;
    if (!left) {
      report_.error = cache_.source + " could not answer: " + left.error().message;
      co_return false;
    }
    Digest right;
    right.count = source.count - left->count;
    right.hash = source.hash - left->hash;
    if (!co_await walk(from, mid, *left)) co_return false;
    co_return co_await walk(mid, to, right);
  }

  boost::asio::awaitable<bool> leaf(std::int64_t from, std::int64_t to) {
    auto source = co_await cache_.from->entries(from, to);
    ++report_.entry_calls;
    if (!source) {
      report_.error = cache_.source + " could not answer: " + source.error().message;
      co_return false;
    }
    auto local = local_entries(from, to);
    std::size_t i = 0, j = 0;
    while (i < source->size() || j < local.size()) {
      if (j == local.size() || (i < source->size() && (*source)[i].id < local[j].id)) {
        report_.missing.push_back((*source)[i++].id);
      } else if (i == source->size() || local[j].id < (*source)[i].id) {
        report_.extra.push_back(local[j++].id);
      } else {
        const auto& theirs = (*source)[i];
        if (theirs.version != local[j].version || theirs.content != local[j].content) {
          report_.stale.push_back(local[j].id);
          // Stored over the cache row: it is newer than the source's (the source was
          // restored from an older backup), or as new with other content (damaged).
          if (local[j].version >= theirs.version) forced_.insert(local[j].id);
        }
        ++i;
        ++j;
      }
    }
    co_return differences() <= full_resync_threshold();
  }

  // Fetches each missing or stale record from the source and stores it; removes extras.
  boost::asio::awaitable<void> resync() {
    std::vector<std::pair<std::int64_t, Store>> fetched;
    std::vector<std::int64_t> remove = report_.extra;
    std::vector<std::int64_t> wanted = report_.missing;
    wanted.insert(wanted.end(), report_.stale.begin(), report_.stale.end());
    for (auto id : wanted) {
      auto record = co_await cache_.from->fetch(id);
      ++report_.record_reads;
      if (record)
        fetched.emplace_back(id, std::move(*record));
      else if (record.error().code == Errc::not_found)
        remove.push_back(id);  // gone from the source since the comparison
      else {
        report_.error = cache_.source + " could not answer: " + record.error().message;
        co_return;
      }
    }
    auto stored = co_await writer_.run([&]() -> std::string {
      try {
        auto sync = database_.open(db::Role::sync);
        SQLite::Transaction transaction(sync->sql(), SQLite::TransactionBehavior::IMMEDIATE);
        for (auto& [id, store] : fetched) store(*sync, forced_.count(id) > 0);
        erase_rows(*sync, cache_.table, cache_.id_column, remove);
        transaction.commit();
        return {};
      } catch (const std::exception& error) {
        return error.what();
      }
    });
    if (!stored.empty()) {
      report_.error = "the repair failed: " + stored;
      co_return;
    }
    report_.repaired = static_cast<std::int64_t>(fetched.size() + remove.size());
  }

  // Replaces the whole cache with the source's records, in one transaction on the writer
  // (the bus's handlers for this cache wait behind it).
  boost::asio::awaitable<void> full_resync() {
    report_.full_resync = true;
    auto outcome = co_await writer_.run([&]() -> std::pair<std::string, std::int64_t> {
      try {
        auto sync = database_.open(db::Role::sync);
        SQLite::Transaction transaction(sync->sql(), SQLite::TransactionBehavior::IMMEDIATE);
        sync->exec("DELETE FROM " + cache_.table);
        cache_.from->store_all(*sync);
        auto count = sync->prepare("SELECT count(*) FROM " + cache_.table);
        count.executeStep();
        auto rows = count.getColumn(0).getInt64();
        count.reset();
        transaction.commit();
        return {{}, rows};
      } catch (const std::exception& error) {
        return {error.what(), 0};
      }
    });
    if (!outcome.first.empty()) {
      report_.error = "the full resync failed: " + outcome.first;
      co_return;
    }
    report_.repaired = outcome.second;
  }

  const Cache& cache_;
  const db::ModuleDb& database_;
  db::Writer& writer_;
  bool repair_;
  Limits limits_;
  CacheReport report_;
  std::unique_ptr<db::Connection> reader_;
  std::unique_ptr<SQLite::Statement> range_;
  std::set<std::int64_t> forced_;  // cache rows to overwrite: newer than the source's, or damaged
};

nlohmann::json listed(const std::vector<std::int64_t>& ids, const std::vector<std::string>& keys) {
  nlohmann::json out = nlohmann::json::array();
  for (std::size_t i = 0; i < ids.size() && i < kListedIds; ++i) out.push_back(ids[i]);
  for (std::size_t i = 0; i < keys.size() && i < kListedIds; ++i) out.push_back(keys[i]);
  return out;
}

}  // namespace

void add(Digest& digest, std::int64_t id, std::int64_t version, std::uint64_t content) {
  ++digest.count;
  digest.hash += mix(mix(mix(static_cast<std::uint64_t>(id)) ^ static_cast<std::uint64_t>(version)) ^ content);
  digest.max_id = std::max(digest.max_id, id);
}

void ContentHash::bytes(const void* data, std::size_t size) {
  const auto* p = static_cast<const unsigned char*>(data);
  for (std::size_t i = 0; i < size; ++i) {
    state_ ^= p[i];
    state_ *= 0x100000001b3ULL;  // FNV-1a's prime
  }
}

ContentHash& ContentHash::null() {
  bytes("N", 1);
  return *this;
}

ContentHash& ContentHash::integer(std::int64_t value) {
  bytes("I", 1);
  auto bits = static_cast<std::uint64_t>(value);
  unsigned char little[8];
  for (int i = 0; i < 8; ++i) little[i] = static_cast<unsigned char>(bits >> (8 * i));
  bytes(little, sizeof little);
  return *this;
}

ContentHash& ContentHash::real(double value) {
  bytes("R", 1);
  bytes(&value, sizeof value);
  return *this;
}

ContentHash& ContentHash::text(std::string_view value) {
  bytes("T", 1);
  integer(static_cast<std::int64_t>(value.size()));
  bytes(value.data(), value.size());
  return *this;
}

ContentHash& ContentHash::blob(std::string_view value) {
  bytes("B", 1);
  integer(static_cast<std::int64_t>(value.size()));
  bytes(value.data(), value.size());
  return *this;
}

std::uint64_t ContentHash::value() const { return mix(state_); }

bool Report::consistent() const {
  return std::all_of(caches.begin(), caches.end(), [&](const CacheReport& c) {
    if (!c.error.empty()) return false;
    if (repair) return true;  // whatever differed was resynced
    return c.missing_count() + c.stale_count() + c.extra_count() == 0;
  });
}

nlohmann::json to_json(const Report& report) {
  nlohmann::json caches = nlohmann::json::array();
  std::int64_t missing = 0, stale = 0, extra = 0, repaired = 0;
  for (const auto& c : report.caches) {
    nlohmann::json entry = {
        {"cache", c.cache},
        {"source", c.source},
        {"source_rows", c.source_rows},
        {"cache_rows", c.cache_rows},
        {"missing", c.missing_count()},
        {"stale", c.stale_count()},
        {"extra", c.extra_count()},
        {"missing_ids", listed(c.missing, c.missing_keys)},
        {"stale_ids", listed(c.stale, c.stale_keys)},
        {"extra_ids", listed(c.extra, c.extra_keys)},
        {"repaired", c.repaired},
        {"full_resync", c.full_resync},
        {"source_calls", {{"digests", c.digest_calls}, {"entry_pages", c.entry_calls}, {"records", c.record_reads}}},
        {"duration_seconds", c.seconds}};
    if (!c.error.empty()) entry["error"] = c.error;
    caches.push_back(std::move(entry));
    missing += static_cast<std::int64_t>(c.missing_count());
    stale += static_cast<std::int64_t>(c.stale_count());
    extra += static_cast<std::int64_t>(c.extra_count());
    repaired += c.repaired;
  }
  return {{"started_at", report.started_at},
          {"repair", report.repair},
          {"consistent", report.consistent()},
          {"missing", missing},
          {"stale", stale},
          {"extra", extra},
          {"repaired", repaired},
          {"duration_seconds", report.seconds},
          {"rewound", report.rewound},
          {"caches", caches}};
}

boost::asio::awaitable<CacheReport> check(const Cache& cache, const db::ModuleDb& database, db::Writer& writer,
                                          bool repair, Limits limits) {
  Run run(cache, database, writer, repair, limits);
  co_return co_await run.go();
}

boost::asio::awaitable<CacheReport> check(const KeyedCache& cache, const db::ModuleDb& database, db::Writer& writer,
                                          bool repair) {
  CacheReport report;
  report.cache = cache.module + "." + cache.table;
  report.source = cache.source;
  const auto started = std::chrono::steady_clock::now();
  try {
    if (!plain_identifier(cache.table) || !plain_identifier(cache.key_column) ||
        !plain_identifiers(cache.content_columns))
      throw std::invalid_argument("cache names must be plain identifiers");
    auto source = co_await cache.from->records();
    ++report.entry_calls;
    if (!source) {
      report.error = cache.source + " could not answer: " + source.error().message;
    } else {
      report.record_reads = static_cast<std::int64_t>(source->size());
      report.source_rows = static_cast<std::int64_t>(source->size());
      std::map<std::string, std::pair<std::int64_t, std::uint64_t>> local;  // key -> version, content
      {
        auto reader = database.open(db::Role::reader);
        auto rows = reader->prepare("SELECT " + cache.key_column + ", event_version" +
                                    column_list(cache.content_columns) + " FROM " + cache.table);
        while (rows.executeStep())
          local[rows.getColumn(0).getString()] = {rows.getColumn(1).getInt64(),
                                                  row_content(rows, 2, cache.content_columns.size())};
      }
      report.cache_rows = static_cast<std::int64_t>(local.size());
      std::vector<std::pair<const KeyedRecord*, bool>> store;  // the record, force
      for (const auto& record : *source) {
        auto found = local.find(record.key);
        if (found == local.end()) {
          report.missing_keys.push_back(record.key);
          store.emplace_back(&record, false);
          continue;
        }
        const auto [version, content] = found->second;
        if (version != record.version || content != record.content) {
          report.stale_keys.push_back(record.key);
          store.emplace_back(&record, version >= record.version);
        }
        local.erase(found);
      }
      for (const auto& [key, row] : local) report.extra_keys.push_back(key);
      if (repair && !(store.empty() && report.extra_keys.empty())) {
        auto stored = co_await writer.run([&]() -> std::string {
          try {
            auto sync = database.open(db::Role::sync);
            SQLite::Transaction transaction(sync->sql(), SQLite::TransactionBehavior::IMMEDIATE);
            for (auto& [record, force] : store) record->store(*sync, force);
            erase_rows(*sync, cache.table, cache.key_column, report.extra_keys);
            transaction.commit();
            return {};
          } catch (const std::exception& error) {
            return error.what();
          }
        });
        if (stored.empty())
          report.repaired = static_cast<std::int64_t>(store.size() + report.extra_keys.size());
        else
          report.error = "the repair failed: " + stored;
      }
    }
  } catch (const std::exception& error) {
    report.error = "the check failed: " + std::string(error.what());
  }
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  log_outcome(report);
  co_return report;
}

boost::asio::awaitable<CacheReport> check(const std::string& module, const db::DerivedTable& derived,
                                          const db::ModuleDb& database, db::Writer& writer, bool repair) {
  CacheReport report;
  report.cache = module + "." + derived.table;
  report.source = module + "." + derived.source;
  const auto started = std::chrono::steady_clock::now();
  try {
    if (!plain_identifier(derived.table) || !plain_identifiers(derived.columns) || derived.key_columns == 0 ||
        derived.key_columns >= derived.columns.size())
      throw std::invalid_argument("a derived table's names must be plain identifiers, its key some of its columns");
    // Each side as key -> content hash of the other columns, read on one reader (one snapshot).
    using Rows = std::map<std::string, std::uint64_t>;
    auto read = [&](SQLite::Statement& query) {
      Rows rows;
      const auto keys = static_cast<int>(derived.key_columns);
      while (query.executeStep()) {
        std::string key;
        for (int i = 0; i < keys; ++i) {
          if (i) key += '|';  // appended apart: GCC 12 -O2 misreads "|" + string&& (-Wrestrict)
          key += query.getColumn(i).getString();
        }
        rows[key] = row_content(query, keys, derived.columns.size() - derived.key_columns);
      }
      return rows;
    };
    Rows expected, stored;
    {
      auto reader = database.open(db::Role::reader);
      SQLite::Transaction snapshot(reader->sql(), SQLite::TransactionBehavior::DEFERRED);
      auto from_rows = reader->prepare(derived.expected);
      expected = read(from_rows);
      auto table = reader->prepare("SELECT " + column_list(derived.columns).substr(2) + " FROM " + derived.table);
      stored = read(table);
    }
    report.source_rows = static_cast<std::int64_t>(expected.size());
    report.cache_rows = static_cast<std::int64_t>(stored.size());
    for (const auto& [key, content] : expected) {
      auto found = stored.find(key);
      if (found == stored.end())
        report.missing_keys.push_back(key);
      else if (found->second != content)
        report.stale_keys.push_back(key);
      if (found != stored.end()) stored.erase(found);
    }
    for (const auto& [key, content] : stored) report.extra_keys.push_back(key);
    const auto differences = report.missing_count() + report.stale_count() + report.extra_count();
    if (repair && differences > 0) {
      // The module's own data: rewritten on its service role, behind its writer's queue.
      auto rewritten = co_await writer.run([&]() -> std::string {
        try {
          auto service = database.open(db::Role::service);
          SQLite::Transaction transaction(service->sql(), SQLite::TransactionBehavior::IMMEDIATE);
          service->exec("DELETE FROM " + derived.table);
          service->exec("INSERT INTO " + derived.table + " (" + column_list(derived.columns).substr(2) + ") " +
                        derived.expected);
          transaction.commit();
          return {};
        } catch (const std::exception& error) {
          return error.what();
        }
      });
      if (rewritten.empty()) {
        report.full_resync = true;
        report.repaired = static_cast<std::int64_t>(differences);
      } else {
        report.error = "the repair failed: " + rewritten;
      }
    }
  } catch (const std::exception& error) {
    report.error = "the check failed: " + std::string(error.what());
  }
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  log_outcome(report);
  co_return report;
}

}  // namespace townhall::consistency
