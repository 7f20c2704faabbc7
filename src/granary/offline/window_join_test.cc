// Historical retrieval (JoinHistoricalFeatures, the embedded engine's) with window aggregations:
// the out-of-core path (partitions spilled past a small budget, several threads) and the reads in
// time slices of the entity rows give the same values as the in-memory one, and all equal a
// brute-force rescan of each row's window.
#include "granary/offline/window_join.h"

#include <arrow/api.h>
#include <arrow/util/byte_size.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <random>

#include "granary/aggregation/window_kernel.h"
#include "granary/common/temp_dir.h"
#include "granary/offline/historical.h"
#include "granary/offline/partitioner.h"
#include "granary/offline/source_inspector.h"
#include "granary/offline/table_io.h"
#include "granary/registry/loader.h"
#include "granary/registry/validator.h"
#include "granary/testing/test_seed.h"

namespace granary {
namespace {

constexpr int64_t kHour = 3'600'000'000;

constexpr const char* kDefinitions = R"yaml(
entities:
  - {name: bay, join_keys: [bay_id], value_type: string}
data_sources:
  - {name: arrivals, path: arrivals.parquet, timestamp_field: event_timestamp}
feature_views:
  - name: bay_agg
    entities: [bay]
    source: arrivals
    granularity: 1h
    aggregations:
      - {name: arrivals_3h, function: count, window: 3h}
      - {name: paid_3h, function: sum, column: paid, where: card, window: 3h}
      - {name: last_paid_1d, function: last, column: paid, window: 1d}
)yaml";

std::shared_ptr<arrow::DataType> TimeType() {
  return arrow::timestamp(arrow::TimeUnit::MICRO, "UTC");
}

struct Events {
  std::vector<std::string> bay;
  std::vector<int64_t> time, paid;
  std::vector<bool> card;
};

// Appends an event of `bay` at `time` (microseconds) paying a random amount, by card two times
// in three.
void AddEvent(Events* events, std::string bay, int64_t time, std::mt19937_64& rng) {
  events->bay.push_back(std::move(bay));
  events->time.push_back(time);
  events->paid.push_back(static_cast<int64_t>(rng() % 1000));
  events->card.push_back(rng() % 3 != 0);
}

// Writes `events` to dir/arrivals.parquet and loads kDefinitions over it (aggregation types
// inferred from the file, validated).
Definitions WriteEventsAndLoad(const Events& events, const std::filesystem::path& dir) {
  arrow::StringBuilder bay;
  arrow::TimestampBuilder time(TimeType(), arrow::default_memory_pool());
  arrow::Int64Builder paid;
  arrow::BooleanBuilder card;
  for (size_t i = 0; i < events.time.size(); ++i) {
    EXPECT_TRUE(bay.Append(events.bay[i]).ok());
    EXPECT_TRUE(time.Append(events.time[i]).ok());
    EXPECT_TRUE(paid.Append(events.paid[i]).ok());
    EXPECT_TRUE(card.Append(events.card[i]).ok());
  }
  auto schema = arrow::schema(
      {arrow::field("bay_id", arrow::utf8()), arrow::field("event_timestamp", TimeType()),
       arrow::field("paid", arrow::int64()), arrow::field("card", arrow::boolean())});
  auto table = arrow::Table::Make(schema, {bay.Finish().ValueOrDie(), time.Finish().ValueOrDie(),
                                           paid.Finish().ValueOrDie(), card.Finish().ValueOrDie()});
  EXPECT_TRUE(WriteTableFile(*table, dir / "arrivals.parquet").ok());
  Definitions defs;
  Diagnostics diag;
  LoadDefinitionsText("defs.yaml", kDefinitions, &defs, &diag);
  FileSourceInspector inspector(dir);
  InferAggregationTypes(&defs, &inspector);
  ValidateDefinitions(defs, &inspector, &diag);
  EXPECT_FALSE(diag.has_errors()) << diag.ToStatus().ToString();
  return defs;
}

// Every `step`-th row's answers in `table` against a rescan of all events: arrivals_3h,
// paid_3h (where card) and last_paid_1d (ties on time: the event read last wins).
void ExpectBruteForceAnswers(const arrow::Table& table,
                             const std::vector<std::pair<std::string, int64_t>>& rows,
                             const Events& events, size_t step) {
  auto column = [&](const char* name) {
    return std::static_pointer_cast<arrow::Int64Array>(
        arrow::Concatenate(table.GetColumnByName(name)->chunks()).ValueOrDie());
  };
  auto count = column("arrivals_3h");
  auto paid = column("paid_3h");
  auto last = column("last_paid_1d");
  for (size_t r = 0; r < rows.size(); r += step) {
    const auto& [bay, t] = rows[r];
    const int64_t start3 = aggregation::WindowStart(t, Duration::Hours(3), Duration::Hours(1));
    const int64_t start1d = aggregation::WindowStart(t, Duration::Days(1), Duration::Hours(1));
    int64_t n = 0, sum = 0, sum_n = 0;
    std::optional<int64_t> latest;
    int64_t latest_t = 0;
    for (size_t e = 0; e < events.time.size(); ++e) {
      if (events.bay[e] != bay || events.time[e] > t) continue;
      if (events.time[e] >= start3) {
        ++n;
        if (events.card[e]) sum += events.paid[e], ++sum_n;
      }
      if (events.time[e] >= start1d && (!latest || events.time[e] >= latest_t)) {
        latest = events.paid[e];
        latest_t = events.time[e];
      }
    }
    ASSERT_EQ(count->Value(r), n) << "row " << r;
    ASSERT_EQ(paid->IsNull(r), sum_n == 0) << "row " << r;
    if (sum_n > 0) {
      EXPECT_EQ(paid->Value(r), sum) << "row " << r;
    }
    ASSERT_EQ(last->IsNull(r), !latest.has_value()) << "row " << r;
    if (latest) {
      EXPECT_EQ(last->Value(r), *latest) << "row " << r;
    }
  }
}

class WindowJoinTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::make_unique<TempDir>(TempDir::Make("granary_window_join_").ValueOrDie());
    std::mt19937_64 rng(42);
    for (int i = 0; i < 200'000; ++i) {
      std::string bay = "bay-" + std::to_string(rng() % 500);
      const int64_t time = static_cast<int64_t>(rng() % (48 * 6)) * kHour / 6;
      AddEvent(&events_, std::move(bay), time, rng);
    }
    defs_ = WriteEventsAndLoad(events_, dir_->path());

