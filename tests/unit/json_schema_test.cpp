// The schema check the route documentation is held to (tests/support/json_schema): it
// must catch what a wrong /openapi.json would hide.
#include "json_schema.hpp"

#include <gtest/gtest.h>

#include "townhall/platform/schema.hpp"

namespace townhall {
namespace {

using nlohmann::json;
using testing::schema_violation;
namespace s = schema;

const json kThing = s::object({{"id", s::integer(1)},
                               {"name", s::string()},
                               {"note", s::string_or_null()},
                               {"state", s::one_of({"open", "closed"})},
                               {"tags", s::array(s::string())},
                               {"owner", s::or_null(s::object({{"id", s::integer(1)}}))},
                               s::optional("extra", s::boolean())});

TEST(JsonSchema, AcceptsWhatItDescribes) {
  EXPECT_FALSE(schema_violation(
      kThing, json::parse(R"({"id":1,"name":"a","note":null,"state":"open","tags":["x"],"owner":{"id":2}})")));
  EXPECT_FALSE(schema_violation(
      kThing, json::parse(R"({"id":1,"name":"a","note":"n","state":"closed","tags":[],"owner":null,"extra":true})")));
  EXPECT_FALSE(schema_violation(s::page_of(kThing), json::parse(R"({"items":[],"next_cursor":null,"page_size":20})")));
  EXPECT_FALSE(schema_violation(s::page_of(kThing),
                                json::parse(R"({"items":[],"next_cursor":"AbC_-1","page_size":20,"total":0})")));
  EXPECT_TRUE(schema_violation(s::page_of(kThing), json::parse(R"({"items":[],"page":1,"page_size":20,"total":0})")));
}

TEST(JsonSchema, CatchesEveryKindOfDifference) {
  auto base = json::parse(R"({"id":1,"name":"a","note":null,"state":"open","tags":["x"],"owner":null})");
  auto differs = [&](auto change) {
    auto value = base;
    change(value);
    return schema_violation(kThing, value);
  };
  auto missing = differs([](json& v) { v.erase("name"); });
  ASSERT_TRUE(missing);
  EXPECT_NE(missing->find("'name' is missing"), std::string::npos) << *missing;
  auto undocumented = differs([](json& v) { v["secret"] = 1; });
  ASSERT_TRUE(undocumented);
  EXPECT_NE(undocumented->find("'secret' is not documented"), std::string::npos) << *undocumented;
  EXPECT_TRUE(differs([](json& v) { v["id"] = "1"; }));                 // wrong type
  EXPECT_TRUE(differs([](json& v) { v["id"] = 0; }));                   // below the minimum
  EXPECT_TRUE(differs([](json& v) { v["id"] = 1.5; }));                 // not an integer
  EXPECT_TRUE(differs([](json& v) { v["name"] = nullptr; }));           // not nullable
  EXPECT_TRUE(differs([](json& v) { v["state"] = "ajar"; }));           // not in the enum
  EXPECT_TRUE(differs([](json& v) { v["tags"] = json::array({1}); }));  // wrong item
  EXPECT_TRUE(differs([](json& v) { v["owner"] = {{"id", "x"}}; }));    // matches no anyOf branch
  EXPECT_TRUE(differs([](json& v) { v["owner"] = {{"idx", 1}}; }));     // nested closed object
  EXPECT_TRUE(differs([](json& v) { v["extra"] = "yes"; }));            // optional, but typed
  EXPECT_TRUE(schema_violation(kThing, json::array()));
}

TEST(JsonSchema, RefusesKeywordsItCannotCheck) {
  auto violation = schema_violation(json::parse(R"({"type":"string","pattern":"^a"})"), "b");
  ASSERT_TRUE(violation);
  EXPECT_NE(violation->find("'pattern'"), std::string::npos);
}

}  // namespace
}  // namespace townhall
