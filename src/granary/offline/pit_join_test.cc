// The join engine against a brute-force oracle on random data (differential test); its parts
// on their own are in pit_parts_test.cc, the join over real source folders (changes between
// the passes, the shared entity side, the gather's groups, cancellation) in
// pit_join_source_test.cc.
#include "granary/offline/pit_join.h"

#include <arrow/api.h>
#include <arrow/io/api.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <parquet/arrow/writer.h>

#include <fstream>
#include <random>
#include <set>
#include <thread>

#include "granary/common/temp_dir.h"
#include "granary/offline/historical.h"
#include "granary/offline/key_hash.h"
#include "granary/offline/partitioner.h"
#include "granary/offline/pit_gather.h"
#include "granary/offline/pit_stream.h"
#include "granary/testing/test_seed.h"

namespace granary {
namespace {

enum class KeyKind { kInt64, kString, kTwoKeys };

struct RandomCase {
  KeyKind kind;
  bool has_created;
  bool cutoff;
  int64_t ttl_minutes;
  int files;
  // Feature rows in read order (file 0 first).
  std::vector<int64_t> f_key;
  std::vector<std::optional<int64_t>> f_ts;  // null: a row the scan drops (it has no time)
  std::vector<std::optional<int64_t>> f_created;
  std::vector<int> f_file;
  std::vector<int64_t> e_key;
  std::vector<std::optional<int64_t>> e_ts;
};

constexpr int64_t kMinute = 60'000'000;
constexpr int64_t kBase = 1'700'000'000'000'000;  // 2023-11-14, in microseconds

// A random case; `large` ones have more than 4096 feature rows per file (the batch size from
// which StreamingMatcher::Offer splits a batch over its threads); `small_view` ones have few
// feature rows (up to 60 over up to 20 keys) for thousands of entity rows, each feature row
// chosen by many (the match looks them up, the gather takes each once).
RandomCase MakeCase(uint64_t seed, bool large = false, bool small_view = false) {
  std::mt19937_64 rng(seed);
  auto uniform = [&](int64_t lo, int64_t hi) {
    return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
  };
  RandomCase c;
  c.kind = static_cast<KeyKind>(uniform(0, 2));
  c.has_created = uniform(0, 1) == 1;
  c.cutoff = uniform(0, 2) == 0;
  c.ttl_minutes = uniform(0, 1) == 0 ? 0 : uniform(1, 20);
  c.files = large ? 2 : static_cast<int>(uniform(1, 3));
  const int64_t keys = large ? uniform(50, 400) : small_view ? uniform(1, 20) : uniform(1, 12);
  const int64_t rows = large        ? uniform(10'000, 12'000)
                       : small_view ? uniform(1, 60)
                                    : uniform(0, 300);
  for (int64_t i = 0; i < rows; ++i) {
    c.f_key.push_back(uniform(0, keys - 1));
    // A few rows without an event time: the match pass never sees them, the gather pass (which
    // reads no time) does, and must still find the chosen rows by read position.
    if (uniform(0, 24) == 0) {
      c.f_ts.push_back(std::nullopt);
    } else {
      c.f_ts.push_back(kBase + uniform(0, 40) * kMinute);
    }
    if (c.has_created && uniform(0, 9) > 0) {
      c.f_created.push_back(kBase + uniform(0, 40) * kMinute);
    } else {
      c.f_created.push_back(std::nullopt);
    }
    c.f_file.push_back(static_cast<int>(uniform(0, c.files - 1)));
  }
  // Read order is file by file: sort rows by file, stably.
  std::vector<size_t> order(rows);
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return c.f_file[a] < c.f_file[b]; });
  RandomCase sorted = c;
  for (size_t i = 0; i < order.size(); ++i) {
    sorted.f_key[i] = c.f_key[order[i]];
    sorted.f_ts[i] = c.f_ts[order[i]];
    sorted.f_created[i] = c.f_created[order[i]];
    sorted.f_file[i] = c.f_file[order[i]];
  }
  c = sorted;
  const int64_t entities = large        ? uniform(1000, 2000)
                           : small_view ? uniform(2000, 4000)
                                        : uniform(0, 120);
  for (int64_t i = 0; i < entities; ++i) {
    c.e_key.push_back(uniform(0, keys + 1));  // some keys have no feature rows
    if (uniform(0, 19) == 0) {
      c.e_ts.push_back(std::nullopt);
    } else {
      c.e_ts.push_back(kBase + uniform(-5, 45) * kMinute);
    }
  }
  return c;
}

