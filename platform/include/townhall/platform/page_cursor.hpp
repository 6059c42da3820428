#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "townhall/platform/result.hpp"

// Keyset pagination's cursors (issue 24 §1). A list is read in a fixed order of
// (sort key, id); a page ends at its last row, and the next page starts after it. The
// client gets that position as an opaque token: the key and id, authenticated (keyed
// BLAKE2b) together with the list's name and whose view it was, so a cursor altered, or
// made for another list or another caller, is refused instead of read.
namespace townhall {

// Where a page ended: the sort key of its last row ("" for a list ordered by id alone)
// and that row's id.
struct PageAfter {
  std::string key;
  std::int64_t id = 0;
};

class PageCursors {
 public:
  static constexpr std::size_t kKeyBytes = 32;
  using Key = std::array<unsigned char, kKeyBytes>;

  explicit PageCursors(const Key& key) : key_(key) {}
  static PageCursors random();  // a key of its own (tests, tools): its cursors die with it

  // The token for `after` in the list `list` as `owner` sees it (e.g. "citizen 7").
  std::string seal(std::string_view list, std::string_view owner, const PageAfter& after) const;
  // The position a token names; invalid_argument when it is malformed, altered, or was
  // sealed for another list or owner (or under another key).
  Result<PageAfter> open(std::string_view token, std::string_view list, std::string_view owner) const;

 private:
  Key key_;
};

// The owner of a list's view for a scope that is either one citizen's rows or all rows.
inline std::string citizen_view(const std::optional<std::int64_t>& citizen_id) {
  return citizen_id ? "citizen " + std::to_string(*citizen_id) : "all";
}

// The installation's cursor key, kept in `file` (created with 32 random bytes, mode 0600,
// when missing) so cursors stay valid across restarts. Throws when it cannot be read or
// written, or has the wrong size.
PageCursors::Key load_or_create_cursor_key(const std::filesystem::path& file);

}  // namespace townhall
