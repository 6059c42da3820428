// Who the client is: the networks of trusted proxies, the client's address behind them
// (X-Forwarded-For), and whether it may read /metrics.
#include <algorithm>
#include <array>
#include <boost/asio/ip/address.hpp>
#include <charconv>

#include "townhall/platform/server.hpp"

namespace townhall::http {

namespace asio = boost::asio;

std::optional<Network> parse_network(std::string_view text) {
  auto slash = text.find('/');
  boost::system::error_code ec;
  auto address = asio::ip::make_address(std::string(text.substr(0, slash)), ec);
  if (ec) return std::nullopt;
  Network network;
  network.v4 = address.is_v4();
  const int bits = network.v4 ? 32 : 128;
  network.prefix = bits;
  if (slash != std::string_view::npos) {
    auto digits = text.substr(slash + 1);
    int prefix = -1;
    auto [end, parse_ec] = std::from_chars(digits.data(), digits.data() + digits.size(), prefix);
    if (parse_ec != std::errc() || end != digits.data() + digits.size() || digits.empty() || prefix < 0 ||
        prefix > bits)
      return std::nullopt;
    network.prefix = prefix;
  }
  if (network.v4) {
    auto raw = address.to_v4().to_bytes();
    std::copy(raw.begin(), raw.end(), network.bytes.begin());
  } else {
    network.bytes = address.to_v6().to_bytes();
  }
  return network;
}

bool Network::contains(std::string_view text) const {
  boost::system::error_code ec;
  auto address = asio::ip::make_address(std::string(text), ec);
  if (ec) return false;
  if (address.is_v6() && address.to_v6().is_v4_mapped())
    address = asio::ip::make_address_v4(asio::ip::v4_mapped, address.to_v6());
  if (address.is_v4() != v4) return false;
  std::array<unsigned char, 16> raw{};
  if (v4) {
    auto b = address.to_v4().to_bytes();
    std::copy(b.begin(), b.end(), raw.begin());
  } else {
    raw = address.to_v6().to_bytes();
  }
  int full = prefix / 8, rest = prefix % 8;
  if (!std::equal(raw.begin(), raw.begin() + full, bytes.begin())) return false;
  if (rest == 0) return true;
  unsigned char mask = static_cast<unsigned char>(0xFF << (8 - rest));
  return (raw[static_cast<std::size_t>(full)] & mask) == (bytes[static_cast<std::size_t>(full)] & mask);
}

std::string client_address(std::string_view peer, std::string_view forwarded_for, const std::vector<Network>& trusted) {
  auto is_trusted = [&](std::string_view address) {
    return std::any_of(trusted.begin(), trusted.end(), [&](const Network& n) { return n.contains(address); });
  };
  std::string client(peer);
  if (trusted.empty() || !is_trusted(peer)) return client;
  // Walk X-Forwarded-For from the right: each hop was appended by the one after it.
  std::string_view rest = forwarded_for;
  while (!rest.empty()) {
    auto comma = rest.rfind(',');
    auto entry = comma == std::string_view::npos ? rest : rest.substr(comma + 1);
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(0, comma);
    while (!entry.empty() && (entry.front() == ' ' || entry.front() == '\t')) entry.remove_prefix(1);
    while (!entry.empty() && (entry.back() == ' ' || entry.back() == '\t')) entry.remove_suffix(1);
    boost::system::error_code ec;
    asio::ip::make_address(std::string(entry), ec);
    if (ec) break;  // not an address: nothing further left is trustworthy
    client = std::string(entry);
    if (!is_trusted(entry)) break;
  }
  return client;
}

MetricsAccess metrics_access(const Request& request, std::string_view token) {
  if (!token.empty()) {
    auto authorization = request.header("Authorization");
    constexpr std::string_view kScheme = "Bearer ";
    if (authorization.size() < kScheme.size() || !iequals(authorization.substr(0, kScheme.size()), kScheme))
      return MetricsAccess::needs_token;
    auto presented = authorization.substr(kScheme.size());
    // Constant time in the token's content: a wrong guess tells nothing of how close it was.
    unsigned char differ = presented.size() == token.size() ? 0 : 1;
    for (std::size_t i = 0; i < presented.size() && i < token.size(); ++i)
      differ |= static_cast<unsigned char>(presented[i] ^ token[i]);
    return differ == 0 ? MetricsAccess::allowed : MetricsAccess::needs_token;
  }
  for (auto forwarded : {"X-Forwarded-For", "Forwarded", "X-Real-IP"})
    if (!request.header(forwarded).empty()) return MetricsAccess::refused;
  boost::system::error_code ec;
  auto address = asio::ip::make_address(request.client_ip, ec);
  if (ec) return MetricsAccess::refused;
  if (address.is_v6() && address.to_v6().is_v4_mapped())
    address = asio::ip::make_address_v4(asio::ip::v4_mapped, address.to_v6());
  return address.is_loopback() ? MetricsAccess::allowed : MetricsAccess::refused;
}

}  // namespace townhall::http
