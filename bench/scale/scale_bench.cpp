// Data-scale benchmark (issue 24 §4): seeds a municipality through the modules' routes
// (every row through its module's command and write path), then measures on the release
// `townhall serve` every read and list route (first page and a page deep inside the set,
// reached by walking the cursor), start-up, a full `townhall check`, a backup and the
// catch-up of a consumer a whole outbox behind; each figure next to the same one on a
// 1k-application municipality seeded the same way in the same run.
//
//   scale_bench [--scale S] [--data-dir DIR] [--reuse] [--requests N] [--workers W]
//               [--deep-cap ROWS] [--townhall PATH]      (make bench-scale, bench/README.md)
#include <SQLiteCpp/Database.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <optional>
#include <stdexcept>

#include "seed.hpp"
#include "server.hpp"
#include "townhall/platform/time.hpp"

using namespace townhall;
using namespace townhall::bench;
using json = nlohmann::json;

namespace {

struct Options {
  double scale = 1.0;
  std::filesystem::path data_dir = "build/bench/scale-data";
  bool reuse = false;
  int requests = 1000;  // measured per route, after 20 unmeasured
  int workers = 8;
  std::int64_t deep_cap = 100'000;  // rows walked at most to reach a deep page
  std::string townhall = TOWNHALL_BINARY;
};

// Who asks: a token per role, logged in when measuring starts.
enum class Who { anyone, citizen, admin, reviewer, clerk, parks };

// A route as measured: `target` at page_size 20 for lists; `deep` also measures a page
// half way through the list (at most deep_cap rows in), reached by walking its cursor.
struct Route {
  std::string name;
  Who who;
  std::string target;
  bool list = false;
  bool report = false;  // an aggregate over a date range: grows with the data by design
};

struct Latency {
  double p50 = 0, p99 = 0;
  std::int64_t depth = -1;  // rows before the deep page; -1 for a first page or a read
  int failures = 0;
  int status = 0;
};

struct Figures {
  std::map<std::string, Latency> routes;
  std::vector<std::string> order;
  double listening_s = 0, ready_s = 0, backup_s = 0, check_s = 0;
  std::uintmax_t backup_bytes = 0, data_bytes = 0;
  int check_exit = -1;
  std::int64_t catch_up_events = 0;
  double catch_up_s = 0;
};

std::string today_plus(int days) {
  auto day = std::chrono::floor<std::chrono::days>(std::chrono::system_clock::now()) + std::chrono::days(days);
  return utc::format(day).substr(0, 10);
}

std::vector<Route> routes_of(const Seeded& seeded) {
  auto id = [&](const char* what) { return std::to_string(seeded.ids.at(what)); };
  const std::string range = "from=" + today_plus(-30) + "&to=" + today_plus(120);
  return {
      {"auth GET /me", Who::citizen, "/api/v1/auth/me"},
      {"auth GET /citizens (admin)", Who::admin, "/api/v1/auth/citizens", true},
      {"auth GET /citizens/{id}", Who::admin, "/api/v1/auth/citizens/" + id("citizen")},
      {"auth GET /departments", Who::anyone, "/api/v1/auth/departments", true},
      {"auth GET /employees", Who::admin, "/api/v1/auth/employees", true},
      {"auth GET /audit", Who::admin, "/api/v1/auth/audit", true},
      {"notify GET /inbox (citizen)", Who::citizen, "/api/v1/notify/inbox", true},
      {"notify GET /preferences", Who::citizen, "/api/v1/notify/preferences"},
      {"permits GET /applications (citizen)", Who::citizen, "/api/v1/permits/applications", true},
      {"permits GET /applications?status=under_review (citizen)", Who::citizen,
       "/api/v1/permits/applications?status=under_review", true},
      {"permits GET /applications (reviewer D1)", Who::reviewer, "/api/v1/permits/applications", true},
      {"permits GET /applications?status=under_review (reviewer)", Who::reviewer,
       "/api/v1/permits/applications?status=under_review", true},
      {"permits GET /applications?status=fee_due (reviewer)", Who::reviewer,
       "/api/v1/permits/applications?status=fee_due", true},
      {"permits GET /applications/{id}", Who::citizen, "/api/v1/permits/applications/" + id("application")},
      {"permits GET /permit-types", Who::anyone, "/api/v1/permits/permit-types", true},
      {"permits GET /permit-types/{code}", Who::anyone, "/api/v1/permits/permit-types/fence"},
      {"permits GET /reports/applications", Who::reviewer, "/api/v1/permits/reports/applications?" + range, false,
       true},
      {"revenue GET /invoices (citizen)", Who::citizen, "/api/v1/revenue/invoices", true},
      {"revenue GET /invoices?status=paid (citizen)", Who::citizen, "/api/v1/revenue/invoices?status=paid", true},
      {"revenue GET /invoices (clerk)", Who::clerk, "/api/v1/revenue/invoices", true},
      {"revenue GET /invoices?status=paid (clerk)", Who::clerk, "/api/v1/revenue/invoices?status=paid", true},
      {"revenue GET /invoices/{id}", Who::citizen, "/api/v1/revenue/invoices/" + id("invoice")},
      {"revenue GET /payments/{id}/receipt", Who::citizen, "/api/v1/revenue/payments/" + id("payment") + "/receipt"},
      {"revenue GET /tax-records/{id}", Who::clerk, "/api/v1/revenue/tax-records/" + id("tax_record")},
      {"revenue GET /business-licenses (clerk)", Who::clerk, "/api/v1/revenue/business-licenses", true},
      {"revenue GET /reports/revenue", Who::clerk, "/api/v1/revenue/reports/revenue?" + range, false, true},
      {"parks GET /facilities", Who::anyone, "/api/v1/parks/facilities", true},
      {"parks GET /facilities/{id}", Who::anyone, "/api/v1/parks/facilities/" + id("facility")},
      {"parks GET /bookings (citizen)", Who::citizen, "/api/v1/parks/bookings", true},
      {"parks GET /bookings (parks staff)", Who::parks, "/api/v1/parks/bookings", true},
      {"parks GET /bookings?status=confirmed (staff)", Who::parks, "/api/v1/parks/bookings?status=confirmed", true},
      {"parks GET /bookings/{id}", Who::citizen, "/api/v1/parks/bookings/" + id("booking")},
      {"parks GET /programs", Who::anyone, "/api/v1/parks/programs", true},
      {"parks GET /reports/utilisation", Who::parks, "/api/v1/parks/reports/utilisation?" + range, false, true},
  };
}

std::string with_query(const std::string& target, const std::string& query) {
  return target + (target.find('?') == std::string::npos ? "?" : "&") + query;
}

// The cursor of the page that starts half way through the list (at most `cap` rows in),
// and how many rows come before it; nullopt when the list has a single page.
std::optional<std::pair<std::string, std::int64_t>> deep_cursor(Client& client, const Route& route,
                                                                const std::string& token, std::int64_t cap) {
  auto counted = client.get(with_query(route.target, "page_size=1&include=total"), token).json();
  if (!counted.contains("total")) return std::nullopt;
  const std::int64_t goal = std::min(cap, counted["total"].get<std::int64_t>() / 2);
  // Steps of at most 100 rows (the largest page), at least five of them for a short list.
  const std::string step = "page_size=" + std::to_string(std::clamp<std::int64_t>(goal / 5, 1, 100));
  std::int64_t depth = 0;
  std::string cursor;
  while (depth < goal) {
    auto page = client.get(with_query(route.target, step + (cursor.empty() ? "" : "&cursor=" + cursor)), token).json();
    if (!page["next_cursor"].is_string()) return std::nullopt;
    depth += static_cast<std::int64_t>(page["items"].size());
    cursor = page["next_cursor"].get<std::string>();
  }
  if (cursor.empty()) return std::nullopt;
  return std::pair{cursor, depth};
}

Latency measure(Client& client, const std::string& target, const std::string& token, int requests) {
  Latency latency;
  std::vector<double> ms;
  for (int i = 0; i < requests + 20; ++i) {
    auto start = Clock::now();
    auto reply = client.get(target, token);
    double elapsed = seconds_since(start) * 1000;
    if (reply.status != 200) {
      ++latency.failures;
      latency.status = reply.status;
    }
    if (i >= 20) ms.push_back(elapsed);
  }
  latency.p50 = percentile(ms, 0.5);
  latency.p99 = percentile(ms, 0.99);
  return latency;
}

std::uintmax_t bytes_under(const std::filesystem::path& dir) {
  std::uintmax_t total = 0;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir))
    if (entry.is_regular_file()) total += entry.file_size();
  return total;
}

