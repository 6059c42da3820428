// libFuzzer: a registry document through config::parse. Any JSON must end in a Config
// or a ConfigError naming the key, never another exception or a crash.
#include <cstdint>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "townhall/app/application.hpp"
#include "townhall/platform/config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace townhall;
  auto document = nlohmann::json::parse(data, data + size, nullptr, false);
  if (document.is_discarded()) return 0;
  try {
    auto config = config::parse(document, app::known_modules());
    if (config.modules.empty()) std::abort();  // parse promises at least one module
  } catch (const config::ConfigError&) {
  }
  return 0;
}
