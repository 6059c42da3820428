#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <string_view>
#include <vector>

// A registry section read strictly: each typed read names its key, a missing key takes
// the default, a bad value or a key nobody read (finish()) throws config::ConfigError
// naming "<path>.<key>". One reader for every module's settings section.
namespace townhall::config {

class SettingsReader {
 public:
  // `path` names the section in messages, e.g. "modules.notify.settings". A null
  // section reads as empty (every default); anything but an object is refused.
  SettingsReader(const nlohmann::json& section, std::string path);

  std::int64_t integer(std::string_view key, std::int64_t fallback, std::int64_t min, std::int64_t max);
  bool boolean(std::string_view key, bool fallback);
  // A string of at most `max_bytes`, without control characters; `allow_empty` or not.
  std::string text(std::string_view key, std::string fallback, std::size_t max_bytes = 1024, bool allow_empty = true);
  // One of `choices`.
  std::string choice(std::string_view key, std::string fallback, std::initializer_list<std::string_view> choices);
  // A nested object section (missing: empty; anything but an object, null included, is
  // refused), read with its own reader.
  SettingsReader section(std::string_view key);
  // The raw value of `key` (null when missing), marked read, for a check of the caller's
  // own that fail()s with its own message.
  const nlohmann::json* value(std::string_view key);
  // The section's keys, for a section whose keys are names (e.g. permit types).
  std::vector<std::string> keys() const;

  bool has(std::string_view key) const;
  const std::string& path() const { return path_; }
  [[noreturn]] void fail(std::string_view key, const std::string& message) const;
  // Throws for the first key no read asked for (a typo, a setting of another version).
  void finish() const;

 private:
  nlohmann::json section_;
  std::string path_;
  std::set<std::string, std::less<>> read_;
};

}  // namespace townhall::config
