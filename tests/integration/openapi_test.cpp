// GET /openapi.json is the route table: every registered route is in it, and nothing else.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <set>

#include "server_fixture.hpp"

namespace townhall {
namespace {

TEST(OpenApi, EveryRegisteredRouteIsDocumentedAndNothingElse) {
  testing::TempDir dir;
  testing::TestServer server(testing::test_config(dir.path()));
  auto response = server.get("/openapi.json");
  ASSERT_EQ(response.status, 200);
  auto document = nlohmann::json::parse(response.body);
  EXPECT_EQ(document["openapi"], "3.1.0");

  std::set<std::string> registered, documented;
  for (const auto& entry : server.app().router().entries()) {
    std::string method(http::to_string(entry.method));
    for (auto& c : method) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    registered.insert(method + " " + entry.pattern);
    const auto& operation = document["paths"][entry.pattern][method];
    ASSERT_TRUE(operation.is_object()) << method << " " << entry.pattern;
    // Public routes need no token; every other one says bearer.
    EXPECT_EQ(operation["security"].empty(), entry.access == http::Access::public_route) << entry.pattern;
    EXPECT_TRUE(operation["responses"].contains("4XX")) << entry.pattern;
  }
  for (const auto& [path, operations] : document["paths"].items())
    for (const auto& [method, operation] : operations.items()) documented.insert(method + " " + path);
  EXPECT_EQ(documented, registered);
  EXPECT_GT(registered.size(), 50u);

  const auto& login = document["paths"]["/api/v1/auth/login"]["post"];
  EXPECT_EQ(login["requestBody"]["content"]["application/json"]["schema"]["required"],
            nlohmann::json::array({"email", "password"}));
  const auto& invoice = document["paths"]["/api/v1/revenue/invoices/{id}"]["get"];
  ASSERT_TRUE(invoice.is_object());
  EXPECT_EQ(invoice["parameters"][0]["name"], "id");
  EXPECT_EQ(invoice["parameters"][0]["schema"]["type"], "integer");
}

}  // namespace
}  // namespace townhall
