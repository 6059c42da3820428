// Keyset pagination's cursors: what they carry comes back only for the list and owner they
// were sealed for, under the key that sealed them; the key survives a restart.
#include "townhall/platform/page_cursor.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <vector>

#include "support.hpp"

namespace townhall {
namespace {

TEST(PageCursors, ATokenOpensOnlyForItsListAndOwner) {
  auto cursors = PageCursors::random();
  auto token = cursors.seal("parks.bookings", "citizen 7", {"2026-12-05T10:00:00.000Z", 42});
  EXPECT_EQ(token.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
            std::string::npos)
      << "a token goes into a query string as it is";
  auto opened = cursors.open(token, "parks.bookings", "citizen 7");
  ASSERT_TRUE(opened) << opened.error().message;
  EXPECT_EQ(opened->key, "2026-12-05T10:00:00.000Z");
  EXPECT_EQ(opened->id, 42);

  EXPECT_EQ(cursors.open(token, "parks.bookings", "citizen 8").error().code, Errc::invalid_argument);
  EXPECT_EQ(cursors.open(token, "parks.bookings", "all").error().code, Errc::invalid_argument);
  EXPECT_EQ(cursors.open(token, "revenue.invoices", "citizen 7").error().code, Errc::invalid_argument);
  EXPECT_FALSE(PageCursors::random().open(token, "parks.bookings", "citizen 7")) << "another key";
  // (The last character also holds bits no byte uses: those may differ without a change.)
  for (std::size_t at = 0; at + 1 < token.size(); ++at) {
    auto altered = token;
    altered[at] = altered[at] == 'A' ? 'B' : 'A';
    EXPECT_FALSE(cursors.open(altered, "parks.bookings", "citizen 7")) << "altered at " << at;
  }
  EXPECT_FALSE(cursors.open(token.substr(0, token.size() - 1), "parks.bookings", "citizen 7"));
  EXPECT_FALSE(cursors.open(token + "A", "parks.bookings", "citizen 7"));
  for (const std::string& junk :
       std::vector<std::string>{"", "=", "AAAA", "not base64!", std::string(600, 'A'), std::string("\0\1", 2)})
    EXPECT_FALSE(cursors.open(junk, "parks.bookings", "citizen 7")) << junk;
  // A list in id order carries no key.
  auto by_id = cursors.open(cursors.seal("permits.applications", "all", {"", 9}), "permits.applications", "all");
  ASSERT_TRUE(by_id);
  EXPECT_EQ(by_id->key, "");
  EXPECT_EQ(by_id->id, 9);
}

TEST(PageCursors, TheKeyFileIsMadeOnceAndRefusedWhenItIsNotAKey) {
  testing::TempDir dir;
  auto file = dir.path() / "cursor.key";
  auto first = load_or_create_cursor_key(file);
  EXPECT_EQ(std::filesystem::file_size(file), PageCursors::kKeyBytes);
  EXPECT_EQ(std::filesystem::status(file).permissions() & std::filesystem::perms::all,
            std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  EXPECT_EQ(load_or_create_cursor_key(file), first) << "a restart keeps the key, so cursors stay good";
  auto token = PageCursors(first).seal("l", "o", {"", 1});
  EXPECT_TRUE(PageCursors(load_or_create_cursor_key(file)).open(token, "l", "o"));

  std::ofstream(file, std::ios::binary | std::ios::app) << "x";  // 33 bytes
  EXPECT_THROW(load_or_create_cursor_key(file), std::runtime_error);
  std::ofstream(file, std::ios::binary | std::ios::trunc) << "short";
  EXPECT_THROW(load_or_create_cursor_key(file), std::runtime_error);
}

}  // namespace
}  // namespace townhall
