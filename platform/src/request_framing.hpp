#pragma once

// The checks of a request's framing that Beast's parser leaves to its user (RFC 9112):
// each names what it refuses and the status to answer with.
#include <boost/beast/http.hpp>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace townhall::http {

struct FramingProblem {
  int status;
  std::string detail;
};

// RFC 9112 §5.2: a field value continued on the next line (obs-fold) is refused. Searches
// the header in `pending` (up to its empty line) from `scanned` on, and advances
// `scanned` past what it has searched.
std::optional<FramingProblem> check_obs_fold(std::string_view pending, std::size_t& scanned);

// Bounds a chunked body's unparsed framing: a chunk-size line, and the trailer section.
std::optional<FramingProblem> check_chunk_framing(std::string_view pending, std::size_t chunk_line_limit,
                                                  std::size_t trailer_limit);

// RFC 9112 §6: a single "chunked" is the only transfer coding accepted.
std::optional<FramingProblem> check_framing(
    const boost::beast::http::request_parser<boost::beast::http::string_body>& parser);

}  // namespace townhall::http
