#include "granary/types/value_type.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <utility>

namespace granary {
namespace {

struct Alias {
  std::string_view name;
  ScalarType type;
};

// Lower-cased names; Feast's type names lower-case to several of these.
constexpr std::array<Alias, 17> kAliases = {{
    {"bool", ScalarType::kBool},
    {"boolean", ScalarType::kBool},
    {"int32", ScalarType::kInt32},
    {"int64", ScalarType::kInt64},
    {"float32", ScalarType::kFloat32},
    {"float", ScalarType::kFloat32},
    {"float64", ScalarType::kFloat64},
    {"double", ScalarType::kFloat64},
    {"string", ScalarType::kString},
    {"str", ScalarType::kString},
    {"bytes", ScalarType::kBytes},
    {"binary", ScalarType::kBytes},
    {"timestamp", ScalarType::kTimestamp},
    {"unix_timestamp", ScalarType::kTimestamp},
    {"unixtimestamp", ScalarType::kTimestamp},
    {"datetime", ScalarType::kTimestamp},
    {"int", ScalarType::kInt64},
}};

std::string Lower(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c != ' ') out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return out;
}

bool ParseScalar(std::string_view name, ScalarType* out) {
  for (const Alias& a : kAliases) {
    if (a.name == name) {
      *out = a.type;
      return true;
    }
  }
  return false;
}

}  // namespace

std::string_view ScalarTypeName(ScalarType t) {
  switch (t) {
    case ScalarType::kBool:
      return "bool";
    case ScalarType::kInt32:
      return "int32";
    case ScalarType::kInt64:
      return "int64";
    case ScalarType::kFloat32:
      return "float32";
    case ScalarType::kFloat64:
      return "float64";
    case ScalarType::kString:
      return "string";
    case ScalarType::kBytes:
      return "bytes";
    case ScalarType::kTimestamp:
      return "timestamp";
  }
  return "unknown";
}

std::string ValueType::ToString() const {
  return is_list ? fmt::format("list<{}>", ScalarTypeName(scalar))
                 : std::string(ScalarTypeName(scalar));
}

Result<ValueType> ValueType::Parse(std::string_view text) {
  const std::string s = Lower(text);
  std::string_view inner = s;
  bool is_list = false;
  for (auto [open, close] :
       {std::pair<std::string_view, char>{"list<", '>'}, {"array(", ')'}, {"array<", '>'}}) {
    if (inner.starts_with(open) && inner.size() > open.size() && inner.back() == close) {
      inner = inner.substr(open.size(), inner.size() - open.size() - 1);
      is_list = true;
      break;
    }
  }
  ScalarType scalar;
  if (!ParseScalar(inner, &scalar)) {
    return Status::InvalidArgument(fmt::format(
        "unknown type '{}'; use one of bool, int32, int64, float32, float64, string, bytes, "
        "timestamp, or list<T> of one of them (e.g. list<float32>)",
        text));
  }
  return ValueType{scalar, is_list};
}

}  // namespace granary
