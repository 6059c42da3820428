// Crash soak: a real `townhall serve` under mixed load (citizen PATCHes, applications,
// decisions, fee payments through revenue's API — retried with the same key, some
// declined —, bookings of a priced court with 2 s holds and their payments, tax records
// billed in instalments and those instalments paid, malformed payment events, and
// dead-letter replays through the admin API) is
// killed with SIGKILL at random moments, again and again. After each restart and
// catch-up it checks, from the files:
//   - no acknowledged write is lost (a 2xx answer, or a committed event, means committed);
//   - every approval issued exactly one permit; every paid application left fee_due once;
//   - every fee application has exactly one invoice; no invoice holds two payments; the
//     processor's approved charges are exactly revenue's completed payments, each with
//     one payment.completed; no payment is left pending after a restart;
//   - every acknowledged tax record exists with exactly its instalments (amounts summing
//     to its tax due), and no record has more or fewer; every acknowledged tax payment is
//     its instalment's one completed payment, the instalment paid;
//   - every acknowledged booking exists; no two active bookings overlap; a confirmed
//     priced booking has a completed payment; a cancelled one's invoice is voided or
//     refunded;
//   - permits' citizen cache equals auth's citizens (phone and event_version);
//   - notify holds exactly one notice per decision and per completed payment (none lost
//     to a kill, none doubled by a redelivery);
//   - every malformed payment is exactly one dead letter (never applied, never twice),
//     and PRAGMA integrity_check is ok on every module file.
// Malformed payment events cannot come from revenue's code: the soak appends them to
// revenue.db's outbox itself, standing for a faulty producer.
// With --faults SEED the binary is tests/soak/faulty_server.cpp's: while the load runs
// its storage fails under it (any module file; reads, writes, fsyncs, shared memory; once
// or for a while; I/O errors and a full disk), and every check above must still hold
// (issue 14, item 5). Answers during a fault are 503: not acknowledged, like a kill's.
// usage: soak --binary PATH --registry PATH [--kills N] [--seed S] [--faults SEED]
// Prints the figures and exits 0 when nothing was violated, 1 otherwise.
#include <SQLiteCpp/Database.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <set>
#include <thread>

#include "server_fixture.hpp"
#include "townhall/platform/time.hpp"

namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;
using townhall::testing::ChildProcess;

struct Options {
  std::string binary;
  std::string registry;
  int kills = 30;
  unsigned seed = 20261122;
  std::optional<unsigned> fault_seed;  // --faults: the server's storage fails under the load
};

std::atomic<std::int64_t> unavailable_answers{0};  // 503s seen by the load

// A request during the load: no answer (the server was killed mid-request) is status 0.
townhall::testing::HttpResponse attempt(unsigned short port, const std::string& method, const std::string& target,
                                        const std::string& body, const std::string& token) {
  try {
    auto answer = townhall::testing::call(port, method, target, body, token);
    if (answer.status == 503) ++unavailable_answers;
    return answer;
  } catch (const std::exception&) {
    return {};
  }
}
using townhall::testing::call;

struct Citizen {
  std::int64_t id = 0;
  std::string token;
  std::vector<std::string> attempts;  // phone values sent, in order
  int last_acked = -1;                // index into attempts
};

class Soak {
 public:
  explicit Soak(Options options) : options_(std::move(options)), random_(options_.seed) {}

  int run() {
    write_config();
    if (cli({"migrate", "--init"}) != 0 ||
        cli({"admin", "create-user", "--email", "admin@soak.test", "--password", "soak admin password", "--name",
             "Admin", "--role", "admin"}) != 0 ||
        cli({"admin", "create-user", "--email", "reviewer@soak.test", "--password", "soak reviewer password", "--name",
             "Rita", "--role", "permits_reviewer", "--department", "BLD"}) != 0) {
      std::cerr << "soak: setup failed\n";
      return 1;
    }
    {
      auto server = start(/*with_faults=*/false);  // the accounts must exist
      if (!server) return 1;
      setup_accounts();
      server->signal(SIGTERM);
      server->wait_exit();
    }
    for (int kill = 0; kill < options_.kills; ++kill) {
      auto server = start();
      if (!server) return 1;
      const auto violations_before = violations_;
      hold_faults(*server, true);
      bool held = check("after restart " + std::to_string(kill));
      if (held) {
        hold_faults(*server, false);
        load_then_kill(*server);
      } else {
        server->signal(SIGKILL);
        server->wait_exit();
      }
      count_faults(*server);
      if (violations_ > violations_before) show_log(*server);
      if (!held) break;
      ++kills_done_;
    }
    auto server = start();
    if (!server) return 1;
    const auto violations_before = violations_;
    hold_faults(*server, true);
    check("final");
    server->signal(SIGTERM);
    server->wait_exit();
    count_faults(*server);
    if (violations_ > violations_before) show_log(*server);
    std::cout << "soak: " << kills_done_ << " kills, " << acknowledged_ << " acknowledged writes (" << paid_.size()
              << " fees paid, " << declined_ << " declines, " << bookings_.size() << " bookings, " << bookings_paid_
              << " booking payments, " << tax_records_.size() << " tax bills, " << tax_payment_of_.size()
              << " instalments paid), " << checked_ << " effects checked, " << violations_ << " violations\n";
    if (options_.fault_seed)
      std::cout << "soak: under storage faults: " << faults_ << " faults injected, " << unavailable_answers
                << " answers 503\n";
    return violations_ == 0 && kills_done_ == options_.kills ? 0 : 1;
  }