    arrow::StringBuilder rows_bay;
    arrow::TimestampBuilder rows_time(TimeType(), arrow::default_memory_pool());
    for (int i = 0; i < 3000; ++i) {
      rows_.emplace_back("bay-" + std::to_string(rng() % 520),
                         static_cast<int64_t>(rng() % (50 * 60)) * kHour / 60);
      ASSERT_TRUE(rows_bay.Append(rows_.back().first).ok());
      ASSERT_TRUE(rows_time.Append(rows_.back().second).ok());
    }
    entities_ =
        arrow::Table::Make(arrow::schema({arrow::field("bay_id", arrow::utf8()),
                                          arrow::field("event_timestamp", TimeType())}),
                           {rows_bay.Finish().ValueOrDie(), rows_time.Finish().ValueOrDie()});
  }

  std::shared_ptr<arrow::Table> Retrieve(int64_t budget, int threads, HistoricalStats* stats) {
    HistoricalRequest request;
    request.entities = entities_;
    request.features = {
        {"bay_agg", "arrivals_3h"}, {"bay_agg", "paid_3h"}, {"bay_agg", "last_paid_1d"}};
    HistoricalJoinOptions options;
    options.memory_budget_bytes = budget;
    options.threads = threads;
    options.spill_dir = dir_->path();
    auto table = JoinHistoricalFeatures(dir_->path(), defs_, request, options, stats);
    EXPECT_TRUE(table.ok()) << table.status().ToString();
    return table.ok() ? *table : nullptr;
  }

  std::unique_ptr<TempDir> dir_;
  Events events_;
  Definitions defs_;
  std::vector<std::pair<std::string, int64_t>> rows_;
  std::shared_ptr<arrow::Table> entities_;
};

