#pragma once

// An answer's status line and header section, written out as one buffer and sent with
// the body in one gathered write (instead of Beast's per-field allocations and its
// serializer's buffer-sequence machinery: every request pays for it).
#include <string>
#include <string_view>

#include "townhall/platform/http.hpp"

namespace townhall::http {

struct ResponseFraming {
  unsigned version = 11;    // the request's: 10 or 11
  bool keep_alive = false;  // what the connection does after this answer
  bool head = false;        // answering HEAD: Content-Length is the body's, which is not sent
  std::string_view request_id;
};

// The head of `response`: the status line, Server, Content-Type (not on an empty 204),
// X-Request-Id and the headers every answer carries (no-store, nosniff, CSP,
// no-referrer), which the response's own headers replace by name, then Content-Length
// (not on 1xx, 204 or 304) and Connection as `framing` needs, and the empty line. A
// handler cannot set the framing headers (Content-Length, Transfer-Encoding,
// Connection), and control characters in a header value are dropped, so no value can
// end the header section early.
std::string response_head(const Response& response, const ResponseFraming& framing);

}  // namespace townhall::http
