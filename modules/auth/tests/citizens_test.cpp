// Citizens' accounts: registration, events in the same transaction as the change,
// who may read or change whom, and the bulk reads other modules' caches check against.
#include "fixture.hpp"
#include "store.hpp"

namespace townhall::auth {
namespace {

TEST_F(AuthServiceTest, RegistrationValidatesEmailPasswordAndUniqueness) {
  auto attempt = [&](std::string email, std::string password, std::optional<std::string> national_id = {}) {
    return run_awaitable(service->register_citizen(
        CallContext{}, Registration{email, password, "Name", {}, {}, {}, {}, std::move(national_id)}));
  };
  EXPECT_EQ(attempt("not-an-email", "a long enough password").error().code, Errc::invalid_argument);
  EXPECT_EQ(attempt("a@b", "a long enough password").error().code, Errc::invalid_argument);
  EXPECT_EQ(attempt("x@example.org", "short").error().code, Errc::invalid_argument);
  EXPECT_EQ(attempt("longname@example.org", "LONGNAME@example.org").error().code, Errc::invalid_argument);
  EXPECT_EQ(attempt("x@example.org", "a long enough password", "12'; DROP TABLE").error().code, Errc::invalid_argument);
  ASSERT_TRUE(attempt("Maria@Example.org", "a long enough password"));
  auto duplicate = attempt("maria@example.ORG", "another long password");
  EXPECT_EQ(duplicate.error().code, Errc::conflict);
  EXPECT_EQ(count("SELECT count(*) FROM citizens"), 1);
  EXPECT_EQ(count("SELECT count(*) FROM outbox"), 1);
}

TEST_F(AuthServiceTest, AFailureAfterTheStateWriteLeavesNeitherRowNorEvent) {
  service->set_fault_hook([](std::string_view point) {
    if (point == "citizen.created" || point == "citizen.updated") throw std::runtime_error("injected");
  });
  EXPECT_THROW(run_awaitable(service->register_citizen(
                   CallContext{}, Registration{"a@example.org", "a long enough password", "A", {}, {}, {}, {}, {}})),
               std::runtime_error);
  EXPECT_EQ(count("SELECT count(*) FROM citizens"), 0);
  EXPECT_EQ(count("SELECT count(*) FROM outbox"), 0);

  service->set_fault_hook({});
  auto maria = register_citizen("maria@example.org");
  service->set_fault_hook([](std::string_view point) {
    if (point == "citizen.updated") throw std::runtime_error("injected");
  });
  CitizenPatch patch;
  patch.phone = std::optional<std::string>("+1-555-9999");
  EXPECT_THROW(run_awaitable(service->update_citizen(as(citizen(maria.id)), maria.id, patch)), std::runtime_error);
  EXPECT_EQ(count("SELECT count(*) FROM citizens WHERE phone = '+1-555-0100' AND event_version = 1"), 1);
  EXPECT_EQ(outbox(std::to_string(maria.id)).size(), 1u);
}

TEST_F(AuthServiceTest, ExactlyOneEventPerChangeWithIncreasingVersions) {
  auto maria = register_citizen("maria@example.org", "NID-12345");
  auto self = as(citizen(maria.id));
  CitizenPatch phone;
  phone.phone = std::optional<std::string>("+1-555-0199");
  auto updated = run_awaitable(service->update_citizen(self, maria.id, phone));
  ASSERT_TRUE(updated);
  EXPECT_EQ(updated->event_version, 2);
  // The same change again changes nothing: no event, no version.
  auto again = run_awaitable(service->update_citizen(self, maria.id, phone));
  ASSERT_TRUE(again);
  EXPECT_EQ(again->event_version, 2);
  ASSERT_TRUE(run_awaitable(service->delete_citizen(self, maria.id)));

  auto events = outbox(std::to_string(maria.id));
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0]["type"], "citizen.created");
  EXPECT_EQ(events[1]["type"], "citizen.updated");
  EXPECT_EQ(events[2]["type"], "citizen.deleted");
  for (std::size_t i = 0; i < events.size(); ++i) {
    EXPECT_EQ(events[i]["version"], static_cast<std::int64_t>(i + 1));
    EXPECT_EQ(events[i]["data"]["snapshot"]["event_version"], static_cast<std::int64_t>(i + 1));
  }
  EXPECT_EQ(events[1]["data"]["changes"]["phone"]["old"], "+1-555-0100");
  EXPECT_EQ(events[1]["data"]["changes"]["phone"]["new"], "+1-555-0199");
  EXPECT_EQ(events[2]["data"]["snapshot"]["is_active"], false);
  // Soft delete: the row stays, inactive; the citizen's sessions were revoked with it.
  EXPECT_EQ(count("SELECT count(*) FROM citizens WHERE deleted_at IS NOT NULL AND is_active = 0"), 1);
}