// The case under another ttl: none when it has one, else 7 minutes.
RandomCase OtherTtl(RandomCase c) {
  c.ttl_minutes = c.ttl_minutes == 0 ? 7 : 0;
  return c;
}

// The rules, written as plainly as possible: the index (read order) of the chosen row, or -1.
int64_t Oracle(const RandomCase& c, int64_t key, std::optional<int64_t> t) {
  if (!t) return -1;
  int64_t best = -1;
  auto created = [&](size_t j) { return c.f_created[j].value_or(INT64_MIN); };
  for (size_t j = 0; j < c.f_key.size(); ++j) {
    if (!c.f_ts[j] || c.f_key[j] != key || *c.f_ts[j] > *t) continue;
    if (c.ttl_minutes > 0 && *c.f_ts[j] < *t - c.ttl_minutes * kMinute) continue;
    if (c.cutoff && c.f_created[j] && *c.f_created[j] > *t) continue;
    if (best < 0 || std::pair(c.f_ts[j], created(j)) >= std::pair(c.f_ts[best], created(best))) {
      best = static_cast<int64_t>(j);  // ">=": a later row wins a full tie
    }
  }
  return best;
}

std::shared_ptr<arrow::Array> KeyArray(KeyKind kind, const std::vector<int64_t>& keys, int part) {
  if (kind == KeyKind::kInt64 || (kind == KeyKind::kTwoKeys && part == 0)) {
    arrow::Int64Builder b;
    for (int64_t k : keys) (void)b.Append(k * 7919 - 3);
    return b.Finish().ValueOrDie();
  }
  arrow::StringBuilder b;
  for (int64_t k : keys)
    (void)b.Append(kind == KeyKind::kTwoKeys ? "k" + std::to_string(k % 3)
                                             : "key-" + std::to_string(k));
  return b.Finish().ValueOrDie();
}

std::shared_ptr<arrow::Array> TimeArray(const std::vector<std::optional<int64_t>>& values) {
  arrow::TimestampBuilder b(arrow::timestamp(arrow::TimeUnit::MICRO, "UTC"),
                            arrow::default_memory_pool());
  for (const auto& v : values) v ? (void)b.Append(*v) : (void)b.AppendNull();
  return b.Finish().ValueOrDie();
}

Definitions MakeDefinitions(const RandomCase& c, const std::string& path) {
  Definitions defs;
  defs.project = "random";
  Entity e;
  e.name = "thing";
  if (c.kind == KeyKind::kInt64) {
    e.join_keys = {"k1"};
    e.join_key_types = {ValueType::Scalar(ScalarType::kInt64)};
  } else if (c.kind == KeyKind::kString) {
    e.join_keys = {"k1"};
    e.join_key_types = {ValueType::Scalar(ScalarType::kString)};
  } else {
    e.join_keys = {"k1", "k2"};
    e.join_key_types = {ValueType::Scalar(ScalarType::kInt64),
                        ValueType::Scalar(ScalarType::kString)};
  }
  defs.entities.push_back(e);
  DataSource s;
  s.name = "src";
  s.path = path;
  s.timestamp_field = "event_timestamp";
  if (c.has_created) s.created_timestamp_column = "created";
  defs.data_sources.push_back(s);
  FeatureView v;
  v.name = "view";
  v.entities = {"thing"};
  v.source = "src";
  v.ttl = Duration::Minutes(c.ttl_minutes);
  v.schema.push_back(Field{"row", ValueType::Scalar(ScalarType::kInt64), "", {}});
  // Values derived from the row number, of other types: each requested feature is put back into
  // entity order on its own (in parallel), and must stay aligned with the others.
  v.schema.push_back(Field{"row_text", ValueType::Scalar(ScalarType::kString), "", {}});
  v.schema.push_back(Field{"row_half", ValueType::Scalar(ScalarType::kFloat64), "", {}});
  defs.feature_views.push_back(v);
  // The same source and join keys under another ttl (OtherTtl): the retrieval's second view,
  // which reuses the first one's entity side (EntitySideCache) with the matcher restarted.
  v.name = "view_again";
  v.ttl = Duration::Minutes(OtherTtl(c).ttl_minutes);
  defs.feature_views.push_back(v);
  return defs;
}

