// auth's internal listener in the real Application, every module running, on loopback
// ports (README "Internal API"): off by default; with an internal port in the registry,
// another process's auth::HttpApi gets the same answers as the in-process Api, signed
// with the calling module's key from its file.
#include <gtest/gtest.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <fstream>
#include <future>
#include <nlohmann/json.hpp>
#include <thread>

#include "coro.hpp"
#include "server_fixture.hpp"
#include "townhall/auth/http_api.hpp"

namespace townhall {
namespace {

namespace asio = boost::asio;

void write_key(const std::filesystem::path& file, char digit) {
  std::filesystem::create_directories(file.parent_path());
  std::ofstream(file) << std::string(64, digit) << "\n";
  std::filesystem::permissions(file, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
}

config::Internal with_key(std::filesystem::path key_file) {
  config::Internal internal;
  internal.key_file = std::move(key_file);
  return internal;
}

TEST(InternalApi, OffUnlessTheRegistryGivesAuthAPort) {
  testing::TempDir dir;
  testing::TestServer server(testing::test_config(dir.path()));
  EXPECT_FALSE(server.app().internal_port());
}

TEST(InternalApi, AnotherProcessCallsAuthWithItsModulesKey) {
  testing::TempDir dir;
  auto config = testing::test_config(dir.path());
  write_key(dir.path() / "keys" / "permits.key", 'a');
  for (auto& module : config.modules) {
    if (module.name == "auth") {
      module.internal = config::Internal{};
      module.internal->port = 0;
    }
    if (module.name == "permits") module.internal = with_key("keys/permits.key");
  }
  testing::TestServer server(std::move(config));
  ASSERT_TRUE(server.app().internal_port());
  auto port = *server.app().internal_port();
  auto registered =
      testing::call(server.port(), "POST", "/api/v1/auth/register",
                    R"({"email":"maria@example.org","password":"a long enough password","name":"Maria"})");
  ASSERT_EQ(registered.status, 201) << registered.body;
  auto maria_id = nlohmann::json::parse(registered.body)["id"].get<std::int64_t>();
  auto token = testing::login(server.port(), "maria@example.org", "a long enough password");
  ASSERT_FALSE(token.empty());

  asio::io_context io;
  auto work = asio::make_work_guard(io);
  std::thread network([&] { io.run(); });
  std::array<unsigned char, signing::kKeyBytes> bytes{};
  bytes.fill(0xaa);
  {
    auth::HttpApi permits(io, {.address = "127.0.0.1", .port = port, .module = "permits", .key = signing::Key(bytes)});
    auto citizen = run_blocking(permits.get_citizen(CallContext::as_service("permits", "it"), maria_id));
    ASSERT_TRUE(citizen) << citizen.error().message;
    EXPECT_EQ(citizen->email, "maria@example.org");
    auto principal = run_blocking(permits.authenticate(CallContext::as_service("permits", "it"), token));
    ASSERT_TRUE(principal) << principal.error().message;
    EXPECT_EQ((*principal)->id, maria_id);

    bytes.fill(0xbb);
    auth::HttpApi forger(io, {.address = "127.0.0.1", .port = port, .module = "permits", .key = signing::Key(bytes)});
    auto refused = run_blocking(forger.get_citizen(CallContext::as_service("permits", "it"), maria_id));
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().code, Errc::unauthorized);
    std::promise<void> closed;
    asio::post(io, [&] { closed.set_value(); });
    closed.get_future().wait();
  }
  work.reset();
  io.stop();
  network.join();
}

TEST(InternalApi, AnUnreadableKeyStopsTheStartNamingTheModule) {
  testing::TempDir dir;
  auto config = testing::test_config(dir.path());
  for (auto& module : config.modules) {
    if (module.name == "auth") {
      module.internal = config::Internal{};
      module.internal->port = 0;
    }
    if (module.name == "permits") module.internal = with_key("keys/missing.key");
  }
  try {
    testing::TestServer server(std::move(config));
    FAIL() << "started without permits' key";
  } catch (const config::ConfigError& error) {
    EXPECT_NE(std::string(error.what()).find("modules.permits.internal.key_file"), std::string::npos) << error.what();
  }
}

}  // namespace
}  // namespace townhall
