#include "citizen_journey.hpp"

#include <date/tz.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <nlohmann/json.hpp>
#include <regex>
#include <thread>

#include "support.hpp"
#include "townhall/platform/time.hpp"

namespace townhall::testing {

std::map<std::string, std::string> demo_passwords(const std::string& output) {
  std::map<std::string, std::string> passwords;
  static const std::regex line(R"(: (\S+@\S+)  password: (\S+))");
  for (std::sregex_iterator it(output.begin(), output.end(), line), end; it != end; ++it)
    passwords[(*it)[1]] = (*it)[2];
  return passwords;
}

namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

// What a browser does at the front door: one request per connection, a bearer token, and
// a 429 waited out for as long as Retry-After says (the front door rate-limits by client).
class Browser {
 public:
  explicit Browser(unsigned short port) : port_(port) {}

  HttpResponse call(const std::string& method, const std::string& target, const std::string& body = {},
                    const std::string& token = {}, std::vector<std::string> headers = {}) {
    if (!token.empty()) headers.push_back("Authorization: Bearer " + token);
    for (int attempt = 0;; ++attempt) {
      auto response = http_request(port_, method, target, body, headers);
      if (response.status != 429 || attempt == 10) return response;
      auto retry_after = response.header("retry-after");
      int seconds = retry_after.empty() ? 1 : std::clamp(std::atoi(retry_after.c_str()), 1, 5);
      std::this_thread::sleep_for(std::chrono::seconds(seconds));
    }
  }

  std::string login(const std::string& email, const std::string& password) {
    auto response = call("POST", "/api/v1/auth/login", json{{"email", email}, {"password", password}}.dump());
    EXPECT_EQ(response.status, 200) << email << ": " << response.body;
    auto body = json::parse(response.body, nullptr, false);
    return response.status == 200 && body.contains("token") ? body["token"].get<std::string>() : "";
  }

