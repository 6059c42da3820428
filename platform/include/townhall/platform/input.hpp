#pragma once

#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "townhall/platform/result.hpp"

namespace townhall::http {
struct Request;
}

// Strict reading of client input (request bodies, path and query parameters). Every
// problem is an Error (invalid_argument) naming the field, never an exception.
namespace townhall::input {

struct TextLimits {
  std::size_t max_bytes = 200;
  std::size_t min_chars = 1;  // code points, after ignoring surrounding blanks
  bool multiline = false;     // allow \n and \t (descriptions, notes)
};

// A JSON request body: an object (at most 32 levels deep) with only the fields it is
// allowed to have. The accessors check type and limits; the first problem met is kept
// and returned by status(), so a handler reads every field and then checks once.
class Body {
 public:
  static Result<Body> parse(std::string_view text, std::initializer_list<std::string_view> allowed_fields);
  // parse, keeping a body that is not acceptable (malformed, an unknown field) as the
  // first problem: its fields then read as absent and status() answers that problem.
  static Body read(std::string_view text, std::initializer_list<std::string_view> allowed_fields);
  ~Body();
  Body(Body&&) noexcept;
  Body& operator=(Body&&) noexcept;

  bool has(std::string_view field) const;
  std::string required_string(std::string_view field, TextLimits limits);
  std::optional<std::string> optional_string(std::string_view field, TextLimits limits);
  // Absent: nullopt. null: an engaged optional holding nullopt (clear the field).
  std::optional<std::optional<std::string>> nullable_string(std::string_view field, TextLimits limits);
  std::optional<bool> optional_bool(std::string_view field);
  std::int64_t required_int(std::string_view field, std::int64_t min, std::int64_t max);
  std::optional<std::int64_t> optional_int(std::string_view field, std::int64_t min, std::int64_t max);
  std::vector<std::string> required_string_array(std::string_view field, std::size_t max_items, TextLimits limits);
  // An array of at most `max_items` ids (positive 64-bit integers); nullopt when absent.
  std::optional<std::vector<std::int64_t>> optional_id_array(std::string_view field, std::size_t max_items);
  // A nested object with only `allowed_fields`; its fields' problems ("method.token ...")
  // are this body's. Must not outlive this body.
  Body required_object(std::string_view field, std::initializer_list<std::string_view> allowed_fields);

  // invalid_argument with the first problem, or Unit.
  Result<Unit> status() const;
  void fail(std::string_view field, std::string_view message);

 private:
  struct Impl;
  explicit Body(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Checks a client string: valid UTF-8, no control characters (but \n \t when
// multiline), within the limits. Returns the problem, or nullopt when acceptable.
std::optional<std::string> check_text(std::string_view text, TextLimits limits);

// A positive 64-bit id from a path segment; not_found otherwise (an id that cannot exist
// names nothing).
Result<std::int64_t> parse_id(std::string_view text);

// A list's page as the client asks for it (keyset pagination, page_cursor.hpp).
struct Page {
  int size = 20;
  std::string cursor;       // the previous page's next_cursor as sent; empty: the first page
  bool with_total = false;  // ?include=total: count the whole list too (costs a scan of it)
};
// One page of a list: its rows, where the next page starts (none on the last page), and
// the size of the whole list when it was asked for.
template <class T>
struct Listed {
  std::vector<T> items;
  std::optional<std::string> next_cursor;
  std::optional<std::int64_t> total;
  int page_size = 0;
};

// ?page_size= (1 ≤ page_size ≤ max_size), ?cursor= (at most 512 characters) and
// ?include=total; ?page= (page numbers, before cursors) is refused saying what replaced it.
Result<Page> parse_page(const http::Request& request, int default_size = 20, int max_size = 100);

// The route's {id} path parameter; not_found with `no_such` ("no such permit") when it
// cannot name one.
Result<std::int64_t> path_id(const http::Request& request, std::string_view no_such);

// An optional query parameter that must be one of `allowed`: nullopt when absent,
// invalid_argument "query parameter 'status' must be open, paid or voided" otherwise.
Result<std::optional<std::string>> query_choice(const http::Request& request, std::string_view name,
                                                std::initializer_list<std::string_view> allowed);
// An optional query parameter naming an id: nullopt when absent, invalid_argument
// "query parameter 'citizen_id' must be an id" when it is not one.
Result<std::optional<std::int64_t>> query_id(const http::Request& request, std::string_view name);

// A route that takes no body: empty or "{}"; invalid_argument "<what> takes no body"
// ("a renewal") otherwise.
Result<Unit> no_body(const http::Request& request, std::string_view what);

// A reviewer's decision body, {"decision": "approve"|"reject", "reason"}: a reason
// within `reason_limits`, required to reject.
struct DecisionInput {
  bool approve = false;
  std::optional<std::string> reason;
};
Result<DecisionInput> parse_decision(std::string_view body_text, TextLimits reason_limits);

// The form an email address is stored, compared and logged in with: case-folded and
// NFKC-normalised (so lookalikes such as a fullwidth 'ｍ' or the Kelvin sign name the
// same account as 'm' and 'k'), trimmed, if it looks like an address (local@domain.tld,
// ≤ 254 bytes, no spaces, controls or invisible characters); invalid_argument otherwise.
Result<std::string> normalize_email(std::string_view text);

// What a client-supplied time may be, beyond a valid RFC 3339 date-time.
struct TimeRules {
  bool not_past = false;                    // must not be before now
  std::chrono::hours max_ahead{24 * 3660};  // at most this far after now (~10 years)
};
// An RFC 3339 time from field `field` (utc::parse_rfc3339), within `rules` relative to
// `now`; invalid_argument naming the field and what is wrong.
Result<std::chrono::system_clock::time_point> parse_time(
    std::string_view field, std::string_view text, TimeRules rules = {},
    std::chrono::system_clock::time_point now = std::chrono::system_clock::now());

}  // namespace townhall::input
