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
//   - every cache of auth's citizens (permits', revenue's, parks', notify's citizen_refs)
//     equals auth's citizens, on each column it keeps and event_version;
//   - no subscription started over (a bootstrap, or a gap, in a process's log): nothing
//     is pruned during a soak, so one means events were skipped, which a bootstrap would
//     hide from the caches' check;
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
// With --split it runs the split deployment instead (issue 23; README "Run split across
// machines"): a RabbitMQ broker of its own, `serve --modules auth` and `serve --modules`
// with the other modules, each with its own data dir, the load sent to the process that
// serves each route, and a third client thread patching citizens as fast as auth answers;
// each round kills (-9) auth's process, the other one, both, or the broker at a random
// moment of the load (the broker starts again under auth's writes, a process with the
// next round). Every check above then reads each module's file from the data dir of the
// process serving it: the caches of auth's citizens are fed across the broker, and must
// still equal auth's.
// usage: soak --binary PATH --registry PATH [--kills N] [--seed S] [--faults SEED | --split]
// Prints the figures and exits 0 when nothing was violated, 1 otherwise, 77 when --split
// has no RabbitMQ to run (a skip).
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

#include "rabbitmq_broker.hpp"
#include "server_fixture.hpp"
#include "split_deployment.hpp"
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
  bool split = false;                  // --split: two processes and a broker
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

// One `townhall serve` the soak runs: the whole server, or one process of the split with
// the modules it serves. Each has a data dir of its own, where its modules' files are.
struct Server {
  std::string name;
  std::vector<std::string> modules;  // empty: every module (no --modules)
  std::filesystem::path data;
  std::unique_ptr<ChildProcess> child;  // none, or exited: down
  unsigned short port = 0;              // set before the load's threads start, not during it
  std::size_t scanned = 0;              // how much of its output scan_log has read

  bool serves(const std::string& module) const {
    return modules.empty() || std::find(modules.begin(), modules.end(), module) != modules.end();
  }
  bool up() { return child && !child->exited(); }
};

class Soak {
 public:
  explicit Soak(Options options) : options_(std::move(options)), random_(options_.seed) {}

  int run() {
    if (options_.split) {
      patch_threads_ = 3;
      if (!townhall::testing::RabbitMqBroker::installed()) {
        std::cout << "soak: skipped: " << townhall::testing::RabbitMqBroker::skip_reason() << "\n";
        return 77;
      }
      try {
        broker_ = std::make_unique<townhall::testing::RabbitMqBroker>();
      } catch (const std::exception& error) {
        std::cerr << "soak: the broker did not start: " << error.what() << "\n";
        return 1;
      }
    }
    write_config();
    // The users are auth's: created in the data dir of the process serving auth. A split
    // auth process's dir is created by its first start (with auth.db alone in it).
    auto& auth = server_of("auth");
    bool created = true;
    if (options_.split) {
      created = start(auth, false);
      if (created) shut_down(auth);
    } else {
      created = cli({"migrate", "--init"}, auth) == 0;
    }
    if (!created ||
        cli({"admin", "create-user", "--email", "admin@soak.test", "--password", "soak admin password", "--name",
             "Admin", "--role", "admin"},
            auth) != 0 ||
        cli({"admin", "create-user", "--email", "reviewer@soak.test", "--password", "soak reviewer password", "--name",
             "Rita", "--role", "permits_reviewer", "--department", "BLD"},
            auth) != 0) {
      std::cerr << "soak: setup failed\n";
      return 1;
    }
    {
      if (!start_all(/*with_faults=*/false)) return 1;  // the accounts must exist
      setup_accounts();
      shut_down_all();
    }
    for (int round = 0; round < options_.kills; ++round) {
      if (!start_all()) return 1;
      const auto violations_before = violations_;
      hold_faults(true);
      bool held = check("after restart " + std::to_string(round));
      if (held) {
        hold_faults(false);
        load_then_crash();
      }
      if (violations_ > violations_before) show_logs();
      if (!held) break;
      ++kills_done_;
    }
    if (!start_all()) return 1;
    const auto violations_before = violations_;
    hold_faults(true);
    check("final");
    shut_down_all();
    if (violations_ > violations_before) show_logs();
    std::cout << "soak: " << kills_done_ << " kills, " << acknowledged_ << " acknowledged writes (" << paid_.size()
              << " fees paid, " << declined_ << " declines, " << bookings_.size() << " bookings, " << bookings_paid_
              << " booking payments, " << tax_records_.size() << " tax bills, " << tax_payment_of_.size()
              << " instalments paid), " << checked_ << " effects checked, " << violations_ << " violations\n";
    if (options_.split) {
      std::cout << "soak: split: ";
      for (const auto& [what, count] : crashes_) std::cout << count << " × " << what << "; ";
      std::cout << unavailable_answers << " answers 503";
      if (auto restarts = crashes_["broker restarted"])
        std::cout << "; broker starts " << broker_start_ms_ / restarts << " ms on average";
      std::cout << "\n";
    }
    if (options_.fault_seed)
      std::cout << "soak: under storage faults: " << faults_ << " faults injected, " << unavailable_answers
                << " answers 503\n";
    return violations_ == 0 && kills_done_ == options_.kills ? 0 : 1;
  }

