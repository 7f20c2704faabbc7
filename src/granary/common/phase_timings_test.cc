#include "granary/common/phase_timings.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <thread>
#include <vector>

namespace granary {
namespace {

TEST(PhaseTimings, RecordsPhasesInTheOrderTheyEnd) {
  PhaseTimings timings;
  {
    auto read = PhaseTimings::Start(&timings, "read");
    auto inner = PhaseTimings::Start(&timings, "decode");
    inner.End();
    inner.End();  // a second End records nothing
  }
  PhaseTimings::Start(&timings, "write").End();
  const auto phases = timings.phases();
  ASSERT_EQ(phases.size(), 3u);
  EXPECT_EQ(phases[0].name, "decode");
  EXPECT_EQ(phases[1].name, "read");
  EXPECT_EQ(phases[2].name, "write");
  for (const auto& p : phases) {
    EXPECT_GE(p.wall_seconds, 0);
    EXPECT_GE(p.cpu_seconds, 0);
    EXPECT_GE(p.cpu_seconds, p.system_seconds);
  }
}

TEST(PhaseTimings, NullTimingsRecordNothing) {
  auto scope = PhaseTimings::Start(nullptr, "nowhere");
  scope.End();  // must not crash
  PhaseTimings timings;
  auto moved = PhaseTimings::Start(&timings, "moved");
  { PhaseTimings::Scope taken(std::move(moved)); }  // recorded once, by the scope it moved to
  moved.End();
  EXPECT_EQ(timings.phases().size(), 1u);
}

TEST(PhaseTimings, ProcessCpuCountsEveryThread) {
  // The process's CPU clock never goes back, and work on another thread counts in it.
  const double before = PhaseTimings::ProcessCpuSeconds();
  std::thread worker([] {
    volatile uint64_t x = 0;
    for (int i = 0; i < 20'000'000; ++i) x = x + i;
  });
  worker.join();
  EXPECT_GE(PhaseTimings::ProcessCpuSeconds(), before);
}

TEST(PhaseTimings, ReportHasOneAlignedLinePerPhase) {
  PhaseTimings timings;
  timings.Add({"view0: match pass", 2.0, 3.0, 0.25});
  timings.Add({"write output", 1.0, 1.0, 0.5});
  EXPECT_EQ(timings.Report(),
            "  view0: match pass  wall   2.000 s  CPU   3.000 s (system  0.250 s)  cores 1.50\n"
            "  write output       wall   1.000 s  CPU   1.000 s (system  0.500 s)  cores 1.00\n");
}

TEST(PhaseTimings, AddIsSafeFromManyThreads) {
  PhaseTimings timings;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&timings, t] {
      for (int i = 0; i < 100; ++i) timings.Add({"t" + std::to_string(t), 0, 0, 0});
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(timings.phases().size(), 400u);
}

}  // namespace
}  // namespace granary
