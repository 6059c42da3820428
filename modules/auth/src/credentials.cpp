#include "credentials.hpp"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <map>
#include <mutex>
#include <stdexcept>

namespace townhall::auth {
namespace {

void ensure_sodium() {
  static const bool ready = sodium_init() >= 0;
  if (!ready) throw std::runtime_error("libsodium failed to initialise");
}

std::size_t utf8_length(std::string_view text) {
  std::size_t count = 0;
  for (unsigned char c : text)
    if ((c & 0xC0) != 0x80) ++count;
  return count;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i]))) return false;
  return true;
}

// PasswordCost's default: libsodium's interactive limits (2 passes, 64 MiB) take ~145 ms
// per hash on the 2-core target machine; 3 passes over 32 MiB take ~85 ms, keeping a
// login under ~100 ms while staying above OWASP's minimum (19 MiB, 2 passes).

}  // namespace

std::string hash_password(std::string_view password, PasswordCost cost) {
  ensure_sodium();
  char out[crypto_pwhash_STRBYTES];
  if (crypto_pwhash_str(out, password.data(), password.size(), cost.passes, cost.memory_bytes) != 0)
    throw std::runtime_error("password hashing failed (out of memory)");
  return out;
}

bool verify_password(std::string_view stored_hash, std::string_view password) {
  ensure_sodium();
  std::string hash(stored_hash);  // crypto_pwhash_str_verify needs a NUL-terminated string
  return crypto_pwhash_str_verify(hash.c_str(), password.data(), password.size()) == 0;
}

bool verify_password_of_nobody(std::string_view password, PasswordCost cost) {
  // One reference hash per cost in use (a process uses one or two).
  static std::mutex mutex;
  static std::map<std::pair<unsigned long long, std::size_t>, std::string> nobody_hashes;
  std::string nobody;
  {
    std::lock_guard lock(mutex);
    auto& hash = nobody_hashes[{cost.passes, cost.memory_bytes}];
    if (hash.empty()) hash = hash_password("no account has this password", cost);
    nobody = hash;
  }
  verify_password(nobody, password);
  return false;
}

Result<Unit> check_password_policy(std::string_view password, std::string_view email) {
  if (utf8_length(password) < 10)
    return make_error(Errc::invalid_argument, "password must have at least 10 characters");
  if (password.size() > 256) return make_error(Errc::invalid_argument, "password must be at most 256 bytes");
  if (iequals(password, email)) return make_error(Errc::invalid_argument, "password must not be the email address");
  return Unit{};
}

std::string new_session_token() {
  ensure_sodium();
  unsigned char bytes[32];
  randombytes_buf(bytes, sizeof bytes);
  char out[sodium_base64_ENCODED_LEN(32, sodium_base64_VARIANT_URLSAFE_NO_PADDING)];
  sodium_bin2base64(out, sizeof out, bytes, sizeof bytes, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  return out;
}

std::string token_hash(std::string_view token) {
  unsigned char digest[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(digest, reinterpret_cast<const unsigned char*>(token.data()), token.size());
  char hex[crypto_hash_sha256_BYTES * 2 + 1];
  sodium_bin2hex(hex, sizeof hex, digest, sizeof digest);
  return hex;
}

SecretBox SecretBox::create(const std::filesystem::path& key_file) {
  ensure_sodium();
  std::array<unsigned char, kKeySize> key{};
  randombytes_buf(key.data(), key.size());
  // Exclusively, with mode 0600: never over another key, never readable by others.
  int out = ::open(key_file.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (out < 0) throw std::runtime_error("cannot create key file " + key_file.string() + ": " + std::strerror(errno));
  bool written = ::write(out, key.data(), key.size()) == static_cast<ssize_t>(key.size()) && ::fsync(out) == 0;
  ::close(out);
  if (!written) throw std::runtime_error("cannot write key file " + key_file.string());
  return SecretBox(key);
}

std::optional<SecretBox> SecretBox::load(const std::filesystem::path& key_file) {
  ensure_sodium();
  std::array<unsigned char, kKeySize> key{};
  int fd = ::open(key_file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0 && errno == ENOENT) return std::nullopt;
  if (fd < 0) throw std::runtime_error("cannot read key file " + key_file.string() + ": " + std::strerror(errno));
  struct stat info {};
  bool ok = ::fstat(fd, &info) == 0;
  if (ok && (info.st_mode & 077) != 0) {
    ::close(fd);
    throw std::runtime_error("key file " + key_file.string() + " is readable by group or others; chmod 600 it");
  }
  ok = ok && info.st_size == static_cast<off_t>(kKeySize) &&
       ::read(fd, key.data(), key.size()) == static_cast<ssize_t>(key.size());
  ::close(fd);
  if (!ok)
    throw std::runtime_error("key file " + key_file.string() + " is not a " + std::to_string(kKeySize) + "-byte key");
  return SecretBox(key);
}

SecretBox SecretBox::load_or_create(const std::filesystem::path& key_file) {
  if (auto loaded = load(key_file)) return *loaded;
  return create(key_file);
}

SecretBox::SecretBox(const std::array<unsigned char, kKeySize>& key) : key_(key) {
  static_assert(crypto_kdf_KEYBYTES == kKeySize);
  ensure_sodium();
  crypto_kdf_derive_from_key(lookup_key_.data(), lookup_key_.size(), 1, "THlookup", key_.data());
}

std::string SecretBox::digest(std::string_view value) const {
  std::string out(crypto_generichash_BYTES, '\0');
  crypto_generichash(reinterpret_cast<unsigned char*>(out.data()), out.size(),
                     reinterpret_cast<const unsigned char*>(value.data()), value.size(), lookup_key_.data(),
                     lookup_key_.size());
  return out;
}

std::string SecretBox::check_value() const {
  static_assert(crypto_auth_KEYBYTES == kKeySize);
  std::array<unsigned char, crypto_auth_KEYBYTES> check_key{};
  crypto_kdf_derive_from_key(check_key.data(), check_key.size(), 2, "THkcheck", key_.data());
  static constexpr std::string_view kText = "townhall auth.key check value, version 1";
  std::string out(crypto_auth_BYTES, '\0');
  crypto_auth(reinterpret_cast<unsigned char*>(out.data()), reinterpret_cast<const unsigned char*>(kText.data()),
              kText.size(), check_key.data());
  sodium_memzero(check_key.data(), check_key.size());
  return out;
}

std::string SecretBox::seal(std::string_view plaintext) const {
  std::string out(crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES + plaintext.size(), '\0');
  auto* nonce = reinterpret_cast<unsigned char*>(out.data());
  randombytes_buf(nonce, crypto_secretbox_NONCEBYTES);
  crypto_secretbox_easy(nonce + crypto_secretbox_NONCEBYTES, reinterpret_cast<const unsigned char*>(plaintext.data()),
                        plaintext.size(), nonce, key_.data());
  return out;
}

std::optional<std::string> SecretBox::open(std::string_view sealed) const {
  if (sealed.size() < crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES) return std::nullopt;
  const auto* nonce = reinterpret_cast<const unsigned char*>(sealed.data());
  std::string out(sealed.size() - crypto_secretbox_NONCEBYTES - crypto_secretbox_MACBYTES, '\0');
  if (crypto_secretbox_open_easy(reinterpret_cast<unsigned char*>(out.data()), nonce + crypto_secretbox_NONCEBYTES,
                                 sealed.size() - crypto_secretbox_NONCEBYTES, nonce, key_.data()) != 0)
    return std::nullopt;
  return out;
}

}  // namespace townhall::auth