// A PATCH writes the pages its change touches (issue 24: WAL bytes are the write path's
// cost). SQLite rewrites the index entry of every column an UPDATE names, changed or not,
// so a column an index covers is named only when it changed: a phone change in the middle
// of 2,000 citizens writes the row's page, change_seq's two and the event's page, where
// naming every column also rewrote the email, active-email and name entries (7 pages).
TEST_F(AuthServiceTest, APatchWritesOnlyThePagesItsChangeTouches) {
  {
    auto bulk = database.open(db::Role::service);
    SQLite::Transaction transaction(bulk->sql());
    for (int i = 0; i < 2000; ++i) {
      store::CitizenRow row;
      row.citizen.email = "citizen" + std::to_string(i) + "@example.org";
      row.citizen.name = "Citizen " + std::to_string(i);
      row.citizen.created_at = row.citizen.updated_at = "2026-01-01T00:00:00.000Z";
      row.citizen.event_version = 1;
      row.password_hash = "not a hash";
      row.change_seq = i + 1;
      store::insert_citizen(*bulk, row);
    }
    transaction.commit();
  }
  // A plain connection: the roles may not checkpoint. An empty log (a TRUNCATE that no
  // reader held back), then the PATCH's frames.
  SQLite::Database file(database.path().string(), SQLite::OPEN_READWRITE);
  struct Log {
    bool busy;
    int frames;
  };
  auto checkpoint = [&](const char* mode) {
    SQLite::Statement result(file, std::string("PRAGMA wal_checkpoint(") + mode + ")");
    EXPECT_TRUE(result.executeStep());
    return Log{result.getColumn(0).getInt() != 0, result.getColumn(1).getInt()};
  };
  ASSERT_TRUE(testing::wait_until([&] { return !checkpoint("TRUNCATE").busy; }));
  const std::int64_t id = 1000;
  CitizenPatch phone;
  phone.phone = std::optional<std::string>("+1-555-0199");
  ASSERT_TRUE(run_awaitable(service->update_citizen(as(citizen(id)), id, phone)));
  EXPECT_LE(checkpoint("PASSIVE").frames, 4);
  EXPECT_EQ(count("SELECT count(*) FROM citizens WHERE id = 1000 AND phone = '+1-555-0199' AND event_version = 2 "
                  "AND email = 'citizen999@example.org' AND name = 'Citizen 999'"),
            1);
}

TEST_F(AuthServiceTest, EventsNeverCarryTheNationalIdOrThePasswordHash) {
  auto maria = register_citizen("maria@example.org", "NID-555-777");
  CitizenPatch patch;
  patch.national_id = std::optional<std::string>("NID-888-999");
  ASSERT_TRUE(run_awaitable(service->update_citizen(as(citizen(maria.id)), maria.id, patch)));
  auto reader = database.open(db::Role::reader);
  auto hash = reader->prepare("SELECT password_hash FROM citizens");
  ASSERT_TRUE(hash.executeStep());
  auto password_hash = hash.getColumn(0).getString();
  auto events = outbox(std::to_string(maria.id));
  ASSERT_EQ(events.size(), 2u);
  for (const auto& event : events) {
    auto text = event.dump();
    EXPECT_EQ(text.find("NID-555-777"), std::string::npos) << text;
    EXPECT_EQ(text.find("NID-888-999"), std::string::npos) << text;
    EXPECT_EQ(text.find(password_hash), std::string::npos);
    EXPECT_EQ(text.find("password"), std::string::npos);
    EXPECT_FALSE(event["data"]["snapshot"].contains("national_id"));
    EXPECT_TRUE(event["data"]["snapshot"]["has_national_id"].get<bool>());
  }
  // At rest it is sealed: the plain text is nowhere in the row.
  auto sealed = reader->prepare("SELECT count(*) FROM citizens WHERE instr(national_id_sealed, 'NID-888-999') > 0");
  sealed.executeStep();
  EXPECT_EQ(sealed.getColumn(0).getInt(), 0);
}

