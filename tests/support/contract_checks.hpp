#pragma once

#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "townhall/bus/bus.hpp"
#include "townhall/bus/payload.hpp"

// What the contract tests share: an event on a topic with given data, and a check that a
// module's decoder (townhall/<m>/events.hpp) is strict the way issue 22 §1 asks.
namespace townhall::testing {

inline bus::Event contract_event(std::string_view topic, std::string_view type, nlohmann::json data) {
  bus::Event event;
  event.event_id = "test:1";
  event.topic = std::string(topic);
  event.event_type = std::string(type);
  event.event_version = 1;
  event.data = std::move(data);
  return event;
}

// How `decode` falls short of strict on `good`, a payload it must accept: each field of
// good's snapshot (but `unread`, fields the decoder does not read) left out or of a wrong
// type must be a bus::PermanentError naming the field, and so must a snapshot that is not
// an object and a schema_version the decoder does not know or that is not a number. Empty
// when all are refused.
template <class Decode>
std::vector<std::string> strictness_gaps(const bus::Event& good, Decode decode,
                                         const std::set<std::string>& unread = {}) {
  std::vector<std::string> gaps;
  auto refused = [&](const nlohmann::json& data, const std::string& naming, const std::string& case_name) {
    auto event = good;
    event.data = data;
    try {
      decode(event);
      gaps.push_back(case_name + ": accepted");
    } catch (const bus::PermanentError& error) {
      if (std::string(error.what()).find(naming) == std::string::npos)
        gaps.push_back(case_name + ": refused without naming " + naming + ": " + error.what());
    }
  };
  try {
    decode(good);
  } catch (const std::exception& error) {
    gaps.push_back(std::string("the good payload was refused: ") + error.what());
    return gaps;
  }
  for (const auto& [key, value] : good.data.at("snapshot").items()) {
    if (unread.count(key)) continue;
    auto missing = good.data;
    missing["snapshot"].erase(key);
    refused(missing, "'" + key + "'", "without " + key);
    auto mistyped = good.data;
    mistyped["snapshot"][key] = nlohmann::json::array();
    refused(mistyped, "'" + key + "'", key + " mistyped");
  }
  auto not_object = good.data;
  not_object["snapshot"] = "a snapshot";
  refused(not_object, "'snapshot'", "snapshot not an object");
  auto future = good.data;
  future[bus::kSchemaVersionField] = 99;
  refused(future, "schema_version 99", "an unknown schema_version");
  auto text_version = good.data;
  text_version[bus::kSchemaVersionField] = "1";
  refused(text_version, "'schema_version'", "a schema_version that is text");
  return gaps;
}

}  // namespace townhall::testing