 private:
  std::filesystem::path data() const { return dir_.path() / "data"; }

  void write_config() {
    std::ifstream in(options_.registry);
    json registry = json::parse(in);
    registry["server"]["rate_limit"]["enabled"] = false;
    registry["logging"]["access_log"] = "off";
    registry["logging"]["level"] = "warn";
    registry["bus"]["sweep_interval_ms"] = 200;
    registry["modules"]["parks"]["settings"]["hold_seconds"] = 2;                     // holds expire across kills
    registry["modules"]["parks"]["settings"]["max_active_bookings_per_kind"] = 1000;  // book all night
    registry["modules"]["parks"]["settings"]["max_unpaid_per_address"] = 1000;        // every client is local
    config_ = (dir_.path() / "soak.json").string();
    std::ofstream(config_) << registry.dump(2);
  }

  int cli(std::vector<std::string> args) {
    args.insert(args.begin(), options_.binary);
    args.insert(args.end(), {"--config", config_, "--data-dir", data().string()});
    ChildProcess child(std::move(args), {}, true);
    auto code = child.wait_exit(60s);
    if (code != 0) std::cerr << child.output();
    return code.value_or(-1);
  }

  std::unique_ptr<ChildProcess> start(bool with_faults = true) {
    // The server's log is kept with its output (shown when it fails to start), not echoed.
    std::map<std::string, std::string> env;
    if (options_.fault_seed && with_faults)
      env["TOWNHALL_FAULT_SEED"] = std::to_string(*options_.fault_seed + static_cast<unsigned>(starts_));
    ++starts_;
    auto child =
        std::make_unique<ChildProcess>(std::vector<std::string>{options_.binary, "serve", "--port", "0", "--config",
                                                                config_, "--data-dir", data().string()},
                                       std::move(env), true);
    port_ = townhall::testing::wait_for_port(*child);
    if (port_ == 0) {
      std::cerr << "soak: the server did not start:\n" << child->output();
      return nullptr;
    }
    return child;
  }

  // Under --faults: the invariants are checked on a repaired disk (SIGUSR1 holds the
  // faulty server's faults back, SIGUSR2 lets them go; tests/soak/faulty_server.cpp).
  void hold_faults(ChildProcess& server, bool held) {
    if (options_.fault_seed) server.signal(held ? SIGUSR1 : SIGUSR2);
  }

  // The log of the server a violation was found in (its end: what led up to it).
  static void show_log(const ChildProcess& server) {
    constexpr std::size_t kShown = 12000;
    const auto& output = server.output();
    std::cerr << "soak: the server's log" << (output.size() > kShown ? " (its end)" : "") << ":\n"
              << (output.size() > kShown ? output.substr(output.size() - kShown) : output) << "\n";
  }

  // The faults a faulty server reported (one "fault:" line each).
  void count_faults(const ChildProcess& server) {
    const auto& output = server.output();
    for (auto at = output.find("fault: "); at != std::string::npos; at = output.find("fault: ", at + 1)) ++faults_;
  }

  void setup_accounts() {
    admin_ = townhall::testing::login(port_, "admin@soak.test", "soak admin password");
    reviewer_ = townhall::testing::login(port_, "reviewer@soak.test", "soak reviewer password");
    for (int i = 0; i < 8; ++i) {
      std::string email = "citizen" + std::to_string(i) + "@soak.test";
      auto registered =
          call(port_, "POST", "/api/v1/auth/register",
               json{{"email", email}, {"password", "a long enough password"}, {"name", email}}.dump(), {});
      Citizen c;
      c.id = json::parse(registered.body)["id"].get<std::int64_t>();
      call(port_, "PATCH", "/api/v1/auth/citizens/" + std::to_string(c.id), R"({"identity_verified":true})", admin_);
      c.token = townhall::testing::login(port_, email, "a long enough password");
      citizens_.push_back(std::move(c));
    }
    // A priced court open around the clock, booked by the load.
    json all_day = json::object();
    for (const char* day : {"mon", "tue", "wed", "thu", "fri", "sat", "sun"})
      all_day[day] = {{"open", "00:00"}, {"close", "24:00"}};
    auto court = call(port_, "POST", "/api/v1/parks/facilities",
                      json{{"name", "Soak court"},
                           {"kind", "court"},
                           {"capacity", 4},
                           {"hourly_price_cents", 2500},
                           {"time_zone", "UTC"},
                           {"opening_hours", all_day}}
                          .dump(),
                      admin_);
    court_ = json::parse(court.body)["id"].get<std::int64_t>();
  }

