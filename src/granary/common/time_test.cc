#include "granary/common/time.h"

#include <gtest/gtest.h>

#include <limits>

namespace granary {
namespace {

int64_t Micros(std::string_view s) { return ParseTimestamp(s).ValueOrDie().micros; }

TEST(ParseTimestamp, AcceptsDateOnlyAsMidnightUtc) {
  EXPECT_EQ(Micros("1970-01-01"), 0);
  EXPECT_EQ(Micros("2026-11-23"), Timestamp::FromSeconds(1795392000).micros);
}

TEST(ParseTimeOrNow, NowIsLeftToTheCallersClockAndOtherTextIsATime) {
  auto now = ParseTimeOrNow("now");
  ASSERT_TRUE(now.ok());
  EXPECT_FALSE(now->has_value());
  auto at = ParseTimeOrNow("2026-11-23T02:00:00Z");
  ASSERT_TRUE(at.ok() && at->has_value());
  EXPECT_EQ(**at, *ParseTimestamp("2026-11-23T02:00:00Z"));
  auto bad = ParseTimeOrNow("tomorrow");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("or write 'now'"), std::string::npos);
}

TEST(ParseTimestamp, NaiveValuesAreUtc) {
  EXPECT_EQ(Micros("2026-11-23T02:00:00"), Micros("2026-11-23T02:00:00Z"));
  EXPECT_EQ(Micros("2026-11-23 02:00:00"), Micros("2026-11-23T02:00:00Z"));
  EXPECT_EQ(Micros("2026-11-23T02:00"), Micros("2026-11-23T02:00:00Z"));
}

TEST(ParseTimestamp, AppliesOffsets) {
  EXPECT_EQ(Micros("2026-11-23T03:00:00+01:00"), Micros("2026-11-23T02:00:00Z"));
  EXPECT_EQ(Micros("2026-11-22T20:30:00-0530"), Micros("2026-11-23T02:00:00Z"));
  EXPECT_EQ(Micros("2026-11-23T04:00:00+02"), Micros("2026-11-23T02:00:00Z"));
  EXPECT_EQ(Micros("2026-11-23T02:00:00-00:00"), Micros("2026-11-23T02:00:00Z"));
}

TEST(ParseTimestamp, KeepsMicrosecondsAndTruncatesBeyond) {
  EXPECT_EQ(Micros("1970-01-01T00:00:00.5Z"), 500000);
  EXPECT_EQ(Micros("1970-01-01T00:00:00.000001Z"), 1);
  EXPECT_EQ(Micros("1970-01-01T00:00:00.123456789Z"), 123456);
}

TEST(ParseTimestamp, HandlesDatesBeforeTheEpochAndLeapYears) {
  EXPECT_EQ(Micros("1969-12-31T23:59:59Z"), -1000000);
  EXPECT_TRUE(ParseTimestamp("2024-02-29").ok());
  EXPECT_FALSE(ParseTimestamp("2023-02-29").ok());
}

TEST(ParseTimestamp, RejectsMalformedTextWithAClearMessage) {
  for (const char* bad :
       {"", "2026-13-01", "2026-11-31", "26-11-23", "2026-11-23T25:00", "2026-11-23T02:00:00+1",
        "2026-11-23T02:00:00 UTC", "yesterday", "2026-11-23T02:00:00."}) {
    auto r = ParseTimestamp(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find("expected ISO 8601"), std::string::npos) << bad;
  }
}

TEST(FormatTimestamp, RoundTripsThroughParse) {
  for (const char* s :
       {"1970-01-01T00:00:00Z", "2026-11-23T02:00:00Z", "1969-12-31T23:59:59.999999Z",
        "2000-02-29T12:34:56.000001Z", "1900-01-01T00:00:00Z"}) {
    EXPECT_EQ(FormatTimestamp(ParseTimestamp(s).ValueOrDie()), s);
  }
}

TEST(CivilFromDays, InvertsDaysFromCivilAcrossErasAndLeapDays) {
  for (int64_t days = -800'000; days <= 3'000'000; days += 997) {
    const CivilDate d = CivilFromDays(days);
    EXPECT_EQ(DaysFromCivil(d.year, d.month, d.day), days);
  }
  const CivilDate leap = CivilFromDays(DaysFromCivil(2024, 2, 29));
  EXPECT_EQ(leap.year, 2024);
  EXPECT_EQ(leap.month, 2u);
  EXPECT_EQ(leap.day, 29u);
  const CivilDate before = CivilFromDays(-1);
  EXPECT_EQ(before.year, 1969);
  EXPECT_EQ(before.month, 12u);
  EXPECT_EQ(before.day, 31u);
}

TEST(FloorDiv, RoundsTowardsNegativeInfinity) {
  EXPECT_EQ(FloorDiv(7, 2), 3);
  EXPECT_EQ(FloorDiv(-7, 2), -4);
  EXPECT_EQ(FloorDiv(-8, 2), -4);
  EXPECT_EQ(FloorDiv(-1, 1'000'000), -1);
  EXPECT_EQ(FloorDiv(0, 1000), 0);
}

TEST(ParseDuration, AcceptsUnitsAndCombinations) {
  EXPECT_EQ(ParseDuration("90d").ValueOrDie(), Duration::Days(90));
  EXPECT_EQ(ParseDuration("36h").ValueOrDie(), Duration::Hours(36));
  EXPECT_EQ(ParseDuration("2w").ValueOrDie(), Duration::Days(14));
  EXPECT_EQ(ParseDuration("1d12h").ValueOrDie(), Duration::Hours(36));
  EXPECT_EQ(ParseDuration("15m").ValueOrDie(), Duration::Minutes(15));
  EXPECT_EQ(ParseDuration("500ms").ValueOrDie(), Duration::Microseconds(500000));
  EXPECT_EQ(ParseDuration("0").ValueOrDie(), Duration{});
}

TEST(ParseDuration, RejectsMissingOrUnknownUnits) {
  for (const char* bad : {"", "90", "90x", "d", "-1d", "1.5h", "99999999999999999999d"}) {
    EXPECT_FALSE(ParseDuration(bad).ok()) << bad;
  }
}

TEST(ParseDuration, RejectsValuesBeyondInt64MicrosecondsWithoutOverflow) {
  // The largest whole number of days fits, and so does the sum with the hours left over.
  EXPECT_EQ(ParseDuration("106751991d").ValueOrDie(), Duration::Days(106751991));
  EXPECT_EQ(ParseDuration("106751991d4h").ValueOrDie(),
            Duration{Duration::Days(106751991).micros + Duration::Hours(4).micros});
  // Each part fits on its own but the sum does not (the signed overflow UBSan reported in
  // `total += n * scale`), a single part is too large, or the number itself is.
  for (const char* big : {"106751991d5h", "106751992d", "9223372036854775807us1us",
                          "9223372036854775808us", "99999999999999999999d", "15250285w"}) {
    auto d = ParseDuration(big);
    ASSERT_FALSE(d.ok()) << big;
    EXPECT_EQ(d.status().code(), StatusCode::kInvalidArgument) << big;
    EXPECT_NE(d.status().message().find("duration too large"), std::string::npos)
        << d.status().ToString();
    EXPECT_NE(d.status().message().find(big), std::string::npos) << d.status().ToString();
  }
  EXPECT_EQ(ParseDuration("9223372036854775807us").ValueOrDie(),
            Duration{std::numeric_limits<int64_t>::max()});
}

TEST(FormatDuration, UsesTheLargestExactUnits) {
  EXPECT_EQ(FormatDuration(Duration::Days(90)), "90d");
  EXPECT_EQ(FormatDuration(Duration::Hours(36)), "1d12h");
  EXPECT_EQ(FormatDuration(Duration{}), "0s");
}

}  // namespace
}  // namespace granary
