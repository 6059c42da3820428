#include "townhall/platform/input.hpp"

#include <charconv>
#include <nlohmann/json.hpp>

#include "townhall/platform/http.hpp"

namespace townhall::input {
namespace {

using json = nlohmann::json;
constexpr int kMaxDepth = 32;

std::string field_error(std::string_view field, std::string_view message) {
  return "field '" + std::string(field) + "': " + std::string(message);
}

// Counts code points; -1 when `text` is not valid UTF-8 (overlongs, surrogates and
// values past U+10FFFF included).
long utf8_length(std::string_view text) {
  long count = 0;
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
      return -1;
    }
    if (i + extra >= text.size() && extra > 0) return -1;
    for (std::size_t k = 1; k <= extra; ++k) {
      auto next = static_cast<unsigned char>(text[i + k]);
      if ((next & 0xC0) != 0x80) return -1;
      code = (code << 6) | (next & 0x3F);
    }
    if ((extra == 1 && code < 0x80) || (extra == 2 && code < 0x800) || (extra == 3 && code < 0x10000) ||
        code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF))
      return -1;
    i += extra + 1;
    ++count;
  }
  return count;
}

bool is_blank(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

std::string_view trim(std::string_view text) {
  while (!text.empty() && is_blank(text.front())) text.remove_prefix(1);
  while (!text.empty() && is_blank(text.back())) text.remove_suffix(1);
  return text;
}

}  // namespace

std::optional<std::string> check_text(std::string_view text, TextLimits limits) {
  if (text.size() > limits.max_bytes) return "must be at most " + std::to_string(limits.max_bytes) + " bytes";
  if (utf8_length(text) < 0) return "must be valid UTF-8";
  for (char c : text) {
    auto byte = static_cast<unsigned char>(c);
    bool allowed_control = limits.multiline && (c == '\n' || c == '\t' || c == '\r');
    if ((byte < 0x20 || byte == 0x7F) && !allowed_control) return "must not contain control characters";
  }
  if (static_cast<std::size_t>(utf8_length(trim(text))) < limits.min_chars)
    return limits.min_chars == 1 ? std::string("must not be empty")
                                 : "must be at least " + std::to_string(limits.min_chars) + " characters";
  return std::nullopt;
}

struct Body::Impl {
  json document;
  std::optional<std::string> first_error;
};

Body::Body(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Body::~Body() = default;
Body::Body(Body&&) noexcept = default;
Body& Body::operator=(Body&&) noexcept = default;

Result<Body> Body::parse(std::string_view text, std::initializer_list<std::string_view> allowed_fields) {
  auto impl = std::make_unique<Impl>();
  bool too_deep = false;
  json::parser_callback_t limit_depth = [&too_deep](int depth, json::parse_event_t, json&) {
    if (depth > kMaxDepth) too_deep = true;
    return !too_deep;
  };
  try {
    impl->document = json::parse(text.begin(), text.end(), limit_depth);
  } catch (const json::parse_error& error) {
    // nlohmann's message names the byte offset and what it expected; no internals.
    return make_error(Errc::invalid_argument, std::string("malformed JSON: ") + error.what());
  } catch (const json::exception& error) {  // e.g. out_of_range: a number like 1e400
    return make_error(Errc::invalid_argument, std::string("unacceptable JSON: ") + error.what());
  }
  if (too_deep) return make_error(Errc::invalid_argument, "JSON nested too deeply");
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

bool Body::has(std::string_view field) const { return impl_->document.contains(field); }

void Body::fail(std::string_view field, std::string_view message) {
  if (!impl_->first_error) impl_->first_error = field_error(field, message);
}

Result<Unit> Body::status() const {
  if (impl_->first_error) return make_error(Errc::invalid_argument, *impl_->first_error);
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
    auto value = it->get<std::uint64_t>();
    if (value > static_cast<std::uint64_t>(max)) {
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
  auto read = [&](std::string_view name, int min, int max, int& out) -> std::optional<Error> {
    auto text = request.query_param(name);
    if (!text) return std::nullopt;
    int value = 0;
    auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), value);
    if (ec != std::errc() || end != text->data() + text->size() || value < min || value > max)
      return make_error(Errc::invalid_argument, "query parameter '" + std::string(name) + "' must be an integer from " +
                                                    std::to_string(min) + " to " + std::to_string(max));
    out = value;
    return std::nullopt;
  };
  if (auto error = read("page", 1, 1'000'000, page.number)) return *error;
  if (auto error = read("page_size", 1, max_size, page.size)) return *error;
  return page;
}

Result<std::string> normalize_email(std::string_view text) {
  auto trimmed = trim(text);
  auto invalid = [] { return make_error(Errc::invalid_argument, "field 'email': must be a valid email address"); };
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
  std::string out(trimmed);
  for (auto& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

}  // namespace townhall::input