  // Requests from two client threads until the kill; what was answered 2xx is acknowledged.
  void load_then_kill(ChildProcess& server) {
    std::atomic<bool> stop{false};
    // Each thread patches its own half of the citizens: per citizen, requests are
    // sequential, so the order of acknowledgements is the order of commits.
    auto worker = [&](unsigned seed, std::size_t parity) {
      std::mt19937 random(seed);
      while (!stop) {
        int op = static_cast<int>(random() % 13);
        if (op == 12) {
          bill_or_pay_tax(random);
          continue;
        }
        if (op >= 10) {
          book_or_pay(random);
          continue;
        }
        if (op < 4) {
          std::size_t index;
          std::string phone;
          {
            std::lock_guard lock(mutex_);
            index = parity + 2 * (random() % (citizens_.size() / 2));
            phone = "+1-555-" + std::to_string(++phone_counter_);
            citizens_[index].attempts.push_back(phone);
          }
          auto& c = citizens_[index];
          auto answer = attempt(port_, "PATCH", "/api/v1/auth/citizens/" + std::to_string(c.id),
                                json{{"phone", phone}}.dump(), c.token);
          if (answer.status == 200) {
            std::lock_guard lock(mutex_);
            c.last_acked = static_cast<int>(c.attempts.size()) - 1;
            ++acknowledged_;
          }
        } else if (op < 7) {
          const auto& c = citizens_[random() % citizens_.size()];
          bool with_fee = op == 6;  // renovation: fee_due until its payment arrives
          auto answer = attempt(port_, "POST", "/api/v1/permits/applications",
                                json{{"permit_type", with_fee ? "renovation" : "fence"},
                                     {"description", "soak"},
                                     {"property_address", "1 Soak St"},
                                     {"department_code", "BLD"}}
                                    .dump(),
                                c.token);
          if (answer.status == 201) {
            std::lock_guard lock(mutex_);
            auto id = json::parse(answer.body)["id"].get<std::int64_t>();
            submitted_.insert(id);
            if (with_fee) {
              fee_due_.insert(id);
              fee_applications_.insert(id);
              owner_of_[id] = static_cast<std::size_t>(&c - citizens_.data());
            }
            ++acknowledged_;
          }
        } else if (op < 8) {
          pay(random);
        } else {
          std::int64_t id = 0;
          {
            std::lock_guard lock(mutex_);
            for (auto candidate : submitted_)
              if (!decided_.contains(candidate)) {
                id = candidate;
                break;
              }
          }
          if (id == 0) continue;
          auto answer = attempt(port_, "POST", "/api/v1/permits/applications/" + std::to_string(id) + "/decision",
                                R"({"decision":"approve"})", reviewer_);
          std::lock_guard lock(mutex_);
          if (answer.status == 200) {
            approved_.insert(id);
            ++acknowledged_;
          }
          if (answer.status == 200 || answer.status == 409) decided_.insert(id);
        }
      }
    };
    std::thread a(worker, static_cast<unsigned>(random_()), 0), b(worker, static_cast<unsigned>(random_()), 1);
    // The kill comes at a random moment of the load (the soak's point: no moment is safe).
    // Under faults the load runs longer, so the failing disk meets it.
    std::this_thread::sleep_for(
        std::chrono::milliseconds(options_.fault_seed ? 300 + random_() % 1200 : 30 + random_() % 300));
    server.signal(SIGKILL);
    server.wait_exit();
    stop = true;
    a.join();
    b.join();
  }

  // Op 7: mostly a citizen paying a fee_due application's invoice through the API, one
  // key per application (a retry after a kill reuses it: never a second charge),
  // sometimes declined first (a key of its own), sometimes sent twice; now and then a
  // malformed payment event instead (a dead letter, once).
  void pay(std::mt19937& random) {
    if (random() % 10 == 0) return inject_malformed_payment();
    std::int64_t application = 0;
    std::string token;
    {
      std::lock_guard lock(mutex_);
      if (fee_due_.empty()) return;
      auto it = fee_due_.begin();
      std::advance(it, static_cast<long>(random() % fee_due_.size()));
      application = *it;
      token = citizens_[owner_of_[application]].token;
    }
    auto list = attempt(port_, "GET", "/api/v1/revenue/invoices?status=open&page_size=100", {}, token);
    if (list.status != 200) return;
    std::int64_t invoice = 0;
    auto open = json::parse(list.body, nullptr, false);
    if (!open.is_object()) return;
    for (const auto& item : open["items"])
      if (item["source"]["module"] == "permits" && item["source"]["id"] == std::to_string(application))
        invoice = item["id"].get<std::int64_t>();
    if (invoice == 0) return;  // revenue has not opened it yet
    bool decline = random() % 5 == 0;
    auto key = decline ? "soak-decline-" + std::to_string(application) + "-" + std::to_string(random())
                       : "soak-pay-" + std::to_string(application);
    auto body = json{{"invoice_id", invoice},
                     {"amount_cents", 5000},
                     {"method", {{"type", "card"}, {"token", decline ? "tok_declined" : "tok_ok"}}}}
                    .dump();
    int copies = random() % 3 == 0 ? 2 : 1;
    for (int copy = 0; copy < copies; ++copy) {
      townhall::testing::HttpResponse answer;
      try {
        answer = townhall::testing::http_request(port_, "POST", "/api/v1/revenue/payments", body,
                                                 {"Authorization: Bearer " + token, "Idempotency-Key: " + key});
      } catch (const std::exception&) {
        return;  // killed mid-request
      }
      std::lock_guard lock(mutex_);
      if (answer.status == 201) {
        auto payment = json::parse(answer.body)["id"].get<std::int64_t>();
        auto [it, first] = payment_of_.try_emplace(application, payment);
        if (!first && it->second != payment)
          violation("load", "application " + std::to_string(application) + " was answered payments " +
                                std::to_string(it->second) + " and " + std::to_string(payment));
        paid_.insert(application);
        fee_due_.erase(application);
        ++acknowledged_;
      } else if (answer.status == 402) {
        ++declined_;
      }
    }
  }