TEST_F(AuthServiceTest, ChangingNameOrNationalIdResetsIdentityVerification) {
  auto maria = register_citizen("maria@example.org", "NID-1000");
  auto clerk = as(employee(5, {"citizens:read", "citizens:write", "citizens:verify"}));
  auto verify = [&] {
    CitizenPatch patch;
    patch.identity_verified = true;
    auto verified = run_awaitable(service->update_citizen(clerk, maria.id, patch));
    ASSERT_TRUE(verified) << verified.error().message;
    ASSERT_TRUE(verified->identity_verified);
  };
  auto change = [&](CitizenPatch patch) {
    auto changed = run_awaitable(service->update_citizen(as(citizen(maria.id)), maria.id, std::move(patch)));
    EXPECT_TRUE(changed) << changed.error().message;
    return changed ? changed->identity_verified : true;
  };

  verify();
  CitizenPatch phone;  // contact data is not identity
  phone.phone = std::optional<std::string>("+1-555-0111");
  EXPECT_TRUE(change(phone));
  CitizenPatch name;
  name.name = "Somebody Else";
  EXPECT_FALSE(change(name));
  // The reset is in the same event as the change, so caches never see the new name verified.
  auto events = outbox(std::to_string(maria.id));
  const auto& last = events.back();
  EXPECT_EQ(last["data"]["changes"]["name"]["new"], "Somebody Else");
  EXPECT_EQ(last["data"]["changes"]["identity_verified"]["new"], false);
  EXPECT_EQ(last["data"]["snapshot"]["identity_verified"], false);

  verify();
  CitizenPatch same_id;  // the same id again (other spelling) is no change
  same_id.national_id = std::optional<std::string>("nid 1000");
  EXPECT_TRUE(change(same_id));
  CitizenPatch new_id;
  new_id.national_id = std::optional<std::string>("NID-2000");
  EXPECT_FALSE(change(new_id));
  verify();
  CitizenPatch cleared;
  cleared.national_id = std::optional<std::string>();
  EXPECT_FALSE(change(cleared));

  // Staff who change the name and verify in one request leave it verified.
  CitizenPatch corrected;
  corrected.name = "Maria Garcia";
  corrected.identity_verified = true;
  auto staff_change = run_awaitable(service->update_citizen(clerk, maria.id, corrected));
  ASSERT_TRUE(staff_change);
  EXPECT_TRUE(staff_change->identity_verified);
}

TEST_F(AuthServiceTest, LookalikeEmailsNameTheSameAccount) {
  register_citizen("maria@example.org");
  register_citizen("jos\u00e9@example.org");  // composed é
  register_citizen("kelvin@example.org");
  for (const char* lookalike : {"\uff4daria@example.org",      // fullwidth ｍ
                                "MARIA@EXAMPLE.ORG",           //
                                "jose\u0301@example.org",      // e + combining acute
                                "\u212aelvin@example.org"}) {  // Kelvin sign
    Registration again{lookalike, "a long enough password", "Name", {}, {}, {}, {}, {}};
    auto registered = run_awaitable(service->register_citizen(CallContext{}, again));
    ASSERT_FALSE(registered) << lookalike;
    EXPECT_EQ(registered.error().code, Errc::conflict) << lookalike;
    // and signs in to the account it looks like
    EXPECT_TRUE(run_awaitable(service->login(lookalike, "a long enough password", "127.0.0.1"))) << lookalike;
  }
}

TEST_F(AuthServiceTest, ObjectLevelAuthorization) {
  auto maria = register_citizen("maria@example.org");
  auto li = register_citizen("li@example.org");
  // Another citizen's record does not exist for a citizen.
  EXPECT_EQ(run_awaitable(service->get_citizen(as(citizen(li.id)), maria.id)).error().code, Errc::not_found);
  CitizenPatch phone;
  phone.phone = std::optional<std::string>("+1");
  EXPECT_EQ(run_awaitable(service->update_citizen(as(citizen(li.id)), maria.id, phone)).error().code, Errc::not_found);
  EXPECT_EQ(run_awaitable(service->delete_citizen(as(citizen(li.id)), maria.id)).error().code, Errc::not_found);
  // Staff without the permission: forbidden. With it: allowed.
  auto parks = as(employee(7, {"parks:*"}));
  EXPECT_EQ(run_awaitable(service->get_citizen(parks, maria.id)).error().code, Errc::forbidden);
  EXPECT_EQ(run_awaitable(service->update_citizen(parks, maria.id, phone)).error().code, Errc::forbidden);
  EXPECT_EQ(service->list_citizens(parks, {}, {}, {}).error().code, Errc::forbidden);
  auto reviewer = as(employee(8, {"citizens:read", "permits:review"}));
  EXPECT_TRUE(run_awaitable(service->get_citizen(reviewer, maria.id)));
  EXPECT_EQ(run_awaitable(service->update_citizen(reviewer, maria.id, phone)).error().code, Errc::forbidden);
  auto admin = as(employee(9, {"*"}));
  EXPECT_TRUE(run_awaitable(service->update_citizen(admin, maria.id, phone)));
  // Verification flags: never by the citizen, only with citizens:verify.
  CitizenPatch verify;
  verify.identity_verified = true;
  EXPECT_EQ(run_awaitable(service->update_citizen(as(citizen(maria.id)), maria.id, verify)).error().code,
            Errc::forbidden);
  auto clerk = as(employee(10, {"citizens:read", "citizens:write", "citizens:verify"}));
  auto verified = run_awaitable(service->update_citizen(clerk, maria.id, verify));
  ASSERT_TRUE(verified);
  EXPECT_TRUE(verified->identity_verified);
  EXPECT_EQ(count("SELECT count(*) FROM audit_log WHERE action = 'citizen.verification.set'"), 1);
  // The list filters by email and by name.
  auto list = service->list_citizens(reviewer, std::string("LI@example.org"), {}, {});
  ASSERT_TRUE(list);
  ASSERT_EQ(list->items.size(), 1u);
  EXPECT_EQ(list->items[0].id, li.id);
}

