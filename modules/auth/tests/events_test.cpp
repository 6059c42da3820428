// auth's event contract (townhall/auth/events.hpp): its decoders refuse every payload they
// cannot read whole, and still read what auth wrote before payloads had a version.
#include "townhall/auth/events.hpp"

#include <gtest/gtest.h>

#include "contract_checks.hpp"
#include "fake_auth.hpp"

namespace townhall::auth {
namespace {

using nlohmann::json;
using testing::contract_event;
using testing::strictness_gaps;

Citizen maria() {
  auto c = townhall::testing::test_citizen(7, 3);
  c.name = "Maria";
  c.phone = "+1-100";
  c.identity_verified = true;
  c.created_at = c.updated_at = "2026-11-22T00:00:00.000Z";
  return c;
}

bus::Event citizen_event(std::string_view type, json data) {
  auto event = contract_event(events::kCitizenTopic, type, std::move(data));
  event.event_version = 3;
  return event;
}

// The envelope's version is the one a cache keeps, so the snapshot's is not read.
const std::set<std::string> kUnread{"event_version"};

TEST(AuthEvents, ACitizenPayloadIsReadWholeOrRefused) {
  auto good =
      citizen_event(events::kCitizenUpdated,
                    events::versioned({{"snapshot", events::citizen_snapshot(maria())}, {"changes", json::object()}}));
  EXPECT_EQ(good.data.at("schema_version"), events::kSchemaVersion);
  EXPECT_EQ(strictness_gaps(good, events::citizen_of, kUnread), std::vector<std::string>{});
  auto read = events::citizen_of(good);
  EXPECT_EQ(read.id, 7);
  EXPECT_EQ(read.phone, "+1-100");
  EXPECT_FALSE(read.address);
  EXPECT_TRUE(read.identity_verified);
  EXPECT_TRUE(read.is_active);
  EXPECT_EQ(read.event_version, 3);
}

// Every auth since its events began (ce534ab) wrote these fields without a
// schema_version: such a payload, still in an outbox, is version 1 and reads.
TEST(AuthEvents, APayloadFromBeforeVersionsIsVersionOne) {
  auto citizen = citizen_event(events::kCitizenCreated, {{"snapshot", events::citizen_snapshot(maria())}});
  EXPECT_EQ(events::citizen_of(citizen).name, "Maria");
  auto department = contract_event(events::kDepartmentTopic, events::kDepartmentCreated,
                                   {{"snapshot", events::department_snapshot({"BLD", "Building", 1}, "t0", "t1")}});
  EXPECT_EQ(events::department_of(department).name, "Building");
}

TEST(AuthEvents, ADeletedCitizenIsInactiveWhateverItsSnapshotSays) {
  auto deleted =
      citizen_event(events::kCitizenDeleted, events::versioned({{"snapshot", events::citizen_snapshot(maria())}}));
  EXPECT_FALSE(events::citizen_of(deleted).is_active);
}

TEST(AuthEvents, ADepartmentPayloadIsReadWholeOrRefused) {
  auto good = contract_event(
      events::kDepartmentTopic, events::kDepartmentUpdated,
      events::versioned({{"snapshot", events::department_snapshot({"BLD", "Building", 2}, "t0", "t1")}}));
  good.event_version = 2;
  // is_active may be absent (a snapshot from before issue 26: active); present, it is strict.
  EXPECT_EQ(strictness_gaps(good, events::department_of, {"event_version", "is_active"}), std::vector<std::string>{});
  auto read = events::department_of(good);
  EXPECT_EQ(read.code, "BLD");
  EXPECT_EQ(read.name, "Building");
  EXPECT_EQ(read.event_version, 2);
  EXPECT_TRUE(read.is_active);
  auto mistyped = good;
  mistyped.data["snapshot"]["is_active"] = "no";
  EXPECT_THROW(events::department_of(mistyped), bus::PermanentError);
  auto older = good;
  older.data["snapshot"].erase("is_active");
  EXPECT_TRUE(events::department_of(older).is_active);
  auto inactive = contract_event(
      events::kDepartmentTopic, events::kDepartmentUpdated,
      events::versioned({{"snapshot", events::department_snapshot({"BLD", "Building", 3, false}, "t0", "t1")}}));
  EXPECT_FALSE(events::department_of(inactive).is_active);
}

TEST(AuthEvents, AnEmployeePayloadIsReadWholeOrRefused) {
  events::EmployeeSnapshot rosa{7, "rosa@example.org", "Rosa", "REV", true, {"auditor", "revenue_clerk"}};
  auto good = contract_event(
      events::kEmployeeTopic, events::kRoleChanged,
      events::employee_data(rosa, {{"roles", {{"old", json::array({"revenue_clerk"})}, {"new", rosa.roles}}}}));
  // roles is an array (the generic check's wrong type): checked below.
  EXPECT_EQ(strictness_gaps(good, events::employee_of, {"roles"}), std::vector<std::string>{});
  auto read = events::employee_of(good);
  EXPECT_EQ(read.id, 7);
  EXPECT_EQ(read.department_code, "REV");
  EXPECT_EQ(read.roles, rosa.roles);
  EXPECT_EQ(events::roles_change_of(good).old_roles, std::vector<std::string>{"revenue_clerk"});
  auto bad_roles = good;
  bad_roles.data["snapshot"]["roles"] = json::array({1});
  EXPECT_THROW(events::employee_of(bad_roles), bus::PermanentError);
  bad_roles.data["snapshot"].erase("roles");
  EXPECT_THROW(events::employee_of(bad_roles), bus::PermanentError);
  auto no_change = good;
  no_change.data.erase("changes");
  EXPECT_THROW(events::roles_change_of(no_change), bus::PermanentError);
  auto deactivated = contract_event(events::kEmployeeTopic, events::kEmployeeDeactivated, events::employee_data(rosa));
  EXPECT_FALSE(events::employee_of(deactivated).is_active);
}

}  // namespace
}  // namespace townhall::auth
