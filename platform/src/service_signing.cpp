#include "townhall/platform/service_signing.hpp"

#include <sodium.h>

#include <charconv>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace townhall::signing {
namespace {

void ensure_sodium() {
  static const bool ready = sodium_init() >= 0;
  if (!ready) throw std::runtime_error("libsodium cannot initialize");
}

std::string hex(const unsigned char* bytes, std::size_t size) {
  std::string out(size * 2 + 1, '\0');
  sodium_bin2hex(out.data(), out.size(), bytes, size);
  out.pop_back();
  return out;
}

std::string body_hash(std::string_view body) {
  std::array<unsigned char, crypto_generichash_BYTES> hash{};
  crypto_generichash(hash.data(), hash.size(), reinterpret_cast<const unsigned char*>(body.data()), body.size(),
                     nullptr, 0);
  return hex(hash.data(), hash.size());
}

// What the tag covers: each part on its own line, so no part can bleed into the next
// (a target cannot contain a newline; the body is only its hash).
std::string message(std::string_view service, std::string_view method, std::string_view target, std::string_view body,
                    std::string_view timestamp, std::string_view nonce) {
  std::string out = "townhall-service-call-v1\n";
  const auto hash = body_hash(body);  // named: a temporary in the list below would die before the loop
  for (std::string_view part : {method, target, std::string_view(hash), timestamp, nonce, service}) {
    out += part;
    out += '\n';
  }
  return out;
}

std::array<unsigned char, crypto_auth_BYTES> tag_of(const Key& key, const std::string& text) {
  std::array<unsigned char, crypto_auth_BYTES> tag{};
  crypto_auth(tag.data(), reinterpret_cast<const unsigned char*>(text.data()), text.size(), key.data());
  return tag;
}

Error refused(std::string message) {
  return make_error(Errc::unauthorized, "service signature: " + std::move(message));
}

}  // namespace

static_assert(kKeyBytes == crypto_auth_KEYBYTES);

Key::~Key() { sodium_memzero(bytes_.data(), bytes_.size()); }

Key load_key(const std::filesystem::path& file) {
  ensure_sodium();
  std::error_code ec;
  auto status = std::filesystem::status(file, ec);
  if (ec || !std::filesystem::is_regular_file(status))
    throw std::runtime_error("service key file " + file.string() + " cannot be read");
  using std::filesystem::perms;
  if ((status.permissions() & (perms::group_all | perms::others_all)) != perms::none)
    throw std::runtime_error("service key file " + file.string() + " is readable by group or others; chmod 600 it");
  std::ifstream in(file, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  if (!in) throw std::runtime_error("service key file " + file.string() + " cannot be read");
  auto contents = text.str();
  while (!contents.empty() && (contents.back() == '\n' || contents.back() == '\r')) contents.pop_back();
  std::array<unsigned char, kKeyBytes> bytes{};
  std::size_t length = 0;
  const char* end = nullptr;
  bool ok = contents.size() == kKeyBytes * 2 &&
            sodium_hex2bin(bytes.data(), bytes.size(), contents.data(), contents.size(), nullptr, &length, &end) == 0 &&
            length == kKeyBytes && end == contents.data() + contents.size();
  sodium_memzero(contents.data(), contents.size());
  if (!ok) throw std::runtime_error("service key file " + file.string() + " must hold 64 hex digits (32 bytes)");
  Key key(bytes);
  sodium_memzero(bytes.data(), bytes.size());
  return key;
}

std::vector<http::Header> sign(const Key& key, std::string_view service, std::string_view method,
                               std::string_view target, std::string_view body,
                               std::chrono::system_clock::time_point now) {
  ensure_sodium();
  auto timestamp = std::to_string(std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count());
  std::array<unsigned char, 16> nonce_bytes{};
  randombytes_buf(nonce_bytes.data(), nonce_bytes.size());
  auto nonce = hex(nonce_bytes.data(), nonce_bytes.size());
  auto tag = tag_of(key, message(service, method, target, body, timestamp, nonce));
  return {{std::string(kServiceHeader), std::string(service)},
          {std::string(kTimestampHeader), timestamp},
          {std::string(kNonceHeader), nonce},
          {std::string(kSignatureHeader), hex(tag.data(), tag.size())}};
}

Verifier::Verifier(std::map<std::string, Key, std::less<>> keys, std::chrono::seconds window)
    : keys_(std::move(keys)), window_(window) {
  ensure_sodium();
}

Result<std::string> Verifier::verify(const http::Request& request, std::chrono::system_clock::time_point now) {
  auto service = request.header(kServiceHeader);
  auto timestamp_text = request.header(kTimestampHeader);
  auto nonce = request.header(kNonceHeader);
  auto signature = request.header(kSignatureHeader);
  if (service.empty() || timestamp_text.empty() || nonce.empty() || signature.empty())
    return refused("missing; a service call carries X-Townhall-Service, -Timestamp, -Nonce and -Signature");
  auto key = keys_.find(service);
  if (key == keys_.end()) return refused("no key for the calling module");
  std::int64_t seconds = 0;
  auto [end, ec] = std::from_chars(timestamp_text.data(), timestamp_text.data() + timestamp_text.size(), seconds);
  if (ec != std::errc() || end != timestamp_text.data() + timestamp_text.size()) return refused("bad timestamp");
  auto signed_at = std::chrono::system_clock::time_point(std::chrono::seconds(seconds));
  if (signed_at < now - window_ || signed_at > now + window_) return refused("timestamp outside the replay window");
  std::array<unsigned char, crypto_auth_BYTES> tag{};
  std::size_t length = 0;
  const char* end_hex = nullptr;
  if (signature.size() != tag.size() * 2 ||
      sodium_hex2bin(tag.data(), tag.size(), signature.data(), signature.size(), nullptr, &length, &end_hex) != 0 ||
      length != tag.size())
    return refused("malformed");
  auto text = message(service, to_string(request.method), request.target, request.body, timestamp_text, nonce);
  if (crypto_auth_verify(tag.data(), reinterpret_cast<const unsigned char*>(text.data()), text.size(),
                         key->second.data()) != 0)
    return refused("does not verify");
  std::lock_guard lock(mutex_);
  while (!seen_by_time_.empty() && seen_by_time_.begin()->first < now - window_) {
    seen_.erase(seen_by_time_.begin()->second);
    seen_by_time_.erase(seen_by_time_.begin());
  }
  auto [_, fresh] = seen_.emplace(signature);
  if (!fresh) return refused("replayed");
  seen_by_time_.emplace(signed_at, std::string(signature));
  return std::string(service);
}

}  // namespace townhall::signing
