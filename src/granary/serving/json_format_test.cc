#include "granary/serving/json_format.h"

#include <gtest/gtest.h>

#include <random>

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

}  // namespace
}  // namespace granary::serving
