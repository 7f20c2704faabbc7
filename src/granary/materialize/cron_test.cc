#include "granary/materialize/cron.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <ctime>

namespace granary {
namespace {

Timestamp At(const char* text) { return ParseTimestamp(text).ValueOrDie(); }

std::string NextAfter(const char* expr, const char* after,
                      CronSchedule::Zone zone = CronSchedule::Zone::kUtc) {
  auto s = CronSchedule::Parse(expr, zone);
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  if (!s.ok()) return "";
  return FormatTimestamp(s->Next(At(after)));
}

std::string ErrorOf(const char* expr) {
  auto s = CronSchedule::Parse(expr);
  EXPECT_FALSE(s.ok()) << expr;
  return s.ok() ? "" : s.status().message();
}

TEST(Cron, NightlyAtTwoRunsTheSameDayBeforeAndTheNextDayAfter) {
  EXPECT_EQ(NextAfter("0 2 * * *", "2026-11-25T01:59:30Z"), "2026-11-25T02:00:00Z");
  // Strictly after: exactly at 02:00 gives tomorrow.
  EXPECT_EQ(NextAfter("0 2 * * *", "2026-11-25T02:00:00Z"), "2026-11-26T02:00:00Z");
  EXPECT_EQ(NextAfter("0 2 * * *", "2026-11-25T02:00:00.000001Z"), "2026-11-26T02:00:00Z");
  EXPECT_EQ(NextAfter("0 2 * * *", "2026-12-31T03:00:00Z"), "2027-01-01T02:00:00Z");
}

TEST(Cron, StepsRangesAndLists) {
  EXPECT_EQ(NextAfter("*/15 * * * *", "2026-11-25T10:07:00Z"), "2026-11-25T10:15:00Z");
  EXPECT_EQ(NextAfter("*/15 * * * *", "2026-11-25T10:59:00Z"), "2026-11-25T11:00:00Z");
  EXPECT_EQ(NextAfter("10-30/10 8 * * *", "2026-11-25T08:21:00Z"), "2026-11-25T08:30:00Z");
  EXPECT_EQ(NextAfter("10-30/10 8 * * *", "2026-11-25T08:30:00Z"), "2026-11-26T08:10:00Z");
  EXPECT_EQ(NextAfter("5,45 */6 * * *", "2026-11-25T06:46:00Z"), "2026-11-25T12:05:00Z");
  EXPECT_EQ(NextAfter("50/5 * * * *", "2026-11-25T06:56:00Z"), "2026-11-25T07:50:00Z");
}

TEST(Cron, NamesAndSundayAsSeven) {
  // 2026-11-25 is a Wednesday.
  EXPECT_EQ(NextAfter("0 9 * * MON-FRI", "2026-11-27T10:00:00Z"), "2026-11-30T09:00:00Z");
  EXPECT_EQ(NextAfter("0 9 * * 7", "2026-11-25T00:00:00Z"), "2026-11-29T09:00:00Z");
  EXPECT_EQ(NextAfter("0 9 * * sun", "2026-11-25T00:00:00Z"), "2026-11-29T09:00:00Z");
  EXPECT_EQ(NextAfter("0 0 1 jan,Jul *", "2026-11-25T00:00:00Z"), "2027-01-01T00:00:00Z");
}

TEST(Cron, BothDayFieldsRestrictedMatchEither) {
  // The 1st or 15th, or any Monday (Vixie cron): after Wed 2026-11-25 the next is Mon 11-30.
  EXPECT_EQ(NextAfter("0 0 1,15 * MON", "2026-11-25T00:00:00Z"), "2026-11-30T00:00:00Z");
  // Only the day of month restricted: the 1st only.
  EXPECT_EQ(NextAfter("0 0 1 * *", "2026-11-25T00:00:00Z"), "2026-12-01T00:00:00Z");
}

TEST(Cron, LeapDayAndShortMonths) {
  EXPECT_EQ(NextAfter("0 0 29 2 *", "2026-03-01T00:00:00Z"), "2028-02-29T00:00:00Z");
  EXPECT_EQ(NextAfter("0 0 31 * *", "2026-11-25T00:00:00Z"), "2026-12-31T00:00:00Z");
}

TEST(Cron, Macros) {
  EXPECT_EQ(NextAfter("@hourly", "2026-11-25T10:07:00Z"), "2026-11-25T11:00:00Z");
  EXPECT_EQ(NextAfter("@daily", "2026-11-25T10:07:00Z"), "2026-11-26T00:00:00Z");
  EXPECT_EQ(NextAfter("@weekly", "2026-11-25T10:07:00Z"), "2026-11-29T00:00:00Z");
  EXPECT_EQ(NextAfter("@monthly", "2026-11-25T10:07:00Z"), "2026-12-01T00:00:00Z");
  EXPECT_EQ(NextAfter(" @yearly ", "2026-11-25T10:07:00Z"), "2027-01-01T00:00:00Z");
}

TEST(Cron, ErrorsNameTheFieldAndTheFix) {
  EXPECT_NE(ErrorOf("0 2 * *").find("has 4 fields"), std::string::npos);
  EXPECT_NE(ErrorOf("60 2 * * *").find("minute field: 60 is out of range 0-59"), std::string::npos);
  EXPECT_NE(ErrorOf("0 24 * * *").find("hour field: 24 is out of range 0-23"), std::string::npos);
  EXPECT_NE(ErrorOf("0 2 0 * *").find("day of month field: 0 is out of range 1-31"),
            std::string::npos);
  EXPECT_NE(ErrorOf("0 2 * FOO *").find("month field: unknown name 'FOO'; use one of JAN"),
            std::string::npos);
  EXPECT_NE(ErrorOf("0 2 * * 8").find("day of week field: 8 is out of range 0-7"),
            std::string::npos);
  EXPECT_NE(ErrorOf("30-10 * * * *").find("goes backwards"), std::string::npos);
  EXPECT_NE(ErrorOf("*/0 * * * *").find("step '0' must be a positive number"), std::string::npos);
  EXPECT_NE(ErrorOf("1,,2 * * * *").find("empty item"), std::string::npos);
  EXPECT_NE(ErrorOf("x * * * *").find("minute field: unknown name 'x'; this field takes numbers"),
            std::string::npos);
  EXPECT_NE(ErrorOf("0 0 30 2 *").find("would never run"), std::string::npos);
  EXPECT_NE(ErrorOf("@fortnightly").find("unknown macro"), std::string::npos);
  EXPECT_NE(ErrorOf("").find("has 0 fields"), std::string::npos);
}

TEST(Cron, EdgeCasesOfRangesStepsAndSpacing) {
  // 2026-11-25 is a Wednesday. FRI-7 runs to Sunday written as 7.
  EXPECT_EQ(NextAfter("0 0 * * 5-7", "2026-11-25T00:00:00Z"), "2026-11-27T00:00:00Z");
  EXPECT_EQ(NextAfter("0 0 * * 5-7", "2026-11-29T00:00:00Z"), "2026-12-04T00:00:00Z");
  // A step larger than its range leaves only the start.
  EXPECT_EQ(NextAfter("0-10/30 * * * *", "2026-11-25T10:00:00Z"), "2026-11-25T11:00:00Z");
  // Tabs and repeated spaces separate fields as well.
  EXPECT_EQ(NextAfter("0\t2   *  * *", "2026-11-25T01:00:00Z"), "2026-11-25T02:00:00Z");
  // The last minute of the year rolls over into the next.
  EXPECT_EQ(NextAfter("59 23 31 12 *", "2026-12-31T23:59:00Z"), "2027-12-31T23:59:00Z");
  // A day that only some months have: the 31st skips the short months.
  EXPECT_EQ(NextAfter("0 0 31 * *", "2027-01-31T00:00:00Z"), "2027-03-31T00:00:00Z");
  // Seconds in `after` are ignored: the next whole minute that matches.
  EXPECT_EQ(NextAfter("* * * * *", "2026-11-25T10:00:59.999999Z"), "2026-11-25T10:01:00Z");
}

TEST(Cron, QuartzExtensionsAreRejectedWithAMessage) {
  // Not crontab(5): L, W, # and a sixth (seconds) field.
  EXPECT_FALSE(CronSchedule::Parse("0 0 L * *").ok());
  EXPECT_FALSE(CronSchedule::Parse("0 0 15W * *").ok());
  EXPECT_FALSE(CronSchedule::Parse("0 0 * * 1#2").ok());
  EXPECT_NE(ErrorOf("0 0 2 * * *").find("has 6 fields"), std::string::npos);
}

class LocalZone : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* tz = getenv("TZ");
    saved_ = tz ? tz : "";
    had_ = tz != nullptr;
    setenv("TZ", "America/New_York", 1);
    tzset();
  }
  void TearDown() override {
    if (had_) {
      setenv("TZ", saved_.c_str(), 1);
    } else {
      unsetenv("TZ");
    }
    tzset();
  }
  std::string saved_;
  bool had_ = false;
};

