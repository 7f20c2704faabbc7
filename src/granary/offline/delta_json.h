// Reading the JSON of a Delta log (actions, schemaString) with RapidJSON, tolerant of absent or
// mistyped members: the log replay (delta_snapshot.cc) and the schema conversion (delta_log.cc)
// share these. Stateless; thread-safe.
#pragma once

#include <rapidjson/document.h>

#include <string>

namespace granary::delta_json {

// The member `name` of `v`, or nullptr when `v` is not an object or has no such member.
inline const rapidjson::Value* Member(const rapidjson::Value& v, const char* name) {
  if (!v.IsObject()) return nullptr;
  auto it = v.FindMember(name);
  return it == v.MemberEnd() ? nullptr : &it->value;
}

// The string member `name`, or "" when it is absent or not a string.
inline std::string StringMember(const rapidjson::Value& v, const char* name) {
  const rapidjson::Value* m = Member(v, name);
  return m != nullptr && m->IsString() ? std::string(m->GetString(), m->GetStringLength()) : "";
}

// The boolean member `name`, or `fallback` when it is absent or not a boolean.
inline bool BoolMember(const rapidjson::Value& v, const char* name, bool fallback) {
  const rapidjson::Value* m = Member(v, name);
  return m != nullptr && m->IsBool() ? m->GetBool() : fallback;
}

}  // namespace granary::delta_json
