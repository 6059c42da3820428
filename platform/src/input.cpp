#include "townhall/platform/input.hpp"

#include <unicase.h>
#include <unictype.h>
#include <uninorm.h>

#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>

#include "townhall/platform/http.hpp"
#include "townhall/platform/time.hpp"

namespace townhall::input {
namespace {

using json = nlohmann::json;
constexpr int kMaxDepth = 32;

std::string field_error(std::string_view field, std::string_view message) {
  return "field '" + std::string(field) + "': " + std::string(message);
}

// Calls visit(code point) for each code point; false when `text` is not valid UTF-8
// (overlongs, surrogates and values past U+10FFFF included) or visit returns false.
template <class Visit>
bool for_each_code_point(std::string_view text, Visit&& visit) {
  std::size_t i = 0;
  while (i < text.size()) {
    auto byte = static_cast<unsigned char>(text[i]);
    std::size_t extra = 0;
    std::uint32_t code = 0;
    if (byte < 0x80) {
      code = byte;
    } else if ((byte & 0xE0) == 0xC0) {
      extra = 1, code = byte & 0x1F;
    } else if ((byte & 0xF0) == 0xE0) {
      extra = 2, code = byte & 0x0F;
    } else if ((byte & 0xF8) == 0xF0) {
      extra = 3, code = byte & 0x07;
    } else {
      return false;
    }
    if (i + extra >= text.size() && extra > 0) return false;
    for (std::size_t k = 1; k <= extra; ++k) {
      auto next = static_cast<unsigned char>(text[i + k]);
      if ((next & 0xC0) != 0x80) return false;
      code = (code << 6) | (next & 0x3F);
    }
    if ((extra == 1 && code < 0x80) || (extra == 2 && code < 0x800) || (extra == 3 && code < 0x10000) ||
        code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF))
      return false;
    if (!visit(code)) return false;
    i += extra + 1;
  }
  return true;
}

// Counts code points; -1 when `text` is not valid UTF-8.
long utf8_length(std::string_view text) {
  long count = 0;
  return for_each_code_point(text, [&](std::uint32_t) { return ++count, true; }) ? count : -1;
}

// Invisible characters that change how text reads without being seen: the format
// characters (general category Cf: bidi embeddings, overrides and isolates, zero-width
// space, word joiner, BOM, tag characters...), per libunistring's Unicode tables.
// ZWNJ and ZWJ stay allowed: Persian, Indic scripts and emoji sequences need them.
bool is_invisible_format(std::uint32_t code) {
  if (code == 0x200C || code == 0x200D) return false;
  return uc_is_general_category(code, UC_CATEGORY_Cf);
}

std::string hex_code(std::uint32_t code) {
  char buffer[16];
  std::snprintf(buffer, sizeof buffer, "%04X", static_cast<unsigned>(code));
  return buffer;
}

bool is_blank(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

std::string_view trim(std::string_view text) {
  while (!text.empty() && is_blank(text.front())) text.remove_prefix(1);
  while (!text.empty() && is_blank(text.back())) text.remove_suffix(1);
  return text;
}

// nlohmann's parse_error text is "[json.exception.parse_error.101] parse error at line
// 1, column 5: syntax error while parsing value - invalid literal; last read: 'tru'".
// The part after the bracket says where and what was expected; the bracket names the
// library and goes.
std::string describe_parse_error(std::string_view what) {
  auto bracket = what.find("] ");
  if (what.starts_with("[json.exception.") && bracket != std::string_view::npos) what.remove_prefix(bracket + 2);
  std::string out(what.substr(0, 300));
  // "last read" echoes input: keep it printable.
  for (auto& c : out)
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7F) c = '?';
  return out;
}

}  // namespace

