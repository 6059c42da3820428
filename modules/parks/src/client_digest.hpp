#pragma once

#include <string>
#include <string_view>

// The client a priced hold was made from, as parks keeps it (issue 28 §4): a keyed
// BLAKE2b digest, never the address, so the unpaid holds of one client can be counted.
namespace townhall::parks {

inline constexpr std::size_t kClientDigestKeyBytes = 32;

// A fresh key (libsodium's randombytes). Throws std::runtime_error when libsodium cannot
// initialise.
std::string new_client_digest_key();

// Hex digest of the client at `address` under `key` (kClientDigestKeyBytes). An IPv6
// client counts by its /64 (one subscriber's network: its own addresses are free to
// it), an IPv4-mapped one as the IPv4 address; text that is no address is digested as it
// is (unit tests, a connection whose peer was unknown).
std::string client_digest(std::string_view key, std::string_view address);

}  // namespace townhall::parks