// One municipality's server while its routes are measured: its tokens, and each route's
// targets (a list's first page, and its deep page when it has one).
struct Side {
  const Seeded& seeded;
  Server server;
  Client client;
  std::map<Who, std::string> tokens;
  std::map<std::string, std::pair<std::string, std::int64_t>> targets;  // name -> target, depth

  Side(const Options& options, const std::filesystem::path& data_dir, const Seeded& seeded_)
      : seeded(seeded_), server(options.townhall, data_dir, data_dir / kConfigFile), client(server.port()) {
    auto login = [&](const std::string& email) {
      return client.post("/api/v1/auth/login", json{{"email", email}, {"password", kPassword}})
          .json()["token"]
          .get<std::string>();
    };
    tokens = {{Who::anyone, ""},           {Who::citizen, login(citizen_email(0))},
              {Who::admin, login(kAdmin)}, {Who::reviewer, login(reviewer_email(0))},
              {Who::clerk, login(kClerk)}, {Who::parks, login(kParks)}};
    for (const auto& route : routes_of(seeded)) {
      targets[route.name] = {route.list ? with_query(route.target, "page_size=20") : route.target, -1};
      if (!route.list) continue;
      if (auto deep = deep_cursor(client, route, tokens[route.who], options.deep_cap))
        targets[route.name + " deep"] = {with_query(route.target, "page_size=20&cursor=" + deep->first), deep->second};
    }
  }
};

