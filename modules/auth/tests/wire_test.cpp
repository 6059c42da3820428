// The wire format of auth::Api over HTTP (wire.hpp): every request and result survives a
// round trip through its JSON text, and malformed bodies are refused, not thrown.
#include "townhall/auth/wire.hpp"

#include <gtest/gtest.h>

#include <limits>

#include "fake_auth.hpp"

namespace townhall::auth {
namespace {

template <class T>
T round_trip(const T& value) {
  auto decoded = wire::decode_text<T>(wire::encode_text(value));
  EXPECT_TRUE(decoded) << (decoded ? "" : decoded.error().message);
  return decoded ? std::move(decoded).value() : T{};
}

Citizen sample_citizen() {
  auto c = townhall::testing::test_citizen(42, 7);
  c.name = "Ana Núñez";
  c.phone = "+1-555-0100";
  c.city = "Springfield";
  c.has_national_id = true;
  c.email_verified = true;
  c.created_at = "2026-01-01T00:00:00Z";
  c.updated_at = "2026-01-02T00:00:00Z";
  return c;
}

void expect_same(const Citizen& a, const Citizen& b) {
  EXPECT_EQ(a.id, b.id);
  EXPECT_EQ(a.email, b.email);
  EXPECT_EQ(a.name, b.name);
  EXPECT_EQ(a.phone, b.phone);
  EXPECT_EQ(a.address, b.address);
  EXPECT_EQ(a.city, b.city);
  EXPECT_EQ(a.postal_code, b.postal_code);
  EXPECT_EQ(a.has_national_id, b.has_national_id);
  EXPECT_EQ(a.email_verified, b.email_verified);
  EXPECT_EQ(a.identity_verified, b.identity_verified);
  EXPECT_EQ(a.is_active, b.is_active);
  EXPECT_EQ(a.event_version, b.event_version);
  EXPECT_EQ(a.created_at, b.created_at);
  EXPECT_EQ(a.updated_at, b.updated_at);
}

TEST(AuthWire, RequestsRoundTrip) {
  EXPECT_EQ(round_trip(wire::Authenticate{"tok"}).token, "tok");
  EXPECT_EQ(round_trip(wire::GetCitizen{9}).citizen_id, 9);
  auto sensitive = round_trip(wire::GetSensitive{9, "tax record"});
  EXPECT_EQ(sensitive.citizen_id, 9);
  EXPECT_EQ(sensitive.purpose, "tax record");
  CitizenFields all{
      CitizenField::name,     CitizenField::email,       CitizenField::phone,          CitizenField::address,
      CitizenField::city,     CitizenField::postal_code, CitizenField::email_verified, CitizenField::identity_verified,
      CitizenField::is_active};
  auto versions = round_trip(wire::CitizenVersions{5, 100, all});
  EXPECT_EQ(versions.after_id, 5);
  EXPECT_EQ(versions.limit, 100);
  EXPECT_EQ(versions.fields, all);
  auto digest = round_trip(wire::CitizenDigest{1, 1000, {CitizenField::phone}});
  EXPECT_EQ(digest.from_id, 1);
  EXPECT_EQ(digest.to_id, 1000);
  EXPECT_EQ(digest.fields, CitizenFields{CitizenField::phone});
  auto since = round_trip(wire::CitizensSince{77, 10});
  EXPECT_EQ(since.change_seq, 77);
  EXPECT_EQ(since.limit, 10);
  round_trip(wire::Departments{});
  EXPECT_EQ(round_trip(wire::ResetMail{"ref-1"}).reference, "ref-1");
  EXPECT_EQ(wire::path<wire::GetCitizen>(), "/internal/v1/auth/get_citizen");
}

TEST(AuthWire, ResultsRoundTrip) {
  auto principal = std::make_shared<Principal>();
  principal->id = 3;
  principal->kind = Principal::Kind::employee;
  principal->email = "clerk@example.org";
  principal->name = "Clerk";
  principal->roles = {"permits_reviewer"};
  principal->permissions = {"permits:review", "citizens:read"};
  principal->department = "BLD";
  auto decoded = round_trip(std::shared_ptr<const Principal>(principal));
  ASSERT_TRUE(decoded);
  EXPECT_EQ(decoded->id, 3);
  EXPECT_TRUE(decoded->is_employee());
  EXPECT_EQ(decoded->roles, principal->roles);
  EXPECT_EQ(decoded->permissions, principal->permissions);
  EXPECT_EQ(decoded->department, "BLD");

  expect_same(round_trip(sample_citizen()), sample_citizen());
  EXPECT_EQ(round_trip(std::optional<std::string>("123-45-6789")), std::optional<std::string>("123-45-6789"));
  EXPECT_EQ(round_trip(std::optional<std::string>()), std::nullopt);

  std::vector<CitizenVersion> versions{{1, 2, true, std::numeric_limits<std::uint64_t>::max()}, {5, 1, false, 0}};
  auto versions_back = round_trip(versions);
  ASSERT_EQ(versions_back.size(), 2u);
  EXPECT_EQ(versions_back[0].content, std::numeric_limits<std::uint64_t>::max());  // past 2^53: a string on the wire
  EXPECT_EQ(versions_back[1].id, 5);
  EXPECT_FALSE(versions_back[1].is_active);

  consistency::Digest digest;
  digest.count = 12;
  digest.hash = 0xfedcba9876543210ull;
  digest.max_id = 99;
  auto digest_back = round_trip(digest);
  EXPECT_TRUE(digest_back.same(digest));
  EXPECT_EQ(digest_back.max_id, 99);

  CitizenChanges changes{{sample_citizen()}, 31};
  auto changes_back = round_trip(changes);
  ASSERT_EQ(changes_back.citizens.size(), 1u);
  expect_same(changes_back.citizens[0], sample_citizen());
  EXPECT_EQ(changes_back.next, 31);

  auto departments = round_trip(std::vector<DepartmentRef>{{"BLD", "Building", 2, false}});
  ASSERT_EQ(departments.size(), 1u);
  EXPECT_EQ(departments[0].code, "BLD");
  EXPECT_FALSE(departments[0].is_active);

  auto mail = round_trip(PasswordResetMail{"t0k", "a@example.org", "2026-01-01T00:30:00Z"});
  EXPECT_EQ(mail.token, "t0k");
  EXPECT_EQ(mail.email, "a@example.org");
  EXPECT_EQ(mail.expires_at, "2026-01-01T00:30:00Z");
}

TEST(AuthWire, MalformedBodiesAreInvalidArguments) {
  for (std::string_view text : {"", "[]", "{}", R"({"citizen_id":"9"})", "{\"citizen_id\":", "null"}) {
    auto decoded = wire::decode_text<wire::GetCitizen>(text);
    ASSERT_FALSE(decoded) << text;
    EXPECT_EQ(decoded.error().code, Errc::invalid_argument) << text;
  }
  EXPECT_FALSE(wire::decode_text<wire::CitizenVersions>(R"({"after_id":0,"limit":1,"fields":["national_id"]})"));
  EXPECT_FALSE(wire::decode_text<std::vector<CitizenVersion>>(
      R"({"items":[{"id":1,"event_version":1,"is_active":true,"content":"-1"}]})"));
  EXPECT_FALSE(wire::decode_text<std::vector<CitizenVersion>>(
      R"({"items":[{"id":1,"event_version":1,"is_active":true,"content":"99999999999999999999999"}]})"));
  EXPECT_FALSE(wire::decode_text<std::shared_ptr<const Principal>>(
      R"({"id":1,"kind":"robot","email":"","name":"","roles":[],"permissions":[],"department":""})"));
}

}  // namespace
}  // namespace townhall::auth