  // Ops 10-11: a citizen books the next free hour of the court (priced: held 2 s), or
  // pays the invoice of one of their pending bookings (one key per booking). Holds expire
  // and payments race them across kills; the checks hold the saga's invariants.
  void book_or_pay(std::mt19937& random) {
    std::size_t who = random() % citizens_.size();
    const auto token = citizens_[who].token;
    if (random() % 2 == 0) {
      int hour;
      {
        std::lock_guard lock(mutex_);
        hour = next_hour_++;
      }
      auto day = std::chrono::floor<std::chrono::days>(std::chrono::system_clock::now()) + std::chrono::days(2);
      auto at = [&](int h) { return townhall::utc::format(day + std::chrono::hours(h)); };
      auto answer =
          attempt(port_, "POST", "/api/v1/parks/bookings",
                  json{{"facility_id", court_}, {"starts_at", at(hour)}, {"ends_at", at(hour + 1)}}.dump(), token);
      if (answer.status == 201) {
        std::lock_guard lock(mutex_);
        bookings_.insert(json::parse(answer.body)["id"].get<std::int64_t>());
        ++acknowledged_;
      }
      return;
    }
    auto list = attempt(port_, "GET", "/api/v1/revenue/invoices?status=open&page_size=100", {}, token);
    if (list.status != 200) return;
    auto open = json::parse(list.body, nullptr, false);
    if (!open.is_object()) return;
    for (const auto& item : open["items"]) {
      if (item["source"]["module"] != "parks") continue;
      auto body = json{{"invoice_id", item["id"]},
                       {"amount_cents", item["amount_cents"]},
                       {"method", {{"type", "card"}, {"token", "tok_ok"}}}}
                      .dump();
      try {
        auto answer = townhall::testing::http_request(
            port_, "POST", "/api/v1/revenue/payments", body,
            {"Authorization: Bearer " + token,
             "Idempotency-Key: soak-booking-" + item["source"]["id"].get<std::string>()});
        if (answer.status == 201) {
          std::lock_guard lock(mutex_);
          ++bookings_paid_;
          ++acknowledged_;
        }
      } catch (const std::exception&) {
      }
      return;
    }
  }

  // Op 12: revenue staff record a citizen's tax for a year not used yet, billed in three
  // monthly instalments; or a citizen pays one of their open instalments (one key per
  // instalment: a retry after a kill reuses it).
  void bill_or_pay_tax(std::mt19937& random) {
    std::size_t who = random() % citizens_.size();
    if (random() % 2 == 0) {
      std::int64_t year, tax_due = 10000 + static_cast<std::int64_t>(random() % 90000);
      {
        std::lock_guard lock(mutex_);
        auto [next, added] = next_tax_year_.try_emplace(who, 1990);  // one record per citizen and year
        year = next->second++;
      }
      auto due = townhall::utc::format(std::chrono::system_clock::now() + std::chrono::hours(24 * 60)).substr(0, 10);
      auto answer = attempt(port_, "POST", "/api/v1/revenue/tax-records",
                            json{{"citizen_id", citizens_[who].id},
                                 {"tax_year", year},
                                 {"assessed_value_cents", tax_due * 100},
                                 {"tax_due_cents", tax_due},
                                 {"due_date", due},
                                 {"instalments", 3}}
                                .dump(),
                            admin_);
      if (answer.status == 201) {
        std::lock_guard lock(mutex_);
        tax_records_[json::parse(answer.body)["id"].get<std::int64_t>()] = tax_due;
        ++acknowledged_;
      }
      return;
    }
    const auto token = citizens_[who].token;
    auto list = attempt(port_, "GET", "/api/v1/revenue/invoices?status=open&page_size=100", {}, token);
    if (list.status != 200) return;
    auto open = json::parse(list.body, nullptr, false);
    if (!open.is_object()) return;
    for (const auto& item : open["items"]) {
      if (item["source"]["type"] != "tax_record") continue;
      auto invoice = item["id"].get<std::int64_t>();
      auto body = json{{"invoice_id", invoice},
                       {"amount_cents", item["amount_cents"]},
                       {"method", {{"type", "card"}, {"token", "tok_ok"}}}}
                      .dump();
      try {
        auto answer = townhall::testing::http_request(
            port_, "POST", "/api/v1/revenue/payments", body,
            {"Authorization: Bearer " + token, "Idempotency-Key: soak-tax-" + std::to_string(invoice)});
        if (answer.status == 201) {
          std::lock_guard lock(mutex_);
          auto payment = json::parse(answer.body)["id"].get<std::int64_t>();
          auto [it, first] = tax_payment_of_.try_emplace(invoice, payment);
          if (!first && it->second != payment)
            violation("load", "tax instalment " + std::to_string(invoice) + " was answered payments " +
                                  std::to_string(it->second) + " and " + std::to_string(payment));
          ++acknowledged_;
        }
      } catch (const std::exception&) {
      }
      return;
    }
  }

