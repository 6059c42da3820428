// Signed service calls (platform/service_signing): a signature by the calling module's
// key verifies once; a forged, tampered, expired, replayed or wrongly keyed one does not.
#include "townhall/platform/service_signing.hpp"

#include <gtest/gtest.h>

#include <fstream>

#include "support.hpp"

namespace townhall::signing {
namespace {

using namespace std::chrono_literals;

Key key_of(unsigned char fill) {
  std::array<unsigned char, kKeyBytes> bytes{};
  bytes.fill(fill);
  return Key(bytes);
}

http::Request signed_request(const Key& key, std::string_view service, std::string body,
                             std::chrono::system_clock::time_point at = std::chrono::system_clock::now()) {
  http::Request request;
  request.method = http::Method::post;
  request.target = "/internal/v1/auth/get_citizen";
  request.path = request.target;
  request.body = std::move(body);
  request.headers = sign(key, service, "POST", request.target, request.body, at);
  return request;
}

Verifier verifier() {
  std::map<std::string, Key, std::less<>> keys;
  keys.emplace("permits", key_of(1));
  keys.emplace("revenue", key_of(2));
  return Verifier(std::move(keys), 30s);
}

void expect_refused(Verifier& v, const http::Request& request, std::string_view why) {
  auto result = v.verify(request);
  ASSERT_FALSE(result) << why;
  EXPECT_EQ(result.error().code, Errc::unauthorized) << why;
  EXPECT_NE(result.error().message.find(why), std::string::npos) << result.error().message;
}

void set_header(http::Request& request, std::string_view name, std::string value) {
  for (auto& header : request.headers)
    if (header.name == name) header.value = std::move(value);
}

TEST(ServiceSigning, AValidSignatureNamesTheCallingModule) {
  auto v = verifier();
  auto result = v.verify(signed_request(key_of(1), "permits", R"({"citizen_id":1})"));
  ASSERT_TRUE(result) << result.error().message;
  EXPECT_EQ(*result, "permits");
  // Two identical calls in the same second are two calls, not a replay (the nonce).
  EXPECT_TRUE(v.verify(signed_request(key_of(1), "permits", R"({"citizen_id":1})")));
}

TEST(ServiceSigning, ForgedOrTamperedSignaturesAreRefused) {
  auto v = verifier();
  expect_refused(v, signed_request(key_of(9), "permits", "{}"), "does not verify");  // a key nobody holds
  auto tampered_body = signed_request(key_of(1), "permits", R"({"citizen_id":1})");
  tampered_body.body = R"({"citizen_id":2})";
  expect_refused(v, tampered_body, "does not verify");
  auto tampered_target = signed_request(key_of(1), "permits", "{}");
  tampered_target.target = "/internal/v1/auth/get_sensitive";
  expect_refused(v, tampered_target, "does not verify");
  auto tampered_method = signed_request(key_of(1), "permits", "{}");
  tampered_method.method = http::Method::put;
  expect_refused(v, tampered_method, "does not verify");
  auto tampered_time = signed_request(key_of(1), "permits", "{}");
  set_header(tampered_time, kTimestampHeader,
             std::to_string(
                 std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
                     .count() +
                 1));
  expect_refused(v, tampered_time, "does not verify");
  auto garbage = signed_request(key_of(1), "permits", "{}");
  set_header(garbage, kSignatureHeader, "zz");
  expect_refused(v, garbage, "malformed");
  http::Request unsigned_request;
  unsigned_request.method = http::Method::post;
  expect_refused(v, unsigned_request, "missing");
}

TEST(ServiceSigning, AnotherModulesKeyOrAnUnknownModuleIsRefused) {
  auto v = verifier();
  // revenue's key claiming to be permits (and permits' key claiming revenue).
  expect_refused(v, signed_request(key_of(2), "permits", "{}"), "does not verify");
  expect_refused(v, signed_request(key_of(1), "revenue", "{}"), "does not verify");
  expect_refused(v, signed_request(key_of(1), "parks", "{}"), "no key for the calling module");
  // Renaming the caller of a valid signature breaks it.
  auto renamed = signed_request(key_of(1), "permits", "{}");
  set_header(renamed, kServiceHeader, "revenue");
  expect_refused(v, renamed, "does not verify");
}

TEST(ServiceSigning, ExpiredOrFutureTimestampsAreRefused) {
  auto v = verifier();
  auto now = std::chrono::system_clock::now();
  expect_refused(v, signed_request(key_of(1), "permits", "{}", now - 31s), "outside the replay window");
  expect_refused(v, signed_request(key_of(1), "permits", "{}", now + 31s), "outside the replay window");
  EXPECT_TRUE(v.verify(signed_request(key_of(1), "permits", "{}", now - 25s)));
}

TEST(ServiceSigning, AReplayWithinTheWindowIsRefusedAndOneAfterItByItsTimestamp) {
  auto v = verifier();
  auto request = signed_request(key_of(1), "permits", R"({"citizen_id":1})");
  ASSERT_TRUE(v.verify(request));
  expect_refused(v, request, "replayed");
  // Once the window has passed, the seen signature is forgotten and its timestamp refuses it.
  auto later = std::chrono::system_clock::now() + 40s;
  auto result = v.verify(request, later);
  ASSERT_FALSE(result);
  EXPECT_NE(result.error().message.find("outside the replay window"), std::string::npos);
}

TEST(ServiceSigning, KeyFilesAreHexReadableByTheirOwnerOnly) {
  testing::TempDir dir;
  auto file = dir.path() / "permits.key";
  {
    std::ofstream out(file);
    out << std::string(64, 'a') << "\n";
  }
  std::filesystem::permissions(file, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  auto key = load_key(file);
  std::array<unsigned char, kKeyBytes> expected{};
  expected.fill(0xaa);
  http::Request request = signed_request(key, "permits", "{}");
  std::map<std::string, Key, std::less<>> keys;
  keys.emplace("permits", Key(expected));
  Verifier v(std::move(keys), 30s);
  EXPECT_TRUE(v.verify(request));

  std::filesystem::permissions(file, std::filesystem::perms::group_read, std::filesystem::perm_options::add);
  try {
    load_key(file);
    FAIL() << "a group-readable key file was accepted";
  } catch (const std::runtime_error& error) {
    EXPECT_NE(std::string(error.what()).find("chmod 600"), std::string::npos);
    EXPECT_EQ(std::string(error.what()).find("aaaa"), std::string::npos);  // never the key itself
  }
  std::filesystem::permissions(file, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  for (std::string bad : {std::string(63, 'a'), std::string(64, 'g'), std::string(66, 'a'), std::string()}) {
    {
      std::ofstream out(file, std::ios::trunc);
      out << bad;
    }
    EXPECT_THROW(load_key(file), std::runtime_error) << bad;
  }
  EXPECT_THROW(load_key(dir.path() / "missing.key"), std::runtime_error);
}

}  // namespace
}  // namespace townhall::signing
