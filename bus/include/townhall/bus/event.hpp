#pragma once

#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "townhall/platform/result.hpp"

namespace townhall::bus {

// The event envelope (DESIGN.md §4).
struct Event {
  std::string event_id;        // "<source>:<outbox id>"
  std::string event_type;      // "citizen.updated"
  std::string topic;           // "gov.auth.citizen"
  std::string source;          // "auth"
  std::string aggregate_type;  // "citizen"
  std::string aggregate_id;    // "123"
  std::int64_t event_version = 0;
  std::string occurred_at;  // UTC, "2026-11-21T10:30:00.123Z"
  std::string correlation_id;
  std::string causation_id;
  int schema = 1;
  nlohmann::json data = nlohmann::json::object();
  std::int64_t position = 0;  // outbox id in the source (not part of the wire form)
};

// What a module appends to its outbox; the bus fills in id, source and time.
struct NewEvent {
  std::string topic;
  std::string event_type;
  std::string aggregate_type;
  std::string aggregate_id;
  std::int64_t event_version = 0;
  nlohmann::json data = nlohmann::json::object();
  std::string correlation_id;
  std::string causation_id;
};

// The usual event: version `version` of aggregate `aggregate_type`/`aggregate_id`, with
// its data (a `snapshot`, maybe `changes`), in the correlation of what caused it.
NewEvent aggregate_event(std::string_view topic, std::string_view event_type, std::string_view aggregate_type,
                         std::int64_t aggregate_id, std::int64_t version, nlohmann::json data,
                         std::string correlation_id, std::string causation_id = {});

nlohmann::json to_json(const Event& event);
// Strict: every field present with the right type, no unknown fields, topic and ids
// well formed. An invalid event is an Error, never an exception.
Result<Event> parse_event(std::string_view text);
Result<Event> event_from_json(const nlohmann::json& value);

// "gov.auth.citizen" matches "gov.auth.citizen" and "gov.auth.*".
bool topic_matches(std::string_view pattern, std::string_view topic);

}  // namespace townhall::bus