std::optional<std::string> check_text(std::string_view text, TextLimits limits) {
  if (text.size() > limits.max_bytes) return "must be at most " + std::to_string(limits.max_bytes) + " bytes";
  std::optional<std::string> problem;
  bool valid = for_each_code_point(text, [&](std::uint32_t code) {
    bool allowed_control = limits.multiline && (code == '\n' || code == '\t' || code == '\r');
    if ((code < 0x20 || (code >= 0x7F && code <= 0x9F)) && !allowed_control)
      problem = "must not contain control characters";
    else if (is_invisible_format(code))
      problem = "must not contain invisible formatting characters such as bidirectional overrides (found U+" +
                hex_code(code) + ")";
    return !problem;
  });
  if (problem) return problem;
  if (!valid) return "must be valid UTF-8";
  if (static_cast<std::size_t>(utf8_length(trim(text))) < limits.min_chars)
    return limits.min_chars == 1 ? std::string("must not be empty")
                                 : "must be at least " + std::to_string(limits.min_chars) + " characters";
  return std::nullopt;
}

struct Body::Impl {
  json document;
  std::optional<std::string> first_error;
  std::string prefix;    // "method." for a nested object's fields
  Impl* root = nullptr;  // a nested object's problems are its body's
};

Body::Body(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Body::~Body() = default;
Body::Body(Body&&) noexcept = default;
Body& Body::operator=(Body&&) noexcept = default;

Result<Body> Body::parse(std::string_view text, std::initializer_list<std::string_view> allowed_fields) {
  auto impl = std::make_unique<Impl>();
  bool too_deep = false;
  std::optional<std::string> duplicate;
  // The keys of each open object, to refuse {"a":1,"a":2}: which one counts would be
  // the parser's choice, and a proxy in front may choose the other.
  std::vector<std::set<std::string, std::less<>>> open_objects;
  json::parser_callback_t check = [&](int depth, json::parse_event_t event, json& parsed) {
    if (depth > kMaxDepth) too_deep = true;
    if (too_deep || duplicate) return false;
    switch (event) {
      case json::parse_event_t::object_start: open_objects.emplace_back(); break;
      case json::parse_event_t::object_end:
        if (!open_objects.empty()) open_objects.pop_back();
        break;
      case json::parse_event_t::key:
        if (!open_objects.empty() && !open_objects.back().insert(parsed.get<std::string>()).second)
          duplicate = parsed.get<std::string>();
        break;
      default: break;
    }
    return !duplicate;
  };
  try {
    impl->document = json::parse(text.begin(), text.end(), check);
  } catch (const json::parse_error& error) {
    return make_error(Errc::invalid_argument, "malformed JSON: " + describe_parse_error(error.what()));
  } catch (const json::out_of_range&) {  // a number like 1e400
    return make_error(Errc::invalid_argument, "malformed JSON: a number is too large");
  } catch (const json::exception&) {
    return make_error(Errc::invalid_argument, "malformed JSON");
  }
  if (too_deep) return make_error(Errc::invalid_argument, "JSON nested too deeply");
  if (duplicate) {
    auto shown = duplicate->size() > 64 ? duplicate->substr(0, 64) + "..." : *duplicate;
    if (auto problem = check_text(shown, {.max_bytes = 256, .min_chars = 0})) shown = "(unprintable)";
    return make_error(Errc::invalid_argument, "duplicate field '" + shown + "' in a JSON object");
  }
  if (!impl->document.is_object()) return make_error(Errc::invalid_argument, "the body must be a JSON object");
  for (const auto& [key, value] : impl->document.items()) {
    bool known = false;
    for (auto allowed : allowed_fields) known = known || key == allowed;
    if (!known) {
      auto shown = key.size() > 64 ? key.substr(0, 64) + "..." : key;
      return make_error(Errc::invalid_argument, "unknown field '" + shown + "'");
    }
  }
  return Body(std::move(impl));
}

Body Body::read(std::string_view text, std::initializer_list<std::string_view> allowed_fields) {
  auto parsed = parse(text, allowed_fields);
  if (parsed) return std::move(parsed).value();
  auto impl = std::make_unique<Impl>();
  impl->document = json::object();
  impl->first_error = parsed.error().message;
  return Body(std::move(impl));
}

bool Body::has(std::string_view field) const { return impl_->document.contains(field); }

void Body::fail(std::string_view field, std::string_view message) {
  auto& first = (impl_->root ? impl_->root : impl_.get())->first_error;
  if (!first) first = field_error(impl_->prefix + std::string(field), message);
}

Body Body::required_object(std::string_view field, std::initializer_list<std::string_view> allowed_fields) {
  auto nested = std::make_unique<Impl>();
  nested->document = json::object();
  nested->prefix = impl_->prefix + std::string(field) + ".";
  nested->root = impl_->root ? impl_->root : impl_.get();
  auto it = impl_->document.find(field);
  if (it == impl_->document.end()) {
    fail(field, "is required");
  } else if (!it->is_object()) {
    fail(field, "must be an object");
  } else {
    nested->document = *it;
    for (const auto& [key, value] : it->items()) {
      bool known = false;
      for (auto allowed : allowed_fields) known = known || key == allowed;
      if (!known) {
        auto shown = key.size() > 64 ? key.substr(0, 64) + "..." : key;
        if (check_text(shown, {.max_bytes = 256, .min_chars = 0})) shown = "(unprintable)";
        fail(field, "has an unknown field '" + shown + "'");
        break;
      }
    }
  }
  return Body(std::move(nested));
}

Result<Unit> Body::status() const {
  const auto& first = (impl_->root ? impl_->root : impl_.get())->first_error;
  if (first) return make_error(Errc::invalid_argument, *first);
  return Unit{};
}

std::string Body::required_string(std::string_view field, TextLimits limits) {
  if (!has(field)) {
    fail(field, "is required");
    return {};
  }
  auto value = optional_string(field, limits);
  return value.value_or(std::string());
}

std::optional<std::string> Body::optional_string(std::string_view field, TextLimits limits) {
  auto it = impl_->document.find(field);
  if (it == impl_->document.end()) return std::nullopt;
  if (!it->is_string()) {
    fail(field, "must be a string");
    return std::nullopt;
  }
  const auto& text = it->get_ref<const std::string&>();
  if (auto problem = check_text(text, limits)) {
    fail(field, *problem);
    return std::nullopt;
  }
  return text;
}

std::optional<std::optional<std::string>> Body::nullable_string(std::string_view field, TextLimits limits) {
  auto it = impl_->document.find(field);
  if (it == impl_->document.end()) return std::nullopt;
  if (it->is_null()) return std::optional<std::optional<std::string>>(std::in_place, std::nullopt);
  auto value = optional_string(field, limits);
  if (!value) return std::nullopt;
  return std::optional<std::optional<std::string>>(std::in_place, std::move(*value));
}

std::optional<bool> Body::optional_bool(std::string_view field) {
  auto it = impl_->document.find(field);
  if (it == impl_->document.end()) return std::nullopt;
  if (!it->is_boolean()) {
    fail(field, "must be true or false");
    return std::nullopt;
  }
  return it->get<bool>();
}

std::int64_t Body::required_int(std::string_view field, std::int64_t min, std::int64_t max) {
  if (!has(field)) {
    fail(field, "is required");
    return min;
  }
  return optional_int(field, min, max).value_or(min);
}

std::optional<std::int64_t> Body::optional_int(std::string_view field, std::int64_t min, std::int64_t max) {
  auto it = impl_->document.find(field);
  if (it == impl_->document.end()) return std::nullopt;
  auto range = "must be an integer from " + std::to_string(min) + " to " + std::to_string(max);
  if (it->is_number_unsigned()) {
    // Non-negative JSON integers parse as unsigned: both bounds apply here too.
    auto value = it->get<std::uint64_t>();
    if (value > static_cast<std::uint64_t>(max) || (min > 0 && value < static_cast<std::uint64_t>(min))) {
      fail(field, range);
      return std::nullopt;
    }
    return static_cast<std::int64_t>(value);
  }
  if (!it->is_number_integer()) {
    fail(field, range);
    return std::nullopt;
  }
  auto value = it->get<std::int64_t>();
  if (value < min || value > max) {
    fail(field, range);
    return std::nullopt;
  }
  return value;
}

std::vector<std::string> Body::required_string_array(std::string_view field, std::size_t max_items, TextLimits limits) {
  std::vector<std::string> out;
  auto it = impl_->document.find(field);
  if (it == impl_->document.end()) {
    fail(field, "is required");
    return out;
  }
  if (!it->is_array()) {
    fail(field, "must be an array of strings");
    return out;
  }
  if (it->size() > max_items) {
    fail(field, "must have at most " + std::to_string(max_items) + " items");
    return out;
  }
  for (const auto& item : *it) {
    if (!item.is_string()) {
      fail(field, "must be an array of strings");
      return {};
    }
    const auto& text = item.get_ref<const std::string&>();
    if (auto problem = check_text(text, limits)) {
      fail(field, "item " + *problem);
      return {};
    }
    out.push_back(text);
  }
  return out;
}

std::optional<std::vector<std::int64_t>> Body::optional_id_array(std::string_view field, std::size_t max_items) {
  auto it = impl_->document.find(field);
  if (it == impl_->document.end()) return std::nullopt;
  if (!it->is_array()) {
    fail(field, "must be an array of ids");
    return std::nullopt;
  }
  if (it->size() > max_items) {
    fail(field, "must have at most " + std::to_string(max_items) + " items");
    return std::nullopt;
  }
  std::vector<std::int64_t> out;
  for (const auto& item : *it) {
    // Positive JSON integers parse as unsigned; an id fits a signed 64-bit integer.
    if (!item.is_number_unsigned() || item.get<std::uint64_t>() == 0 ||
        item.get<std::uint64_t>() > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
      fail(field, "must be an array of ids (positive integers)");
      return std::nullopt;
    }
    out.push_back(static_cast<std::int64_t>(item.get<std::uint64_t>()));
  }
  return out;
}

Result<std::int64_t> parse_id(std::string_view text) {
  std::int64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value <= 0 || text.empty() || text.front() == '+')
    return make_error(Errc::not_found, "no such id");
  return value;
}