TEST_F(WindowJoinTest, SpilledPartitionsOnTwoThreadsEqualTheInMemoryAnswerAndABruteForce) {
  HistoricalStats in_memory_stats, spilled_stats;
  auto in_memory = Retrieve(int64_t{1} << 30, 1, &in_memory_stats);
  auto spilled = Retrieve(int64_t{1} << 20, 2, &spilled_stats);
  ASSERT_NE(in_memory, nullptr);
  ASSERT_NE(spilled, nullptr);
  ASSERT_EQ(spilled_stats.views.size(), 1u);
  EXPECT_GT(spilled_stats.views[0].join.bytes_spilled, 0);
  EXPECT_GT(spilled_stats.views[0].join.partitions, in_memory_stats.views[0].join.partitions);
  EXPECT_TRUE(in_memory->Equals(*spilled));

  ExpectBruteForceAnswers(*in_memory, rows_, events_, 7);
}

// The partitions are planned from the events' Arrow size, not from Parquet's (bay names and
// small numbers that Parquet dictionary-encodes: several times smaller), so each partition's
// rows and events stay near their share of the budget (1 MiB here: 4 MiB on 2 threads).
TEST_F(WindowJoinTest, PartitionsFollowTheEventsArrowSizeNotTheirParquetSize) {
  auto events = ReadTableFile(dir_->path() / "arrivals.parquet").ValueOrDie();
  const int64_t arrow_bytes = arrow::util::TotalBufferSize(*events);
  EXPECT_GE(EstimatedArrowBytes(*events->schema(), events->num_rows()), arrow_bytes);

  const FeatureView* view = defs_.FindFeatureView("bay_agg");
  ASSERT_NE(view, nullptr);
  JoinOptions options;
  options.memory_budget_bytes = int64_t{4} << 20;
  options.threads = 2;
  options.spill_dir = dir_->path();
  const int64_t share = int64_t{1} << 20;
  auto batch = entities_->CombineChunksToBatch().ValueOrDie();
  WindowJoinStats stats;
  auto columns = WindowAggregationJoin(*batch, ViewSource{dir_->path(), &defs_, view, {}},
                                       {"arrivals_3h", "paid_3h", "last_paid_1d"}, options, &stats);
  ASSERT_TRUE(columns.ok()) << columns.status().ToString();
  ASSERT_EQ(columns->size(), 3u);
  EXPECT_EQ((*columns)[0]->length(), entities_->num_rows());
  // Parquet's size of the events is far under their Arrow size; the plan takes the larger.
  EXPECT_LT(stats.scan.bytes_estimated * 3, arrow_bytes);
  EXPECT_GE(stats.events_bytes_planned, arrow_bytes);
  EXPECT_GE(stats.partitions, arrow_bytes / share);
  // Keys hash unevenly: within twice the share (from Parquet's size: 2 partitions of 2.7 MB).
  EXPECT_GT(stats.largest_partition_bytes, 0);
  EXPECT_LE(stats.largest_partition_bytes, 2 * share);
}

TEST(EstimatedArrowBytesTest, CountsFixedWidthsExactlyAndStatesVariableOnes) {
  auto schema =
      arrow::schema({arrow::field("id", arrow::int64()), arrow::field("flag", arrow::boolean()),
                     arrow::field("name", arrow::utf8()),
                     arrow::field("code", arrow::dictionary(arrow::int32(), arrow::utf8())),
                     arrow::field("xs", arrow::list(arrow::float32()))});
  // Per row, validity bits included: 8 + 1/8 (id), 1/8 + 1/8 (flag), 4 + 16 + 1/8 (name),
  // 4 + 1/8 (code's indices), 4 + 4 x (4 + 1/8) + 1/8 (xs) = 53.25 bytes.
  EXPECT_EQ(EstimatedArrowBytes(*schema, 800), 800 * 5325 / 100);
  EXPECT_EQ(EstimatedArrowBytes(*schema, 0), 0);
}