  void inject_malformed_payment() {
    try {
      SQLite::Database revenue((data() / "revenue.db").string(), SQLite::OPEN_READWRITE, 5000);
      SQLite::Statement insert(
          revenue,
          "INSERT INTO outbox (topic, event_type, aggregate_type, aggregate_id, event_version, "
          "occurred_at, correlation_id, causation_id, schema, data) VALUES ('gov.revenue.payment', "
          "'payment.completed', 'payment', 'malformed', 1, "
          "strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), 'soak', '', 1, ?)");
      json snapshot = {
          {"invoice_id", 0}, {"source_module", "permits"}, {"source_type", "application"}, {"source_id", "not-an-id"}};
      insert.bind(1, json{{"snapshot", snapshot}}.dump());
      insert.exec();
      std::lock_guard lock(mutex_);
      ++malformed_;
      ++acknowledged_;
    } catch (const std::exception&) {
      // a busy file: try another time
    }
  }

  void violation(const std::string& where, const std::string& what) {
    ++violations_;
    std::cerr << "soak VIOLATION (" << where << "): " << what << "\n";
  }

  std::int64_t scalar(SQLite::Database& db, const std::string& sql) { return db.execAndGet(sql).getInt64(); }

  bool check(const std::string& where) {
    // Every module up first: under storage faults one may be down at start (a failed
    // start is retried every module_retry_ms), and its start is what settles what a kill
    // left pending (revenue's payments). Checked before that, a pending payment is not a
    // violation yet; one left pending once every module is up is.
    std::string last_ready;
    bool all_up = townhall::testing::wait_until(
        [&] {
          auto ready = townhall::testing::http_request(port_, "GET", "/readyz");
          last_ready = ready.body;
          auto body = json::parse(ready.body, nullptr, false);
          if (!body.is_object() || !body.contains("modules")) return false;
          for (const auto& [name, module] : body["modules"].items())
            if (module.value("state", "") != "up") return false;
          return true;
        },
        60s);
    if (!all_up) std::cerr << "soak (" << where << "): not every module up within 60 s: " << last_ready << "\n";
    // Busy timeouts: a server just restarted after kill -9 recovers the WAL under a lock.
    SQLite::Database auth((data() / "auth.db").string(), SQLite::OPEN_READONLY, 10000);
    SQLite::Database permits((data() / "permits.db").string(), SQLite::OPEN_READONLY, 10000);
    SQLite::Database revenue((data() / "revenue.db").string(), SQLite::OPEN_READONLY, 10000);
    // Caught up: the consumers' cursors have reached the heads of the outboxes they read.
    auto caught_up = [&](SQLite::Database& consumer, const std::string& consumer_name, SQLite::Database& source,
                         const std::string& subscription, const std::string& name) {
      bool reached = townhall::testing::wait_until(
          [&] {
            auto head = scalar(source, "SELECT coalesce(max(id), 0) FROM outbox");
            auto cursor = scalar(consumer, "SELECT coalesce(max(position), 0) FROM bus_cursors WHERE subscription = '" +
                                               subscription + "' AND source = '" + name + "'");
            return cursor >= head;
          },
          30s);
      if (!reached)
        violation(where, consumer_name + "/" + subscription + " did not catch up with " + name + " within 30 s");
    };
    caught_up(permits, "permits", auth, "citizen_refs", "auth");
    caught_up(revenue, "revenue", permits, "application_fees", "permits");
    caught_up(permits, "permits", revenue, "payments", "revenue");
    SQLite::Database parks((data() / "parks.db").string(), SQLite::OPEN_READONLY, 10000);
    caught_up(revenue, "revenue", parks, "booking_invoices", "parks");
    caught_up(parks, "parks", revenue, "booking_payments", "revenue");
    std::lock_guard lock(mutex_);
    for (const auto& c : citizens_) {
      auto query = SQLite::Statement(auth, "SELECT coalesce(phone, ''), event_version FROM citizens WHERE id = ?");
      query.bind(1, c.id);
      if (!query.executeStep()) {
        violation(where, "citizen " + std::to_string(c.id) + " is gone");
        continue;
      }
      std::string phone = query.getColumn(0).getString();
      auto version = query.getColumn(1).getInt64();
      if (c.last_acked >= 0) {
        // The last acknowledged value, or one sent after it (committed, answer lost).
        bool ok = false;
        for (std::size_t i = static_cast<std::size_t>(c.last_acked); i < c.attempts.size(); ++i)
          ok = ok || c.attempts[i] == phone;
        if (!ok)
          violation(where, "citizen " + std::to_string(c.id) + " lost acknowledged phone " +
                               c.attempts[static_cast<std::size_t>(c.last_acked)] + " (has " + phone + ")");
      }
      auto ref = SQLite::Statement(permits,
                                   "SELECT coalesce(phone, ''), event_version FROM citizen_refs WHERE citizen_id = ?");
      ref.bind(1, c.id);
      if (!ref.executeStep() || ref.getColumn(0).getString() != phone || ref.getColumn(1).getInt64() != version)
        violation(where, "permits' cache of citizen " + std::to_string(c.id) + " differs from auth");
      ++checked_;
    }
    for (auto id : submitted_) {
      if (scalar(permits, "SELECT count(*) FROM applications WHERE id = " + std::to_string(id)) != 1)
        violation(where, "acknowledged application " + std::to_string(id) + " is missing");
    }
    for (auto id : approved_) {
      auto status = permits.execAndGet("SELECT status FROM applications WHERE id = " + std::to_string(id)).getString();
      if (status != "approved") violation(where, "acknowledged approval of " + std::to_string(id) + " is " + status);
      ++checked_;
    }
    auto doubled = scalar(permits,
                          "SELECT count(*) FROM (SELECT application_id FROM permits GROUP BY application_id "
                          "HAVING count(*) > 1)");
    if (doubled != 0) violation(where, std::to_string(doubled) + " applications have more than one permit");
    auto unpermitted = scalar(permits,
                              "SELECT count(*) FROM applications a WHERE a.status = 'approved' AND NOT EXISTS "
                              "(SELECT 1 FROM permits p WHERE p.application_id = a.id)");
    if (unpermitted != 0) violation(where, std::to_string(unpermitted) + " approvals have no permit");
    checked_ += scalar(permits, "SELECT count(*) FROM permits");
    for (auto id : paid_) {
      auto status = permits.execAndGet("SELECT status FROM applications WHERE id = " + std::to_string(id)).getString();
      if (status == "fee_due") violation(where, "paid application " + std::to_string(id) + " is still fee_due");
      ++checked_;
    }
    check_revenue(where, revenue);
    check_taxes(where, revenue);
    check_parks(where, parks, revenue);
    SQLite::Database notify((data() / "notify.db").string(), SQLite::OPEN_READONLY, 10000);
    caught_up(notify, "notify", permits, "notices", "permits");
    caught_up(notify, "notify", revenue, "notices", "revenue");
    check_notify(where, notify, permits, revenue);
    auto dead = scalar(permits, "SELECT count(*) FROM dead_letters");
    if (dead != malformed_)
      violation(where,
                std::to_string(dead) + " dead letters for " + std::to_string(malformed_) + " malformed payments");
    if (scalar(permits, "SELECT count(*) - count(DISTINCT event_id) FROM dead_letters") != 0)
      violation(where, "an event was dead-lettered twice");
    checked_ += dead;
    // A replay through the admin API: a malformed payment fails again and stays pending.
    if (dead > 0) {
      auto letter = scalar(permits, "SELECT min(id) FROM dead_letters");
      townhall::testing::HttpResponse replayed;
      auto replay = [&] {
        replayed = call(port_, "POST", "/admin/dead-letters/permits/" + std::to_string(letter) + "/replay", "", admin_);
        // Under faults a module may be down for a moment (503): asked again, not a violation.
        return !(options_.fault_seed && replayed.status == 503);
      };
      townhall::testing::wait_until(replay, 20s);
      if (replayed.status != 422)
        violation(where,
                  "replaying a malformed payment answered " + std::to_string(replayed.status) + ": " + replayed.body);
      if (scalar(permits, "SELECT count(*) FROM dead_letters WHERE replayed_at IS NOT NULL") != 0)
        violation(where, "a failed replay marked its dead letter replayed");
    }
    for (const char* module : {"auth", "permits", "revenue", "parks"}) {
      SQLite::Database file((data() / (std::string(module) + ".db")).string(), SQLite::OPEN_READONLY, 10000);
      auto result = file.execAndGet("PRAGMA integrity_check").getString();
      if (result != "ok") violation(where, std::string(module) + ".db integrity_check: " + result);
    }
    return violations_ == 0;
  }

