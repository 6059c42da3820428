// libFuzzer: a request body through platform/input's strict reader, every accessor kind.
// Any input must end in a value or an invalid_argument naming a field, never an
// exception or a crash.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "townhall/platform/input.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace townhall;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto parsed = input::Body::parse(text, {"name", "notes", "count", "flag", "tags", "clear", "method", "amount"});
  if (!parsed) {
    if (parsed.error().code != Errc::invalid_argument) std::abort();
    return 0;
  }
  auto& body = *parsed;
  (void)body.has("name");
  (void)body.optional_string("name", input::TextLimits{.max_bytes = 200, .min_chars = 1});
  (void)body.optional_string("notes", input::TextLimits{.max_bytes = 4000, .min_chars = 0, .multiline = true});
  (void)body.optional_int("count", -1000, 1000);
  (void)body.optional_int("amount", 1, 1'000'000'000'000);
  (void)body.optional_bool("flag");
  (void)body.nullable_string("clear", input::TextLimits{});
  if (body.has("tags")) (void)body.required_string_array("tags", 10, input::TextLimits{.max_bytes = 50});
  if (body.has("method")) {
    auto method = body.required_object("method", {"type", "token"});
    (void)method.required_string("type", input::TextLimits{.max_bytes = 20});
    (void)method.optional_string("token", input::TextLimits{.max_bytes = 100});
  }
  auto status = body.status();
  if (!status && status.error().code != Errc::invalid_argument) std::abort();
  (void)input::check_text(text, input::TextLimits{.max_bytes = 1 << 20, .min_chars = 0, .multiline = true});
  (void)input::parse_id(text);
  return 0;
}
