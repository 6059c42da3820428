#pragma once

// Seeding a municipality for the scale benchmark through the real server's routes, so
// every row goes through its module's command on the write path (group commit), with
// the events, caches and sagas a real municipality has.
#include <cstdint>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace townhall::bench {

// How much of each a municipality holds; sizes_at(1.0) is issue 24's municipality.
struct Sizes {
  double scale = 1.0;
  std::int64_t citizens = 0;
  std::int64_t applications = 0;  // one in five with a fee: its invoice is opened and paid
  std::int64_t bookings = 0;
  std::int64_t tax_records = 0;
  std::int64_t facilities = 50;
  std::int64_t departments = 5;
  // Citizens who log in and act (verified): a tenth, so a citizen's own lists hold the
  // same number of rows at every scale.
  std::int64_t active() const { return std::max<std::int64_t>(10, citizens / 10); }
  std::int64_t invoices() const { return (applications + 4) / 5; }
};
Sizes sizes_at(double scale);

// What a seeded data directory holds besides the module files: its sizes, the ids its
// routes are measured with, and the seeding rates (bench-scale-seed.json).
struct Seeded {
  Sizes sizes;
  std::map<std::string, std::int64_t> ids;  // "citizen", "application", "invoice", "payment", ...
  std::map<std::string, double> rates;      // per seeding phase, rows per second
  nlohmann::json to_json() const;
  static Seeded from_json(const nlohmann::json& json);
};

constexpr const char* kPassword = "a long enough password";
constexpr const char* kSeedFile = "bench-scale-seed.json";
constexpr const char* kConfigFile = "bench-scale-config.json";
std::string citizen_email(std::int64_t index);
std::string department_code(std::int64_t index);  // D1..D5
inline const char* kAdmin = "admin@scale.test";
inline const char* kClerk = "clerk@scale.test";
inline const char* kParks = "parks@scale.test";
std::string reviewer_email(std::int64_t department);

// Writes the registry the benchmark serves with into `data_dir` (no rate limit, the
// cheapest password hash, caps raised so one citizen can hold many bookings).
std::filesystem::path write_config(const std::filesystem::path& data_dir, const std::filesystem::path& registry);

// Runs `townhall` with `args` (plus --config/--data-dir) to completion; its exit code and output.
std::pair<int, std::string> run_cli(const std::string& townhall, std::vector<std::string> args,
                                    const std::filesystem::path& data_dir);

// Creates `data_dir` and seeds `sizes` into it through a `townhall serve` it starts and
// stops; `workers` concurrent keep-alive clients. Prints each phase's rate.
Seeded seed(const std::string& townhall, const std::filesystem::path& data_dir, const std::filesystem::path& registry,
            const Sizes& sizes, int workers);

}  // namespace townhall::bench