  // Money: one invoice per fee application, one charge per paid invoice, every charge a
  // completed payment with one event, nothing left pending by a kill.
  void check_revenue(const std::string& where, SQLite::Database& revenue) {
    for (auto id : fee_applications_) {
      auto invoices = scalar(revenue,
                             "SELECT count(*) FROM invoices WHERE source_module = 'permits' AND "
                             "source_type = 'application' AND source_id = '" +
                                 std::to_string(id) + "'");
      if (invoices != 1)
        violation(where, "fee application " + std::to_string(id) + " has " + std::to_string(invoices) + " invoices");
      ++checked_;
    }
    for (auto id : paid_) {
      auto status = revenue
                        .execAndGet("SELECT status FROM invoices WHERE source_type = 'application' AND source_id = '" +
                                    std::to_string(id) + "'")
                        .getString();
      if (status != "paid") violation(where, "the invoice of paid application " + std::to_string(id) + " is " + status);
    }
    auto doubled = scalar(revenue,
                          "SELECT count(*) FROM (SELECT invoice_id FROM payments WHERE status <> 'failed' "
                          "GROUP BY invoice_id HAVING count(*) > 1)");
    if (doubled != 0) violation(where, std::to_string(doubled) + " invoices hold more than one payment");
    auto pending = scalar(revenue, "SELECT count(*) FROM payments WHERE status = 'pending'");
    if (pending != 0) violation(where, std::to_string(pending) + " payments were left pending after the restart");
    // By the processor's key of each payment (never its row id, issue 27 §1).
    std::set<std::string> completed, charged;
    SQLite::Statement payments(revenue,
                               "SELECT processor_key FROM payments WHERE status <> 'failed' AND status <> 'pending'");
    while (payments.executeStep()) completed.insert(payments.getColumn(0).getString());
    auto ledger_file = data() / "payment-simulator.db";
    if (std::filesystem::exists(ledger_file)) {
      SQLite::Database ledger(ledger_file.string(), SQLite::OPEN_READONLY, 10000);
      SQLite::Statement charges(ledger, "SELECT charge_key FROM charges WHERE outcome = 'approved'");
      while (charges.executeStep()) charged.insert(charges.getColumn(0).getString());
    }
    if (completed != charged)
      violation(where, std::to_string(charged.size()) + " approved charges but " + std::to_string(completed.size()) +
                           " completed payments");
    auto events = scalar(revenue,
                         "SELECT count(*) FROM outbox WHERE event_type = 'payment.completed' AND aggregate_id <> "
                         "'malformed'");
    if (events != static_cast<std::int64_t>(completed.size()))
      violation(where, std::to_string(events) + " payment.completed events for " + std::to_string(completed.size()) +
                           " completed payments");
    checked_ += static_cast<std::int64_t>(completed.size());
  }

