#pragma once

#include <array>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "townhall/platform/result.hpp"

// Credential primitives of the auth module (libsodium): password hashing, session
// tokens, and the secret box that keeps national ids encrypted at rest.
namespace townhall::auth {

// Argon2id cost. The default, 3 passes over 32 MiB, takes ~85 ms here (see the .cpp);
// tests lower it through the module's settings. Each hash records its own cost, so a
// change still verifies old hashes.
struct PasswordCost {
  unsigned long long passes = 3;
  std::size_t memory_bytes = 32u * 1024 * 1024;
};

// Argon2id (crypto_pwhash_str). Throws on failure (out of memory), never returns an
// empty hash.
std::string hash_password(std::string_view password, PasswordCost cost = {});
bool verify_password(std::string_view stored_hash, std::string_view password);
// Spends the same time as verify_password against a real hash of `cost` and returns
// false: used for unknown accounts, so a login does not reveal whether the email exists.
bool verify_password_of_nobody(std::string_view password, PasswordCost cost = {});

// The password policy: at least 10 characters (code points), at most 256 bytes, not the
// email address. An Error (invalid_argument) says which rule failed.
Result<Unit> check_password_policy(std::string_view password, std::string_view email);

// A new session token: 256 random bits, base64url without padding (43 characters).
std::string new_session_token();
// What is stored for a token: its SHA-256, hex. Tokens themselves are never stored.
std::string token_hash(std::string_view token);

// XSalsa20-Poly1305 (crypto_secretbox) with a key kept in a file of mode 0600.
class SecretBox {
 public:
  static constexpr std::size_t kKeySize = 32;

  // Reads the key file; nullopt when it does not exist. Refuses a key file that others
  // can read or that has the wrong size. Throws std::runtime_error.
  static std::optional<SecretBox> load(const std::filesystem::path& key_file);
  // Creates the key file (mode 0600, 32 random bytes, exclusively: never over an
  // existing one). Throws std::runtime_error.
  static SecretBox create(const std::filesystem::path& key_file);
  // Reads the key file, or creates it when absent (tests and tools with no sealed data).
  static SecretBox load_or_create(const std::filesystem::path& key_file);
  // Also derives the lookup key (crypto_kdf, a subkey of the same file's key).
  explicit SecretBox(const std::array<unsigned char, kKeySize>& key);

  // nonce || ciphertext, as bytes in a string.
  std::string seal(std::string_view plaintext) const;
  // nullopt when the box was tampered with or sealed with another key.
  std::optional<std::string> open(std::string_view sealed) const;
  // A keyed BLAKE2b digest (32 bytes) of `value` under the lookup key: equal values give
  // equal digests, so uniqueness is checked without the plain value, and without the
  // key a digest cannot be tested against guesses.
  std::string digest(std::string_view value) const;
  // The key check value: a MAC (crypto_auth under a third subkey) of a fixed text,
  // stored beside the sealed rows so that a key that is not theirs is found at start,
  // before anything is sealed with it or read through it. Reveals nothing of the key.
  std::string check_value() const;

 private:
  std::array<unsigned char, kKeySize> key_;
  std::array<unsigned char, kKeySize> lookup_key_{};
};

}  // namespace townhall::auth