// Writes the feature rows; each file's row groups hold `rows_per_group` rows.
void WriteFeatureFiles(const RandomCase& c, const std::filesystem::path& dir,
                       int64_t rows_per_group) {
  for (int f = 0; f < c.files; ++f) {
    std::vector<int64_t> keys, rows;
    std::vector<std::optional<int64_t>> ts, created;
    for (size_t j = 0; j < c.f_key.size(); ++j) {
      if (c.f_file[j] != f) continue;
      keys.push_back(c.f_key[j]);
      ts.push_back(c.f_ts[j]);
      created.push_back(c.f_created[j]);
      rows.push_back(static_cast<int64_t>(j));
    }
    arrow::FieldVector fields;
    arrow::ArrayVector arrays;
    fields.push_back(arrow::field("k1", KeyArray(c.kind, keys, 0)->type()));
    arrays.push_back(KeyArray(c.kind, keys, 0));
    if (c.kind == KeyKind::kTwoKeys) {
      fields.push_back(arrow::field("k2", arrow::utf8()));
      arrays.push_back(KeyArray(c.kind, keys, 1));
    }
    fields.push_back(
        arrow::field("event_timestamp", arrow::timestamp(arrow::TimeUnit::MICRO, "UTC")));
    arrays.push_back(TimeArray(ts));
    if (c.has_created) {
      fields.push_back(arrow::field("created", arrow::timestamp(arrow::TimeUnit::MICRO, "UTC")));
      arrays.push_back(TimeArray(created));
    }
    arrow::Int64Builder rb;
    arrow::StringBuilder text;
    arrow::DoubleBuilder half;
    (void)rb.AppendValues(rows);
    for (int64_t row : rows) {
      (void)text.Append(std::to_string(row));
      // Some values null: the gather pass must keep a feature row's nulls where they are.
      if (row % 5 == 0) {
        (void)half.AppendNull();
      } else {
        (void)half.Append(static_cast<double>(row) / 2);
      }
    }
    fields.push_back(arrow::field("row", arrow::int64()));
    arrays.push_back(rb.Finish().ValueOrDie());
    fields.push_back(arrow::field("row_text", arrow::utf8()));
    arrays.push_back(text.Finish().ValueOrDie());
    fields.push_back(arrow::field("row_half", arrow::float64()));
    arrays.push_back(half.Finish().ValueOrDie());
    auto table =
        arrow::Table::Make(arrow::schema(fields), arrays, static_cast<int64_t>(rows.size()));
    auto out = arrow::io::FileOutputStream::Open(
                   (dir / ("part-" + std::to_string(f) + ".parquet")).string())
                   .ValueOrDie();
    ASSERT_TRUE(
        parquet::arrow::WriteTable(*table, arrow::default_memory_pool(), out, rows_per_group).ok());
    ASSERT_TRUE(out->Close().ok());
  }
}

// Plans to force on the match pass besides the planned one: streamed in 3 groups of entity rows,
// sorted in memory, and split into 4 partitions (and spilled: the budget is tiny).
std::vector<std::optional<MatchPlan>> ForcedPlans() {
  MatchPlan passes;
  passes.strategy = MatchStrategy::kPasses;
  passes.ways = 3;
  MatchPlan sort;
  sort.strategy = MatchStrategy::kSortInMemory;
  MatchPlan partition;
  partition.strategy = MatchStrategy::kPartition;
  partition.ways = 4;
  return {std::nullopt, passes, sort, partition};
}

