// Random values of every type for tests that compare two encodings of the same answer
// (online_response_test, feast_wire_test).
#pragma once

#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "granary/types/value.h"

namespace granary::testing {

// A random value of `type` (never null): floats from random bits (NaN, infinities, subnormals)
// or as features hold them, strings with every character JSON must escape and UTF-8, any bytes.
inline Value RandomValue(ValueType type, std::mt19937_64& rng) {
  auto text = [&] {
    static constexpr std::string_view kPieces[] = {
        "a",           "Z",    " ",    "\"",   "\\",          "\n", "\r",
        "\t",          "\x01", "\x1f", "\x7f", "caf\xc3\xa9", "/",  std::string_view("\0", 1),
        "\xe2\x82\xac"};
    std::string s;
    for (size_t n = rng() % 12; n > 0; --n) s += kPieces[rng() % std::size(kPieces)];
    return s;
  };
  auto f64 = [&] {
    if (rng() % 2 == 0)
      return static_cast<double>(static_cast<int64_t>(rng() % 2'000'000) - 1'000'000) / 7.0;
    uint64_t bits = rng();
    double d;
    std::memcpy(&d, &bits, sizeof(d));
    return d;
  };
  auto f32 = [&] {
    if (rng() % 2 == 0) return static_cast<float>(rng() % 100'000) / 8.0f;
    uint32_t bits = static_cast<uint32_t>(rng());
    float f;
    std::memcpy(&f, &bits, sizeof(f));
    return f;
  };
  auto time = [&] {
    return Timestamp::FromMicros(static_cast<int64_t>(rng() % 8'000'000'000'000'000) -
                                 2'000'000'000'000'000);
  };
  auto bytes = [&] {
    std::string b;
    for (size_t n = rng() % 9; n > 0; --n) b += static_cast<char>(rng());
    return Bytes{b};
  };
  auto list = [&](auto make) {
    std::vector<decltype(make())> out;
    for (size_t n = rng() % 4; n > 0; --n) out.push_back(make());
    return out;
  };
  auto boolean = [&] { return rng() % 2 == 0; };
  auto i32 = [&] { return static_cast<int32_t>(rng()); };
  auto i64 = [&] {
    return rng() % 4 == 0 ? std::numeric_limits<int64_t>::min() : static_cast<int64_t>(rng());
  };
  switch (type.scalar) {
    case ScalarType::kBool:
      return type.is_list ? Value(list(boolean)) : Value(boolean());
    case ScalarType::kInt32:
      return type.is_list ? Value(list(i32)) : Value(i32());
    case ScalarType::kInt64:
      return type.is_list ? Value(list(i64)) : Value(i64());
    case ScalarType::kFloat32:
      return type.is_list ? Value(list(f32)) : Value(f32());
    case ScalarType::kFloat64:
      return type.is_list ? Value(list(f64)) : Value(f64());
    case ScalarType::kString:
      return type.is_list ? Value(list(text)) : Value(text());
    case ScalarType::kBytes:
      return type.is_list ? Value(list(bytes)) : Value(bytes());
    case ScalarType::kTimestamp:
      return type.is_list ? Value(list(time)) : Value(time());
  }
  return Value();
}

}  // namespace granary::testing