Result<Page> parse_page(const http::Request& request, int default_size, int max_size) {
  Page page;
  page.size = default_size;
  if (request.query_param("page"))
    return make_error(Errc::invalid_argument,
                      "query parameter 'page' is not supported: lists page by cursor (pass the next_cursor of the "
                      "previous page as ?cursor=)");
  if (auto text = request.query_param("page_size")) {
    int value = 0;
    auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), value);
    if (ec != std::errc() || end != text->data() + text->size() || value < 1 || value > max_size)
      return make_error(Errc::invalid_argument,
                        "query parameter 'page_size' must be an integer from 1 to " + std::to_string(max_size));
    page.size = value;
  }
  if (auto cursor = request.query_param("cursor")) {
    if (cursor->empty() || cursor->size() > 512)
      return make_error(Errc::invalid_argument, "query parameter 'cursor' must be a next_cursor of this list");
    page.cursor = *cursor;
  }
  if (auto include = request.query_param("include")) {
    if (*include != "total") return make_error(Errc::invalid_argument, "query parameter 'include' must be 'total'");
    page.with_total = true;
  }
  return page;
}

Result<std::int64_t> path_id(const http::Request& request, std::string_view no_such) {
  auto id = parse_id(*request.param("id"));
  if (!id) return make_error(Errc::not_found, std::string(no_such));
  return id;
}

