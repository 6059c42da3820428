// Staff lifecycle (issue 26 §2): employees listed and searched, deactivated (every session
// ends at once, cached tokens included) and reactivated, roles replaced, departments
// deactivated; each audited and announced.
#include "contract_checks.hpp"
#include "fixture.hpp"
#include "townhall/auth/events.hpp"

namespace townhall::auth {
namespace {

const auto kAdmin = employee(999, {"*"});

EmployeeQuery query(std::optional<std::string> q, std::optional<std::string> department = {},
                    std::optional<std::string> role = {}, std::optional<bool> active = {}) {
  EmployeeQuery out;
  out.q = std::move(q);
  out.department_code = std::move(department);
  out.role = std::move(role);
  out.active = active;
  return out;
}

std::vector<std::string> emails_of(const EmployeeList& list) {
  std::vector<std::string> out;
  for (const auto& e : list.items) out.push_back(e.email);
  return out;
}

TEST_F(AuthServiceTest, DeactivationEndsEverySessionAtOnceCachedTokensIncluded) {
  auto id = create_staff("clerk@example.org", {"clerk"});
  auto first = run_awaitable(service->login("clerk@example.org", "staff password 123", "10.0.0.1"));
  auto second = run_awaitable(service->login("clerk@example.org", "staff password 123", "10.0.0.2"));
  ASSERT_TRUE(first && second);
  // Authenticated once: the token is now answered from the cache.
  ASSERT_TRUE(service->authenticate_now(first->token));
  ASSERT_GT(service->token_cache().size(), 0u);

  auto deactivated = run_awaitable(service->set_employee_active(as(kAdmin), id, false));
  ASSERT_TRUE(deactivated) << deactivated.error().message;
  EXPECT_FALSE(deactivated->is_active);
  for (const auto* token : {&first->token, &second->token}) {
    auto refused = service->authenticate_now(*token);
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().code, Errc::unauthorized);
  }
  EXPECT_FALSE(run_awaitable(service->login("clerk@example.org", "staff password 123", "10.0.0.1")));

  // Again: no change, no second event.
  EXPECT_TRUE(run_awaitable(service->set_employee_active(as(kAdmin), id, false)));
  auto reactivated = run_awaitable(service->set_employee_active(as(kAdmin), id, true));
  ASSERT_TRUE(reactivated);
  EXPECT_TRUE(reactivated->is_active);
  // The old sessions stay ended; signing in again works.
  EXPECT_FALSE(service->authenticate_now(first->token));
  EXPECT_TRUE(run_awaitable(service->login("clerk@example.org", "staff password 123", "10.0.0.1")));

  auto events = outbox(std::to_string(id));
  ASSERT_EQ(events.size(), 3u);  // assigned, deactivated, reactivated
  EXPECT_EQ(events[1]["type"], events::kEmployeeDeactivated);
  EXPECT_EQ(events[1]["data"]["snapshot"]["is_active"], false);
  EXPECT_EQ(events[1]["data"]["snapshot"]["roles"], json::array({"clerk"}));
  EXPECT_EQ(events[2]["type"], events::kEmployeeReactivated);
  EXPECT_EQ(events[2]["version"], 3);
  auto reader = database.open(db::Role::reader);
  auto subject = "employee:" + std::to_string(id);
  EXPECT_EQ(store::count_audit(*reader, "employee.deactivated", subject), 1);
  EXPECT_EQ(store::count_audit(*reader, "employee.reactivated", subject), 1);
}

TEST_F(AuthServiceTest, AnAdminCannotDeactivateThemselfAndOthersMayNotAtAll) {
  auto admin = create_staff("boss@example.org", {"admin"});
  auto self = run_awaitable(service->set_employee_active(as(employee(admin, {"*"})), admin, false));
  ASSERT_FALSE(self);
  EXPECT_EQ(self.error().code, Errc::conflict);
  EXPECT_NE(self.error().message.find("your own account"), std::string::npos);
  auto clerk = run_awaitable(service->set_employee_active(as(employee(5, {"citizens:read"})), admin, false));
  ASSERT_FALSE(clerk);
  EXPECT_EQ(clerk.error().code, Errc::forbidden);
  auto unknown = run_awaitable(service->set_employee_active(as(kAdmin), 4242, false));
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().code, Errc::not_found);
  EXPECT_TRUE(run_awaitable(service->login("boss@example.org", "staff password 123", "10.0.0.1")));
}