double median(std::vector<double> values) { return percentile(std::move(values), 0.5); }

// Every route on both servers, both up at once: `rounds` rounds, the two sides taking
// turns route by route, so both see the same machine; each figure is the median of its
// rounds' p50 and p99.
void measure_routes(const Options& options, Side& small, Side& big, Figures& a, Figures& b) {
  constexpr int kRounds = 3;
  for (const auto& route : routes_of(big.seeded)) {
    const int requests = route.report ? std::max(30, options.requests / 10) : options.requests;
    for (const auto& name : {route.name, route.name + " deep"}) {
      if (name != route.name && !route.list) continue;
      b.order.push_back(name);
      std::map<Side*, std::vector<double>> p50, p99;
      std::map<Side*, Latency> last;
      for (int round = 0; round < kRounds; ++round)
        for (Side* side : round % 2 ? std::vector{&big, &small} : std::vector{&small, &big}) {
          auto found = side->targets.find(name);
          if (found == side->targets.end()) continue;
          auto latency = measure(side->client, found->second.first, side->tokens[route.who], requests);
          latency.depth = found->second.second;
          p50[side].push_back(latency.p50);
          p99[side].push_back(latency.p99);
          last[side] = latency;
        }
      for (auto [side, figures] : {std::pair{&small, &a}, std::pair{&big, &b}}) {
        if (!last.contains(side)) continue;
        auto latency = last[side];
        latency.p50 = median(p50[side]);
        latency.p99 = median(p99[side]);
        figures->routes[name] = latency;
      }
    }
  }
}

void measure_backup(const Options& options, const std::filesystem::path& data_dir, Figures& figures) {
  auto backup_dir = data_dir.parent_path() / (data_dir.filename().string() + "-backup");
  std::filesystem::remove_all(backup_dir);
  auto start = Clock::now();
  auto [code, output] = run_cli(options.townhall, {"backup", "--out", backup_dir.string()}, data_dir);
  figures.backup_s = seconds_since(start);
  if (code != 0) std::fprintf(stderr, "backup failed: %s\n", output.c_str());
  figures.backup_bytes = bytes_under(backup_dir);
  std::filesystem::remove_all(backup_dir);
}

