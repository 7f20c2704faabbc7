// The first pass against a brute-force implementation of the rules on random data with many ties,
// in memory and partitioned with spilling; and the whole run against the same oracle.
#include "granary/offline/embedded/latest_rows.h"

#include <gtest/gtest.h>

#include <map>
#include <optional>
#include <random>
#include <tuple>

#include "granary/testing/materialize_repository.h"

namespace granary {
namespace {

using testing::At;
using testing::RiskRow;
using testing::TestRepo;

// Rows with few distinct times and created times (many ties, some full ties), in files.
std::vector<std::vector<RiskRow>> RandomFiles(uint64_t seed, int files, int rows_per_file,
                                              int64_t customers) {
  std::mt19937_64 rng(seed);
  std::vector<std::vector<RiskRow>> out(files);
  double value = 0;
  for (auto& file : out) {
    for (int i = 0; i < rows_per_file; ++i) {
      RiskRow r;
      r.customer_id = static_cast<int64_t>(rng() % customers);
      r.event = At("2026-11-25T00:00:00Z") + Duration::Hours(static_cast<int64_t>(rng() % 4));
      const int c = static_cast<int>(rng() % 4);
      if (c > 0) r.created = At("2026-11-25T00:00:00Z") + Duration::Minutes(c);
      r.score = ++value;  // identifies the row
      file.push_back(r);
    }
  }
  return out;
}

// The rules: greatest (event, created with null lowest, read position).
std::map<int64_t, const RiskRow*> Oracle(const std::vector<std::vector<RiskRow>>& files) {
  std::map<int64_t, std::tuple<int64_t, int64_t, int64_t>> best;
  std::map<int64_t, const RiskRow*> out;
  int64_t position = 0;
  for (const auto& file : files) {
    for (const RiskRow& r : file) {
      auto key = std::make_tuple(
          r.event.micros, r.created ? r.created->micros : std::numeric_limits<int64_t>::min(),
          position++);
      auto it = best.find(r.customer_id);
      if (it == best.end() || key > it->second) {
        best[r.customer_id] = key;
        out[r.customer_id] = &r;
      }
    }
  }
  return out;
}

struct Mode {
  const char* name;
  int force_partitions;
  int64_t budget;
  bool outgrows = false;  // the entities need more than the budget
};

class LatestRowsAgainstTheRules : public ::testing::TestWithParam<std::tuple<Mode, uint64_t>> {};

TEST_P(LatestRowsAgainstTheRules, MaterializedValuesAreTheLatestRows) {
  const auto& [mode, seed] = GetParam();
  auto repo = TestRepo::Make("rocksdb");
  auto files = RandomFiles(seed, 3, 3000, 500);
  for (size_t f = 0; f < files.size(); ++f) {
    repo->WriteRows("part-" + std::to_string(f), files[f], /*row_group_rows=*/700);
  }
  MaterializeOptions options = repo->Options();
  SetMemoryBudget(&options, mode.budget, "");
  options.offline.embedded.TEST_force_partitions = mode.force_partitions;
  options.write_batch_rows = 50;
  MaterializeRequest request;
  request.kind = MaterializeRequest::Kind::kInterval;
  request.start = At("2026-11-24T00:00:00Z");
  request.end = At("2026-11-25T10:00:00Z");
  auto report = Materialize(repo->config, request, options, repo->store(), nullptr);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  const ViewMaterialization& v = report->views[0];
  ASSERT_TRUE(v.status.ok()) << v.status.ToString();
  if (mode.force_partitions > 0) {
    EXPECT_EQ(v.partitions, mode.force_partitions);
    EXPECT_GT(v.bytes_spilled, 0) << "the tiny budget should have spilled";
  } else if (mode.outgrows) {
    // 500 entities need about 36 KB of table, more than the budget: the scan starts again
    // partitioned, after reading at least the rows that showed it.
    EXPECT_GE(v.partitions, 2);
    EXPECT_GT(v.bytes_spilled, 0);
    EXPECT_GT(v.scan.rows_read_twice, 0);
    EXPECT_LT(v.scan.rows_read_twice, 9000);
  } else {
    // The 9,000 rows would take 650 KB as distinct entities, more than the smaller budget, but
    // their 500 entities fit: nothing is partitioned or spilled.
    EXPECT_EQ(v.partitions, 0);
    EXPECT_EQ(v.bytes_spilled, 0);
    EXPECT_EQ(v.scan.rows_read_twice, 0);
  }
  const auto expected = Oracle(files);
  EXPECT_EQ(v.entities, static_cast<int64_t>(expected.size()));
  std::vector<int64_t> ids;
  for (const auto& [id, row] : expected) ids.push_back(id);
  auto online = repo->ReadRisk(ids);
  for (const auto& [id, row] : expected) {
    ASSERT_EQ(online[id].status, FeatureStatus::kPresent) << "seed " << seed << " id " << id;
    ASSERT_EQ(online[id].score, row->score) << "seed " << seed << " id " << id;
    ASSERT_EQ(online[id].event, row->event) << "seed " << seed << " id " << id;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Seeds, LatestRowsAgainstTheRules,
    ::testing::Combine(::testing::Values(Mode{"in_memory", 0, int64_t{1} << 30},
                                         Mode{"partitioned_spilled", 7, 16 * 1024},
                                         Mode{"many_rows_few_entities", 0, 128 * 1024},
                                         Mode{"outgrown_then_partitioned", 0, 16 * 1024, true}),
                       ::testing::Values(1u, 2u, 3u)),
    [](const auto& info) {
      return std::string(std::get<0>(info.param).name) + "_seed" +
             std::to_string(std::get<1>(info.param));
    });

TEST(LatestRowTable, CompoundKeysWithStringsAndNullsKeepTheLatestRowEach) {
  arrow::StringBuilder names;
  arrow::Int32Builder numbers;
  arrow::TimestampBuilder events(arrow::timestamp(arrow::TimeUnit::MICRO, "UTC"),
                                 arrow::default_memory_pool());
  // (name, number, event): "a",1 twice (the later wins), "a",2 (another entity), "ab" vs "a"
  // with the same bytes run together must differ, and a null key.
  ASSERT_TRUE(names.AppendValues({"a", "a", "a", "ab", "a"}).ok());
  ASSERT_TRUE(names.AppendNull().ok());
  ASSERT_TRUE(numbers.AppendValues({1, 1, 2, 1, 1, 1}).ok());
  ASSERT_TRUE(events.AppendValues({10, 30, 20, 5, 30}).ok());
  ASSERT_TRUE(events.Append(99).ok());
  std::vector<std::shared_ptr<arrow::Array>> keys = {names.Finish().ValueOrDie(),
                                                     numbers.Finish().ValueOrDie()};
  auto event = events.Finish().ValueOrDie();
  LatestRowTable table(/*single_integer_key=*/false);
  ASSERT_TRUE(table.Offer(keys, *event, nullptr, 100).ok());
  EXPECT_EQ(table.entities(), 3);
  EXPECT_EQ(table.null_key_rows(), 1);
  std::vector<ChosenRow> chosen;
  table.TakeChosen(&chosen);
  std::sort(chosen.begin(), chosen.end(),
            [](const ChosenRow& a, const ChosenRow& b) { return a.index < b.index; });
  ASSERT_EQ(chosen.size(), 3u);
  EXPECT_EQ(chosen[0].index, 102);  // "a",2
  EXPECT_EQ(chosen[1].index, 103);  // "ab",1
  EXPECT_EQ(chosen[2].index, 104);  // "a",1: event 30 twice, the row read last
  EXPECT_EQ(chosen[2].event_ts, 30);
  EXPECT_EQ(table.entities(), 0);
}

// The integer table (open addressing) through many doublings: 100,000 entities of up to three
// rows each, offered in shuffled batches with null keys, against a map; its memory is its slots.
TEST(LatestRowTable, IntegerKeysGrowingTableKeepsTheLatestRowOfEveryEntity) {
  std::mt19937_64 rng(17);
  struct Row {
    std::optional<int64_t> key;
    int64_t event;
  };
  std::vector<Row> rows;
  for (int64_t id = 0; id < 100'000; ++id) {
    const int64_t key = id * 7919 - 3'000'000;  // negative and positive values
    for (uint64_t r = 0; r <= rng() % 3; ++r)
      rows.push_back({key, static_cast<int64_t>(rng() % 5)});
  }
  for (int i = 0; i < 50; ++i) rows.push_back({std::nullopt, 1});
  std::shuffle(rows.begin(), rows.end(), rng);
  // The oracle: per key, the greatest (event, position); no created timestamps.
  std::map<int64_t, std::pair<int64_t, int64_t>> expected;
  for (size_t p = 0; p < rows.size(); ++p) {
    if (!rows[p].key) continue;
    auto [it, inserted] = expected.try_emplace(*rows[p].key, rows[p].event, p);
    if (!inserted && std::make_pair(rows[p].event, static_cast<int64_t>(p)) >= it->second) {
      it->second = {rows[p].event, p};
    }
  }
  LatestRowTable table(/*single_integer_key=*/true);
  for (size_t first = 0; first < rows.size(); first += 9'999) {
    const size_t last = std::min(rows.size(), first + 9'999);
    arrow::Int64Builder keys;
    arrow::TimestampBuilder events(arrow::timestamp(arrow::TimeUnit::MICRO, "UTC"),
                                   arrow::default_memory_pool());
    for (size_t p = first; p < last; ++p) {
      ASSERT_TRUE((rows[p].key ? keys.Append(*rows[p].key) : keys.AppendNull()).ok());
      ASSERT_TRUE(events.Append(rows[p].event).ok());
    }
    std::vector<std::shared_ptr<arrow::Array>> key_columns = {keys.Finish().ValueOrDie()};
    ASSERT_TRUE(
        table
            .Offer(key_columns, *events.Finish().ValueOrDie(), nullptr, static_cast<int64_t>(first))
            .ok());
  }
  EXPECT_EQ(table.entities(), static_cast<int64_t>(expected.size()));
  EXPECT_EQ(table.null_key_rows(), 50);
  // Slots of 32 bytes, between 35 % and 70 % full.
  EXPECT_LE(table.memory_bytes(), static_cast<int64_t>(expected.size()) * 32 * 100 / 35);
  EXPECT_GE(table.memory_bytes(), static_cast<int64_t>(expected.size()) * 32 * 100 / 70);
  std::vector<ChosenRow> chosen;
  table.TakeChosen(&chosen);
  std::sort(chosen.begin(), chosen.end(),
            [](const ChosenRow& a, const ChosenRow& b) { return a.index < b.index; });
  std::vector<ChosenRow> want;
  for (const auto& [key, best] : expected) want.push_back({best.second, best.first});
  std::sort(want.begin(), want.end(),
            [](const ChosenRow& a, const ChosenRow& b) { return a.index < b.index; });
  ASSERT_EQ(chosen.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    ASSERT_EQ(chosen[i].index, want[i].index) << i;
    ASSERT_EQ(chosen[i].event_ts, want[i].event_ts) << i;
  }
  EXPECT_EQ(table.entities(), 0);
  EXPECT_EQ(table.memory_bytes(), 0);
}

// A table bounded at 64 KiB (2,048 slots) takes distinct keys until the next one would double its
// slots past the bound, then stops: full, never larger than the bound, every key it took kept.
TEST(LatestRowTable, ABoundedIntegerTableStopsInsteadOfGrowingPastItsBound) {
  constexpr int64_t kBound = 64 * 1024;
  arrow::Int64Builder keys;
  arrow::TimestampBuilder events(arrow::timestamp(arrow::TimeUnit::MICRO, "UTC"),
                                 arrow::default_memory_pool());
  for (int64_t id = 0; id < 10'000; ++id) {
    ASSERT_TRUE(keys.Append(id).ok());
    ASSERT_TRUE(events.Append(id).ok());
  }
  std::vector<std::shared_ptr<arrow::Array>> key_columns = {keys.Finish().ValueOrDie()};
  const auto event_column = events.Finish().ValueOrDie();
  LatestRowTable bounded(/*single_integer_key=*/true);
  bounded.set_max_bytes(kBound);
  ASSERT_TRUE(bounded.Offer(key_columns, *event_column, nullptr, 0).ok());
  EXPECT_TRUE(bounded.full());
  EXPECT_EQ(bounded.memory_bytes(), kBound);
  // 70 % of 2,048 slots.
  EXPECT_EQ(bounded.entities(), 2048 * 70 / 100);
  std::vector<ChosenRow> chosen;
  bounded.TakeChosen(&chosen);
  std::sort(chosen.begin(), chosen.end(),
            [](const ChosenRow& a, const ChosenRow& b) { return a.index < b.index; });
  ASSERT_EQ(chosen.size(), size_t{2048 * 70 / 100});
  for (size_t i = 0; i < chosen.size(); ++i) {
    ASSERT_EQ(chosen[i].index, static_cast<int64_t>(i));  // the first keys offered, in order
    ASSERT_EQ(chosen[i].event_ts, static_cast<int64_t>(i));
  }
  // Without a bound the same rows all fit.
  LatestRowTable unbounded(/*single_integer_key=*/true);
  ASSERT_TRUE(unbounded.Offer(key_columns, *event_column, nullptr, 0).ok());
  EXPECT_FALSE(unbounded.full());
  EXPECT_EQ(unbounded.entities(), 10'000);
}

}  // namespace
}  // namespace granary
