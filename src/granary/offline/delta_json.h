// Reading the JSON of a Delta log (actions, schemaString) with common/json.h, tolerant of absent
// or mistyped members: the log replay (delta_snapshot.cc) and the schema conversion
// (delta_log.cc) share these. Stateless; thread-safe.
#pragma once

#include <string>
#include <string_view>

#include "granary/common/json.h"

namespace granary::delta_json {

using JsonValue = boost::json::value;

// The member `name` of `v`, or nullptr when `v` is not an object or has no such member.
inline const JsonValue* Member(const JsonValue& v, std::string_view name) {
  return JsonMember(v, name);
}

// The string member `name`, or "" when it is absent or not a string.
inline std::string StringMember(const JsonValue& v, std::string_view name) {
  const JsonValue* m = Member(v, name);
  return m != nullptr && m->is_string() ? std::string(JsonStringView(m->get_string())) : "";
}

// The boolean member `name`, or `fallback` when it is absent or not a boolean.
inline bool BoolMember(const JsonValue& v, std::string_view name, bool fallback) {
  const JsonValue* m = Member(v, name);
  return m != nullptr && m->is_bool() ? m->get_bool() : fallback;
}

}  // namespace granary::delta_json