// Runs retrieval on case `c` with each memory budget (as planned, then with each plan of
// ForcedPlans) and `threads` threads, and checks every entity row's result against the oracle;
// adds the match strategies taken to `modes`, and the row groups the gather pass skipped to
// `skipped` (may be null).
void CheckAgainstOracle(const RandomCase& c, int64_t rows_per_group,
                        const std::vector<int64_t>& budgets, int threads,
                        std::set<MatchStrategy>* modes, int64_t* skipped = nullptr,
                        int* matched_ahead = nullptr) {
  auto dir = TempDir::Make("granary-diff-").ValueOrDie();
  std::filesystem::create_directories(dir.path() / "src");
  WriteFeatureFiles(c, dir.path() / "src", rows_per_group);
  Definitions defs = MakeDefinitions(c, (dir.path() / "src").string());
  arrow::FieldVector fields{arrow::field("k1", KeyArray(c.kind, c.e_key, 0)->type())};
  arrow::ArrayVector arrays{KeyArray(c.kind, c.e_key, 0)};
  if (c.kind == KeyKind::kTwoKeys) {
    fields.push_back(arrow::field("k2", arrow::utf8()));
    arrays.push_back(KeyArray(c.kind, c.e_key, 1));
  }
  fields.push_back(arrow::field("event_timestamp", arrow::timestamp(arrow::TimeUnit::MICRO)));
  arrays.push_back(TimeArray(c.e_ts));
  RepoConfig config;
  config.root = dir.path();
  for (int64_t budget : budgets) {
    for (const std::optional<MatchPlan>& forced : ForcedPlans()) {
      HistoricalRequest request;
      request.features = {
          {"view", "row_text"}, {"view", "row"}, {"view", "row_half"}, {"view_again", "row"}};
      request.full_feature_names = true;
      request.created_timestamp_cutoff = c.cutoff;
      HistoricalJoinOptions options;
      options.memory_budget_bytes = budget;
      options.threads = threads;
      options.TEST_force_plan = forced;
      // With a forced plan, the output's fixed-width columns in chunks of 8 rows, let go of as
      // the batches pass them (ScatteredColumn, TrainingSetOutput); planned, in one chunk.
      if (forced) options.output_slice_rows = 8;
      request.entities =
          arrow::Table::Make(arrow::schema(fields), arrays, static_cast<int64_t>(c.e_key.size()));
      HistoricalStats stats;
      auto out = JoinHistoricalFeatures(config.root, defs, request, options, &stats);
      ASSERT_TRUE(out.ok()) << out.status().ToString();
      ASSERT_EQ((*out)->num_rows(), static_cast<int64_t>(c.e_key.size()));
      if (!c.e_key.empty() && !c.f_key.empty()) modes->insert(stats.views[0].join.strategy);
      if (skipped != nullptr) *skipped += stats.views[0].join.row_groups_skipped;
      // The second view's match pass runs beside the first one's gather only when it streams
      // with the entity side the first one kept; the first one's never does.
      ASSERT_FALSE(stats.views[0].join.matched_ahead);
      if (stats.views[1].join.matched_ahead) {
        ASSERT_EQ(stats.views[1].join.strategy, MatchStrategy::kStream);
        ASSERT_FALSE(forced.has_value());
        if (matched_ahead != nullptr) ++*matched_ahead;
      }
      ASSERT_EQ((*out)->schema()->field_names().back(), "view_again__row");  // requested order
      auto combined = [&](const char* name) {
        auto column = (*out)->GetColumnByName(name);
        EXPECT_NE(column, nullptr) << name;
        return column == nullptr ? nullptr : arrow::Concatenate(column->chunks()).ValueOrDie();
      };
      auto row = combined("view__row"), row_text = combined("view__row_text"),
           row_half = combined("view__row_half"), row_again = combined("view_again__row");
      ASSERT_TRUE(row != nullptr && row_text != nullptr && row_half != nullptr &&
                  row_again != nullptr);
      const auto& rows = static_cast<const arrow::Int64Array&>(*row);
      const auto& rows_again = static_cast<const arrow::Int64Array&>(*row_again);
      const RandomCase other_ttl = OtherTtl(c);
      const auto& texts = static_cast<const arrow::StringArray&>(*row_text);
      const auto& halves = static_cast<const arrow::DoubleArray&>(*row_half);
      for (int64_t i = 0; i < rows.length(); ++i) {
        // Two-key cases key on (k, k % 3): equal exactly when k is equal.
        const int64_t want = Oracle(c, c.e_key[i], c.e_ts[i]);
        const int64_t got = rows.IsNull(i) ? -1 : rows.Value(i);
        ASSERT_EQ(got, want) << "entity row " << i << " (key " << c.e_key[i] << "), budget "
                             << budget << ", ttl " << c.ttl_minutes << "m, cutoff " << c.cutoff
                             << ", plan: " << stats.views[0].join.plan;
        const int64_t want_again = Oracle(other_ttl, c.e_key[i], c.e_ts[i]);
        ASSERT_EQ(rows_again.IsNull(i) ? -1 : rows_again.Value(i), want_again)
            << "view_again, entity row " << i << ", ttl " << other_ttl.ttl_minutes
            << "m, plan: " << stats.views[1].join.plan;
        // The other features of the same row, in the same place.
        ASSERT_EQ(texts.IsValid(i), want >= 0) << "entity row " << i;
        ASSERT_EQ(halves.IsValid(i), want >= 0 && want % 5 != 0) << "entity row " << i;
        if (want < 0) continue;
        ASSERT_EQ(texts.GetString(i), std::to_string(want)) << "entity row " << i;
        if (want % 5 != 0) {
          ASSERT_EQ(halves.Value(i), static_cast<double>(want) / 2) << "entity row " << i;
        }
      }
    }
  }
}