TEST_F(AuthServiceTest, EmployeesAreSearchedFilteredAndPaged) {
  auto ana = create_staff("ana.lopez@example.org", {"clerk"}, "BLD");
  auto bob = create_staff("bob@example.org", {"parks_staff"}, "BLD");
  create_staff("carla@example.org", {"clerk", "revenue_clerk"});
  ASSERT_TRUE(run_awaitable(service->set_employee_active(as(kAdmin), bob, false)));
  auto list = [&](EmployeeQuery asked, input::Page page = {}) {
    auto listed = service->list_employees(as(kAdmin), std::move(asked), page);
    EXPECT_TRUE(listed) << listed.error().message;
    return listed ? *listed : EmployeeList{};
  };
  EXPECT_EQ(emails_of(list({})),
            (std::vector<std::string>{"ana.lopez@example.org", "bob@example.org", "carla@example.org"}));
  EXPECT_EQ(emails_of(list(query("ANA"))),
            std::vector<std::string>{"ana.lopez@example.org"});  // email prefix, any case
  EXPECT_EQ(emails_of(list(query("sta"))).size(), 3u);           // every name is "Staff": a name prefix, any case
  EXPECT_EQ(emails_of(list(query("nobody"))), std::vector<std::string>{});
  EXPECT_EQ(emails_of(list(query({}, "BLD"))), (std::vector<std::string>{"ana.lopez@example.org", "bob@example.org"}));
  EXPECT_EQ(emails_of(list(query({}, {}, "clerk"))),
            (std::vector<std::string>{"ana.lopez@example.org", "carla@example.org"}));
  EXPECT_EQ(emails_of(list(query({}, {}, {}, false))), std::vector<std::string>{"bob@example.org"});
  EXPECT_EQ(emails_of(list(query({}, "BLD", {}, true))), std::vector<std::string>{"ana.lopez@example.org"});

  auto first = list({}, {2, "", true});
  EXPECT_EQ(first.items.size(), 2u);
  EXPECT_EQ(first.total, 3);
  ASSERT_TRUE(first.next_cursor);
  EXPECT_EQ(first.items[0].id, ana);
  auto rest = list({}, {2, *first.next_cursor, false});
  EXPECT_EQ(emails_of(rest), std::vector<std::string>{"carla@example.org"});
  EXPECT_FALSE(rest.next_cursor);
  EXPECT_EQ(rest.items[0].roles, (std::vector<std::string>{"clerk", "revenue_clerk"}));

  auto refused = service->list_employees(as(employee(5, {"citizens:read"})), {}, {});
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, Errc::forbidden);
}

TEST_F(AuthServiceTest, RoleChangesNameAnUnknownRoleAndAreAnnouncedTyped) {
  auto id = create_staff("pat@example.org", {"parks_staff"});
  auto unknown = run_awaitable(service->set_employee_roles(as(kAdmin), id, {"clerk", "wizard"}));
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().code, Errc::unprocessable);
  EXPECT_NE(unknown.error().message.find("'wizard'"), std::string::npos);
  auto changed = run_awaitable(service->set_employee_roles(as(kAdmin), id, {"clerk", "auditor"}));
  ASSERT_TRUE(changed) << changed.error().message;
  EXPECT_EQ(changed->roles, (std::vector<std::string>{"auditor", "clerk"}));

  auto events = outbox(std::to_string(id));
  ASSERT_EQ(events.size(), 2u);
  auto event = testing::contract_event(events::kEmployeeTopic, events::kRoleChanged, events[1]["data"]);
  auto snapshot = events::employee_of(event);
  EXPECT_EQ(snapshot.roles, (std::vector<std::string>{"auditor", "clerk"}));
  auto change = events::roles_change_of(event);
  EXPECT_EQ(change.old_roles, std::vector<std::string>{"parks_staff"});
  EXPECT_EQ(change.new_roles, (std::vector<std::string>{"auditor", "clerk"}));
  auto reader = database.open(db::Role::reader);
  EXPECT_EQ(store::count_audit(*reader, "employee.roles.set", "employee:" + std::to_string(id)), 1);
}

TEST_F(AuthServiceTest, ADepartmentIsDeactivatedAndReactivatedWithItsEvents) {
  ASSERT_TRUE(run_awaitable(service->create_department(as(kAdmin), "BLD", "Building")));
  auto refused = run_awaitable(service->set_department_active(as(employee(5, {"citizens:read"})), "BLD", false));
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, Errc::forbidden);
  auto missing = run_awaitable(service->set_department_active(as(kAdmin), "NOPE", false));
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, Errc::not_found);

  auto off = run_awaitable(service->set_department_active(as(kAdmin), "BLD", false));
  ASSERT_TRUE(off);
  EXPECT_FALSE(off->is_active);
  EXPECT_FALSE(service->list_departments()->at(0).is_active);
  auto departments = run_awaitable(service->departments(CallContext::as_service("permits", "test")));
  ASSERT_TRUE(departments);
  EXPECT_FALSE(departments->at(0).is_active);
  ASSERT_TRUE(run_awaitable(service->set_department_active(as(kAdmin), "BLD", true)));

  auto events = outbox("BLD");
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[1]["type"], events::kDepartmentDeactivated);
  auto deactivated =
      testing::contract_event(events::kDepartmentTopic, events::kDepartmentDeactivated, events[1]["data"]);
  deactivated.event_version = 2;
  EXPECT_FALSE(events::department_of(deactivated).is_active);
  auto reactivated =
      testing::contract_event(events::kDepartmentTopic, events::kDepartmentReactivated, events[2]["data"]);
  EXPECT_TRUE(events::department_of(reactivated).is_active);
  auto reader = database.open(db::Role::reader);
  EXPECT_EQ(store::count_audit(*reader, "department.deactivated", "department:BLD"), 1);
}

}  // namespace
}  // namespace townhall::auth
