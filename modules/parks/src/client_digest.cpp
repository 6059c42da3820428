#include "client_digest.hpp"

#include <sodium.h>

#include <boost/asio/ip/address.hpp>
#include <stdexcept>

namespace townhall::parks {
namespace {

void ensure_sodium() {
  static const bool ready = sodium_init() >= 0;
  if (!ready) throw std::runtime_error("libsodium failed to initialise");
}

// What one client is: "4:" and the IPv4 bytes, "6:" and the IPv6 /64, or the text.
std::string canonical_client(std::string_view address) {
  boost::system::error_code ec;
  auto parsed = boost::asio::ip::make_address(std::string(address), ec);
  if (ec) return "?:" + std::string(address);
  if (parsed.is_v6() && parsed.to_v6().is_v4_mapped())
    parsed = boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped, parsed.to_v6());
  if (parsed.is_v4()) {
    auto bytes = parsed.to_v4().to_bytes();
    return "4:" + std::string(bytes.begin(), bytes.end());
  }
  auto bytes = parsed.to_v6().to_bytes();
  return "6:" + std::string(bytes.begin(), bytes.begin() + 8);
}

}  // namespace

std::string new_client_digest_key() {
  ensure_sodium();
  std::string key(kClientDigestKeyBytes, '\0');
  randombytes_buf(key.data(), key.size());
  return key;
}

std::string client_digest(std::string_view key, std::string_view address) {
  ensure_sodium();
  if (key.size() != kClientDigestKeyBytes) throw std::invalid_argument("client digest key of the wrong size");
  auto client = canonical_client(address);
  unsigned char digest[16];
  crypto_generichash(digest, sizeof digest, reinterpret_cast<const unsigned char*>(client.data()), client.size(),
                     reinterpret_cast<const unsigned char*>(key.data()), key.size());
  char hex[sizeof digest * 2 + 1];
  sodium_bin2hex(hex, sizeof hex, digest, sizeof digest);
  return hex;
}

}  // namespace townhall::parks
