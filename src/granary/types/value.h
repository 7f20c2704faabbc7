// Value: one feature or join key value, or null, for the row-at-a-time paths (online reads and
// writes, JSON requests). Bulk data crosses subsystems as Arrow arrays instead (arrow_convert.h).
//
// List elements are never null (as in Feast); a whole list may be null. Thread-compatible.
#pragma once

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "granary/common/time.h"
#include "granary/types/value_type.h"

namespace granary {

// Raw bytes; a distinct type so it is never confused with a string.
struct Bytes {
  std::string data;
  bool operator==(const Bytes&) const = default;
};

class Value {
 public:
  using Storage =
      std::variant<std::monostate, bool, int32_t, int64_t, float, double, std::string, Bytes,
                   Timestamp, std::vector<bool>, std::vector<int32_t>, std::vector<int64_t>,
                   std::vector<float>, std::vector<double>, std::vector<std::string>,
                   std::vector<Bytes>, std::vector<Timestamp>>;

  Value() = default;  // null
  template <typename T>
  requires std::is_constructible_v<Storage, T&&> Value(T&& v)
      : data_(std::forward<T>(v)) {}               // NOLINT: implicit by design
  Value(const char* s) : data_(std::string(s)) {}  // NOLINT

  static Value Null() { return Value(); }

  bool is_null() const { return std::holds_alternative<std::monostate>(data_); }
  // The type of a non-null value.
  ValueType type() const;

  template <typename T>
  bool is() const {
    return std::holds_alternative<T>(data_);
  }
  template <typename T>
  const T& get() const {
    return std::get<T>(data_);
  }
  const Storage& storage() const { return data_; }

  bool operator==(const Value& other) const = default;

  // A short human-readable form for messages and tests: 42, "abc", [1, 2], null.
  std::string ToString() const;

 private:
  Storage data_;
};

}  // namespace granary