Result<std::optional<std::string>> query_choice(const http::Request& request, std::string_view name,
                                                std::initializer_list<std::string_view> allowed) {
  auto value = request.query_param(name);
  if (!value) return std::optional<std::string>();
  for (auto choice : allowed)
    if (*value == choice) return value;
  // "a, b, c or d"
  std::string expected;
  for (std::size_t i = 0; i < allowed.size(); ++i) {
    if (i > 0) expected += i + 1 == allowed.size() ? " or " : ", ";
    expected += allowed.begin()[i];
  }
  return make_error(Errc::invalid_argument, "query parameter '" + std::string(name) + "' must be " + expected);
}

Result<std::optional<std::int64_t>> query_id(const http::Request& request, std::string_view name) {
  auto text = request.query_param(name);
  if (!text) return std::optional<std::int64_t>();
  auto id = parse_id(*text);
  if (!id) return make_error(Errc::invalid_argument, "query parameter '" + std::string(name) + "' must be an id");
  return std::optional<std::int64_t>(*id);
}

Result<Unit> no_body(const http::Request& request, std::string_view what) {
  if (!request.body.empty() && request.body != "{}")
    return make_error(Errc::invalid_argument, std::string(what) + " takes no body");
  return Unit{};
}

Result<DecisionInput> parse_decision(std::string_view body_text, TextLimits reason_limits) {
  auto body = Body::read(body_text, {"decision", "reason"});
  auto decision = body.required_string("decision", {.max_bytes = 16});
  auto reason = body.optional_string("reason", reason_limits);
  if (body.status() && decision != "approve" && decision != "reject")
    body.fail("decision", "must be \"approve\" or \"reject\"");
  if (body.status() && decision == "reject" && !reason) body.fail("reason", "is required to reject");
  if (auto ok = body.status(); !ok) return ok.error();
  return DecisionInput{decision == "approve", std::move(reason)};
}

