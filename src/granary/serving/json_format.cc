#include "granary/serving/json_format.h"

#include <fmt/format.h>

#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

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

constexpr char kTwoDigits[] =
    "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
    "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
    "8081828384858687888990919293949596979899";

constexpr uint64_t kPow10[20] = {1ULL,
                                 10ULL,
                                 100ULL,
                                 1000ULL,
                                 10000ULL,
                                 100000ULL,
                                 1000000ULL,
                                 10000000ULL,
                                 100000000ULL,
                                 1000000000ULL,
                                 10000000000ULL,
                                 100000000000ULL,
                                 1000000000000ULL,
                                 10000000000000ULL,
                                 100000000000000ULL,
                                 1000000000000000ULL,
                                 10000000000000000ULL,
                                 100000000000000000ULL,
                                 1000000000000000000ULL,
                                 10000000000000000000ULL};

// Decimal digits of v > 0: log10 from the bit length (1233 / 4096 ~ log10(2)), then one compare.
int DigitCount(uint64_t v) {
  const int t = ((64 - __builtin_clzll(v)) * 1233) >> 12;
  return t + (v >= kPow10[t] ? 1 : 0);
}

// Writes exactly 8 decimal digits of v < 10^8 at p, with 32-bit arithmetic.
void WriteEightDigits(uint32_t v, char* p) {
  const uint32_t high = v / 10000, low = v % 10000;
  std::memcpy(p, kTwoDigits + 2 * (high / 100), 2);
  std::memcpy(p + 2, kTwoDigits + 2 * (high % 100), 2);
  std::memcpy(p + 4, kTwoDigits + 2 * (low / 100), 2);
  std::memcpy(p + 6, kTwoDigits + 2 * (low % 100), 2);
}

// Writes the decimal digits of v < 10^8 so that they end just before `end`, two at a time.
void WriteSmallDigitsBefore(uint32_t v, char* end) {
  while (v >= 100) {
    const uint32_t r = v % 100;
    v /= 100;
    end -= 2;
    std::memcpy(end, kTwoDigits + 2 * r, 2);
  }
  if (v >= 10) {
    std::memcpy(end - 2, kTwoDigits + 2 * v, 2);
  } else {
    end[-1] = static_cast<char>('0' + v);
  }
}

// Writes the decimal digits of v < 10^24 so that they end just before `end`: in chunks of 8
// digits, as a 64-bit division by 10^8 is one multiplication and the rest is 32-bit.
void WriteDigitsBefore(uint64_t v, char* end) {
  while (v >= 100'000'000) {
    end -= 8;
    WriteEightDigits(static_cast<uint32_t>(v % 100'000'000), end);
    v /= 100'000'000;
  }
  WriteSmallDigitsBefore(static_cast<uint32_t>(v), end);
}

// Integers from here on may have more than one shortest digit string padded with zeros within
// half an ulp; std::to_chars writes their exact value in the fixed form ("-107549687808" for the
// float nearest -1.0754969e11, not "-107549690000").
template <typename F>
constexpr F kExactBelow = F(uint64_t{1} << std::numeric_limits<F>::digits);

// The exact decimal digits of an integral v >= kExactBelow and below 1e22 (so the shortest form
// was fixed). Rare and slow: one 128-bit division per digit.
template <typename F>
size_t WriteExactInteger(F v, char* out) {
  int exp2 = 0;
  const F m = std::frexp(v, &exp2);  // v = m * 2^exp2, m in [0.5, 1)
  constexpr int kDigits = std::numeric_limits<F>::digits;
  const auto mantissa = static_cast<uint64_t>(std::ldexp(m, kDigits));
  unsigned __int128 x = static_cast<unsigned __int128>(mantissa) << (exp2 - kDigits);
  char tmp[48];
  char* end = tmp + sizeof(tmp);
  char* q = end;
  do {
    *--q = static_cast<char>('0' + static_cast<int>(x % 10));
    x /= 10;
  } while (x != 0);
  std::memcpy(out, q, static_cast<size_t>(end - q));
  return static_cast<size_t>(end - q);
}

template <typename F>
size_t FormatShortestImpl(F v, char* out, bool json_float) {
  char* p = out;
  if (std::signbit(v)) {
    *p++ = '-';
    v = -v;
  }
  if (v == 0) {
    *p++ = '0';
    if (json_float) {
      *p++ = '.';
      *p++ = '0';
    }
    return static_cast<size_t>(p - out);
  }
  // The shortest digits that read back as v, the closest to v among them: the same digits as
  // libstdc++'s Ryu (JsonFormat.ShortestMatchesToCharsOnRandomBits compares them).
  const auto decimal = fmt::detail::dragonbox::to_decimal(v);
  uint64_t digits = decimal.significand;
  int e = decimal.exponent;  // v = digits * 10^e
  while (digits % 10 == 0) {
    digits /= 10;
    ++e;
  }
  const int n = DigitCount(digits);
  // std::to_chars's choice: the fixed form unless the scientific one is shorter.
  const int sci_exp = e + n - 1;
  const int abs_exp = sci_exp < 0 ? -sci_exp : sci_exp;
  const int sci_len = n + (n > 1 ? 1 : 0) + 2 + (abs_exp >= 100 ? 3 : 2);
  const int fixed_len = e >= 0 ? n + e : (n > -e ? n + 1 : 2 - e);
  if (fixed_len <= sci_len) {
    if (e >= 0) {  // "1234500"
      if (v < kExactBelow<F>) {
        WriteDigitsBefore(digits, p + n);
        std::memset(p + n, '0', static_cast<size_t>(e));
        p += n + e;
      } else {
        p += WriteExactInteger(v, p);
      }
      if (json_float) {
        *p++ = '.';
        *p++ = '0';
      }
    } else if (n > -e) {  // "123.45": the fraction moved one place right, through a copy of a
                          // constant size (no call; kShortestRoom allows it)
      const int whole = n + e;
      WriteDigitsBefore(digits, p + n);
      char fraction[24];
      std::memcpy(fraction, p + whole, sizeof(fraction));
      std::memcpy(p + whole + 1, fraction, sizeof(fraction));
      p[whole] = '.';
      p += n + 1;
    } else {  // "0.00123"
      p[0] = '0';
      p[1] = '.';
      std::memset(p + 2, '0', static_cast<size_t>(-e - n));
      p += 2 - e - n;
      WriteDigitsBefore(digits, p + n);
      p += n;
    }
  } else {  // "1.2345e+30": digits one place right, the first moved before the point
    WriteDigitsBefore(digits, p + n + 1);
    p[0] = p[1];
    if (n > 1) {
      p[1] = '.';
      p += n + 1;
    } else {
      p += 1;
    }
    *p++ = 'e';
    *p++ = sci_exp < 0 ? '-' : '+';
    if (abs_exp >= 100) {
      *p++ = static_cast<char>('0' + abs_exp / 100);
    }
    std::memcpy(p, kTwoDigits + 2 * (abs_exp % 100), 2);
    p += 2;
  }
  return static_cast<size_t>(p - out);
}

}  // namespace

size_t FormatShortest(double v, char* out, bool json_float) {
  return FormatShortestImpl(v, out, json_float);
}

size_t FormatShortest(float v, char* out, bool json_float) {
  return FormatShortestImpl(v, out, json_float);
}

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
