#include "townhall/bus/event.hpp"

#include <charconv>
#include <ctime>
#include <set>

#include "townhall/platform/json_fields.hpp"
#include "townhall/platform/time.hpp"

namespace townhall::bus {
namespace {

using nlohmann::json;

Error invalid(std::string message) { return make_error(Errc::invalid_argument, "invalid event: " + message); }

bool is_word(std::string_view text) {
  if (text.empty()) return false;
  for (char c : text)
    if (!((c >= 'a' && c <= 'z') || c == '_')) return false;
  return true;
}

bool valid_topic(std::string_view topic) {
  if (!topic.starts_with("gov.")) return false;
  auto rest = topic.substr(4);
  auto dot = rest.find('.');
  return dot != std::string_view::npos && is_word(rest.substr(0, dot)) && is_word(rest.substr(dot + 1));
}

bool valid_event_type(std::string_view type) {
  auto dot = type.find('.');
  return dot != std::string_view::npos && is_word(type.substr(0, dot)) && is_word(type.substr(dot + 1));
}

}  // namespace

NewEvent aggregate_event(std::string_view topic, std::string_view event_type, std::string_view aggregate_type,
                         std::int64_t aggregate_id, std::int64_t version, json data, std::string correlation_id,
                         std::string causation_id) {
  return {
      std::string(topic), std::string(event_type),   std::string(aggregate_type), std::to_string(aggregate_id), version,
      std::move(data),    std::move(correlation_id), std::move(causation_id)};
}

json to_json(const Event& event) {
  return json_fields("event_id", event.event_id, "event_type", event.event_type, "topic", event.topic, "source",
                     event.source, "aggregate_type", event.aggregate_type, "aggregate_id", event.aggregate_id,
                     "event_version", event.event_version, "occurred_at", event.occurred_at, "correlation_id",
                     event.correlation_id, "causation_id", event.causation_id, "schema", event.schema, "data",
                     event.data);
}

Result<Event> event_from_json(const json& value) {
  if (!value.is_object()) return invalid("not a JSON object");
  static const std::set<std::string> known{"event_id",       "event_type",   "topic",         "source",
                                           "aggregate_type", "aggregate_id", "event_version", "occurred_at",
                                           "correlation_id", "causation_id", "schema",        "data"};
  for (const auto& [key, _] : value.items())
    if (!known.count(key)) return invalid("unknown field '" + key + "'");
  Event event;
  auto text = [&](const char* key, std::string& out, bool required) -> std::optional<Error> {
    auto it = value.find(key);
    if (it == value.end() || it->is_null()) {
      if (required) return invalid(std::string("missing ") + key);
      return std::nullopt;
    }
    if (!it->is_string()) return invalid(std::string(key) + " must be a string");
    out = it->get<std::string>();
    if (required && out.empty()) return invalid(std::string(key) + " must not be empty");
    if (out.size() > 256) return invalid(std::string(key) + " is too long");
    return std::nullopt;
  };
  for (auto [key, field, required] : {std::tuple{"event_id", &event.event_id, true},
                                      {"event_type", &event.event_type, true},
                                      {"topic", &event.topic, true},
                                      {"source", &event.source, true},
                                      {"aggregate_type", &event.aggregate_type, true},
                                      {"aggregate_id", &event.aggregate_id, true},
                                      {"occurred_at", &event.occurred_at, true},
                                      {"correlation_id", &event.correlation_id, false},
                                      {"causation_id", &event.causation_id, false}}) {
    if (auto error = text(key, *field, required)) return *error;
  }
  auto version = value.find("event_version");
  if (version == value.end() || !version->is_number_integer() || version->get<std::int64_t>() < 1)
    return invalid("event_version must be a positive integer");
  event.event_version = version->get<std::int64_t>();
  auto schema = value.find("schema");
  if (schema == value.end() || !schema->is_number_integer() || schema->get<std::int64_t>() != 1)
    return invalid("schema must be 1");
  auto data = value.find("data");
  if (data == value.end() || !data->is_object()) return invalid("data must be an object");
  event.data = *data;

  if (!valid_topic(event.topic)) return invalid("topic '" + event.topic + "' is not gov.<module>.<aggregate>");
  if (!valid_event_type(event.event_type)) return invalid("event_type '" + event.event_type + "' is malformed");
  if (!is_word(event.source) || event.topic.compare(4, event.source.size() + 1, event.source + ".") != 0)
    return invalid("source '" + event.source + "' does not own topic '" + event.topic + "'");
  auto colon = event.event_id.find(':');
  std::int64_t position = 0;
  if (colon == std::string::npos || event.event_id.substr(0, colon) != event.source ||
      std::from_chars(event.event_id.data() + colon + 1, event.event_id.data() + event.event_id.size(), position).ptr !=
          event.event_id.data() + event.event_id.size() ||
      position < 1)
    return invalid("event_id '" + event.event_id + "' is not <source>:<position>");
  event.position = position;
  if (!utc::parse(event.occurred_at)) return invalid("occurred_at '" + event.occurred_at + "' is not a UTC timestamp");
  return event;
}

Result<Event> parse_event(std::string_view text) {
  json value = json::parse(text, nullptr, false);
  if (value.is_discarded()) return invalid("not valid JSON");
  return event_from_json(value);
}

bool topic_matches(std::string_view pattern, std::string_view topic) {
  if (pattern.ends_with(".*")) {
    auto prefix = pattern.substr(0, pattern.size() - 1);  // keep the dot
    return topic.starts_with(prefix) && topic.find('.', prefix.size()) == std::string_view::npos;
  }
  return pattern == topic;
}

}  // namespace townhall::bus
