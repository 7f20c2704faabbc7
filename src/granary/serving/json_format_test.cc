#include "granary/serving/json_format.h"

#include <gtest/gtest.h>

#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "granary/testing/test_seed.h"

namespace granary::serving {
namespace {

TEST(JsonFormat, Rfc3339MatchesFormatTimestampEverywhere) {
  std::mt19937_64 rng(7);
  std::vector<int64_t> samples = {0,
                                  1,
                                  -1,
                                  999'999,
                                  -1'000'000,
                                  1'700'000'000'000'000,
                                  253'402'300'799'999'999 /* 9999-12-31T23:59:59.999999 */,
                                  253'402'300'800'000'000,
                                  -62'135'596'800'000'001};
  for (int i = 0; i < 2000; ++i) {
    samples.push_back(static_cast<int64_t>(rng() % 20'000'000'000'000'000ULL) -
                      10'000'000'000'000'000LL);
  }
  for (int64_t micros : samples) {
    char buf[kRfc3339Max];
    size_t n = FormatRfc3339(Timestamp::FromMicros(micros), buf);
    EXPECT_EQ(std::string(buf, n), FormatTimestamp(Timestamp::FromMicros(micros))) << micros;
  }
}

TEST(JsonFormat, Base64RoundTripsAndRejectsGarbage) {
  std::string out;
  AppendBase64("", &out);
  EXPECT_EQ(out, "");
  for (auto [plain, encoded] :
       std::vector<std::pair<std::string, std::string>>{{"f", "Zg=="},
                                                        {"fo", "Zm8="},
                                                        {"foo", "Zm9v"},
                                                        {"foobar", "Zm9vYmFy"},
                                                        {std::string("\x00\xff\xfe", 3), "AP/+"}}) {
    out.clear();
    AppendBase64(plain, &out);
    EXPECT_EQ(out, encoded);
    EXPECT_EQ(DecodeBase64(encoded).ValueOrDie(), plain);
  }
  EXPECT_EQ(DecodeBase64("AP_-").ValueOrDie(), std::string("\x00\xff\xfe", 3));  // URL-safe
  EXPECT_EQ(DecodeBase64("Zg").ValueOrDie(), "f");                               // no padding
  EXPECT_FALSE(DecodeBase64("Zm9v!").ok());
  EXPECT_FALSE(DecodeBase64("Z").ok());
}

TEST(JsonFormat, Rfc3339MillisWritesTheFractionAsFeastDoes) {
  auto text = [](int64_t micros) {
    char buf[kRfc3339Max];
    return std::string(buf, FormatRfc3339Millis(Timestamp::FromMicros(micros), buf));
  };
  EXPECT_EQ(text(1'800'000'000'000'000), "2027-01-15T08:00:00Z");
  EXPECT_EQ(text(1'800'000'000'250'000), "2027-01-15T08:00:00.250Z");
  EXPECT_EQ(text(1'800'000'000'250'001), "2027-01-15T08:00:00.250001Z");
  EXPECT_EQ(text(1'800'000'000'000'010), "2027-01-15T08:00:00.000010Z");
  EXPECT_EQ(text(-5'000), "1969-12-31T23:59:59.995Z");
}

// std::to_chars's shortest text of v, with ".0" when json_float and it has no point or exponent
// (the writer's text before FormatShortest).
template <typename F>
std::string ReferenceShortest(F v, bool json_float) {
  char buf[64];
  char* end = std::to_chars(buf, buf + sizeof(buf), v).ptr;
  std::string s(buf, end);
  if (json_float && s.find_first_of(".e") == std::string::npos) s += ".0";
  return s;
}

template <typename F, typename Bits>
void ExpectShortestMatchesToChars(const std::vector<F>& values) {
  for (F v : values) {
    if (!std::isfinite(v)) continue;
    for (bool json_float : {false, true}) {
      char buf[kShortestRoom];
      const size_t n = FormatShortest(v, buf, json_float);
      ASSERT_LE(n, kShortestMax);
      Bits bits;
      std::memcpy(&bits, &v, sizeof(v));
      ASSERT_EQ(std::string(buf, n), ReferenceShortest(v, json_float))
          << "bits 0x" << std::hex << uint64_t{bits} << std::dec << ", json_float " << json_float;
    }
  }
}

TEST(JsonFormat, ShortestMatchesToCharsOnRandomBits) {
  const uint64_t seed = testing::TestSeed();
  SCOPED_TRACE(testing::SeedTrace(seed));
  std::mt19937_64 rng(seed);
  std::vector<double> doubles = {0.0,
                                 -0.0,
                                 1.0,
                                 -1.0,
                                 0.1,
                                 5.0,
                                 1e15,
                                 1e16,
                                 1e17,
                                 1e21,
                                 1e22,
                                 1e23,
                                 123456789012345680000.0,
                                 1e-4,
                                 1e-5,
                                 0.000123,
                                 1e-7,
                                 1e100,
                                 1e-100,
                                 std::numeric_limits<double>::max(),
                                 std::numeric_limits<double>::min(),
                                 std::numeric_limits<double>::denorm_min(),
                                 std::numeric_limits<double>::lowest(),
                                 std::numeric_limits<double>::epsilon(),
                                 9007199254740992.0,
                                 9007199254740993.0,
                                 -2.2250738585072014e-308};
  std::vector<float> floats = {0.0f,
                               -0.0f,
                               0.1f,
                               5.0f,
                               1e10f,
                               1e-10f,
                               -1e30f,
                               3e38f,
                               1e-45f,
                               1e7f,
                               1e8f,
                               16777216.0f,
                               1e-5f,
                               std::numeric_limits<float>::max(),
                               std::numeric_limits<float>::min(),
                               std::numeric_limits<float>::denorm_min()};
  for (int i = 0; i < 200; ++i) {  // powers of ten and their neighbours, integers
    const double p = std::pow(10.0, i - 100);
    doubles.push_back(p);
    doubles.push_back(std::nextafter(p, 0.0));
    doubles.push_back(std::nextafter(p, 1e300));
    doubles.push_back(static_cast<double>(i) * 1000.0);
    floats.push_back(static_cast<float>(std::pow(10.0, (i % 80) - 40)));
  }
  for (int i = 0; i < 400'000; ++i) {
    const uint64_t bits = rng();
    double d;
    std::memcpy(&d, &bits, sizeof(d));
    doubles.push_back(d);
    // Values as features hold them: fractions of integers, integers, rounded decimals.
    doubles.push_back(static_cast<double>(rng() % 1'000'000) / 7.0);
    doubles.push_back(static_cast<double>(static_cast<int64_t>(rng() % 2'000'000) - 1'000'000));
    doubles.push_back(std::round(static_cast<double>(rng() % 100'000'000)) / 100.0);
    const uint32_t fbits = static_cast<uint32_t>(rng());
    float f;
    std::memcpy(&f, &fbits, sizeof(f));
    floats.push_back(f);
    floats.push_back(static_cast<float>(rng() % 1'000'000) / 7.0f);
  }
  ExpectShortestMatchesToChars<double, uint64_t>(doubles);
  ExpectShortestMatchesToChars<float, uint32_t>(floats);
  // Every float32 of one binade near 1 and of the subnormals, exhaustively.
  std::vector<float> binade;
  for (uint32_t bits = 0x3f800000u; bits < 0x3f800000u + (1u << 20); ++bits) {
    float f;
    std::memcpy(&f, &bits, sizeof(f));
    binade.push_back(f);
  }
  for (uint32_t bits = 1; bits < (1u << 16); ++bits) {
    float f;
    std::memcpy(&f, &bits, sizeof(f));
    binade.push_back(f);
  }
  ExpectShortestMatchesToChars<float, uint32_t>(binade);
}

}  // namespace
}  // namespace granary::serving
