// ValueType: the type of a feature or join key value.
//
// A scalar type or a list of one (embeddings are list<float32>). Written in definitions as
// "bool", "int32", "int64", "float32", "float64", "string", "bytes", "timestamp" and
// "list<T>"; Feast's names (Int64, Float32, String, UnixTimestamp, Array(Float32), ...) are
// accepted too. Plain value; thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "granary/common/result.h"

namespace granary {

enum class ScalarType : uint8_t {
  kBool = 1,
  kInt32 = 2,
  kInt64 = 3,
  kFloat32 = 4,
  kFloat64 = 5,
  kString = 6,
  kBytes = 7,
  kTimestamp = 8,  // UTC, microseconds since the epoch
};

struct ValueType {
  ScalarType scalar = ScalarType::kInt64;
  bool is_list = false;

  static constexpr ValueType Scalar(ScalarType t) { return ValueType{t, false}; }
  static constexpr ValueType List(ScalarType t) { return ValueType{t, true}; }

  bool operator==(const ValueType&) const = default;

  // The canonical spelling: "int64", "list<float32>".
  std::string ToString() const;
  // Parses the canonical spelling or a Feast alias; the error lists the accepted names.
  static Result<ValueType> Parse(std::string_view text);
};

std::string_view ScalarTypeName(ScalarType t);

}  // namespace granary