// With the server stopped: a full check, then the catch-up of notify's notices feed from
// permits started again from the first event (a consumer added later; re-applying a
// notice is a no-op by its unique source event), timed from /readyz.
void measure_offline(const Options& options, const std::filesystem::path& data_dir, Figures& figures) {
  auto start = Clock::now();
  figures.check_exit = run_cli(options.townhall, {"check"}, data_dir).first;
  figures.check_s = seconds_since(start);
  {
    SQLite::Database notify((data_dir / "notify.db").string(), SQLite::OPEN_READWRITE);
    notify.exec("DELETE FROM bus_cursors WHERE subscription = 'notices' AND source = 'permits'");
    notify.exec("DELETE FROM processed_ranges WHERE subscription = 'notices' AND source = 'permits'");
  }
  Server server(options.townhall, data_dir, data_dir / kConfigFile);
  Client client(server.port());
  auto admin = client.post("/api/v1/auth/login", json{{"email", kAdmin}, {"password", kPassword}})
                   .json()["token"]
                   .get<std::string>();
  for (;; std::this_thread::sleep_for(std::chrono::milliseconds(20))) {
    auto bus = client.get("/admin/bus", admin).json();
    bool done = false;
    for (const auto& feed : bus["feeds"])
      if (feed["consumer"] == "notify" && feed["subscription"] == "notices" && feed["source"] == "permits") {
        figures.catch_up_events = std::max(figures.catch_up_events, feed["source_head"].get<std::int64_t>());
        done = feed["consumer_up"].get<bool>() && feed["lag_events"].get<std::int64_t>() == 0 &&
               feed["cursor"].get<std::int64_t>() > 0;
      }
    if (done) break;
    if (seconds_since(server.started()) > 3600) throw std::runtime_error("catch-up did not finish");
  }
  figures.catch_up_s = seconds_since(server.started()) - server.ready_seconds();
}

Seeded seeded_dir(const Options& options, const std::filesystem::path& dir, double scale) {
  if (options.reuse && std::filesystem::exists(dir / kSeedFile)) {
    std::ifstream in(dir / kSeedFile);
    auto seeded = Seeded::from_json(json::parse(in));
    std::printf("reusing %s (scale %g)\n", dir.c_str(), seeded.sizes.scale);
    return seeded;
  }
  return seed(options.townhall, dir, std::filesystem::path(TOWNHALL_SOURCE_DIR) / "config/townhall.json",
              sizes_at(scale), options.workers);
}

