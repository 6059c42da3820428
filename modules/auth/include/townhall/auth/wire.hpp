#pragma once

// auth::Api over HTTP (DESIGN.md §9, README "Internal API"): the one JSON encoding of each
// request and result, shared by auth's internal listener and auth::HttpApi so the two
// cannot drift. Each call is `POST /internal/v1/auth/<method>` with its request object as
// the body; a success is 200 with the result, a failure the problem+json of its Errc.
// Who calls travels in headers (a user's bearer token, or a service signature), never in
// the body: a principal is only ever a result (authenticate's), never a request field.
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "townhall/auth/api.hpp"
#include "townhall/platform/result.hpp"

namespace townhall::auth::wire {

inline constexpr std::string_view kPathPrefix = "/internal/v1/auth/";

// The requests, one per Api method besides its CallContext. `kMethod` names the path.
struct Authenticate {
  static constexpr std::string_view kMethod = "authenticate";
  using Reply = std::shared_ptr<const Principal>;
  std::string token;
};
struct GetCitizen {
  static constexpr std::string_view kMethod = "get_citizen";
  using Reply = Citizen;
  std::int64_t citizen_id = 0;
};
struct GetSensitive {
  static constexpr std::string_view kMethod = "get_sensitive";
  using Reply = std::optional<std::string>;
  std::int64_t citizen_id = 0;
  std::string purpose;
};
struct CitizenVersions {
  static constexpr std::string_view kMethod = "citizen_versions";
  using Reply = std::vector<CitizenVersion>;
  std::int64_t after_id = 0;
  int limit = 0;
  CitizenFields fields;
};
struct CitizenDigest {
  static constexpr std::string_view kMethod = "citizen_digest";
  using Reply = consistency::Digest;
  std::int64_t from_id = 0;
  std::int64_t to_id = 0;
  CitizenFields fields;
};
struct CitizensSince {
  static constexpr std::string_view kMethod = "citizens_since";
  using Reply = CitizenChanges;
  std::int64_t change_seq = 0;
  int limit = 0;
};
struct Departments {
  static constexpr std::string_view kMethod = "departments";
  using Reply = std::vector<DepartmentRef>;
};
struct ResetMail {
  static constexpr std::string_view kMethod = "password_reset_mail";
  using Reply = PasswordResetMail;
  std::string reference;
};

template <class Request>
std::string path() {
  return std::string(kPathPrefix) + std::string(Request::kMethod);
}

// Codec<T>::encode / decode for every request and result type; decode throws
// nlohmann::json::exception on a malformed value (decode_text below catches it).
template <class T>
struct Codec;

namespace detail {
using nlohmann::json;

inline std::optional<std::string> optional_text(const json& value, const char* key) {
  const auto& field = value.at(key);
  if (field.is_null()) return std::nullopt;
  return field.get<std::string>();
}
inline json nullable_text(const std::optional<std::string>& value) { return value ? json(*value) : json(nullptr); }
// A uint64 travels as a decimal string: JSON numbers past 2^53 do not survive every reader.
inline json u64(std::uint64_t value) { return std::to_string(value); }
inline std::uint64_t u64_of(const json& value) {
  const auto& text = value.get_ref<const std::string&>();
  std::size_t used = 0;
  if (text.empty() || text[0] == '-') throw json::type_error::create(302, "expected an unsigned decimal", &value);
  auto n = std::stoull(text, &used);
  if (used != text.size()) throw json::type_error::create(302, "expected an unsigned decimal", &value);
  return n;
}
}  // namespace detail

template <>
struct Codec<CitizenFields> {
  static nlohmann::json encode(const CitizenFields& fields) {
    auto out = nlohmann::json::array();
    for (auto field : fields) out.push_back(std::string(column_name(field)));
    return out;
  }
  static CitizenFields decode(const nlohmann::json& value) {
    CitizenFields out;
    for (const auto& item : value.get_ref<const nlohmann::json::array_t&>()) {
      const auto& name = item.get_ref<const std::string&>();
      bool found = false;
      for (auto field : {CitizenField::name, CitizenField::email, CitizenField::phone, CitizenField::address,
                         CitizenField::city, CitizenField::postal_code, CitizenField::email_verified,
                         CitizenField::identity_verified, CitizenField::is_active})
        if (column_name(field) == name) {
          out.push_back(field);
          found = true;
        }
      if (!found) throw nlohmann::json::type_error::create(302, "unknown citizen field " + name, &item);
    }
    return out;
  }
};

template <>
struct Codec<std::shared_ptr<const Principal>> {
  static nlohmann::json encode(const std::shared_ptr<const Principal>& principal) {
    return {{"id", principal->id},
            {"kind", std::string(to_string(principal->kind))},
            {"email", principal->email},
            {"name", principal->name},
            {"roles", principal->roles},
            {"permissions", principal->permissions},
            {"department", principal->department}};
  }
  static std::shared_ptr<const Principal> decode(const nlohmann::json& value) {
    auto principal = std::make_shared<Principal>();
    principal->id = value.at("id").get<std::int64_t>();
    const auto& kind = value.at("kind").get_ref<const std::string&>();
    if (kind == "citizen")
      principal->kind = Principal::Kind::citizen;
    else if (kind == "employee")
      principal->kind = Principal::Kind::employee;
    else
      throw nlohmann::json::type_error::create(302, "unknown principal kind " + kind, &value);
    principal->email = value.at("email").get<std::string>();
    principal->name = value.at("name").get<std::string>();
    principal->roles = value.at("roles").get<std::vector<std::string>>();
    principal->permissions = value.at("permissions").get<std::vector<std::string>>();
    principal->department = value.at("department").get<std::string>();
    return principal;
  }
};

template <>
struct Codec<Citizen> {
  static nlohmann::json encode(const Citizen& c) {
    using detail::nullable_text;
    return {{"id", c.id},
            {"email", c.email},
            {"name", c.name},
            {"phone", nullable_text(c.phone)},
            {"address", nullable_text(c.address)},
            {"city", nullable_text(c.city)},
            {"postal_code", nullable_text(c.postal_code)},
            {"has_national_id", c.has_national_id},
            {"email_verified", c.email_verified},
            {"identity_verified", c.identity_verified},
            {"is_active", c.is_active},
            {"event_version", c.event_version},
            {"created_at", c.created_at},
            {"updated_at", c.updated_at}};
  }
  static Citizen decode(const nlohmann::json& v) {
    using detail::optional_text;
    Citizen c;
    c.id = v.at("id").get<std::int64_t>();
    c.email = v.at("email").get<std::string>();
    c.name = v.at("name").get<std::string>();
    c.phone = optional_text(v, "phone");
    c.address = optional_text(v, "address");
    c.city = optional_text(v, "city");
    c.postal_code = optional_text(v, "postal_code");
    c.has_national_id = v.at("has_national_id").get<bool>();
    c.email_verified = v.at("email_verified").get<bool>();
    c.identity_verified = v.at("identity_verified").get<bool>();
    c.is_active = v.at("is_active").get<bool>();
    c.event_version = v.at("event_version").get<std::int64_t>();
    c.created_at = v.at("created_at").get<std::string>();
    c.updated_at = v.at("updated_at").get<std::string>();
    return c;
  }
};

template <>
struct Codec<std::optional<std::string>> {
  static nlohmann::json encode(const std::optional<std::string>& value) {
    return {{"national_id", detail::nullable_text(value)}};
  }
  static std::optional<std::string> decode(const nlohmann::json& value) {
    return detail::optional_text(value, "national_id");
  }
};

template <>
struct Codec<CitizenVersion> {
  static nlohmann::json encode(const CitizenVersion& v) {
    return {{"id", v.id},
            {"event_version", v.event_version},
            {"is_active", v.is_active},
            {"content", detail::u64(v.content)}};
  }
  static CitizenVersion decode(const nlohmann::json& v) {
    return {v.at("id").get<std::int64_t>(), v.at("event_version").get<std::int64_t>(), v.at("is_active").get<bool>(),
            detail::u64_of(v.at("content"))};
  }
};

template <>
struct Codec<consistency::Digest> {
  static nlohmann::json encode(const consistency::Digest& d) {
    return {{"count", d.count}, {"hash", detail::u64(d.hash)}, {"max_id", d.max_id}};
  }
  static consistency::Digest decode(const nlohmann::json& v) {
    consistency::Digest d;
    d.count = v.at("count").get<std::int64_t>();
    d.hash = detail::u64_of(v.at("hash"));
    d.max_id = v.at("max_id").get<std::int64_t>();
    return d;
  }
};

template <>
struct Codec<DepartmentRef> {
  static nlohmann::json encode(const DepartmentRef& d) {
    return {{"code", d.code}, {"name", d.name}, {"event_version", d.event_version}, {"is_active", d.is_active}};
  }
  static DepartmentRef decode(const nlohmann::json& v) {
    return {v.at("code").get<std::string>(), v.at("name").get<std::string>(), v.at("event_version").get<std::int64_t>(),
            v.at("is_active").get<bool>()};
  }
};

template <>
struct Codec<PasswordResetMail> {
  static nlohmann::json encode(const PasswordResetMail& m) {
    return {{"token", m.token}, {"email", m.email}, {"expires_at", m.expires_at}};
  }
  static PasswordResetMail decode(const nlohmann::json& v) {
    return {v.at("token").get<std::string>(), v.at("email").get<std::string>(), v.at("expires_at").get<std::string>()};
  }
};

// A list of any of the above: {"items": [...]}.
template <class T>
struct Codec<std::vector<T>> {
  static nlohmann::json encode(const std::vector<T>& items) {
    auto out = nlohmann::json::array();
    for (const auto& item : items) out.push_back(Codec<T>::encode(item));
    return {{"items", std::move(out)}};
  }
  static std::vector<T> decode(const nlohmann::json& value) {
    std::vector<T> out;
    for (const auto& item : value.at("items").get_ref<const nlohmann::json::array_t&>())
      out.push_back(Codec<T>::decode(item));
    return out;
  }
};

template <>
struct Codec<CitizenChanges> {
  static nlohmann::json encode(const CitizenChanges& changes) {
    auto out = Codec<std::vector<Citizen>>::encode(changes.citizens);
    out["next"] = changes.next;
    return out;
  }
  static CitizenChanges decode(const nlohmann::json& value) {
    return {Codec<std::vector<Citizen>>::decode(value), value.at("next").get<std::int64_t>()};
  }
};

template <>
struct Codec<Authenticate> {
  static nlohmann::json encode(const Authenticate& r) { return {{"token", r.token}}; }
  static Authenticate decode(const nlohmann::json& v) { return {v.at("token").get<std::string>()}; }
};
template <>
struct Codec<GetCitizen> {
  static nlohmann::json encode(const GetCitizen& r) { return {{"citizen_id", r.citizen_id}}; }
  static GetCitizen decode(const nlohmann::json& v) { return {v.at("citizen_id").get<std::int64_t>()}; }
};
template <>
struct Codec<GetSensitive> {
  static nlohmann::json encode(const GetSensitive& r) { return {{"citizen_id", r.citizen_id}, {"purpose", r.purpose}}; }
  static GetSensitive decode(const nlohmann::json& v) {
    return {v.at("citizen_id").get<std::int64_t>(), v.at("purpose").get<std::string>()};
  }
};
template <>
struct Codec<CitizenVersions> {
  static nlohmann::json encode(const CitizenVersions& r) {
    return {{"after_id", r.after_id}, {"limit", r.limit}, {"fields", Codec<CitizenFields>::encode(r.fields)}};
  }
  static CitizenVersions decode(const nlohmann::json& v) {
    return {v.at("after_id").get<std::int64_t>(), v.at("limit").get<int>(),
            Codec<CitizenFields>::decode(v.at("fields"))};
  }
};
template <>
struct Codec<CitizenDigest> {
  static nlohmann::json encode(const CitizenDigest& r) {
    return {{"from_id", r.from_id}, {"to_id", r.to_id}, {"fields", Codec<CitizenFields>::encode(r.fields)}};
  }
  static CitizenDigest decode(const nlohmann::json& v) {
    return {v.at("from_id").get<std::int64_t>(), v.at("to_id").get<std::int64_t>(),
            Codec<CitizenFields>::decode(v.at("fields"))};
  }
};
template <>
struct Codec<CitizensSince> {
  static nlohmann::json encode(const CitizensSince& r) { return {{"change_seq", r.change_seq}, {"limit", r.limit}}; }
  static CitizensSince decode(const nlohmann::json& v) {
    return {v.at("change_seq").get<std::int64_t>(), v.at("limit").get<int>()};
  }
};
template <>
struct Codec<Departments> {
  static nlohmann::json encode(const Departments&) { return nlohmann::json::object(); }
  static Departments decode(const nlohmann::json& v) {
    if (!v.is_object()) throw nlohmann::json::type_error::create(302, "expected an object", &v);
    return {};
  }
};
template <>
struct Codec<ResetMail> {
  static nlohmann::json encode(const ResetMail& r) { return {{"reference", r.reference}}; }
  static ResetMail decode(const nlohmann::json& v) { return {v.at("reference").get<std::string>()}; }
};

template <class T>
std::string encode_text(const T& value) {
  return Codec<T>::encode(value).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// invalid_argument naming what is wrong when `text` is not a T's encoding.
template <class T>
Result<T> decode_text(std::string_view text) {
  try {
    auto value = nlohmann::json::parse(text);
    if (!value.is_object()) return make_error(Errc::invalid_argument, "expected a JSON object");
    return Codec<T>::decode(value);
  } catch (const nlohmann::json::exception& error) {
    return make_error(Errc::invalid_argument, std::string("malformed body: ") + error.what());
  } catch (const std::exception& error) {  // std::stoull's out_of_range and invalid_argument
    return make_error(Errc::invalid_argument, std::string("malformed body: ") + error.what());
  }
}

}  // namespace townhall::auth::wire
