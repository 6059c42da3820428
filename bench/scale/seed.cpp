#include "seed.hpp"

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "server.hpp"
#include "townhall/platform/time.hpp"

namespace townhall::bench {
namespace {

using json = nlohmann::json;

// Runs work(client, i) for i in [0, count) on `workers` threads, each with its own
// keep-alive connection; a call that returns false is a failure (the first few are
// printed). Returns the rate per second.
template <class Work>
double parallel(const char* phase, std::int64_t count, int workers, unsigned short port, Work&& work) {
  std::atomic<std::int64_t> next{0}, failures{0};
  std::mutex print;
  auto start = Clock::now();
  std::vector<std::thread> threads;
  for (int w = 0; w < workers; ++w)
    threads.emplace_back([&] {
      Client client(port);
      for (auto i = next++; i < count; i = next++) {
        std::string why;
        if (work(client, i, why)) continue;
        if (failures++ < 5) {
          std::lock_guard lock(print);
          std::fprintf(stderr, "  %s #%lld failed: %s\n", phase, static_cast<long long>(i), why.c_str());
        }
      }
    });
  for (auto& thread : threads) thread.join();
  double rate = static_cast<double>(count) / seconds_since(start);
  std::printf("  %-34s %9lld in %7.1f s = %8.0f /s%s\n", phase, static_cast<long long>(count), seconds_since(start),
              rate, failures ? " (FAILURES)" : "");
  std::fflush(stdout);
  if (failures) throw std::runtime_error(std::string(phase) + ": " + std::to_string(failures.load()) + " failed");
  return rate;
}

bool expect(const Reply& reply, int status, std::string& why) {
  if (reply.status == status) return true;
  why = std::to_string(reply.status) + " " + reply.body.substr(0, 300);
  return false;
}

std::string login(Client& client, const std::string& email) {
  auto reply = client.post("/api/v1/auth/login", json{{"email", email}, {"password", kPassword}});
  if (reply.status != 200) throw std::runtime_error("login " + email + ": " + reply.body);
  return reply.json()["token"].get<std::string>();
}

}  // namespace

Sizes sizes_at(double scale) {
  Sizes sizes;
  sizes.scale = scale;
  auto of = [&](double full) { return std::max<std::int64_t>(1, std::llround(full * scale)); };
  sizes.citizens = of(100'000);
  sizes.applications = of(1'000'000);
  sizes.bookings = of(100'000);
  sizes.tax_records = std::min(sizes.citizens, of(50'000));  // one per citizen and year
  return sizes;
}

json Seeded::to_json() const { return {{"scale", sizes.scale}, {"ids", ids}, {"rates", rates}}; }

Seeded Seeded::from_json(const json& json) {
  Seeded seeded;
  seeded.sizes = sizes_at(json.at("scale").get<double>());
  seeded.ids = json.at("ids").get<std::map<std::string, std::int64_t>>();
  seeded.rates = json.at("rates").get<std::map<std::string, double>>();
  return seeded;
}

// Appended, not "c" + ...: GCC 12 warns (-Wrestrict, a false positive) on literal + string.
std::string citizen_email(std::int64_t index) { return std::string("c").append(std::to_string(index)) + "@scale.test"; }
std::string department_code(std::int64_t index) { return std::string("D").append(std::to_string(index + 1)); }
std::string reviewer_email(std::int64_t department) {
  return "reviewer-" + department_code(department) + "@scale.test";
}

std::filesystem::path write_config(const std::filesystem::path& data_dir, const std::filesystem::path& registry) {
  std::ifstream in(registry);
  auto config = json::parse(in);
  config["server"]["rate_limit"]["enabled"] = false;
  config["server"]["limits"]["max_connections_per_address"] = 10000;
  config["logging"] = {{"level", "warn"}, {"access_log", "off"}};
  auto& auth = config["modules"]["auth"]["settings"];
  // The benchmark measures data scale, not password hashing: the cheapest hash libsodium allows.
  auth["password_hash"] = {{"passes", 1}, {"memory_kib", 8}, {"max_queued", 100000}};
  auth["login_throttle"]["max_logins_per_ip"] = 1'000'000;
  auth["login_throttle"]["max_logins_per_account"] = 100000;
  auto& parks = config["modules"]["parks"]["settings"];
  parks["max_active_bookings_per_kind"] = 1000;
  parks["max_unpaid_per_citizen"] = 100;
  parks["max_unpaid_per_address"] = 100000;
  auto path = data_dir / kConfigFile;
  std::ofstream(path) << config.dump(2);
  return path;
}

std::pair<int, std::string> run_cli(const std::string& townhall, std::vector<std::string> args,
                                    const std::filesystem::path& data_dir) {
  args.insert(args.begin(), townhall);
  args.insert(args.end(), {"--config", (data_dir / kConfigFile).string(), "--data-dir", data_dir.string()});
  testing::ChildProcess child(std::move(args), {}, true);
  auto code = child.wait_exit(std::chrono::hours(1));
  return {code.value_or(-1), child.output()};
}

namespace {

// Polls /admin/bus until every consumer is up and at its sources' heads.
void wait_for_bus(Client& client, const std::string& admin) {
  for (auto start = Clock::now();; std::this_thread::sleep_for(std::chrono::milliseconds(100))) {
    auto reply = client.get("/admin/bus", admin);
    bool idle = reply.status == 200;
    if (idle)
      for (const auto& feed : reply.json()["feeds"])
        idle = idle && feed["consumer_up"].get<bool>() && feed["lag_events"].get<std::int64_t>() == 0;
    if (idle) return;
    if (seconds_since(start) > 3600) throw std::runtime_error("the bus did not catch up: " + reply.body);
  }
}

void create_staff(const std::string& townhall, const std::filesystem::path& data_dir, const std::string& email,
                  const std::string& role, const std::string& department = {}) {
  std::vector<std::string> args{"admin",   "create-user", "--email", email,    "--password",
                                kPassword, "--name",      email,     "--role", role};
  if (!department.empty()) args.insert(args.end(), {"--department", department});
  auto [code, output] = run_cli(townhall, args, data_dir);
  if (code != 0) throw std::runtime_error("create-user " + email + ": " + output);
}

// A one-hour slot `index` hours after the second midnight from now, as RFC 3339 UTC.
std::pair<std::string, std::string> slot(std::int64_t index) {
  auto day = std::chrono::floor<std::chrono::days>(std::chrono::system_clock::now()) + std::chrono::days(2);
  auto start = day + std::chrono::hours(index);
  return {utc::format(start), utc::format(start + std::chrono::hours(1))};
}

}  // namespace

Seeded seed(const std::string& townhall, const std::filesystem::path& data_dir, const std::filesystem::path& registry,
            const Sizes& sizes, int workers) {
  std::filesystem::remove_all(data_dir);
  std::filesystem::create_directories(data_dir);
  std::filesystem::permissions(data_dir, std::filesystem::perms::owner_all);  // personal data: owner only
  auto config = write_config(data_dir, registry);
  Seeded seeded;
  seeded.sizes = sizes;
  std::printf(
      "seeding %s (scale %g): %lld citizens, %lld applications, %lld invoices and payments, %lld bookings, "
      "%lld tax records\n",
      data_dir.c_str(), sizes.scale, static_cast<long long>(sizes.citizens), static_cast<long long>(sizes.applications),
      static_cast<long long>(sizes.invoices()), static_cast<long long>(sizes.bookings),
      static_cast<long long>(sizes.tax_records));
  if (auto [code, output] = run_cli(townhall, {"migrate", "--init"}, data_dir); code != 0)
    throw std::runtime_error("migrate --init: " + output);
  // Staff through auth's own CLI; a reviewer's department is created with them.
  create_staff(townhall, data_dir, kAdmin, "admin");
  create_staff(townhall, data_dir, kClerk, "revenue_clerk");
  create_staff(townhall, data_dir, kParks, "parks_staff", "PRK");
  for (std::int64_t d = 0; d < sizes.departments; ++d)
    create_staff(townhall, data_dir, reviewer_email(d), "permits_reviewer", department_code(d));

  Server server(townhall, data_dir, config);
  const auto port = server.port();
  Client client(port);
  const auto admin = login(client, kAdmin);
  const auto active = sizes.active();

  // Citizens: registered; the active ones verified by the admin and logged in.
  std::vector<std::int64_t> citizen_ids(static_cast<std::size_t>(sizes.citizens));
  std::vector<std::string> tokens(static_cast<std::size_t>(active));
  seeded.rates["citizens (register)"] =
      parallel("citizens (register)", sizes.citizens, workers, port, [&](Client& c, std::int64_t i, std::string& why) {
        auto reply = c.post("/api/v1/auth/register", json{{"email", citizen_email(i)},
                                                          {"password", kPassword},
                                                          {"name", "Citizen " + std::to_string(i)},
                                                          {"address", std::to_string(i % 997) + " Elm Street"}});
        if (!expect(reply, 201, why)) return false;
        citizen_ids[static_cast<std::size_t>(i)] = reply.json()["id"].get<std::int64_t>();
        return true;
      });
  seeded.rates["citizens (verify + login)"] =
      parallel("citizens (verify + login)", active, workers, port, [&](Client& c, std::int64_t i, std::string& why) {
        auto id = std::to_string(citizen_ids[static_cast<std::size_t>(i)]);
        if (!expect(c.request("PATCH", "/api/v1/auth/citizens/" + id, R"({"email_verified":true})", admin), 200, why))
          return false;
        auto reply = c.post("/api/v1/auth/login", json{{"email", citizen_email(i)}, {"password", kPassword}});
        if (!expect(reply, 200, why)) return false;
        tokens[static_cast<std::size_t>(i)] = reply.json()["token"].get<std::string>();
        return true;
      });
  seeded.ids["citizen"] = citizen_ids[0];
  wait_for_bus(client, admin);  // permits knows who is verified

  // Applications across the departments; one in five of a type with a fee.
  std::atomic<std::int64_t> first_application{0};
  seeded.rates["applications"] =
      parallel("applications", sizes.applications, workers, port, [&](Client& c, std::int64_t i, std::string& why) {
        const char* type = i % 5 == 0 ? "renovation" : (i % 2 ? "fence" : "signage");
        auto reply = c.post("/api/v1/permits/applications",
                            json{{"permit_type", type},
                                 {"description", "application " + std::to_string(i)},
                                 {"property_address", std::to_string(i % 997) + " Elm Street"},
                                 {"department_code", department_code(i % sizes.departments)}},
                            tokens[static_cast<std::size_t>(i % active)]);
        if (!expect(reply, 201, why)) return false;
        if (i == 0) first_application = reply.json()["id"].get<std::int64_t>();
        return true;
      });
  seeded.ids["application"] = first_application;
  auto start = Clock::now();
  wait_for_bus(client, admin);  // revenue opened the fee invoices
  std::printf("  bus caught up with the applications (invoices opened) in %.1f s\n", seconds_since(start));

  // Each active citizen pays their open invoices.
  std::vector<std::vector<std::pair<std::int64_t, std::int64_t>>> open(static_cast<std::size_t>(active));
  parallel("open invoices read", active, workers, port, [&](Client& c, std::int64_t i, std::string& why) {
    std::string cursor;
    do {
      auto reply = c.get(
          "/api/v1/revenue/invoices?status=open&page_size=100" + (cursor.empty() ? std::string() : "&cursor=" + cursor),
          tokens[static_cast<std::size_t>(i)]);
      if (!expect(reply, 200, why)) return false;
      auto page = reply.json();
      for (const auto& invoice : page["items"])
        open[static_cast<std::size_t>(i)].emplace_back(invoice["id"].get<std::int64_t>(),
                                                       invoice["balance_cents"].get<std::int64_t>());
      cursor = page.value("next_cursor", json()).is_string() ? page["next_cursor"].get<std::string>() : "";
    } while (!cursor.empty());
    return true;
  });
  std::vector<std::tuple<std::size_t, std::int64_t, std::int64_t>> payments;  // citizen, invoice, amount
  for (std::size_t i = 0; i < open.size(); ++i)
    for (auto [invoice, amount] : open[i]) payments.emplace_back(i, invoice, amount);
  std::atomic<std::int64_t> first_payment{0};
  seeded.ids["invoice"] = payments.empty() ? 0 : std::get<1>(payments[0]);
  seeded.rates["payments"] = parallel("payments", static_cast<std::int64_t>(payments.size()), workers, port,
                                      [&](Client& c, std::int64_t i, std::string& why) {
                                        auto [citizen, invoice, amount] = payments[static_cast<std::size_t>(i)];
                                        auto reply =
                                            c.post("/api/v1/revenue/payments",
                                                   json{{"invoice_id", invoice},
                                                        {"amount_cents", amount},
                                                        {"method", {{"type", "card"}, {"token", "tok_ok"}}}},
                                                   tokens[citizen], {{"Idempotency-Key", "pay-" + std::to_string(i)}});
                                        if (!expect(reply, 201, why)) return false;
                                        if (i == 0) first_payment = reply.json()["id"].get<std::int64_t>();
                                        return true;
                                      });
  seeded.ids["payment"] = first_payment;

  // Facilities open all day, and free bookings spread over them, one hour each.
  const auto parks = login(client, kParks);
  json all_day = json::object();
  for (const char* day : {"mon", "tue", "wed", "thu", "fri", "sat", "sun"})
    all_day[day] = {{"open", "00:00"}, {"close", "24:00"}};
  std::vector<std::int64_t> facilities(static_cast<std::size_t>(sizes.facilities));
  seeded.rates["facilities"] =
      parallel("facilities", sizes.facilities, 1, port, [&](Client& c, std::int64_t i, std::string& why) {
        auto reply = c.post("/api/v1/parks/facilities",
                            json{{"name", "Field " + std::to_string(i)},
                                 {"kind", "field"},
                                 {"capacity", 20},
                                 {"hourly_price_cents", 0},
                                 {"time_zone", "UTC"},
                                 {"opening_hours", all_day}},
                            parks);
        if (!expect(reply, 201, why)) return false;
        facilities[static_cast<std::size_t>(i)] = reply.json()["id"].get<std::int64_t>();
        return true;
      });
  seeded.ids["facility"] = facilities[0];
  std::atomic<std::int64_t> first_booking{0};
  seeded.rates["bookings"] =
      parallel("bookings", sizes.bookings, workers, port, [&](Client& c, std::int64_t i, std::string& why) {
        auto [from, to] = slot(i / sizes.facilities);
        auto reply = c.post("/api/v1/parks/bookings",
                            json{{"facility_id", facilities[static_cast<std::size_t>(i % sizes.facilities)]},
                                 {"starts_at", from},
                                 {"ends_at", to}},
                            tokens[static_cast<std::size_t>(i % active)]);
        if (!expect(reply, 201, why)) return false;
        if (i == 0) first_booking = reply.json()["id"].get<std::int64_t>();
        return true;
      });
  seeded.ids["booking"] = first_booking;

  // Tax records, one per citizen for the year, recorded by the revenue clerk.
  const auto clerk = login(client, kClerk);
  std::atomic<std::int64_t> first_tax_record{0};
  seeded.rates["tax records"] =
      parallel("tax records", sizes.tax_records, workers, port, [&](Client& c, std::int64_t i, std::string& why) {
        auto reply = c.post("/api/v1/revenue/tax-records",
                            json{{"citizen_id", citizen_ids[static_cast<std::size_t>(i)]},
                                 {"tax_year", 2026},
                                 {"assessed_value_cents", 25'000'000 + i},
                                 {"tax_due_cents", 312'500}},
                            clerk);
        if (!expect(reply, 201, why)) return false;
        if (i == 0) first_tax_record = reply.json()["id"].get<std::int64_t>();
        return true;
      });
  seeded.ids["tax_record"] = first_tax_record;
  start = Clock::now();
  wait_for_bus(client, admin);
  std::printf("  bus caught up (notices, caches, sagas) in %.1f s\n", seconds_since(start));
  server.stop();
  std::ofstream(data_dir / kSeedFile) << seeded.to_json().dump(2);
  return seeded;
}

}  // namespace townhall::bench