void print_table(const Seeded& small, const Figures& a, const Seeded& big, const Figures& b) {
  std::printf("\n%-58s %9s %9s %9s %9s %8s %8s\n", "route (p50/p99 ms; page_size=20)", "1k p50", "1k p99", "big p50",
              "big p99", "p99 x", "depth");
  std::printf("  (1k: %lld applications; big: %lld applications, scale %g)\n",
              static_cast<long long>(small.sizes.applications), static_cast<long long>(big.sizes.applications),
              big.sizes.scale);
  for (const auto& name : b.order) {
    auto x = a.routes.find(name), y = b.routes.find(name);
    if (y == b.routes.end()) {
      std::printf("%-58s (one page only at this scale)\n", name.c_str());
      continue;
    }
    const auto& big_route = y->second;
    const bool against_first = x == a.routes.end();  // the 1k list has one page: its first page
    if (against_first) x = a.routes.find(name.substr(0, name.size() - std::string(" deep").size()));
    double ratio = big_route.p99 / x->second.p99;
    std::printf("%-58s %9.2f %9.2f %9.2f %9.2f %7.2fx %8lld%s%s%s\n", name.c_str(), x->second.p50, x->second.p99,
                big_route.p50, big_route.p99, ratio, static_cast<long long>(big_route.depth),
                ratio > 2.0 ? "  OVER 2x" : "", against_first ? "  (1k: first page)" : "",
                big_route.failures || x->second.failures
                    ? (" HTTP " + std::to_string(std::max(big_route.status, x->second.status))).c_str()
                    : "");
  }
  auto row = [](const char* what, double x, double y, const char* unit) {
    std::printf("%-58s %19.2f %19.2f %7.2fx  %s\n", what, x, y, y / x, unit);
  };
  std::printf("\n%-58s %19s %19s %8s\n", "", "1k", "big", "ratio");
  row("start-up to listening", a.listening_s, b.listening_s, "s");
  row("start-up to /readyz 200", a.ready_s, b.ready_s, "s");
  row("townhall check (full, server stopped)", a.check_s, b.check_s, "s");
  row("townhall backup (online)", a.backup_s, b.backup_s, "s");
  row("backup size", static_cast<double>(a.backup_bytes) / 1e6, static_cast<double>(b.backup_bytes) / 1e6, "MB");
  row("data directory size", static_cast<double>(a.data_bytes) / 1e6, static_cast<double>(b.data_bytes) / 1e6, "MB");
  row("catch-up: notify's notices <- permits from event 0", a.catch_up_s, b.catch_up_s, "s (after ready)");
  std::printf("%-58s %19lld %19lld events: %.0f and %.0f ev/s\n", "  events behind",
              static_cast<long long>(a.catch_up_events), static_cast<long long>(b.catch_up_events),
              static_cast<double>(a.catch_up_events) / a.catch_up_s,
              static_cast<double>(b.catch_up_events) / b.catch_up_s);
  std::printf("check exit codes: 1k %d, big %d (0: caches equal their sources)\n", a.check_exit, b.check_exit);
}

Options parse(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw std::invalid_argument(arg + " needs a value");
      return argv[++i];
    };
    if (arg == "--scale")
      options.scale = std::stod(value());
    else if (arg == "--data-dir")
      options.data_dir = value();
    else if (arg == "--reuse")
      options.reuse = true;
    else if (arg == "--requests")
      options.requests = std::stoi(value());
    else if (arg == "--workers")
      options.workers = std::stoi(value());
    else if (arg == "--deep-cap")
      options.deep_cap = std::stoll(value());
    else if (arg == "--townhall")
      options.townhall = value();
    else
      throw std::invalid_argument("unknown option " + arg);
  }
  return options;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    auto options = parse(argc, argv);
    constexpr double kSmall = 0.001;  // 1k applications
    auto dir_of = [&](double scale) {
      char name[64];
      std::snprintf(name, sizeof name, "scale-%g", scale);
      return options.data_dir / name;
    };
    auto small_dir = dir_of(kSmall), big_dir = dir_of(options.scale);
    auto small = seeded_dir(options, small_dir, kSmall);
    auto big = seeded_dir(options, big_dir, options.scale);
    std::printf("\nseeding rates (rows/s) at scale %g:\n", big.sizes.scale);
    for (const auto& [phase, rate] : big.rates) std::printf("  %-34s %8.0f /s\n", phase.c_str(), rate);
    std::printf("measuring (%d requests per route and round, 3 rounds, one keep-alive connection per server)...\n",
                options.requests);
    std::fflush(stdout);
    Figures small_figures, big_figures;
    small_figures.data_bytes = bytes_under(small_dir);
    big_figures.data_bytes = bytes_under(big_dir);
    {
      Side small_side(options, small_dir, small), big_side(options, big_dir, big);
      small_figures.listening_s = small_side.server.listening_seconds();
      small_figures.ready_s = small_side.server.ready_seconds();
      big_figures.listening_s = big_side.server.listening_seconds();
      big_figures.ready_s = big_side.server.ready_seconds();
      measure_routes(options, small_side, big_side, small_figures, big_figures);
      measure_backup(options, small_dir, small_figures);
      measure_backup(options, big_dir, big_figures);
    }
    measure_offline(options, small_dir, small_figures);
    measure_offline(options, big_dir, big_figures);
    print_table(small, small_figures, big, big_figures);
    return 0;
  } catch (const std::exception& error) {
    std::fprintf(stderr, "scale_bench: %s\n", error.what());
    return 1;
  }
}
