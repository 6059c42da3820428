#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "townhall/auth/api.hpp"

// auth as another module's unit tests meet it: its public contract (auth::Api) answered
// from what the test put here, failing as told. The one stand-in for auth in the suite.
namespace townhall::testing {

// A citizen as the tests of auth and of its callers build one: "Citizen <id>" at
// c<id>@example.org, at `version`; each test sets the fields it looks at.
inline auth::Citizen test_citizen(std::int64_t id, std::int64_t version = 1) {
  auth::Citizen citizen;
  citizen.id = id;
  citizen.name = "Citizen " + std::to_string(id);
  citizen.email = "c" + std::to_string(id) + "@example.org";
  citizen.event_version = version;
  return citizen;
}

class FakeAuth final : public auth::Api {
 public:
  std::map<std::int64_t, auth::Citizen> citizens;  // by id: get_citizen, citizens_since
  std::vector<auth::DepartmentRef> department_list;
  std::optional<std::string> national_id;                      // what get_sensitive answers; none: forbidden
  std::optional<Errc> failure;                                 // every data call fails with it while set
  std::vector<std::int64_t> sensitive_reads;                   // the citizens whose national id was read
  std::map<std::string, auth::PasswordResetMail> reset_mails;  // by reference; absent: used or expired

  void add(const auth::Citizen& citizen) { citizens[citizen.id] = citizen; }

  boost::asio::awaitable<Result<std::shared_ptr<const Principal>>> authenticate(CallContext, std::string) override {
    co_return make_error(Errc::unauthorized, "no sessions here");
  }
  boost::asio::awaitable<Result<auth::Citizen>> get_citizen(CallContext context, std::int64_t id) override {
    if (failure) co_return make_error(*failure, "scripted failure");
    if (context.anonymous()) co_return make_error(Errc::forbidden, "anonymous");
    auto it = citizens.find(id);
    if (it == citizens.end()) co_return make_error(Errc::not_found, "no such citizen");
    co_return it->second;
  }
  boost::asio::awaitable<Result<std::optional<std::string>>> get_sensitive(CallContext, std::int64_t id,
                                                                           std::string) override {
    if (failure) co_return make_error(*failure, "scripted failure");
    if (!national_id) co_return make_error(Errc::forbidden, "not here");
    sensitive_reads.push_back(id);
    co_return national_id;
  }
  boost::asio::awaitable<Result<std::vector<auth::CitizenVersion>>> citizen_versions(CallContext, std::int64_t, int,
                                                                                     auth::CitizenFields) override {
    co_return std::vector<auth::CitizenVersion>{};
  }
  boost::asio::awaitable<Result<consistency::Digest>> citizen_digest(CallContext, std::int64_t, std::int64_t,
                                                                     auth::CitizenFields) override {
    co_return consistency::Digest{};
  }
  // Everything on the first page (change_seq 0), then nothing.
  boost::asio::awaitable<Result<auth::CitizenChanges>> citizens_since(CallContext, std::int64_t seq, int) override {
    if (failure) co_return make_error(*failure, "scripted failure");
    auth::CitizenChanges changes{{}, seq};
    if (seq == 0)
      for (const auto& [id, citizen] : citizens) changes.citizens.push_back(citizen), changes.next = id;
    co_return changes;
  }
  boost::asio::awaitable<Result<std::vector<auth::DepartmentRef>>> departments(CallContext) override {
    if (failure) co_return make_error(*failure, "scripted failure");
    co_return department_list;
  }
  boost::asio::awaitable<Result<auth::PasswordResetMail>> password_reset_mail(CallContext context,
                                                                              std::string reference) override {
    if (failure) co_return make_error(*failure, "scripted failure");
    if (!context.is_service()) co_return make_error(Errc::forbidden, "a module only");
    auto it = reset_mails.find(reference);
    if (it == reset_mails.end()) co_return make_error(Errc::not_found, "used, replaced or expired");
    co_return it->second;
  }
};

}  // namespace townhall::testing
