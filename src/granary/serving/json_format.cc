#include "granary/serving/json_format.h"

#include <fmt/format.h>

#include <charconv>
#include <cstring>

namespace granary::serving {
namespace {

char* TwoDigits(char* p, unsigned v) {
  p[0] = static_cast<char>('0' + v / 10);
  p[1] = static_cast<char>('0' + v % 10);
  return p + 2;
}

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int DecodeChar(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+' || c == '-') return 62;
  if (c == '/' || c == '_') return 63;
  return -1;
}

}  // namespace

size_t FormatRfc3339(Timestamp ts, char* out) {
  const int64_t secs = FloorDiv(ts.micros, 1'000'000);
  const int64_t frac = ts.micros - secs * 1'000'000;
  const int64_t days = FloorDiv(secs, 86'400);
  const int64_t sod = secs - days * 86'400;
  const CivilDate date = CivilFromDays(days);
  const int64_t y = date.year;
  const unsigned m = date.month, d = date.day;
  char* p = out;
  if (y >= 0 && y <= 9999) {
    p = TwoDigits(p, static_cast<unsigned>(y / 100));
    p = TwoDigits(p, static_cast<unsigned>(y % 100));
  } else {
    // As fmt's {:04}: a sign for negatives, zero-padded to four characters in all.
    char digits[24];
    auto [e, ec] = std::to_chars(digits, digits + sizeof(digits), y);
    size_t len = e - digits;
    size_t width = len < 4 ? 4 : len;
    if (y < 0) {
      *p++ = '-';
      for (size_t i = len; i < width; ++i) *p++ = '0';
      std::memcpy(p, digits + 1, len - 1);
      p += len - 1;
    } else {
      std::memcpy(p, digits, len);
      p += len;
    }
  }
  *p++ = '-';
  p = TwoDigits(p, m);
  *p++ = '-';
  p = TwoDigits(p, d);
  *p++ = 'T';
  p = TwoDigits(p, static_cast<unsigned>(sod / 3600));
  *p++ = ':';
  p = TwoDigits(p, static_cast<unsigned>((sod / 60) % 60));
  *p++ = ':';
  p = TwoDigits(p, static_cast<unsigned>(sod % 60));
  if (frac != 0) {
    *p++ = '.';
    int64_t f = frac;
    for (int i = 5; i >= 0; --i) {
      p[i] = static_cast<char>('0' + f % 10);
      f /= 10;
    }
    p += 6;
  }
  *p++ = 'Z';
  return static_cast<size_t>(p - out);
}

size_t FormatRfc3339Millis(Timestamp ts, char* out) {
  size_t n = FormatRfc3339(ts, out);
  // "...ss.ffffffZ": drop three zeros of whole milliseconds.
  if (ts.micros % 1000 == 0 && n >= 9 && out[n - 8] == '.') {
    out[n - 4] = 'Z';
    n -= 3;
  }
  return n;
}

void AppendBase64(std::string_view data, std::string* out) {
  const auto* in = reinterpret_cast<const unsigned char*>(data.data());
  size_t i = 0;
  for (; i + 3 <= data.size(); i += 3) {
    uint32_t v = (in[i] << 16) | (in[i + 1] << 8) | in[i + 2];
    char four[4] = {kAlphabet[v >> 18], kAlphabet[(v >> 12) & 63], kAlphabet[(v >> 6) & 63],
                    kAlphabet[v & 63]};
    out->append(four, 4);
  }
  if (size_t rest = data.size() - i; rest > 0) {
    uint32_t v = in[i] << 16 | (rest == 2 ? in[i + 1] << 8 : 0);
    char four[4] = {kAlphabet[v >> 18], kAlphabet[(v >> 12) & 63],
                    rest == 2 ? kAlphabet[(v >> 6) & 63] : '=', '='};
    out->append(four, 4);
  }
}

Result<std::string> DecodeBase64(std::string_view text) {
  while (!text.empty() && text.back() == '=') text.remove_suffix(1);
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    int v = DecodeChar(text[i]);
    if (v < 0) {
      return Status::InvalidArgument("not base64: unexpected character at position " +
                                     std::to_string(i));
    }
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  if (bits >= 6) return Status::InvalidArgument("not base64: its length is impossible");
  return out;
}

}  // namespace granary::serving