TEST(PointInTimeJoin, AgreesWithABruteForceOracleOnRandomData) {
  const uint64_t first_seed = testing::TestSeed();
  std::set<MatchStrategy> modes;  // engine paths taken
  int64_t skipped = 0;            // row groups the gather pass left unread
  int matched_ahead = 0;          // second views matched beside the first one's gather
  for (uint64_t round = 0; round < 60; ++round) {
    const uint64_t seed = first_seed + round;
    SCOPED_TRACE(testing::SeedTrace(seed));
    // Every engine path, as planned for each budget (the default streams; a tiny one cannot
    // hold even one key's rows and partitions) and forced: streamed in groups, keys and times
    // sorted in memory, and partitioned with spilling. One round in ten is a small view (a few
    // feature rows for thousands of entity rows): sorted in memory or partitioned, the match
    // looks each entity row up (MatchWay::kLookUp), and the gather takes each chosen row's value
    // once for every entity row that chose it.
    CheckAgainstOracle(MakeCase(seed, /*large=*/false, /*small_view=*/round % 10 == 9),
                       1 + static_cast<int64_t>(seed % 50),
                       {kDefaultMemoryBudget, int64_t{25'000}, int64_t{1}},
                       /*threads=*/0, &modes, &skipped, &matched_ahead);
    if (HasFatalFailure()) return;
  }
  // The default budget streams both views: the second one's match ran beside the first one's
  // gather, and its answers above were right.
  EXPECT_GT(matched_ahead, 0);
  EXPECT_EQ(modes,
            (std::set<MatchStrategy>{MatchStrategy::kStream, MatchStrategy::kPasses,
                                     MatchStrategy::kSortInMemory, MatchStrategy::kPartition}));
  // Row groups of 1 to 50 rows: many hold no chosen row, and the answers above were right
  // without reading them.
  EXPECT_GT(skipped, 0);
}

TEST(PointInTimeJoin, AgreesWithTheOracleWhenLargeBatchesAreMatchedOnSeveralThreads) {
  // Files of more than 4096 rows, read as one batch each: the streaming matcher splits each batch
  // over 4 threads, whose per-thread candidates Finish merges.
  const uint64_t first_seed = testing::TestSeed();
  std::set<MatchStrategy> modes;
  for (uint64_t round = 0; round < 3; ++round) {
    const uint64_t seed = first_seed + round;
    SCOPED_TRACE(testing::SeedTrace(seed));
    RandomCase c = MakeCase(seed, /*large=*/true);
    ASSERT_GT(c.f_key.size(), 5000u);
    const int64_t one_group = static_cast<int64_t>(c.f_key.size());
    // Threads change where work runs, never the answer.
    for (int threads : {1, 2, 4}) {
      SCOPED_TRACE(fmt::format("{} threads", threads));
      CheckAgainstOracle(c, one_group, {kDefaultMemoryBudget}, threads, &modes);
      if (HasFatalFailure()) return;
    }
  }
  EXPECT_EQ(modes,
            (std::set<MatchStrategy>{MatchStrategy::kStream, MatchStrategy::kPasses,
                                     MatchStrategy::kSortInMemory, MatchStrategy::kPartition}));
}

}  // namespace
}  // namespace granary