Result<std::string> normalize_email(std::string_view text) {
  auto invalid = [] { return make_error(Errc::invalid_argument, "field 'email': must be a valid email address"); };
  if (text.size() > 1024 || utf8_length(text) < 0) return invalid();
  // Unicode caseless matching (case fold, then NFKC): a fullwidth 'ｍ', the Kelvin sign
  // and a decomposed 'é' name the same account as 'm', 'k' and 'é'.
  std::size_t folded_length = 0;
  auto* folded = u8_casefold(reinterpret_cast<const std::uint8_t*>(text.data()), text.size(), "", UNINORM_NFKC, nullptr,
                             &folded_length);
  if (!folded) return invalid();
  std::string normalized(reinterpret_cast<const char*>(folded), folded_length);
  std::free(folded);
  bool invisible = false;
  for_each_code_point(normalized, [&](std::uint32_t code) { return !(invisible = is_invisible_format(code)); });
  if (invisible) return invalid();
  auto trimmed = trim(normalized);
  if (trimmed.size() < 3 || trimmed.size() > 254 || utf8_length(trimmed) < 0) return invalid();
  auto at = trimmed.rfind('@');
  if (at == std::string_view::npos || at == 0 || at > 64) return invalid();
  auto domain = trimmed.substr(at + 1);
  if (domain.size() < 3 || domain.find('.') == std::string_view::npos || domain.front() == '.' ||
      domain.back() == '.' || domain.find("..") != std::string_view::npos)
    return invalid();
  for (char c : trimmed) {
    auto byte = static_cast<unsigned char>(c);
    if (byte <= 0x20 || byte == 0x7F || c == '<' || c == '>' || c == ',' || c == ';' || c == '"' || c == '\\' ||
        c == '(' || c == ')' || c == '[' || c == ']')
      return invalid();
  }
  if (trimmed.substr(0, at).find('@') != std::string_view::npos) return invalid();
  return std::string(trimmed);
}

Result<std::chrono::system_clock::time_point> parse_time(std::string_view field, std::string_view text, TimeRules rules,
                                                         std::chrono::system_clock::time_point now) {
  auto when = utc::parse_rfc3339(text);
  if (!when) return make_error(Errc::invalid_argument, field_error(field, when.error().message));
  if (rules.not_past && *when < now)
    return make_error(Errc::invalid_argument, field_error(field, "must not be in the past"));
  if (*when > now + rules.max_ahead)
    return make_error(
        Errc::invalid_argument,
        field_error(field, "must be at most " + std::to_string(rules.max_ahead.count() / 24) + " days from now"));
  return *when;
}

}  // namespace townhall::input