TEST_F(WindowJoinTest, RowsWithEventsCountTheRowsWhoseLongestWindowHoldsAnEvent) {
  // What the training-set summary reports as matched for aggregations: every row gets a value
  // (count 0 when its window is empty), so the count is of rows with an event in the longest
  // window asked (here 1d), whatever the partitioning.
  int64_t want = 0;
  for (const auto& [bay, t] : rows_) {
    const int64_t start = aggregation::WindowStart(t, Duration::Days(1), Duration::Hours(1));
    for (size_t e = 0; e < events_.time.size(); ++e) {
      if (events_.bay[e] == bay && events_.time[e] >= start && events_.time[e] <= t) {
        ++want;
        break;
      }
    }
  }
  ASSERT_GT(want, 0);
  ASSERT_LT(want, static_cast<int64_t>(rows_.size()));  // bays without events, rows before any
  for (auto [budget, threads] : {std::pair<int64_t, int>{int64_t{1} << 30, 1}, {1 << 20, 2}}) {
    HistoricalStats stats;
    ASSERT_NE(Retrieve(budget, threads, &stats), nullptr);
    ASSERT_EQ(stats.views.size(), 1u);
    EXPECT_FALSE(stats.views[0].plain_features);
    EXPECT_EQ(stats.views[0].window, Duration::Days(1));
    EXPECT_EQ(stats.views[0].rows_with_events, want) << "budget " << budget;
  }
}

// Events over 30 days and entity rows over the same days, with a budget under the events' size
// but over a slice of four lead-ins (25 h: the 1d window and the 1h granularity): the rows are
// read in time slices. Rows sit at hour boundaries (so their window starts are exactly a slice's
// first instant), at event times, at equal times, and at random minutes; the 1d window of most
// rows crosses into the slice before theirs. Answers equal one read holding everything and a
// brute-force rescan; a smaller budget makes more slices and nothing is spilled.
TEST(WindowJoinSlices, TimeSlicesGiveTheAnswersOfOneReadAndFollowTheBudget) {
  const uint64_t seed = testing::TestSeed();
  SCOPED_TRACE(testing::SeedTrace(seed));
  std::mt19937_64 rng(seed);
  auto dir = TempDir::Make("granary_window_slices_").ValueOrDie();
  constexpr int64_t kDays = 30;
  Events events;
  for (int i = 0; i < 60'000; ++i) {
    std::string bay = "bay-" + std::to_string(rng() % 300);
    const int64_t minute = static_cast<int64_t>(rng() % (kDays * 24 * 60));
    // A quarter on the hour: the instants where windows start and where rows below sit.
    const int64_t time = (rng() % 4 == 0 ? minute / 60 * 60 : minute) * kHour / 60;
    AddEvent(&events, std::move(bay), time, rng);
  }
  const Definitions defs = WriteEventsAndLoad(events, dir.path());

  std::vector<std::pair<std::string, int64_t>> rows;
  arrow::StringBuilder rows_bay;
  arrow::TimestampBuilder rows_time(TimeType(), arrow::default_memory_pool());
  for (int i = 0; i < 3000; ++i) {
    std::string key = "bay-" + std::to_string(rng() % 310);
    int64_t t = 0;
    switch (rng() % 4) {
      case 0:  // on the hour
        t = static_cast<int64_t>(rng() % (kDays * 24)) * kHour;
        break;
      case 1: {  // at an event's time, of its bay
        const size_t e = rng() % events.time.size();
        key = events.bay[e];
        t = events.time[e];
        break;
      }
      case 2:  // the time of the row before
        t = rows.empty() ? 0 : rows.back().second;
        break;
      default:
        t = static_cast<int64_t>(rng() % (kDays * 24 * 60)) * kHour / 60;
    }
    rows.emplace_back(key, t);
    ASSERT_TRUE(rows_bay.Append(key).ok());
    ASSERT_TRUE(rows_time.Append(t).ok());
  }
  HistoricalRequest request;
  request.entities =
      arrow::Table::Make(arrow::schema({arrow::field("bay_id", arrow::utf8()),
                                        arrow::field("event_timestamp", TimeType())}),
                         {rows_bay.Finish().ValueOrDie(), rows_time.Finish().ValueOrDie()});
  request.features = {
      {"bay_agg", "arrivals_3h"}, {"bay_agg", "paid_3h"}, {"bay_agg", "last_paid_1d"}};
  auto retrieve = [&](int64_t budget, int threads, HistoricalStats* stats) {
    HistoricalJoinOptions options;
    options.memory_budget_bytes = budget;
    options.threads = threads;
    options.spill_dir = dir.path();
    auto result = JoinHistoricalFeatures(dir.path(), defs, request, options, stats);
    EXPECT_TRUE(result.ok()) << result.status().ToString();
    return result.ok() ? *result : nullptr;
  };

  HistoricalStats one_stats;
  auto one = retrieve(int64_t{1} << 30, 1, &one_stats);
  ASSERT_NE(one, nullptr);
  EXPECT_EQ(one_stats.views[0].time_slices, 0);
  EXPECT_EQ(one_stats.views[0].join.bytes_spilled, 0);
  int previous_slices = 0;
  for (auto [budget, threads] :
       {std::pair<int64_t, int>{int64_t{3} << 20, 2}, {2 << 20, 1}, {1 << 20, 2}}) {
    SCOPED_TRACE(::testing::Message() << "budget " << budget << ", threads " << threads);
    HistoricalStats stats;
    auto sliced = retrieve(budget, threads, &stats);
    ASSERT_NE(sliced, nullptr);
    const HistoricalStats::View& view = stats.views[0];
    EXPECT_GT(view.time_slices, 1) << view.join.plan;
    EXPECT_GE(view.time_slices, previous_slices) << "a smaller budget, as many slices or more";
    previous_slices = view.time_slices;
    EXPECT_NE(view.join.plan.find(std::to_string(view.time_slices) + " time slices"),
              std::string::npos)
        << view.join.plan;
    EXPECT_EQ(view.join.bytes_spilled, 0);
    EXPECT_EQ(view.rows_with_events, one_stats.views[0].rows_with_events);
    EXPECT_TRUE(one->Equals(*sliced));
  }

  ExpectBruteForceAnswers(*one, rows, events, 3);
}

