#include "townhall/bus/payload.hpp"

#include <algorithm>

#include "townhall/bus/bus.hpp"

namespace townhall::bus {

PayloadReader::PayloadReader(const nlohmann::json& object, std::string what) : object_(object), what_(std::move(what)) {
  if (!object_.is_object()) throw PermanentError("malformed " + what_ + ": not an object");
}

const nlohmann::json& PayloadReader::field(const char* key) const {
  auto it = object_.find(key);
  if (it == object_.end()) throw PermanentError("malformed " + what_ + ": no field '" + key + "'");
  return *it;
}

void PayloadReader::wrong(const char* key, const char* expected) const {
  throw PermanentError("malformed " + what_ + ": field '" + key + "' must be " + expected);
}

std::int64_t PayloadReader::integer(const char* key) const {
  const auto& value = field(key);
  // A uint64 above INT64_MAX is not an integer any store can keep.
  if (!value.is_number_integer() || (value.is_number_unsigned() && value.get<std::uint64_t>() > INT64_MAX))
    wrong(key, "an integer");
  return value.get<std::int64_t>();
}

std::int64_t PayloadReader::positive(const char* key) const {
  auto value = integer(key);
  if (value <= 0) wrong(key, "a positive integer");
  return value;
}

std::optional<std::int64_t> PayloadReader::nullable_integer(const char* key) const {
  if (field(key).is_null()) return std::nullopt;
  return integer(key);
}

std::string PayloadReader::text(const char* key) const {
  const auto& value = field(key);
  if (!value.is_string()) wrong(key, "a string");
  return value.get<std::string>();
}

std::optional<std::string> PayloadReader::nullable_text(const char* key) const {
  const auto& value = field(key);
  if (value.is_null()) return std::nullopt;
  if (!value.is_string()) wrong(key, "a string or null");
  return value.get<std::string>();
}

bool PayloadReader::flag(const char* key) const {
  const auto& value = field(key);
  if (!value.is_boolean()) wrong(key, "true or false");
  return value.get<bool>();
}

PayloadReader PayloadReader::object(const char* key) const {
  const auto& value = field(key);
  if (!value.is_object()) wrong(key, "an object");
  return PayloadReader(value, what_ + "'s " + key);
}

PayloadReader payload_of(const Event& event, std::initializer_list<int> known_versions) {
  PayloadReader payload(event.data, event.event_type + " payload");
  int version = 1;
  if (payload.has(kSchemaVersionField)) {
    auto read = payload.integer(kSchemaVersionField);
    version = read < 1 || read > 1'000'000 ? 0 : static_cast<int>(read);
  }
  if (std::find(known_versions.begin(), known_versions.end(), version) == known_versions.end())
    throw PermanentError(event.event_type + " payload has schema_version " +
                         (payload.has(kSchemaVersionField) ? event.data.at(kSchemaVersionField).dump() : "1") +
                         ", which this consumer does not know (an older binary than the producer's?)");
  return payload;
}

}  // namespace townhall::bus
