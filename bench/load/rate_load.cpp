// A fixed-rate load, open loop: each of --connections threads sends on its own schedule
// (rate / connections per second) on one keep-alive connection, and a request's latency
// counts from when it was due, not from when it went out, so a server that falls behind
// is not hidden by a client that waits for it (coordinated omission). wrk cannot hold a
// rate; wrk2 is not packaged. Two mixes:
//   patch: a citizen changing their own phone number (PATCH /auth/citizens/{id}; issue
//          23's bench-split, bench-patch's fixed rate)
//   soak:  bench/soak/mixed.lua's mix: per 10 requests 2 permit applications submitted,
//          4 first pages of the citizen's applications, 2 /auth/me, 2 facility lists
//
// usage: rate_load --port P --token T [--mix patch|soak] [--id CITIZEN (patch)]
//                  --rate PER_SECOND --seconds S [--connections C]
// Prints the rate achieved, the answers' p50/p99/max and the count of answers that were
// not 2xx; exits 1 when there was any or the rate fell more than 5 % short.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "scale/client.hpp"

namespace {

using Clock = std::chrono::steady_clock;

struct Options {
  unsigned short port = 0;
  std::string token;
  std::string mix = "patch";
  std::string id;
  double rate = 1000;
  int seconds = 10;
  int connections = 8;
};

[[noreturn]] void usage(const char* why) {
  std::fprintf(stderr,
               "rate_load: %s\nusage: rate_load --port P --token T [--mix patch|soak] [--id CITIZEN] "
               "--rate PER_SECOND --seconds S [--connections C]\n",
               why);
  std::exit(2);
}

Options parse(int argc, char** argv) {
  std::map<std::string, std::string> values;
  for (int i = 1; i < argc; ++i) {
    std::string name = argv[i];
    if (!name.starts_with("--") || i + 1 == argc) usage(("bad argument " + name).c_str());
    values[name.substr(2)] = argv[++i];
  }
  Options options;
  try {
    for (const auto& [name, value] : values) {
      if (name == "port")
        options.port = static_cast<unsigned short>(std::stoi(value));
      else if (name == "token")
        options.token = value;
      else if (name == "id")
        options.id = value;
      else if (name == "mix")
        options.mix = value;
      else if (name == "rate")
        options.rate = std::stod(value);
      else if (name == "seconds")
        options.seconds = std::stoi(value);
      else if (name == "connections")
        options.connections = std::stoi(value);
      else
        usage(("unknown option --" + name).c_str());
    }
  } catch (const std::exception&) {
    usage("a number is not one");
  }
  if (options.mix != "patch" && options.mix != "soak") usage("--mix is patch or soak");
  if (options.port == 0 || options.token.empty()) usage("--port and --token are needed");
  if (options.mix == "patch" && options.id.empty()) usage("--mix patch needs --id");
  if (options.rate <= 0 || options.seconds <= 0 || options.connections <= 0) usage("rate, seconds, connections > 0");
  return options;
}

// The request `n` of connection `c` sends: its method, target and body.
struct Request {
  const char* method;
  std::string target;
  std::string body;
};

Request next_request(const Options& options, int c, std::size_t n) {
  if (options.mix == "patch") {
    char body[64];
    std::snprintf(body, sizeof body, R"({"phone":"+1 555 %02d%05zu"})", c, n % 100000);
    return {"PATCH", "/api/v1/auth/citizens/" + options.id, body};
  }
  switch (n % 10) {  // bench/soak/mixed.lua's mix
    case 0:
    case 1:
      return {"POST", "/api/v1/permits/applications",
              R"({"permit_type":"fence","description":"Soak fence","property_address":"1 Load Street",)"
              R"("department_code":"BLD"})"};
    case 2:
    case 3:
    case 4:
    case 5: return {"GET", "/api/v1/permits/applications?page_size=5", {}};
    case 6:
    case 7: return {"GET", "/api/v1/auth/me", {}};
    default: return {"GET", "/api/v1/parks/facilities", {}};
  }
}

}  // namespace

int main(int argc, char** argv) {
  auto options = parse(argc, argv);
  const auto period =
      std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(options.connections / options.rate));
  const auto start = Clock::now() + std::chrono::milliseconds(100);
  const auto end = start + std::chrono::seconds(options.seconds);

  std::mutex mutex;
  std::vector<double> latencies_ms;
  long failures = 0;
  std::vector<std::thread> threads;
  for (int c = 0; c < options.connections; ++c)
    threads.emplace_back([&, c] {
      townhall::bench::Client client(options.port);
      std::vector<double> mine;
      long failed = 0;
      // Connections start spread over one period, so the load is even, not in bursts.
      for (auto due = start + period * c / options.connections; due < end; due += period) {
        std::this_thread::sleep_until(due);
        auto request = next_request(options, c, mine.size());
        try {
          auto reply = client.request(request.method, request.target, request.body, options.token);
          if (reply.status / 100 != 2) ++failed;
        } catch (const std::exception&) {
          ++failed;
        }
        mine.push_back(std::chrono::duration<double, std::milli>(Clock::now() - due).count());
      }
      std::lock_guard lock(mutex);
      latencies_ms.insert(latencies_ms.end(), mine.begin(), mine.end());
      failures += failed;
    });
  for (auto& thread : threads) thread.join();
  auto elapsed = std::chrono::duration<double>(Clock::now() - start).count();

  std::sort(latencies_ms.begin(), latencies_ms.end());
  auto at = [&](double q) {
    return latencies_ms.empty()
               ? 0.0
               : latencies_ms[std::min(latencies_ms.size() - 1, static_cast<std::size_t>(q * latencies_ms.size()))];
  };
  double achieved = latencies_ms.size() / elapsed;
  std::printf("rate_load: %zu requests (%s) in %.1f s: %.0f/s (asked %.0f/s) over %d connections\n",
              latencies_ms.size(), options.mix.c_str(), elapsed, achieved, options.rate, options.connections);
  std::printf("rate_load: answered p50 %.2f ms, p99 %.2f ms, max %.2f ms (from when each was due); non-2xx %ld\n",
              at(0.5), at(0.99), latencies_ms.empty() ? 0.0 : latencies_ms.back(), failures);
  return failures == 0 && achieved >= 0.95 * options.rate ? 0 : 1;
}