// Answers past half the join's budget, handed out by WindowAggregationJoinInto: spilled with their
// row positions by ranges of rows and handed out range by range, they are the answers
// WindowAggregationJoin holds in row order; under a large budget they are held and handed out in
// one piece. Through the historical retrieval (the output spilled, the view of aggregations only)
// the training set is the one of a budget that holds everything, and a brute-force rescan's.
TEST(WindowJoinAnswers, AnswersSpilledByRowRangeEqualTheHeldAnswers) {
  const uint64_t seed = testing::TestSeed();
  SCOPED_TRACE(testing::SeedTrace(seed));
  std::mt19937_64 rng(seed);
  auto dir = TempDir::Make("granary_window_answers_").ValueOrDie();
  Events events;
  for (int i = 0; i < 100'000; ++i) {
    std::string bay = "bay-" + std::to_string(rng() % 800);
    AddEvent(&events, std::move(bay), static_cast<int64_t>(rng() % (72 * 60)) * kHour / 60, rng);
  }
  const Definitions defs = WriteEventsAndLoad(events, dir.path());
  // 3 answers of 8 bytes and their validity: about 1 MiB for 40,000 rows, past half of a 1 MiB
  // budget.
  std::vector<std::pair<std::string, int64_t>> rows;
  arrow::StringBuilder rows_bay;
  arrow::TimestampBuilder rows_time(TimeType(), arrow::default_memory_pool());
  const int64_t n = 40'000 + static_cast<int64_t>(rng() % 5000);
  for (int64_t i = 0; i < n; ++i) {
    rows.emplace_back("bay-" + std::to_string(rng() % 850),
                      static_cast<int64_t>(rng() % (74 * 60)) * kHour / 60);
    ASSERT_TRUE(rows_bay.Append(rows.back().first).ok());
    ASSERT_TRUE(rows_time.Append(rows.back().second).ok());
  }
  auto entities =
      arrow::Table::Make(arrow::schema({arrow::field("bay_id", arrow::utf8()),
                                        arrow::field("event_timestamp", TimeType())}),
                         {rows_bay.Finish().ValueOrDie(), rows_time.Finish().ValueOrDie()});
  const std::vector<std::string> names = {"arrivals_3h", "paid_3h", "last_paid_1d"};
  const FeatureView* view = defs.FindFeatureView("bay_agg");
  ASSERT_NE(view, nullptr);
  auto batch = entities->CombineChunksToBatch().ValueOrDie();
  const ViewSource source{dir.path(), &defs, view, {}};

  JoinOptions large;
  large.memory_budget_bytes = int64_t{1} << 30;
  large.threads = 1;
  large.spill_dir = dir.path();
  auto held = WindowAggregationJoin(*batch, source, names, large, nullptr);
  ASSERT_TRUE(held.ok()) << held.status().ToString();

  for (int64_t budget : {int64_t{1} << 20, int64_t{1} << 30}) {
    SCOPED_TRACE(::testing::Message() << "budget " << budget);
    JoinOptions options = large;
    options.memory_budget_bytes = budget;
    options.threads = 2;
    std::vector<arrow::ArrayVector> pieces(names.size());
    int calls = 0;
    WindowJoinStats stats;
    Status st = WindowAggregationJoinInto(
        *batch, source, names, options,
        [&](std::vector<std::shared_ptr<arrow::Array>> columns) {
          ++calls;
          if (columns.size() != names.size()) return Status::Internal("columns missing");
          for (size_t c = 0; c < columns.size(); ++c) pieces[c].push_back(columns[c]);
          return Status::OK();
        },
        &stats);
    ASSERT_TRUE(st.ok()) << st.ToString();
    if (budget < (int64_t{1} << 30)) {
      EXPECT_GT(calls, 1);
      EXPECT_GT(stats.answers_bytes_spilled, 0);
      EXPECT_GE(stats.bytes_spilled, stats.answers_bytes_spilled);
      EXPECT_NE(stats.plan.find("spilled with their row positions by ranges of"), std::string::npos)
          << stats.plan;
    } else {
      EXPECT_EQ(calls, 1);
      EXPECT_EQ(stats.answers_bytes_spilled, 0);
      EXPECT_EQ(stats.plan.find("row positions"), std::string::npos) << stats.plan;
    }
    for (size_t c = 0; c < names.size(); ++c) {
      auto column = arrow::Concatenate(pieces[c]).ValueOrDie();
      ASSERT_TRUE(column->ValidateFull().ok());
      EXPECT_TRUE(column->Equals(*(*held)[c]->chunk(0))) << names[c];
    }
  }
  // Nothing of the answers' spill is left.
  for (const auto& entry : std::filesystem::directory_iterator(dir.path())) {
    EXPECT_EQ(entry.path().filename().string().rfind("granary-", 0), std::string::npos)
        << entry.path();
  }

  HistoricalRequest request;
  request.entities = entities;
  request.features = {
      {"bay_agg", "arrivals_3h"}, {"bay_agg", "paid_3h"}, {"bay_agg", "last_paid_1d"}};
  auto retrieve = [&](int64_t budget, HistoricalStats* stats) {
    HistoricalJoinOptions options;
    options.memory_budget_bytes = budget;
    options.threads = 2;
    options.spill_dir = dir.path();
    auto result = JoinHistoricalFeatures(dir.path(), defs, request, options, stats);
    EXPECT_TRUE(result.ok()) << result.status().ToString();
    return result.ok() ? *result : nullptr;
  };
  HistoricalStats whole_stats, spilled_stats;
  auto whole = retrieve(int64_t{1} << 30, &whole_stats);
  auto spilled = retrieve(int64_t{1} << 20, &spilled_stats);
  ASSERT_NE(whole, nullptr);
  ASSERT_NE(spilled, nullptr);
  EXPECT_FALSE(whole_stats.views[0].output_spilled);
  EXPECT_TRUE(spilled_stats.views[0].output_spilled);
  EXPECT_NE(spilled_stats.views[0].join.plan.find("spilled with their row positions"),
            std::string::npos)
      << spilled_stats.views[0].join.plan;
  EXPECT_EQ(spilled_stats.views[0].rows_with_events, whole_stats.views[0].rows_with_events);
  EXPECT_TRUE(whole->Equals(*spilled));
  ExpectBruteForceAnswers(*spilled, rows, events, 97);
}

}  // namespace
}  // namespace granary
