#include "granary/types/value.h"

#include <fmt/format.h>

namespace granary {
namespace {

template <typename T>
constexpr ScalarType ScalarOf() {
  if constexpr (std::is_same_v<T, bool>) return ScalarType::kBool;
  if constexpr (std::is_same_v<T, int32_t>) return ScalarType::kInt32;
  if constexpr (std::is_same_v<T, int64_t>) return ScalarType::kInt64;
  if constexpr (std::is_same_v<T, float>) return ScalarType::kFloat32;
  if constexpr (std::is_same_v<T, double>) return ScalarType::kFloat64;
  if constexpr (std::is_same_v<T, std::string>) return ScalarType::kString;
  if constexpr (std::is_same_v<T, Bytes>) return ScalarType::kBytes;
  if constexpr (std::is_same_v<T, Timestamp>) return ScalarType::kTimestamp;
}

template <typename T>
struct IsVector : std::false_type {};
template <typename T>
struct IsVector<std::vector<T>> : std::true_type {
  using Element = T;
};

std::string ScalarToString(bool v) { return v ? "true" : "false"; }
template <typename T>
requires std::is_arithmetic_v<T> std::string ScalarToString(T v) { return fmt::format("{}", v); }
std::string ScalarToString(const std::string& v) { return fmt::format("\"{}\"", v); }
std::string ScalarToString(const Bytes& v) { return fmt::format("<{} bytes>", v.data.size()); }
std::string ScalarToString(Timestamp v) { return FormatTimestamp(v); }

}  // namespace

ValueType Value::type() const {
  return std::visit(
      [](const auto& v) -> ValueType {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, std::monostate>) {
          return ValueType{};
        } else if constexpr (IsVector<T>::value) {
          return ValueType::List(ScalarOf<typename IsVector<T>::Element>());
        } else {
          return ValueType::Scalar(ScalarOf<T>());
        }
      },
      data_);
}

std::string Value::ToString() const {
  return std::visit(
      [](const auto& v) -> std::string {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, std::monostate>) {
          return "null";
        } else if constexpr (IsVector<T>::value) {
          std::string out = "[";
          for (size_t i = 0; i < v.size(); ++i) {
            if (i > 0) out += ", ";
            out += ScalarToString(v[i]);
          }
          return out + "]";
        } else {
          return ScalarToString(v);
        }
      },
      data_);
}

}  // namespace granary