  // Reads `target` until `done` holds of its body (every 100 ms, inside the rate limit)
  // for up to 60 s: what another module learns from the bus, asked of the API.
  json eventually(const std::string& what, const std::string& target, const std::string& token,
                  const std::function<bool(const json&)>& done) {
    auto deadline = Clock::now() + std::chrono::seconds(60);
    json body;
    for (;;) {
      auto response = call("GET", target, {}, token);
      body = json::parse(response.body, nullptr, false);
      if (response.status == 200 && !body.is_discarded() && done(body)) return body;
      if (Clock::now() > deadline) {
        ADD_FAILURE() << "not within 60 s: " << what << "; GET " << target << " answered " << response.status << " "
                      << response.body;
        return body;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }

 private:
  unsigned short port_;
};

json body_of(const HttpResponse& response) { return json::parse(response.body, nullptr, false); }

std::string password_of(const std::map<std::string, std::string>& passwords, const std::string& email) {
  auto found = passwords.find(email);
  EXPECT_NE(found, passwords.end()) << "no demo password printed for " << email;
  return found == passwords.end() ? "" : found->second;
}

// `hour`:00 in New York, `days` from today there (the demo court's zone).
std::string new_york(int days, int hour) {
  auto zone = date::locate_zone("America/New_York");
  auto today = date::floor<date::days>(zone->to_local(std::chrono::system_clock::now()));
  return utc::format(zone->to_sys(today + date::days(days) + std::chrono::hours(hour)));
}

// The invoice revenue opened for `module`'s `id` among the citizen's (null until it has).
json invoice_for(const json& invoices, const std::string& module, std::int64_t id) {
  for (const auto& invoice : invoices["items"])
    if (invoice["source"]["module"] == module && invoice["source"]["id"] == std::to_string(id)) return invoice;
  return nullptr;
}

HttpResponse pay(Browser& browser, const std::string& token, std::int64_t invoice, std::int64_t amount,
                 const std::string& key) {
  return browser.call(
      "POST", "/api/v1/revenue/payments",
      json{{"invoice_id", invoice}, {"amount_cents", amount}, {"method", {{"type", "card"}, {"token", "tok_ok"}}}}
          .dump(),
      token, {"Idempotency-Key: " + key});
}

}  // namespace

void walk_the_citizen_journey(unsigned short front_door, const std::map<std::string, std::string>& passwords,
                              const std::string& citizen_email) {
  Browser browser(front_door);
  const std::string password = "a long enough password";
  auto admin = browser.login("admin@demo.townhall", password_of(passwords, "admin@demo.townhall"));
  auto reviewer = browser.login("reviewer@demo.townhall", password_of(passwords, "reviewer@demo.townhall"));
  ASSERT_FALSE(admin.empty() || reviewer.empty());

  // Register, sign in, and be verified by the administrator.
  auto registered = browser.call(
      "POST", "/api/v1/auth/register",
      json{{"email", citizen_email}, {"password", password}, {"name", "Jo Journey"}, {"phone", "+1-555-0142"}}.dump());
  ASSERT_EQ(registered.status, 201) << registered.body;
  auto citizen_id = body_of(registered)["id"].get<std::int64_t>();
  auto citizen = browser.login(citizen_email, password);
  ASSERT_FALSE(citizen.empty());
  auto verified = browser.call("PATCH", "/api/v1/auth/citizens/" + std::to_string(citizen_id),
                               R"({"identity_verified":true,"email_verified":true})", admin);
  ASSERT_EQ(verified.status, 200) << verified.body;
  EXPECT_EQ(body_of(browser.call("GET", "/api/v1/auth/me", {}, citizen))["id"], citizen_id);

  // Apply for a renovation permit: it has a fee, so it waits for payment.
  auto submitted = browser.call("POST", "/api/v1/permits/applications",
                                json{{"permit_type", "renovation"},
                                     {"description", "A new kitchen window"},
                                     {"property_address", "42 Journey Lane"},
                                     {"department_code", "BLD"}}
                                    .dump(),
                                citizen);
  ASSERT_EQ(submitted.status, 201) << submitted.body;
  auto application = body_of(submitted);
  EXPECT_EQ(application["status"], "fee_due");
  auto fee = application["fee_cents"].get<std::int64_t>();
  EXPECT_GT(fee, 0);
  auto application_id = application["id"].get<std::int64_t>();
  auto application_path = "/api/v1/permits/applications/" + std::to_string(application_id);

  // Revenue invoices the fee (permits' event), the citizen pays it, and permits moves the
  // application to review (revenue's event).
  auto invoices = browser.eventually("the fee's invoice", "/api/v1/revenue/invoices", citizen, [&](const json& list) {
    return !invoice_for(list, "permits", application_id).is_null();
  });
  auto fee_invoice = invoice_for(invoices, "permits", application_id);
  ASSERT_FALSE(fee_invoice.is_null());
  EXPECT_EQ(fee_invoice["amount_cents"], fee);
  auto paid = pay(browser, citizen, fee_invoice["id"], fee, "journey-fee-" + std::to_string(application_id));
  ASSERT_EQ(paid.status, 201) << paid.body;
  EXPECT_EQ(body_of(paid)["status"], "completed");
  browser.eventually("the application under review once paid", application_path, citizen,
                     [](const json& shown) { return shown["status"] == "under_review"; });

  // The reviewer of the department approves it: a permit is issued.
  auto approved =
      browser.call("POST", application_path + "/decision", R"({"decision":"approve","reason":"complete"})", reviewer);
  ASSERT_EQ(approved.status, 200) << approved.body;
  EXPECT_EQ(body_of(approved)["status"], "approved");
  auto permit_id = body_of(approved)["permit_id"];
  ASSERT_TRUE(permit_id.is_number()) << approved.body;
  auto permit = browser.call("GET", "/api/v1/permits/permits/" + permit_id.dump(), {}, citizen);
  ASSERT_EQ(permit.status, 200) << permit.body;
  EXPECT_EQ(body_of(permit)["status"], "active");
  EXPECT_EQ(body_of(permit)["permit_type"], "renovation");

  // Book the priced tennis court; parks holds it until the invoice is paid. Parks holds a
  // priced place only for a verified email, which it learns from auth's event.
  auto facilities = body_of(browser.call("GET", "/api/v1/parks/facilities"));
  std::int64_t court = 0;
  for (const auto& facility : facilities["items"])
    if (facility["name"] == "Elm Park tennis court") court = facility["id"];
  ASSERT_NE(court, 0) << facilities.dump();
  auto booking_request =
      json{{"facility_id", court}, {"starts_at", new_york(3, 10)}, {"ends_at", new_york(3, 11)}}.dump();
  HttpResponse booked;
  auto deadline = Clock::now() + std::chrono::seconds(60);
  for (;;) {
    booked = browser.call("POST", "/api/v1/parks/bookings", booking_request, citizen);
    if (booked.status != 403 || booked.body.find("verify your account's email") == std::string::npos ||
        Clock::now() > deadline)
      break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));  // parks has not applied the verification yet
  }
  ASSERT_EQ(booked.status, 201) << booked.body;
  auto booking = body_of(booked);
  EXPECT_EQ(booking["status"], "pending_payment");
  auto booking_id = booking["id"].get<std::int64_t>();
  auto booking_path = "/api/v1/parks/bookings/" + std::to_string(booking_id);
  invoices = browser.eventually("the booking's invoice", "/api/v1/revenue/invoices", citizen,
                                [&](const json& list) { return !invoice_for(list, "parks", booking_id).is_null(); });
  auto booking_invoice = invoice_for(invoices, "parks", booking_id);
  ASSERT_FALSE(booking_invoice.is_null());
  auto price = booking_invoice["amount_cents"].get<std::int64_t>();
  EXPECT_EQ(price, booking["amount_cents"]);
  auto booking_paid =
      pay(browser, citizen, booking_invoice["id"], price, "journey-booking-" + std::to_string(booking_id));
  ASSERT_EQ(booking_paid.status, 201) << booking_paid.body;
  browser.eventually("the booking confirmed once paid", booking_path, citizen,
                     [](const json& shown) { return shown["status"] == "confirmed"; });

  // Cancel it: parks releases the slot and revenue refunds the payment.
  auto cancelled = browser.call("DELETE", booking_path, {}, citizen);
  ASSERT_EQ(cancelled.status, 200) << cancelled.body;
  browser.eventually("the booking's invoice refunded", "/api/v1/revenue/invoices/" + booking_invoice["id"].dump(),
                     citizen, [](const json& shown) { return shown["status"] == "refunded"; });

  // What the citizen sees at the end: one permit, one refunded booking, both invoices.
  auto mine = body_of(browser.call("GET", "/api/v1/permits/applications", {}, citizen));
  ASSERT_EQ(mine["items"].size(), 1u) << mine.dump();
  EXPECT_EQ(mine["items"][0]["status"], "approved");
  auto own_bookings = body_of(browser.call("GET", "/api/v1/parks/bookings", {}, citizen));
  ASSERT_EQ(own_bookings["items"].size(), 1u) << own_bookings.dump();
  EXPECT_EQ(own_bookings["items"][0]["status"], "cancelled");
  EXPECT_EQ(body_of(browser.call("GET", "/api/v1/revenue/invoices", {}, citizen))["items"].size(), 2u);
}

}  // namespace townhall::testing
