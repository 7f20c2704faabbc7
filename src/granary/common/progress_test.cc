#include "granary/common/progress.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <thread>
#include <vector>

namespace granary {
namespace {

std::string ReadAll(std::FILE* f) {
  std::rewind(f);
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
  return out;
}

TEST(Progress, HumanCountKeepsThreeSignificantDigits) {
  EXPECT_EQ(Progress::HumanCount(950), "950");
  EXPECT_EQ(Progress::HumanCount(1'234), "1.23K");
  EXPECT_EQ(Progress::HumanCount(41'200), "41.2K");
  EXPECT_EQ(Progress::HumanCount(412'000), "412K");
  EXPECT_EQ(Progress::HumanCount(2'500'000), "2.50M");
  EXPECT_EQ(Progress::HumanCount(3e9), "3.00G");
}

TEST(Progress, HumanDurationPicksUnits) {
  using std::chrono::seconds;
  EXPECT_EQ(Progress::HumanDuration(std::chrono::milliseconds(2100)), "2.1s");
  EXPECT_EQ(Progress::HumanDuration(seconds(42)), "42s");
  EXPECT_EQ(Progress::HumanDuration(seconds(125)), "2m05s");
  EXPECT_EQ(Progress::HumanDuration(seconds(3720)), "1h02m");
}

TEST(Progress, LogModeWritesOneFinalLineForAShortJobStampedWithTheTime) {
  const ManualClock clock(ParseTimestamp("2026-12-05T02:00:10.5Z").ValueOrDie());
  std::FILE* f = std::tmpfile();
  ASSERT_NE(f, nullptr);
  {
    Progress p("customer_risk", 2000, "rows",
               {.out = f, .mode = ProgressOptions::Mode::kLog, .clock = &clock});
    p.Add(1500);
    p.Add(500);
    EXPECT_EQ(p.done(), 2000);
  }
  const std::string out = ReadAll(f);
  std::fclose(f);
  EXPECT_EQ(out.rfind("2026-12-05T02:00:10.500000Z customer_risk: 2.00K/2.00K rows in ", 0), 0u)
      << out;
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << out;
}

TEST(Progress, LogModeReportsPercentRateAndEtaWhileRunning) {
  std::FILE* f = std::tmpfile();
  ASSERT_NE(f, nullptr);
  Progress p("bay_demand", 1000, "rows",
             {.out = f,
              .mode = ProgressOptions::Mode::kLog,
              .log_interval = std::chrono::milliseconds(0)});
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  p.Add(250);
  p.Finish();
  p.Finish();  // a second call prints nothing
  const std::string out = ReadAll(f);
  std::fclose(f);
  EXPECT_NE(out.find("bay_demand: 250/1.00K rows (25%), "), std::string::npos) << out;
  EXPECT_NE(out.find("ETA "), std::string::npos) << out;
  EXPECT_NE(out.find("bay_demand: 250/1.00K rows in "), std::string::npos) << out;
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 2) << out;
}

TEST(Progress, LogTimePrefixIsTheTimeOffATerminalOnly) {
  const ManualClock clock(ParseTimestamp("2026-12-05T02:00:00Z").ValueOrDie());
  std::FILE* f = std::tmpfile();
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(LogTimePrefix(f, &clock), "2026-12-05T02:00:00Z ");
  std::fclose(f);
  EXPECT_EQ(LogTimePrefix(nullptr, &clock), "");
}

TEST(Progress, TerminalModeRedrawsABarInPlace) {
  std::FILE* f = std::tmpfile();
  ASSERT_NE(f, nullptr);
  Progress p("datagen", 100, "rows",
             {.out = f,
              .mode = ProgressOptions::Mode::kTerminal,
              .redraw_interval = std::chrono::milliseconds(0)});
  std::this_thread::sleep_for(std::chrono::milliseconds(2));
  p.Add(50);
  p.Finish();
  const std::string out = ReadAll(f);
  std::fclose(f);
  EXPECT_NE(out.find("\rdatagen [##########..........]  50%  50/100 rows"), std::string::npos)
      << out;
  EXPECT_EQ(out.back(), '\n');
}

TEST(Progress, UnknownTotalShowsCountAndRateOnly) {
  std::FILE* f = std::tmpfile();
  ASSERT_NE(f, nullptr);
  {
    Progress p("scan", 0, "files", {.out = f, .mode = ProgressOptions::Mode::kLog});
    p.Add(7);
  }
  const std::string out = ReadAll(f);
  std::fclose(f);
  EXPECT_NE(out.find("Z scan: 7 files in "), std::string::npos) << out;
  EXPECT_EQ(out.find('%'), std::string::npos) << out;
}

TEST(Progress, CountsFromManyThreads) {
  Progress p("parallel", 0, "rows", {.mode = ProgressOptions::Mode::kSilent});
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10'000; ++i) p.Add(1);
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(p.done(), 40'000);
}

}  // namespace
}  // namespace granary