  // Tax bills: every acknowledged record is there, billed exactly (three instalments summing
  // to its tax due), and no record, acknowledged or not, is billed otherwise (a record and
  // its bill commit together); every acknowledged instalment payment is its invoice's one
  // completed payment.
  void check_taxes(const std::string& where, SQLite::Database& revenue) {
    for (const auto& [id, tax_due] : tax_records_) {
      SQLite::Statement record(
          revenue,
          "SELECT t.tax_due_cents, (SELECT count(*) FROM invoices i WHERE i.tax_record_id = t.id), "
          "(SELECT coalesce(sum(amount_cents), 0) FROM invoices i WHERE i.tax_record_id = t.id) "
          "FROM tax_records t WHERE t.id = ?");
      record.bind(1, id);
      if (!record.executeStep()) {
        violation(where, "acknowledged tax record " + std::to_string(id) + " is missing");
        continue;
      }
      if (record.getColumn(0).getInt64() != tax_due || record.getColumn(1).getInt64() != 3 ||
          record.getColumn(2).getInt64() != tax_due)
        violation(where, "tax record " + std::to_string(id) + " (tax due " + std::to_string(tax_due) + ") has " +
                             std::to_string(record.getColumn(1).getInt64()) + " instalments summing to " +
                             std::to_string(record.getColumn(2).getInt64()));
      ++checked_;
    }
    auto misbilled =
        scalar(revenue,
               "SELECT count(*) FROM tax_records t WHERE t.tax_due_cents > 0 AND "
               "((SELECT count(*) FROM invoices i WHERE i.tax_record_id = t.id) <> 3 OR "
               "(SELECT sum(amount_cents) FROM invoices i WHERE i.tax_record_id = t.id) <> t.tax_due_cents)");
    if (misbilled != 0) violation(where, std::to_string(misbilled) + " tax records are not billed exactly once");
    for (const auto& [invoice, payment] : tax_payment_of_) {
      auto status = revenue.execAndGet("SELECT status FROM invoices WHERE id = " + std::to_string(invoice)).getString();
      if (status != "paid") violation(where, "paid tax instalment " + std::to_string(invoice) + " is " + status);
      auto completed = scalar(revenue, "SELECT count(*) FROM payments WHERE status = 'completed' AND invoice_id = " +
                                           std::to_string(invoice));
      auto acknowledged = scalar(revenue, "SELECT count(*) FROM payments WHERE status = 'completed' AND id = " +
                                              std::to_string(payment) + " AND invoice_id = " + std::to_string(invoice));
      if (completed != 1 || acknowledged != 1)
        violation(where, "tax instalment " + std::to_string(invoice) + " has " + std::to_string(completed) +
                             " completed payments (the acknowledged one: " + std::to_string(acknowledged) + ")");
      ++checked_;
    }
  }

  // notify: one notice per (event, citizen, kind), whatever the kills and redeliveries.
  // The outboxes keep a week of events, longer than a soak runs: each event is there.
  void check_notify(const std::string& where, SQLite::Database& notify, SQLite::Database& permits,
                    SQLite::Database& revenue) {
    auto expect = [&](const std::string& kind, std::int64_t events) {
      auto notices = scalar(notify, "SELECT count(*) FROM notifications WHERE kind = '" + kind + "'");
      if (notices != events)
        violation(where, std::to_string(notices) + " " + kind + " notices for " + std::to_string(events) + " events");
      checked_ += events;
    };
    expect("application_decided",
           scalar(permits,
                  "SELECT count(*) FROM outbox WHERE event_type IN ('application.approved', 'application.rejected')"));
    expect("payment_completed", scalar(revenue,
                                       "SELECT count(*) FROM outbox WHERE event_type = 'payment.completed' AND "
                                       "aggregate_id <> 'malformed'"));
    // A malformed payment is one dead letter here too: notify reads it with revenue's decoder.
    auto dead = scalar(notify, "SELECT count(*) FROM dead_letters");
    if (dead != malformed_)
      violation(where, "notify has " + std::to_string(dead) + " dead letters for " + std::to_string(malformed_) +
                           " malformed payments");
  }

