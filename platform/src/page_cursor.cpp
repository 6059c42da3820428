#include "townhall/platform/page_cursor.hpp"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <stdexcept>
#include <system_error>

namespace townhall {

namespace {

constexpr std::size_t kMacBytes = 16;
constexpr std::size_t kMaxTokenBytes = 512;

void ensure_sodium() {
  if (sodium_init() < 0) throw std::runtime_error("libsodium cannot initialize");
}

std::array<unsigned char, kMacBytes> mac(const PageCursors::Key& key, std::string_view list, std::string_view owner,
                                         std::string_view body) {
  crypto_generichash_state state;
  crypto_generichash_init(&state, key.data(), key.size(), kMacBytes);
  auto feed = [&](std::string_view part) {
    crypto_generichash_update(&state, reinterpret_cast<const unsigned char*>(part.data()), part.size());
    const unsigned char separator = 0;
    crypto_generichash_update(&state, &separator, 1);
  };
  feed(list);
  feed(owner);
  feed(body);
  std::array<unsigned char, kMacBytes> out{};
  crypto_generichash_final(&state, out.data(), out.size());
  return out;
}

Error refused() {
  return make_error(Errc::invalid_argument,
                    "query parameter 'cursor' is not a cursor of this list: pass the next_cursor of its previous page "
                    "unchanged, or leave it out for the first page");
}

}  // namespace

PageCursors PageCursors::random() {
  ensure_sodium();
  Key key;
  randombytes_buf(key.data(), key.size());
  return PageCursors(key);
}

std::string PageCursors::seal(std::string_view list, std::string_view owner, const PageAfter& after) const {
  std::string raw = std::to_string(after.id) + "\n" + after.key;
  auto tag = mac(key_, list, owner, raw);
  raw.append(reinterpret_cast<const char*>(tag.data()), tag.size());
  std::string token(sodium_base64_ENCODED_LEN(raw.size(), sodium_base64_VARIANT_URLSAFE_NO_PADDING), '\0');
  sodium_bin2base64(token.data(), token.size(), reinterpret_cast<const unsigned char*>(raw.data()), raw.size(),
                    sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  token.resize(token.find('\0'));
  return token;
}

Result<PageAfter> PageCursors::open(std::string_view token, std::string_view list, std::string_view owner) const {
  if (token.empty() || token.size() > kMaxTokenBytes) return refused();
  std::string raw(token.size(), '\0');
  std::size_t length = 0;
  const char* end = nullptr;
  if (sodium_base642bin(reinterpret_cast<unsigned char*>(raw.data()), raw.size(), token.data(), token.size(), nullptr,
                        &length, &end, sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
      end != token.data() + token.size() || length <= kMacBytes)
    return refused();
  raw.resize(length);
  std::string_view body(raw.data(), length - kMacBytes);
  auto expected = mac(key_, list, owner, body);
  if (sodium_memcmp(expected.data(), raw.data() + body.size(), kMacBytes) != 0) return refused();
  auto newline = body.find('\n');
  if (newline == std::string_view::npos) return refused();
  PageAfter after;
  auto [stop, ec] = std::from_chars(body.data(), body.data() + newline, after.id);
  if (ec != std::errc() || stop != body.data() + newline || after.id < 0) return refused();
  after.key = std::string(body.substr(newline + 1));
  return after;
}

PageCursors::Key load_or_create_cursor_key(const std::filesystem::path& file) {
  ensure_sodium();
  PageCursors::Key key;
  int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0 && errno == ENOENT) {
    // First start: a new key, written whole before it is used (O_EXCL: one writer).
    randombytes_buf(key.data(), key.size());
    fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) throw std::system_error(errno, std::generic_category(), "cannot create " + file.string());
    bool written = ::write(fd, key.data(), key.size()) == static_cast<ssize_t>(key.size()) && ::fsync(fd) == 0;
    ::close(fd);
    if (!written) {
      std::filesystem::remove(file);
      throw std::runtime_error("cannot write " + file.string());
    }
    return key;
  }
  if (fd < 0) throw std::system_error(errno, std::generic_category(), "cannot read " + file.string());
  std::array<unsigned char, PageCursors::kKeyBytes + 1> buffer{};  // one more: a longer file is refused
  auto read = ::read(fd, buffer.data(), buffer.size());
  ::close(fd);
  if (read != static_cast<ssize_t>(key.size()))
    throw std::runtime_error(file.string() + " is not a cursor key (32 bytes); remove it to make a new one");
  std::copy_n(buffer.begin(), key.size(), key.begin());
  return key;
}

}  // namespace townhall
