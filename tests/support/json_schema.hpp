#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

namespace townhall::testing {

// Checks `value` against `schema`, for the subset of JSON Schema (2020-12) the routes'
// documentation uses (platform/schema.hpp): type (one or several), properties, required,
// additionalProperties (false or a schema), items, enum, const, anyOf, minimum, maximum,
// minLength, maxLength; format and the annotations are ignored. Any other keyword is
// reported, so a schema never silently escapes the check. The first violation, with its
// JSON path, or nullopt.
std::optional<std::string> schema_violation(const nlohmann::json& schema, const nlohmann::json& value,
                                            const std::string& path = "$");

}  // namespace townhall::testing