 private:
  // The process serving `module` (the only one, when not split).
  Server& server_of(const std::string& module) {
    for (auto& server : servers_)
      if (server.serves(module)) return server;
    throw std::runtime_error("no process serves " + module);
  }
  // A module's file, in the data dir of the process serving it.
  std::filesystem::path file(const std::string& module) { return server_of(module).data / (module + ".db"); }

  // The port of the process serving `target`: a module's routes (by its route prefix) and
  // its dead letters go to the module's process, the rest (/readyz, /metrics) to the last
  // process, the one with the most modules (as `registry --deploy`'s nginx site does).
  unsigned short port_for(const std::string& target) {
    for (const auto& [module, prefix] : route_prefixes_)
      if (target.starts_with(prefix + "/") || target == prefix) return server_of(module).port;
    const std::string dead_letters = "/admin/dead-letters/";
    if (target.starts_with(dead_letters)) {
      auto module = target.substr(dead_letters.size());
      return server_of(module.substr(0, module.find('/'))).port;
    }
    return servers_.back().port;
  }
  // A request of the load, to the process serving `target`.
  townhall::testing::HttpResponse request(const std::string& method, const std::string& target, const std::string& body,
                                          const std::string& token) {
    return attempt(port_for(target), method, target, body, token);
  }

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
    for (const auto& [module, entry] : registry["modules"].items())
      route_prefixes_[module] = entry.value("route_prefix", "/api/v1/" + module);
    if (options_.split) {
      const auto callers = townhall::testing::split_callers(registry);
      registry = townhall::testing::split_registry(std::move(registry), townhall::testing::free_loopback_port());
      // auth first: the other process calls it as it starts.
      for (const std::string process : {"auth", "services"})
        servers_.push_back({process, registry["deployment"][process]["modules"].get<std::vector<std::string>>(),
                            townhall::testing::split_data_dir(dir_.path(), process, broker_->url(), callers), nullptr});
    } else {
      servers_.push_back({"server", {}, dir_.path() / "data", nullptr});
    }
    config_ = (dir_.path() / "soak.json").string();
    std::ofstream(config_) << registry.dump(2);
  }

  int cli(std::vector<std::string> args, const Server& server) {
    args.insert(args.begin(), options_.binary);
    args.insert(args.end(), {"--config", config_, "--data-dir", server.data.string()});
    ChildProcess child(std::move(args), {}, true);
    auto code = child.wait_exit(60s);
    if (code != 0) std::cerr << child.output();
    return code.value_or(-1);
  }

  bool start(Server& server, bool with_faults = true) {
    // The server's log is kept with its output (shown when it fails to start), not echoed.
    std::map<std::string, std::string> env;
    if (options_.fault_seed && with_faults)
      env["TOWNHALL_FAULT_SEED"] = std::to_string(*options_.fault_seed + static_cast<unsigned>(starts_));
    ++starts_;
    std::vector<std::string> argv{options_.binary, "serve"};
    if (!server.modules.empty()) {
      std::string modules;
      for (const auto& module : server.modules) modules += (modules.empty() ? "" : ",") + module;
      argv.insert(argv.end(), {"--modules", modules});
    }
    argv.insert(argv.end(), {"--port", "0", "--config", config_, "--data-dir", server.data.string()});
    server.child = std::make_unique<ChildProcess>(std::move(argv), std::move(env), true);
    server.scanned = 0;
    server.port = townhall::testing::wait_for_port(*server.child);
    if (server.port == 0) {
      auto code = server.child->exited() ? server.child->wait_exit() : std::nullopt;
      std::cerr << "soak: " << server.name << " did not start"
                << (code ? " (it exited with " + std::to_string(*code) + ")" : std::string(" within 90 s")) << ":\n"
                << server.child->output();
      return false;
    }
    return true;
  }

  bool restart_broker() {
    try {
      broker_->start();
      broker_start_ms_ += broker_->last_start_time().count();
      return true;
    } catch (const std::exception& error) {
      std::cerr << "soak: the broker did not start again: " << error.what() << "\n";
      return false;
    }
  }

  // The broker (split) if it is down, then every process that is down, auth's first.
  bool start_all(bool with_faults = true) {
    if (broker_ && !broker_->running() && !restart_broker()) return false;
    for (auto& server : servers_)
      if (!server.up() && !start(server, with_faults)) return false;
    return true;
  }

  void shut_down(Server& server) {
    if (!server.up()) return;
    server.child->signal(SIGTERM);
    server.child->wait_exit();
    scan_log(server, "its log");
  }
  // SIGTERM to every process, the one calling auth first.
  void shut_down_all() {
    for (auto server = servers_.rbegin(); server != servers_.rend(); ++server) shut_down(*server);
  }
  void kill(Server& server) {
    server.child->signal(SIGKILL);
    server.child->wait_exit();
    scan_log(server, "its log");
  }

  // Under --faults: the invariants are checked on a repaired disk (SIGUSR1 holds the
  // faulty server's faults back, SIGUSR2 lets them go; tests/soak/faulty_server.cpp).
  void hold_faults(bool held) {
    if (options_.fault_seed)
      for (auto& server : servers_) server.child->signal(held ? SIGUSR1 : SIGUSR2);
  }

  // The logs of the processes a violation was found with (their ends: what led up to it).
  void show_logs() {
    constexpr std::size_t kShown = 12000;
    for (auto& server : servers_) {
      if (!server.child) continue;
      server.child->drain();
      const auto& output = server.child->output();
      std::cerr << "soak: the log of " << server.name << (output.size() > kShown ? " (its end)" : "") << ":\n"
                << (output.size() > kShown ? output.substr(output.size() - kShown) : output) << "\n";
    }
    if (broker_) std::cerr << "soak: the broker's log (its end):\n" << broker_->log_tail() << "\n";
  }

  // What a process's log has said since the last look: the faults a faulty server
  // injected (one "fault: " line each), and any subscription that started over (a
  // bootstrap from its source's snapshot, or a gap skipped). Nothing is pruned during a
  // soak and a broker killed keeps what it confirmed, so a start-over means events were
  // skipped, which a bootstrap then hides from the caches' check.
  void scan_log(Server& server, const std::string& where) {
    server.child->drain();
    const auto& output = server.child->output();
    for (auto at = output.find("fault: ", server.scanned); at != std::string::npos; at = output.find("fault: ", at + 1))
      ++faults_;
    for (const std::string needle : {"bootstrapping from a snapshot", "it has no bootstrap; going on"}) {
      for (auto at = output.find(needle, server.scanned); at != std::string::npos; at = output.find(needle, at + 1)) {
        auto begin = output.rfind('\n', at);
        begin = begin == std::string::npos ? 0 : begin + 1;
        violation(where, server.name +
                             ": a subscription started over: " + output.substr(begin, output.find('\n', at) - begin));
      }
    }
    server.scanned = output.size();
  }

  void setup_accounts() {
    const std::string login = "/api/v1/auth/login";
    admin_ = townhall::testing::login(port_for(login), "admin@soak.test", "soak admin password");
    reviewer_ = townhall::testing::login(port_for(login), "reviewer@soak.test", "soak reviewer password");
    for (std::size_t i = 0; i < 4 * patch_threads_; ++i) {
      std::string email = "citizen" + std::to_string(i) + "@soak.test";
      const std::string target = "/api/v1/auth/register";
      auto registered =
          call(port_for(target), "POST", target,
               json{{"email", email}, {"password", "a long enough password"}, {"name", email}}.dump(), {});
      Citizen c;
      c.id = json::parse(registered.body)["id"].get<std::int64_t>();
      const auto citizen = "/api/v1/auth/citizens/" + std::to_string(c.id);
      call(port_for(citizen), "PATCH", citizen, R"({"identity_verified":true})", admin_);
      c.token = townhall::testing::login(port_for(login), email, "a long enough password");
      citizens_.push_back(std::move(c));
    }
    // A priced court open around the clock, booked by the load.
    json all_day = json::object();
    for (const char* day : {"mon", "tue", "wed", "thu", "fri", "sat", "sun"})
      all_day[day] = {{"open", "00:00"}, {"close", "24:00"}};
    const std::string facilities = "/api/v1/parks/facilities";
    auto court = call(port_for(facilities), "POST", facilities,
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

  // What a round kills: the server; or, split, auth's process, the other one, both, or
  // the broker.
  void crash() {
    if (!options_.split) {
      kill(servers_.front());
      return;
    }
    switch (random_() % 4) {
      case 0:
        kill(server_of("auth"));
        ++crashes_["auth killed"];
        break;
      case 1:
        kill(servers_.back());
        ++crashes_["services killed"];
        break;
      case 2:
        for (auto& server : servers_) kill(server);
        ++crashes_["both killed"];
        break;
      default:
        broker_->kill();
        ++crashes_["broker restarted"];
        break;
    }
  }

  // Ops 0-3: a citizen of this thread's share (citizens_[i] with i % patch_threads_ ==
  // share) changes their phone. Per citizen, requests are sequential, so the order of
  // acknowledgements is the order of commits.
  void patch_citizen(std::mt19937& random, std::size_t share) {
    std::size_t index;
    std::string phone;
    {
      std::lock_guard lock(mutex_);
      index = share + patch_threads_ * (random() % (citizens_.size() / patch_threads_));
      phone = "+1-555-" + std::to_string(++phone_counter_);
      citizens_[index].attempts.push_back(phone);
    }
    auto& c = citizens_[index];
    auto answer =
        request("PATCH", "/api/v1/auth/citizens/" + std::to_string(c.id), json{{"phone", phone}}.dump(), c.token);
    if (answer.status == 200) {
      std::lock_guard lock(mutex_);
      c.last_acked = static_cast<int>(c.attempts.size()) - 1;
      ++acknowledged_;
    }
  }

  // Requests from two client threads until the crash; what was answered 2xx is
  // acknowledged. Split, the load goes on a moment after it: the process that survived
  // (or both, without their broker) keeps taking it; and a third thread only patches
  // citizens, as fast as auth answers, so auth's events keep arriving at the other
  // process's consumers while they apply the ones before: a kill there can find rows
  // received and not yet applied, which the stream offset stored with a consumer's
  // cursor must not skip (seen: storing the next offset to receive was caught so).
  void load_then_crash() {
    std::atomic<bool> stop{false};
    std::atomic<bool> mixed{true};  // the two threads of mixed load go on
    auto worker = [&](unsigned seed, std::size_t parity) {
      std::mt19937 random(seed);
      while (!stop && mixed) {
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
          patch_citizen(random, parity);
        } else if (op < 7) {
          const auto& c = citizens_[random() % citizens_.size()];
          bool with_fee = op == 6;  // renovation: fee_due until its payment arrives
          auto answer = request("POST", "/api/v1/permits/applications",
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
          auto answer = request("POST", "/api/v1/permits/applications/" + std::to_string(id) + "/decision",
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
    std::optional<std::thread> patcher;
    std::atomic<int> patch_pause_ms{0};
    if (patch_threads_ == 3)
      patcher.emplace([&, seed = static_cast<unsigned>(random_())] {
        std::mt19937 random(seed);
        while (!stop) {
          patch_citizen(random, 2);
          if (auto pause = patch_pause_ms.load()) std::this_thread::sleep_for(std::chrono::milliseconds(pause));
        }
      });
    // The kill comes at a random moment of the load (the soak's point: no moment is safe).
    // Under faults the load runs longer, so the failing disk meets it.
    std::this_thread::sleep_for(
        std::chrono::milliseconds(options_.fault_seed ? 300 + random_() % 1200 : 30 + random_() % 300));
    crash();
    if (options_.split) {
      // The broker starts again under a load of auth's writes (the patcher's, one per
      // 10 ms): the processes reconnect, declare their streams, probe their ends and
      // attach while auth's stream grows. Only that load: it lasts as long as the
      // broker's start (seconds on 2 cores), and every write of the mixed load adds to
      // what each later round checks. (A killed process restarts with the next round.)
      if (!broker_->running()) {
        mixed = false;
        patch_pause_ms = 10;
        restart_broker();
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(random_() % 300));
    }
    stop = true;
    a.join();
    b.join();
    if (patcher) patcher->join();
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
    auto list = request("GET", "/api/v1/revenue/invoices?status=open&page_size=100", {}, token);
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
        answer =
            townhall::testing::http_request(port_for("/api/v1/revenue/payments"), "POST", "/api/v1/revenue/payments",
                                            body, {"Authorization: Bearer " + token, "Idempotency-Key: " + key});
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
          request("POST", "/api/v1/parks/bookings",
                  json{{"facility_id", court_}, {"starts_at", at(hour)}, {"ends_at", at(hour + 1)}}.dump(), token);
      if (answer.status == 201) {
        std::lock_guard lock(mutex_);
        bookings_.insert(json::parse(answer.body)["id"].get<std::int64_t>());
        ++acknowledged_;
      }
      return;
    }
    auto list = request("GET", "/api/v1/revenue/invoices?status=open&page_size=100", {}, token);
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
            port_for("/api/v1/revenue/payments"), "POST", "/api/v1/revenue/payments", body,
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
      auto answer = request("POST", "/api/v1/revenue/tax-records",
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
    auto list = request("GET", "/api/v1/revenue/invoices?status=open&page_size=100", {}, token);
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
            port_for("/api/v1/revenue/payments"), "POST", "/api/v1/revenue/payments", body,
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
      SQLite::Database revenue(file("revenue").string(), SQLite::OPEN_READWRITE, 5000);
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
    for (auto& server : servers_) {
      server.child->drain();  // a process that lives on across rounds must not fill its pipe
      std::string last_ready;
      bool all_up = townhall::testing::wait_until(
          [&] {
            auto ready = townhall::testing::http_request(server.port, "GET", "/readyz");
            last_ready = ready.body;
            auto body = json::parse(ready.body, nullptr, false);
            if (!body.is_object() || !body.contains("modules")) return false;
            for (const auto& [name, module] : body["modules"].items())
              if (module.value("state", "") != "up") return false;
            return true;
          },
          60s);
      if (!all_up)
        std::cerr << "soak (" << where << "): not every module of " << server.name << " up within 60 s: " << last_ready
                  << "\n";
    }
    // Busy timeouts: a server just restarted after kill -9 recovers the WAL under a lock.
    SQLite::Database auth(file("auth").string(), SQLite::OPEN_READONLY, 10000);
    SQLite::Database permits(file("permits").string(), SQLite::OPEN_READONLY, 10000);
    SQLite::Database revenue(file("revenue").string(), SQLite::OPEN_READONLY, 10000);
    // Caught up: the consumers' cursors have reached the heads of the outboxes they read.
    // A consumer is stuck when its cursor stands still for 30 s short of the head; one
    // that keeps moving is given up to 5 min. (Split, under load, a broker's start takes
    // 40 s and auth's writes during it are thousands of events still to apply.)
    auto caught_up = [&](SQLite::Database& consumer, const std::string& consumer_name, SQLite::Database& source,
                         const std::string& subscription, const std::string& name) {
      std::int64_t head = 0, cursor = -1;
      auto moved_at = std::chrono::steady_clock::now();
      townhall::testing::wait_until(
          [&] {
            head = scalar(source, "SELECT coalesce(max(id), 0) FROM outbox");
            auto now_at = scalar(consumer, "SELECT coalesce(max(position), 0) FROM bus_cursors WHERE subscription = '" +
                                               subscription + "' AND source = '" + name + "'");
            if (now_at != cursor) moved_at = std::chrono::steady_clock::now();
            cursor = now_at;
            return cursor >= head || std::chrono::steady_clock::now() - moved_at > 30s;
          },
          300s);
      if (cursor < head)
        violation(where, consumer_name + "/" + subscription + " did not catch up with " + name + ": its cursor " +
                             std::to_string(cursor) + " stood still (30 s) or crept (5 min) short of the head " +
                             std::to_string(head));
    };
    caught_up(permits, "permits", auth, "citizen_refs", "auth");
    caught_up(revenue, "revenue", permits, "application_fees", "permits");
    caught_up(permits, "permits", revenue, "payments", "revenue");
    SQLite::Database parks(file("parks").string(), SQLite::OPEN_READONLY, 10000);
    caught_up(revenue, "revenue", parks, "booking_invoices", "parks");
    caught_up(parks, "parks", revenue, "booking_payments", "revenue");
    SQLite::Database notify(file("notify").string(), SQLite::OPEN_READONLY, 10000);
    caught_up(revenue, "revenue", auth, "citizen_refs", "auth");
    caught_up(parks, "parks", auth, "citizen_refs", "auth");
    caught_up(notify, "notify", auth, "citizen_refs", "auth");
    check_citizen_caches(where, auth,
                         {{"permits", &permits}, {"revenue", &revenue}, {"parks", &parks}, {"notify", &notify}});
    std::lock_guard lock(mutex_);
    for (const auto& c : citizens_) {
      auto query = SQLite::Statement(auth, "SELECT coalesce(phone, '') FROM citizens WHERE id = ?");
      query.bind(1, c.id);
      if (!query.executeStep()) {
        violation(where, "citizen " + std::to_string(c.id) + " is gone");
        continue;
      }
      std::string phone = query.getColumn(0).getString();
      if (c.last_acked >= 0) {
        // The last acknowledged value, or one sent after it (committed, answer lost).
        bool ok = false;
        for (std::size_t i = static_cast<std::size_t>(c.last_acked); i < c.attempts.size(); ++i)
          ok = ok || c.attempts[i] == phone;
        if (!ok)
          violation(where, "citizen " + std::to_string(c.id) + " lost acknowledged phone " +
                               c.attempts[static_cast<std::size_t>(c.last_acked)] + " (has " + phone + ")");
      }
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
        const auto target = "/admin/dead-letters/permits/" + std::to_string(letter) + "/replay";
        replayed = call(port_for(target), "POST", target, "", admin_);
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
    for (auto& server : servers_) scan_log(server, where);
    for (const char* module : {"auth", "permits", "revenue", "parks", "notify"}) {
      SQLite::Database db(file(module).string(), SQLite::OPEN_READONLY, 10000);
      auto result = db.execAndGet("PRAGMA integrity_check").getString();
      if (result != "ok") violation(where, std::string(module) + ".db integrity_check: " + result);
    }
    return violations_ == 0;
  }

  // Every cache of auth's citizens equals auth's citizens table: the same citizens, and on
  // each column the cache keeps (its columns but the key and last_synced_at, named as
  // auth's) the same values, event_version included. Split, the caches are in the other
  // process's files, fed through the broker: this is "caches equal sources" across it.
  // (The soak closes no account: a closed one's cache keeps no contact data.)
  void check_citizen_caches(const std::string& where, SQLite::Database& auth,
                            const std::map<std::string, SQLite::Database*>& caches) {
    for (const auto& [module, cache] : caches) {
      std::string values;  // every kept column, quoted, in one text per citizen
      SQLite::Statement columns(*cache, "SELECT name FROM pragma_table_info('citizen_refs') ORDER BY cid");
      while (columns.executeStep()) {
        auto column = columns.getColumn(0).getString();
        if (column == "citizen_id" || column == "last_synced_at") continue;
        values += (values.empty() ? "" : " || '|' || ") + ("quote(" + column + ")");
      }
      auto rows = [&](SQLite::Database& db, const std::string& sql) {
        std::map<std::int64_t, std::string> out;
        SQLite::Statement query(db, sql);
        while (query.executeStep()) out[query.getColumn(0).getInt64()] = query.getColumn(1).getString();
        return out;
      };
      auto source = rows(auth, "SELECT id, " + values + " FROM citizens");
      auto cached = rows(*cache, "SELECT citizen_id, " + values + " FROM citizen_refs");
      int differ = 0;
      std::string first;
      for (const auto& [id, row] : source) {
        auto it = cached.find(id);
        if (it != cached.end() && it->second == row) continue;
        if (differ++ == 0)
          first = "citizen " + std::to_string(id) + ": auth " + row + ", cache " +
                  (it == cached.end() ? std::string("none") : it->second);
      }
      for (const auto& [id, row] : cached)
        if (!source.contains(id) && differ++ == 0) first = "citizen " + std::to_string(id) + " is not auth's";
      if (differ != 0)
        violation(where, "the citizen cache of " + module + " differs from auth's citizens on " +
                             std::to_string(differ) + " of them (" + first + ")");
      checked_ += static_cast<std::int64_t>(source.size());
    }
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
    auto ledger_file = server_of("revenue").data / "payment-simulator.db";
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
  std::unique_ptr<townhall::testing::RabbitMqBroker> broker_;  // --split
  std::vector<Server> servers_;                                // stopped before the broker goes
  std::map<std::string, std::string> route_prefixes_;          // module -> its routes' prefix
  std::map<std::string, int> crashes_;                         // what the split's rounds did
  std::int64_t broker_start_ms_ = 0;
  std::size_t patch_threads_ = 2;  // the threads patching citizens, each its share (split: 3)
  std::string config_;
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
  constexpr const char* kUsage =
      "usage: soak --binary PATH --registry PATH [--kills N] [--seed S] [--faults SEED | --split]\n";
  Options options;
  for (int i = 1; i < argc; ++i) {
    std::string flag = argv[i];
    if (flag == "--split") {
      options.split = true;
      continue;
    }
    if (i + 1 >= argc) {
      std::cerr << kUsage;
      return 2;
    }
    std::string value = argv[++i];
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
      std::cerr << kUsage;
      return 2;
    }
  }
  // The faulty server is one process: its storage faults and the split are separate soaks.
  if (options.binary.empty() || options.registry.empty() || (options.split && options.fault_seed)) {
    std::cerr << kUsage;
    return 2;
  }
  return Soak(std::move(options)).run();
}
