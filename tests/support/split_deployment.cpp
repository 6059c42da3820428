#include "split_deployment.hpp"

#include <fstream>

namespace townhall::testing {

namespace {

void write_private(const std::filesystem::path& file, const std::string& contents) {
  std::filesystem::create_directories(file.parent_path());
  std::filesystem::permissions(file.parent_path(), std::filesystem::perms::owner_all);
  std::ofstream(file) << contents;
  std::filesystem::permissions(file, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
}

}  // namespace

std::vector<std::string> split_callers(const nlohmann::json& registry) {
  std::vector<std::string> callers;
  for (const auto& [module, entry] : registry.at("modules").items())
    if (module != "auth") callers.push_back(module);
  return callers;
}

nlohmann::json split_registry(nlohmann::json registry, unsigned short internal_port) {
  const auto callers = split_callers(registry);
  registry["modules"]["auth"]["internal"] = {{"address", "127.0.0.1"}, {"port", internal_port}};
  for (const auto& caller : callers)
    registry["modules"][caller]["internal"] = {{"key_file", "keys/" + caller + ".key"}};
  registry["bus"]["transport"] = {{"kind", "rabbitmq"}, {"url_file", "amqp.url"}};
  registry["deployment"] = {{"auth", {{"modules", {"auth"}}, {"port", 18081}}},
                            {"services", {{"modules", callers}, {"port", 18082}}}};
  return registry;
}

std::filesystem::path split_data_dir(const std::filesystem::path& root, const std::string& process,
                                     const std::string& broker_url, const std::vector<std::string>& callers) {
  auto dir = root / process;
  write_private(dir / "amqp.url", broker_url + "\n");
  char digit = 'a';
  for (const auto& caller : callers) write_private(dir / "keys" / (caller + ".key"), std::string(64, digit++) + "\n");
  return dir;
}

}  // namespace townhall::testing
