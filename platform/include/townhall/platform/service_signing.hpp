#pragma once

// Signed service calls between modules over HTTP (DESIGN.md §9, README "Internal API"):
// a module calling another as itself signs the request with its own key (libsodium
// crypto_auth, HMAC-SHA-512-256) over the method, the target, a BLAKE2b hash of the body,
// a timestamp, a nonce and its name; the receiving listener holds every calling module's
// key and refuses a forged signature, a timestamp outside its window and a signature it
// has already seen within the window (a replay).
#include <array>
#include <chrono>
#include <cstddef>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "townhall/platform/http.hpp"
#include "townhall/platform/result.hpp"

namespace townhall::signing {

inline constexpr std::size_t kKeyBytes = 32;  // crypto_auth_KEYBYTES

inline constexpr std::string_view kServiceHeader = "X-Townhall-Service";
inline constexpr std::string_view kTimestampHeader = "X-Townhall-Timestamp";
inline constexpr std::string_view kNonceHeader = "X-Townhall-Nonce";
inline constexpr std::string_view kSignatureHeader = "X-Townhall-Signature";

// A module's signing key. Has no text form: it is never logged or printed.
class Key {
 public:
  Key() = default;
  explicit Key(const std::array<unsigned char, kKeyBytes>& bytes) : bytes_(bytes) {}
  ~Key();
  Key(const Key&) = default;
  Key& operator=(const Key&) = default;
  const unsigned char* data() const { return bytes_.data(); }

 private:
  std::array<unsigned char, kKeyBytes> bytes_{};
};

// Reads a key file: 64 hex digits (a trailing newline allowed), readable by its owner
// only. Throws std::runtime_error naming the file (never its contents) otherwise.
// `openssl rand -hex 32 > F && chmod 600 F` makes one.
Key load_key(const std::filesystem::path& file);

// The headers that sign a request `service` sends: `method` ("POST"), `target` (path and
// query as sent), `body` as sent, at `now`.
std::vector<http::Header> sign(const Key& key, std::string_view service, std::string_view method,
                               std::string_view target, std::string_view body,
                               std::chrono::system_clock::time_point now = std::chrono::system_clock::now());

// What a listener verifies a signed request with: the key of each module that may call it.
class Verifier {
 public:
  Verifier(std::map<std::string, Key, std::less<>> keys, std::chrono::seconds window);

  // The calling module when `request` carries a valid signature by its key, timestamped
  // within ±window of `now` and not seen before; unauthorized otherwise (the message says
  // which check failed, never a key or a tag).
  Result<std::string> verify(const http::Request& request,
                             std::chrono::system_clock::time_point now = std::chrono::system_clock::now());

  // Whether the request claims to be a signed service call (it names a service).
  static bool claims_service(const http::Request& request) { return !request.header(kServiceHeader).empty(); }

  std::chrono::seconds window() const { return window_; }

 private:
  std::map<std::string, Key, std::less<>> keys_;
  std::chrono::seconds window_;
  std::mutex mutex_;
  // Tags accepted, until their timestamp leaves the window (then a replay is refused by
  // the timestamp check instead).
  std::set<std::string, std::less<>> seen_;
  std::multimap<std::chrono::system_clock::time_point, std::string> seen_by_time_;
};

}  // namespace townhall::signing