// The content hash auth computes for a cache's fields is the one a cache row of the same
// citizen hashes to; an inactive citizen's contact fields are not kept.
TEST_F(AuthServiceTest, ConsistencyDigestsCoverTheFieldsACacheKeeps) {
  auto maria = register_citizen("maria@example.org");
  auto module = CallContext::as_service("permits", "test");
  const CitizenFields name_only{CitizenField::name};
  const CitizenFields contact{CitizenField::name, CitizenField::phone, CitizenField::is_active};
  auto versions = run_awaitable(service->citizen_versions(module, 0, 10, contact));
  ASSERT_TRUE(versions);
  ASSERT_EQ(versions->size(), 1u);
  EXPECT_EQ(
      (*versions)[0].content,
      consistency::ContentHash().text("Test Citizen").nullable_text(std::string("+1-555-0100")).integer(1).value());
  auto before = *run_awaitable(service->citizen_digest(module, 0, 1000, name_only));
  CitizenPatch patch;
  patch.phone = std::optional<std::string>("+1-555-0199");
  ASSERT_TRUE(run_awaitable(service->update_citizen(as(citizen(maria.id)), maria.id, patch)));
  // A field the cache does not keep changes the version, not the content.
  auto after = *run_awaitable(service->citizen_versions(module, 0, 10, name_only));
  EXPECT_EQ(after[0].content, consistency::ContentHash().text("Test Citizen").value());
  EXPECT_FALSE(before.same(*run_awaitable(service->citizen_digest(module, 0, 1000, name_only))));  // the version moved
  ASSERT_TRUE(run_awaitable(service->delete_citizen(as(employee(9, {"*"})), maria.id)));
  auto closed = *run_awaitable(service->citizen_versions(module, 0, 10, contact));
  EXPECT_EQ(closed[0].content,
            consistency::ContentHash().text("Test Citizen").null().integer(0).value());  // no contact data kept
}

TEST_F(AuthServiceTest, ConsistencyReadsPageThroughCitizens) {
  std::vector<std::int64_t> ids;
  for (int i = 0; i < 5; ++i) ids.push_back(register_citizen("c" + std::to_string(i) + "@example.org").id);
  CitizenPatch patch;
  patch.name = "Renamed";
  ASSERT_TRUE(run_awaitable(service->update_citizen(as(citizen(ids[1])), ids[1], patch)));
  auto module = CallContext::as_service("permits", "test");
  EXPECT_EQ(run_awaitable(service->citizen_versions(CallContext{}, ids[2], 10, {})).error().code, Errc::forbidden);
  auto versions = run_awaitable(service->citizen_versions(module, ids[2], 10, {}));
  ASSERT_TRUE(versions);
  ASSERT_EQ(versions->size(), 2u);
  EXPECT_EQ((*versions)[0].id, ids[3]);
  auto all = run_awaitable(service->citizens_since(module, 0, 3));
  ASSERT_TRUE(all);
  ASSERT_EQ(all->citizens.size(), 3u);
  auto rest = run_awaitable(service->citizens_since(module, all->next, 10));
  ASSERT_TRUE(rest);
  ASSERT_EQ(rest->citizens.size(), 2u);
  EXPECT_EQ(rest->citizens.back().id, ids[1]);  // the latest change comes last
  EXPECT_EQ(rest->citizens.back().name, "Renamed");
  CallContext late;
  late.deadline = CallContext::Clock::now() - std::chrono::seconds(1);
  EXPECT_EQ(run_awaitable(service->get_citizen(late, ids[0])).error().code, Errc::deadline_exceeded);
}

}  // namespace
}  // namespace townhall::auth
