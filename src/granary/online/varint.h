// Little helpers for the online layout's byte formats (docs/ONLINE_LAYOUT.md): LEB128 varints,
// zigzag, little-endian fixed-width integers. Header-only; stateless; thread-safe.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace granary::layout {

inline void PutVarint(std::string* out, uint64_t v) {
  char buf[10];
  int n = 0;
  while (v >= 0x80) {
    buf[n++] = static_cast<char>((v & 0x7f) | 0x80);
    v >>= 7;
  }
  buf[n++] = static_cast<char>(v);
  out->append(buf, n);
}

inline int VarintLength(uint64_t v) {
  int n = 1;
  while (v >= 0x80) {
    v >>= 7;
    ++n;
  }
  return n;
}

// Reads a varint at *pos (advancing it); false when the bytes end first or it is longer than 10.
inline bool GetVarint(std::string_view in, size_t* pos, uint64_t* v) {
  uint64_t result = 0;
  for (int shift = 0; shift <= 63 && *pos < in.size(); shift += 7) {
    uint64_t byte = static_cast<unsigned char>(in[(*pos)++]);
    result |= (byte & 0x7f) << shift;
    if ((byte & 0x80) == 0) {
      *v = result;
      return true;
    }
  }
  return false;
}

constexpr uint64_t ZigZag(int64_t v) {
  return (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63);
}
constexpr int64_t UnZigZag(uint64_t v) {
  return static_cast<int64_t>(v >> 1) ^ -static_cast<int64_t>(v & 1);
}

// A body's created timestamp (value_codec.h): zigzag(created - event) + 1, 0 for none. The
// difference is taken modulo 2^64, so that every pair of int64 times (any value a store or a
// source file holds) round-trips without signed overflow; small differences keep small codes.
constexpr uint64_t CreatedCode(int64_t event, int64_t created) {
  return ZigZag(
             static_cast<int64_t>(static_cast<uint64_t>(created) - static_cast<uint64_t>(event))) +
         1;
}
// The created timestamp of a code other than 0.
constexpr int64_t CreatedFromCode(int64_t event, uint64_t code) {
  return static_cast<int64_t>(static_cast<uint64_t>(event) +
                              static_cast<uint64_t>(UnZigZag(code - 1)));
}

template <typename T>
inline void PutFixed(std::string* out, T v) {
  static_assert(std::is_trivially_copyable_v<T>);
  char buf[sizeof(T)];
  std::memcpy(buf, &v, sizeof(T));  // x86-64 and aarch64 Linux are little-endian
  out->append(buf, sizeof(T));
}

template <typename T>
inline T LoadFixed(const char* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

inline void PutBigEndian32(std::string* out, uint32_t v) {
  char buf[4] = {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
                 static_cast<char>(v)};
  out->append(buf, 4);
}

}  // namespace granary::layout
