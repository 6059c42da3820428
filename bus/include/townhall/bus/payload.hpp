#pragma once

#include <cstdint>
#include <initializer_list>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>

#include "townhall/bus/event.hpp"

// Strict reading of the payloads that cross a module border (issue 22 §1): each module's
// contract (townhall/<m>/events.hpp) decodes its events with it, so every consumer of a
// topic reads it the same way and a payload that cannot be read is one failure policy:
// bus::PermanentError naming the field, which the bus dead-letters at once with that
// reason. Include it in .cpp files only (it brings in nlohmann/json).
namespace townhall::bus {

// The field every payload carries with the version of its shape. A producer writes
// its current version; a consumer lists the versions it knows.
inline constexpr const char* kSchemaVersionField = "schema_version";

// An event's data as the contracts write it: {"schema_version": version, "snapshot": ...}.
inline nlohmann::json snapshot_data(int version, nlohmann::json snapshot) {
  return {{kSchemaVersionField, version}, {"snapshot", std::move(snapshot)}};
}

class PayloadReader {
 public:
  // `what` names the payload in errors ("application snapshot"). Throws when `object` is
  // not a JSON object.
  PayloadReader(const nlohmann::json& object, std::string what);

  std::int64_t integer(const char* key) const;
  std::int64_t positive(const char* key) const;  // > 0: an id
  std::optional<std::int64_t> nullable_integer(const char* key) const;
  std::string text(const char* key) const;
  std::optional<std::string> nullable_text(const char* key) const;
  bool flag(const char* key) const;
  // An object field, read strictly in turn.
  PayloadReader object(const char* key) const;
  bool has(const char* key) const { return object_.contains(key); }

 private:
  const nlohmann::json& field(const char* key) const;
  [[noreturn]] void wrong(const char* key, const char* expected) const;

  const nlohmann::json& object_;
  std::string what_;
};

// The payload (`event.data`) of an event on a contract's topic, after checking its
// schema_version is one the consumer knows (a payload without one is version 1: written
// before versions existed). Throws PermanentError naming the event and the version.
PayloadReader payload_of(const Event& event, std::initializer_list<int> known_versions);

}  // namespace townhall::bus