  // The booking saga: every acknowledged booking exists; no two active bookings overlap;
  // a confirmed priced booking has a completed payment; every cancelled one's invoice is
  // voided or refunded (once revenue has caught up with the cancellation).
  void check_parks(const std::string& where, SQLite::Database& parks, SQLite::Database& revenue) {
    for (auto id : bookings_) {
      if (scalar(parks, "SELECT count(*) FROM bookings WHERE id = " + std::to_string(id)) != 1)
        violation(where, "acknowledged booking " + std::to_string(id) + " is missing");
      ++checked_;
    }
    auto overlaps = scalar(parks,
                           "SELECT count(*) FROM bookings a JOIN bookings b ON a.facility_id = b.facility_id AND "
                           "a.id < b.id WHERE a.status <> 'cancelled' AND b.status <> 'cancelled' AND "
                           "a.starts_at < b.ends_at AND b.starts_at < a.ends_at");
    if (overlaps != 0) violation(where, std::to_string(overlaps) + " pairs of active bookings overlap");
    SQLite::Statement confirmed(parks,
                                "SELECT id, payment_id FROM bookings WHERE status = 'confirmed' AND amount_cents > 0");
    while (confirmed.executeStep()) {
      auto id = confirmed.getColumn(0).getInt64();
      if (confirmed.getColumn(1).isNull()) {
        violation(where, "booking " + std::to_string(id) + " is confirmed without a payment");
        continue;
      }
      SQLite::Statement payment(revenue, "SELECT status FROM payments WHERE id = ?");
      payment.bind(1, confirmed.getColumn(1).getInt64());
      if (!payment.executeStep() || payment.getColumn(0).getString() != "completed")
        violation(where, "booking " + std::to_string(id) + " is confirmed by a payment that is not completed");
      ++checked_;
    }
    // Holds keep expiring while this runs: only a cancellation revenue has been delivered
    // (its event at or below revenue's cursor) must show in the invoice.
    auto delivered = scalar(revenue,
                            "SELECT coalesce(max(position), 0) FROM bus_cursors WHERE subscription = "
                            "'booking_invoices' AND source = 'parks'");
    SQLite::Statement cancelled(parks,
                                "SELECT b.id, (SELECT max(o.id) FROM outbox o WHERE o.aggregate_type = 'booking' AND "
                                "o.aggregate_id = CAST(b.id AS TEXT) AND o.event_type = 'booking.cancelled') "
                                "FROM bookings b WHERE b.status = 'cancelled' AND b.amount_cents > 0");
    while (cancelled.executeStep()) {
      auto id = std::to_string(cancelled.getColumn(0).getInt64());
      if (cancelled.getColumn(1).isNull() || cancelled.getColumn(1).getInt64() > delivered) continue;
      SQLite::Statement invoice(revenue,
                                "SELECT status FROM invoices WHERE source_module = 'parks' AND source_type = 'booking' "
                                "AND source_id = ?");
      invoice.bind(1, id);
      if (!invoice.executeStep()) {
        violation(where, "cancelled booking " + id + " has no invoice");
        continue;
      }
      auto status = invoice.getColumn(0).getString();
      // A refund runs after the handler's commit (the reconciler): paid is fine for a moment.
      if (status != "voided" && status != "refunded" && status != "paid")
        violation(where, "cancelled booking " + id + " left its invoice " + status);
      ++checked_;
    }
  }

  Options options_;
  std::mt19937 random_;
  townhall::testing::TempDir dir_;
  std::string config_;
  unsigned short port_ = 0;
  std::string admin_, reviewer_;
  std::mutex mutex_;
  std::vector<Citizen> citizens_;
  int phone_counter_ = 0;
  std::set<std::int64_t> submitted_, approved_, decided_, fee_due_, paid_, fee_applications_;
  std::map<std::int64_t, std::size_t> owner_of_;         // fee application -> citizens_ index
  std::map<std::int64_t, std::int64_t> payment_of_;      // paid application -> its payment
  std::map<std::int64_t, std::int64_t> tax_records_;     // acknowledged tax record -> its tax due
  std::map<std::int64_t, std::int64_t> tax_payment_of_;  // paid tax instalment (invoice) -> its payment
  std::map<std::size_t, std::int64_t> next_tax_year_;    // citizens_ index -> the next year to record
  std::int64_t malformed_ = 0, declined_ = 0;
  std::int64_t court_ = 0, bookings_paid_ = 0;
  int next_hour_ = 0;
  std::set<std::int64_t> bookings_;
  std::int64_t acknowledged_ = 0, checked_ = 0;
  int violations_ = 0, kills_done_ = 0, starts_ = 0;
  std::int64_t faults_ = 0;
};

}  // namespace

int main(int argc, char** argv) {
  Options options;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i], value = argv[i + 1];
    if (flag == "--binary")
      options.binary = value;
    else if (flag == "--registry")
      options.registry = value;
    else if (flag == "--kills")
      options.kills = std::stoi(value);
    else if (flag == "--seed")
      options.seed = static_cast<unsigned>(std::stoul(value));
    else if (flag == "--faults")
      options.fault_seed = static_cast<unsigned>(std::stoul(value));
    else {
      std::cerr << "usage: soak --binary PATH --registry PATH [--kills N] [--seed S] [--faults SEED]\n";
      return 2;
    }
  }
  if (options.binary.empty() || options.registry.empty()) {
    std::cerr << "usage: soak --binary PATH --registry PATH [--kills N] [--seed S] [--faults SEED]\n";
    return 2;
  }
  return Soak(std::move(options)).run();
}
