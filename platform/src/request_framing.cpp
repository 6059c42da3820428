#include "request_framing.hpp"

#include <algorithm>
#include <vector>

#include "townhall/platform/http.hpp"

namespace townhall::http {

namespace bhttp = boost::beast::http;

// RFC 9112 §5.2: a field value continued on the next line (obs-fold: CRLF, then SP or
// HTAB) is refused. Beast joins the lines; a proxy in front may read them otherwise (the
// first line alone, or the continuation as a field of its own), which for Content-Length
// or Transfer-Encoding is request smuggling. Searches the header in `pending` (up to its
// empty line) from `scanned` on, and advances `scanned` past what it has searched.
std::optional<FramingProblem> check_obs_fold(std::string_view pending, std::size_t& scanned) {
  for (; scanned + 2 < pending.size(); ++scanned) {
    if (pending[scanned] != '\r' || pending[scanned + 1] != '\n') continue;
    char next = pending[scanned + 2];
    if (next == ' ' || next == '\t')
      return FramingProblem{400, "a header field is folded onto a second line (obsolete line folding)"};
    if (next == '\r') {
      scanned = pending.size();  // the header's empty line: what follows is the body
      break;
    }
  }
  return std::nullopt;
}

// A chunked body's unparsed input is only ever framing: the parser moves chunk data into
// the body as it arrives (body_limit counts it) and waits for a chunk-size line, or for
// the last chunk's line and the trailer section, to be complete. Bound both.
std::optional<FramingProblem> check_chunk_framing(std::string_view pending, std::size_t chunk_line_limit,
                                                  std::size_t trailer_limit) {
  if (pending.size() <= std::min(chunk_line_limit, trailer_limit)) return std::nullopt;
  if (pending.starts_with("\r\n")) pending.remove_prefix(2);  // the previous chunk's end
  auto line_end = pending.find("\r\n");
  if (line_end == std::string_view::npos) {
    if (pending.size() <= chunk_line_limit) return std::nullopt;
    return FramingProblem{
        400, "a chunk-size line (with its extensions) exceeds " + std::to_string(chunk_line_limit) + " bytes"};
  }
  if (line_end > chunk_line_limit)
    return FramingProblem{
        400, "a chunk-size line (with its extensions) exceeds " + std::to_string(chunk_line_limit) + " bytes"};
  // A whole line the parser did not consume is the last chunk's: trailer fields follow.
  if (pending.size() - line_end - 2 <= trailer_limit) return std::nullopt;
  return FramingProblem{431, "the request's trailer section exceeds " + std::to_string(trailer_limit) + " bytes"};
}

// RFC 9112 §6: the only transfer coding this server decodes is a single "chunked". Any
// other list leaves the body's length to interpretation (the root of request smuggling),
// so it is answered and the connection closed before any body byte is read.
std::optional<FramingProblem> check_framing(const bhttp::request_parser<bhttp::string_body>& parser) {
  const auto& message = parser.get();
  std::vector<std::string_view> codings;
  bool any = false;
  for (const auto& field : message) {
    if (field.name() != bhttp::field::transfer_encoding) continue;
    any = true;
    std::string_view list(field.value().data(), field.value().size());
    while (true) {
      auto comma = list.find(',');
      auto item = list.substr(0, comma);
      while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
      while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
      codings.push_back(item);
      if (comma == std::string_view::npos) break;
      list.remove_prefix(comma + 1);
    }
  }
  if (!any) return std::nullopt;
  if (message.version() < 11) return FramingProblem{400, "Transfer-Encoding is not allowed in an HTTP/1.0 request"};
  if (message.find(bhttp::field::content_length) != message.end())
    return FramingProblem{400, "a request must not carry both Transfer-Encoding and Content-Length"};
  if (codings.empty() || !iequals(codings.back(), "chunked"))
    return FramingProblem{400, "Transfer-Encoding must end with 'chunked'"};
  for (std::size_t i = 0; i + 1 < codings.size(); ++i) {
    auto coding = codings[i];
    if (iequals(coding, "chunked")) return FramingProblem{400, "'chunked' may be applied only once"};
    if (iequals(coding, "gzip") || iequals(coding, "x-gzip") || iequals(coding, "deflate") ||
        iequals(coding, "compress") || iequals(coding, "x-compress"))
      return FramingProblem{501, "transfer coding '" + std::string(coding) +
                                     "' is not supported; send the body "
                                     "with 'Transfer-Encoding: chunked' alone"};
    return FramingProblem{400, "unknown transfer coding"};
  }
  return std::nullopt;
}

}  // namespace townhall::http
