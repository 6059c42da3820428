#include "townhall/notify/module.hpp"

#include <fstream>
#include <sstream>

#include "routes.hpp"
#include "service.hpp"
#include "townhall/bus/consumer_module.hpp"
#include "townhall/platform/config.hpp"

namespace townhall::notify {

db::TableManifest table_manifest() {
  return bus::with_bus_tables({"notifications", "preferences", "deliveries", "license_reminders"}, {"citizen_refs"});
}

namespace {

// The SMTP password, read at each start from its file (relative: to the data directory)
// so it stays out of the registry and the logs; a trailing newline is not part of it.
std::string read_password(const SmtpSettings& smtp, const db::ModuleDb& database) {
  if (smtp.password_file.empty()) return {};
  auto path =
      smtp.password_file.is_absolute() ? smtp.password_file : database.path().parent_path() / smtp.password_file;
  std::ifstream in(path);
  if (!in) throw std::runtime_error("modules.notify.settings.smtp.password_file: cannot read " + path.string());
  std::stringstream text;
  text << in.rdbuf();
  auto password = text.str();
  while (!password.empty() && (password.back() == '\n' || password.back() == '\r')) password.pop_back();
  return password;
}

class NotifyModule final : public bus::ConsumerModule<NotifyService> {
 public:
  NotifyModule(ModuleContext& context, auth::Api& auth)
      : ConsumerModule("notify", context, &notify::add_routes, parse_settings(context.config.settings), auth) {}

  void on_start() override { service().start(read_password(service().settings().smtp, context().db)); }
};

}  // namespace

std::unique_ptr<Module> make_module(ModuleContext& context, auth::Api& auth) {
  return std::make_unique<NotifyModule>(context, auth);
}

}  // namespace townhall::notify
