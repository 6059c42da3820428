#pragma once

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "townhall/platform/result.hpp"

namespace townhall::db {
class Connection;
class ModuleDb;
class Writer;
struct DerivedTable;
}  // namespace townhall::db

// The consistency check (README "Consistency check"): every cache compared with its source through
// the source's Api by range digests of (id, event_version, content), bisected down to the
// ids that differ, and only those resynced — or the whole cache when the differences are
// many. Content counts (issue 21): a cache row whose fields differ from what its source
// would make it at the same version (a handler's bug, a hand edit, a bit flip) differs.
namespace townhall::consistency {

// The hash of a record's content as a cache keeps it, computed the same way on both
// sides: each value typed and length-prefixed in a fixed field order, so a null differs
// from "", 1 from "1", and ("ab","c") from ("a","bc"). The cache side hashes its columns
// as SQLite returns them (NULL, INTEGER, TEXT); a source hashes its fields the same way
// (a bool as the INTEGER 0 or 1 a cache stores). Not cryptographic: it finds damage and
// drift, not an adversary who can write the cache file.
class ContentHash {
 public:
  ContentHash& null();
  ContentHash& integer(std::int64_t value);
  ContentHash& text(std::string_view value);
  ContentHash& nullable_text(const std::optional<std::string>& value) {
    return value ? text(std::string_view(*value)) : null();
  }
  ContentHash& real(double value);
  ContentHash& blob(std::string_view value);
  std::uint64_t value() const;

 private:
  void bytes(const void* data, std::size_t size);
  std::uint64_t state_ = 0xcbf29ce484222325ULL;  // FNV-1a's offset basis
};

// What a range of (id, event_version, content) triples hashes to; both sides compute it
// with add(). The hash is a sum of per-row hashes, so a range's digest minus its left
// half's is its right half's: bisecting asks the source for one half only.
struct Digest {
  std::int64_t count = 0;
  std::uint64_t hash = 0;
  std::int64_t max_id = 0;  // the largest id seen (not part of the comparison)
  bool same(const Digest& other) const { return count == other.count && hash == other.hash; }
};
void add(Digest& digest, std::int64_t id, std::int64_t version, std::uint64_t content = 0);

struct Entry {
  std::int64_t id = 0;
  std::int64_t version = 0;
  std::uint64_t content = 0;  // ContentHash of the fields the cache keeps
};

// A record fetched from the source, ready to store in the cache on the module's writer
// (sync role): `force` overwrites a cache row newer than the record (its source went back,
// e.g. restored from an older backup); otherwise the cache's version check decides.
using Store = std::function<void(db::Connection& sync, bool force)>;

// The source side of one cache, answered through the source module's Api (what would be
// remote calls in a database-per-service deployment).
class Source {
 public:
  virtual ~Source() = default;
  // Ids in [from_id, to_id).
  virtual boost::asio::awaitable<Result<Digest>> digest(std::int64_t from_id, std::int64_t to_id) = 0;
  virtual boost::asio::awaitable<Result<std::vector<Entry>>> entries(std::int64_t from_id, std::int64_t to_id) = 0;
  // The record with `id`; not_found when the source has none (the cache row is extra).
  virtual boost::asio::awaitable<Result<Store>> fetch(std::int64_t id) = 0;
  // Every record, stored on `sync` (the cache's bootstrap), for a full resync.
  virtual void store_all(db::Connection& sync) = 0;
};

// One cache as its module declares it.
struct Cache {
  std::string module;     // "permits"
  std::string table;      // "citizen_refs"
  std::string id_column;  // "citizen_id"; the version column is event_version
  std::string source;     // "auth"
  std::shared_ptr<Source> from;
  // The columns whose content is compared, in the order the source hashes its fields.
  std::vector<std::string> content_columns;
};

// A small cache keyed by text (permits' department_refs: a few dozen rows). Too small
// for digests to pay: its source answers every (key, version) with the record in one
// call, the cache is compared whole, and what differs is stored or removed key by key.
struct KeyedRecord {
  std::string key;
  std::int64_t version = 0;
  Store store;                // stores this record (force: over a newer cache row)
  std::uint64_t content = 0;  // ContentHash of the fields the cache keeps
};
class KeyedSource {
 public:
  virtual ~KeyedSource() = default;
  virtual boost::asio::awaitable<Result<std::vector<KeyedRecord>>> records() = 0;
};
struct KeyedCache {
  std::string module;      // "permits"
  std::string table;       // "department_refs"
  std::string key_column;  // "code"; the version column is event_version
  std::string source;      // "auth"
  std::shared_ptr<KeyedSource> from;
  std::vector<std::string> content_columns;  // as Cache::content_columns
};

// A module with caches; app/ finds it by dynamic_cast, as it finds bus::Consumer.
class Checked {
 public:
  virtual ~Checked() = default;
  virtual std::vector<Cache> caches() = 0;
  virtual std::vector<KeyedCache> keyed_caches() { return {}; }
};

struct Limits {
  std::size_t leaf_rows = 128;  // a range this small is compared entry by entry
  // More differences than this (and than a tenth of the source) make a full resync.
  std::size_t full_resync_over = 1000;
};

struct CacheReport {
  std::string cache;  // "permits.citizen_refs"
  std::string source;
  std::int64_t source_rows = 0;
  std::int64_t cache_rows = 0;
  std::vector<std::int64_t> missing, stale, extra;                // ids
  std::vector<std::string> missing_keys, stale_keys, extra_keys;  // a keyed cache's keys
  std::size_t missing_count() const { return missing.size() + missing_keys.size(); }
  std::size_t stale_count() const { return stale.size() + stale_keys.size(); }
  std::size_t extra_count() const { return extra.size() + extra_keys.size(); }
  std::int64_t repaired = 0;
  bool full_resync = false;
  // Calls to the source's Api: range digests, entry pages, records fetched.
  std::int64_t digest_calls = 0, entry_calls = 0, record_reads = 0;
  std::string error;  // the check could not finish (the source or the file failed)
  double seconds = 0;
};

struct Report {
  std::string started_at;
  bool repair = false;
  std::vector<CacheReport> caches;
  // Feeds found behind a restored source and rewound ("consumer.subscription<-source").
  std::vector<std::string> rewound;
  double seconds = 0;
  bool consistent() const;  // nothing missing, stale or extra left, no error
};
nlohmann::json to_json(const Report& report);

// Compares `cache` (in `database`, written on `writer`) with its source; with `repair`,
// resyncs what differs. Runs on the caller's executor; reads of the module's own file are
// short, repairs run on the writer.
boost::asio::awaitable<CacheReport> check(const Cache& cache, const db::ModuleDb& database, db::Writer& writer,
                                          bool repair, Limits limits = {});
// The same for a keyed cache (one records() call; record_reads counts the records read).
boost::asio::awaitable<CacheReport> check(const KeyedCache& cache, const db::ModuleDb& database, db::Writer& writer,
                                          bool repair);

// A table derived from the module's own rows (db::DerivedTable, from the module's
// manifest): compared whole with what its `expected` query computes from the rows
// (missing_keys, stale_keys, extra_keys: its keys as "a|b|c"); with `repair`, rewritten
// from the rows in one transaction on the writer. source_rows counts the expected rows.
boost::asio::awaitable<CacheReport> check(const std::string& module, const db::DerivedTable& derived,
                                          const db::ModuleDb& database, db::Writer& writer, bool repair);

}  // namespace townhall::consistency