TEST_F(LocalZone, EvaluatesInTheLocalTimeZone) {
  // 02:00 in New York in November (EST, UTC-5) is 07:00 UTC.
  EXPECT_EQ(NextAfter("0 2 * * *", "2026-11-25T00:00:00Z", CronSchedule::Zone::kLocal),
            "2026-11-25T07:00:00Z");
}

TEST_F(LocalZone, ATimeSkippedBySpringForwardIsSkippedThatDay) {
  // 2026-03-08: clocks go from 02:00 EST to 03:00 EDT, so 02:30 does not exist.
  EXPECT_EQ(NextAfter("30 2 * * *", "2026-03-08T05:00:00Z", CronSchedule::Zone::kLocal),
            "2026-03-09T06:30:00Z");
}

TEST_F(LocalZone, ARepeatedHourFiresOnce) {
  // 2026-11-01: clocks go from 02:00 EDT back to 01:00 EST; 01:30 happens twice.
  auto s = CronSchedule::Parse("30 1 * * *", CronSchedule::Zone::kLocal).ValueOrDie();
  Timestamp first = s.Next(At("2026-11-01T04:00:00Z"));
  EXPECT_EQ(FormatTimestamp(first), "2026-11-01T05:30:00Z");          // 01:30 EDT
  EXPECT_EQ(FormatTimestamp(s.Next(first)), "2026-11-02T06:30:00Z");  // next day, 01:30 EST
}

}  // namespace
}  // namespace granary
