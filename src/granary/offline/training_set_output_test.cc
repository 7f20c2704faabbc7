// TrainingSetOutput: a training set's columns held or spilled, handed out batch by batch, give
// exactly the file the whole table gave (Parquet bytes over several row groups, CSV text; nulls,
// strings, bools, lists, every width; entity and feature columns of several chunks; a group
// spilled as it comes in pieces of any length), and leave no spill file behind after the last
// batch, on cancellation or when abandoned.
#include "granary/offline/training_set_output.h"

#include <arrow/api.h>
#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <optional>
#include <random>

#include "granary/common/temp_dir.h"
#include "granary/offline/table_io.h"
#include "granary/testing/test_seed.h"

namespace granary {
namespace {

std::string Bytes(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

int FilesUnder(const std::filesystem::path& folder) {
  int count = 0;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(folder)) {
    (void)entry;
    ++count;
  }
  return count;
}

// `rows` rows cut into chunks at `cuts` (ascending, inside (0, rows)).
std::shared_ptr<arrow::ChunkedArray> Chunked(const std::shared_ptr<arrow::Array>& array,
                                             const std::vector<int64_t>& cuts) {
  arrow::ArrayVector chunks;
  int64_t lo = 0;
  for (int64_t cut : cuts) {
    chunks.push_back(array->Slice(lo, cut - lo));
    lo = cut;
  }
  chunks.push_back(array->Slice(lo));
  return std::make_shared<arrow::ChunkedArray>(chunks, array->type());
}

// A training set's columns, in groups as the historical retrieval adds them: the entity rows
// (a key in 3 chunks, the time, a label), then three "views" of every kind of value, with nulls.
struct Columns {
  std::vector<arrow::FieldVector> fields;
  std::vector<arrow::ChunkedArrayVector> columns;
};

Columns MakeColumns(int64_t n, uint32_t seed) {
  std::mt19937_64 rng(seed);
  auto chance = [&](int percent) { return static_cast<int>(rng() % 100) < percent; };
  arrow::Int64Builder key, arrivals;
  arrow::TimestampBuilder time(arrow::timestamp(arrow::TimeUnit::MICRO, "UTC"),
                               arrow::default_memory_pool());
  arrow::DoubleBuilder label, rate;
  arrow::BooleanBuilder flag;
  arrow::StringBuilder zone;
  arrow::Int32Builder capacity;
  arrow::FloatBuilder share;
  arrow::ListBuilder list(arrow::default_memory_pool(), std::make_shared<arrow::Int64Builder>());
  auto* items = static_cast<arrow::Int64Builder*>(list.value_builder());
  for (int64_t i = 0; i < n; ++i) {
    EXPECT_TRUE(key.Append(static_cast<int64_t>(rng() % 5000)).ok());
    EXPECT_TRUE(
        time.Append(1'700'000'000'000'000 + static_cast<int64_t>(rng() % 1'000'000'000)).ok());
    EXPECT_TRUE(label.Append(static_cast<double>(rng() % 1000) / 7).ok());
    EXPECT_TRUE(
        (chance(10) ? rate.AppendNull() : rate.Append(static_cast<double>(rng()) / 3)).ok());
    EXPECT_TRUE((chance(5) ? arrivals.AppendNull() : arrivals.Append(rng() % 100)).ok());
    EXPECT_TRUE((chance(20) ? flag.AppendNull() : flag.Append(rng() % 2 == 0)).ok());
    EXPECT_TRUE(
        (chance(15) ? zone.AppendNull() : zone.Append("zone-" + std::to_string(rng() % 50))).ok());
    EXPECT_TRUE(capacity.Append(static_cast<int32_t>(rng() % 300)).ok());
    EXPECT_TRUE(
        (chance(30) ? share.AppendNull() : share.Append(static_cast<float>(rng() % 97) / 97)).ok());
    if (chance(10)) {
      EXPECT_TRUE(list.AppendNull().ok());
    } else {
      EXPECT_TRUE(list.Append().ok());
      for (uint64_t k = rng() % 4; k > 0; --k) EXPECT_TRUE(items->Append(rng() % 9).ok());
    }
  }
  auto finish = [](arrow::ArrayBuilder& b) {
    std::shared_ptr<arrow::Array> out;
    EXPECT_TRUE(b.Finish(&out).ok());
    return out;
  };
  auto one = [](std::shared_ptr<arrow::Array> a) {
    return std::make_shared<arrow::ChunkedArray>(std::move(a));
  };
  Columns c;
  // Entity rows read from a file of three row groups: chunks that end off any row group.
  c.fields.push_back({arrow::field("bay_id", arrow::int64()),
                      arrow::field("event_timestamp", time.type()),
                      arrow::field("label", arrow::float64())});
  c.columns.push_back(
      {Chunked(finish(key), {n / 3 + 17, 2 * n / 3 + 5}), one(finish(time)), one(finish(label))});
  c.fields.push_back({arrow::field("rate", arrow::float64()),
                      arrow::field("arrivals", arrow::int64()),
                      arrow::field("flag", arrow::boolean())});
  c.columns.push_back({one(finish(rate)), one(finish(arrivals)), one(finish(flag))});
  // A view whose string column came back in pieces.
  c.fields.push_back(
      {arrow::field("zone", arrow::utf8()), arrow::field("capacity", arrow::int32())});
  c.columns.push_back({Chunked(finish(zone), {n / 2 + 3}), one(finish(capacity))});
  c.fields.push_back({arrow::field("share", arrow::float32()),
                      arrow::field("recent", arrow::list(arrow::int64()))});
  c.columns.push_back({one(finish(share)), one(finish(list))});
  return c;
}

std::shared_ptr<arrow::Table> WholeTable(const Columns& c, int64_t n) {
  arrow::FieldVector fields;
  arrow::ChunkedArrayVector columns;
  for (size_t g = 0; g < c.fields.size(); ++g) {
    fields.insert(fields.end(), c.fields[g].begin(), c.fields[g].end());
    columns.insert(columns.end(), c.columns[g].begin(), c.columns[g].end());
  }
  return arrow::Table::Make(arrow::schema(fields), columns, n);
}

// Adds every group (the first held, as the entity rows are) and writes the batches to `path`.
// Returns the placements of the views' groups. `by_column`: each view's columns are added one
// at a time and spilled whatever the limit (OutputHold::kSpill), as a join that gathers a view
// in groups of columns hands them over. `pieces_seed` (when given): each view's columns are spilled
// as they come, in pieces of consecutive rows of random lengths (BeginSpilledGroup), as the
// window join hands out its answers.
std::vector<OutputPlacement> WriteThrough(const Columns& c, int64_t n, int64_t hold_bytes,
                                          const std::filesystem::path& spill_parent,
                                          const std::filesystem::path& path, bool by_column = false,
                                          std::optional<uint64_t> pieces_seed = std::nullopt) {
  TrainingSetOutputOptions options;
  options.rows = n;
  options.slice_rows = kTableFileRowGroupRows;
  options.hold_bytes = hold_bytes;
  options.spill_parent = spill_parent;
  auto output = TrainingSetOutput::Make(options).ValueOrDie();
  std::vector<OutputPlacement> placed;
  std::mt19937_64 rng(pieces_seed.value_or(0));
  for (size_t g = 0; g < c.fields.size(); ++g) {
    if (pieces_seed && g > 0) {
      EXPECT_TRUE(output->BeginSpilledGroup(c.fields[g]).ok());
      for (int64_t at = 0; at < n;) {
        // From a row to a few row groups long, ending anywhere.
        const int64_t length = std::min<int64_t>(
            n - at, rng() % 4 == 0 ? static_cast<int64_t>(rng() % 5) + 1
                                   : static_cast<int64_t>(rng() % (2 * kTableFileRowGroupRows)));
        arrow::ArrayVector piece;
        for (const auto& column : c.columns[g]) {
          piece.push_back(arrow::Concatenate(column->Slice(at, length)->chunks()).ValueOrDie());
        }
        Status st = output->AppendToSpilledGroup(std::move(piece));
        EXPECT_TRUE(st.ok()) << st.ToString();
        at += length;
      }
      auto where = output->EndSpilledGroup();
      EXPECT_TRUE(where.ok()) << where.status().ToString();
      if (where.ok()) placed.push_back(*where);
      continue;
    }
    if (by_column && g > 0) {
      for (size_t i = 0; i < c.fields[g].size(); ++i) {
        auto where = output->Add({c.fields[g][i]}, {c.columns[g][i]}, OutputHold::kSpill);
        EXPECT_TRUE(where.ok()) << where.status().ToString();
        if (where.ok()) placed.push_back(*where);
      }
      continue;
    }
    auto where = output->Add(c.fields[g], c.columns[g],
                             g == 0 ? OutputHold::kHold : OutputHold::kWithinLimit);
    EXPECT_TRUE(where.ok()) << where.status().ToString();
    if (g > 0) placed.push_back(*where);
  }
  auto writer = TableFileWriter::Open(path, output->schema()).ValueOrDie();
  int64_t batches = 0;
  while (true) {
    auto batch = output->Next();
    EXPECT_TRUE(batch.ok()) << batch.status().ToString();
    if (!batch.ok() || *batch == nullptr) break;
    EXPECT_LE((*batch)->num_rows(), kTableFileRowGroupRows);
    EXPECT_TRUE(writer->Write(**batch).ok());
    ++batches;
  }
  EXPECT_GT(batches, 0);
  EXPECT_TRUE(writer->Commit().ok());
  // After the last batch the spill files are gone, before the object is.
  EXPECT_EQ(FilesUnder(spill_parent), 0);
  return placed;
}

TEST(TrainingSetOutput, SpilledOrHeldTheParquetFileIsTheWholeTablesByteForByte) {
  const int64_t n = 2 * kTableFileRowGroupRows + 54'321;  // three row groups, the last short
  const uint32_t seed = 20261206;
  SCOPED_TRACE(::testing::Message() << "seed " << seed);
  Columns c = MakeColumns(n, seed);
  auto dir = TempDir::Make("granary-output-test-").ValueOrDie();
  const auto spill = dir.path() / "spill";
  std::filesystem::create_directory(spill);
  ASSERT_TRUE(WriteTableFile(*WholeTable(c, n), dir.path() / "whole.parquet").ok());
  const std::string whole = Bytes(dir.path() / "whole.parquet");

  // Everything held (a large budget).
  auto held = WriteThrough(c, n, int64_t{1} << 40, spill, dir.path() / "held.parquet");
  for (const auto& p : held) EXPECT_FALSE(p.spilled);
  EXPECT_TRUE(Bytes(dir.path() / "held.parquet") == whole);

  // Every view spilled (nothing may be held past the entity rows).
  auto spilled = WriteThrough(c, n, 0, spill, dir.path() / "spilled.parquet");
  for (const auto& p : spilled) {
    EXPECT_TRUE(p.spilled);
    EXPECT_GT(p.bytes, 0);
  }
  EXPECT_TRUE(Bytes(dir.path() / "spilled.parquet") == whole);

  // Every view's columns spilled one by one though the limit would hold them all.
  auto by_column =
      WriteThrough(c, n, int64_t{1} << 40, spill, dir.path() / "by_column.parquet", true);
  EXPECT_GT(by_column.size(), spilled.size());
  for (const auto& p : by_column) EXPECT_TRUE(p.spilled);
  EXPECT_TRUE(Bytes(dir.path() / "by_column.parquet") == whole);

  // Every view's columns spilled as they come, in pieces of random lengths.
  const uint64_t first_pieces_seed = testing::TestSeed();
  for (uint64_t round = 0; round < 3; ++round) {
    const uint64_t pieces_seed = first_pieces_seed + round;
    SCOPED_TRACE(testing::SeedTrace(pieces_seed));
    auto in_pieces = WriteThrough(c, n, int64_t{1} << 40, spill, dir.path() / "pieces.parquet",
                                  false, pieces_seed);
    ASSERT_EQ(in_pieces.size(), spilled.size());
    for (size_t g = 0; g < in_pieces.size(); ++g) {
      EXPECT_TRUE(in_pieces[g].spilled);
      EXPECT_GT(in_pieces[g].bytes, 0);
    }
    EXPECT_TRUE(Bytes(dir.path() / "pieces.parquet") == whole);
  }

  // Some of each: room for the first view's columns beside the entity rows, not the second's.
  const int64_t entity_bytes = TrainingSetOutput::BytesOf(c.columns[0]);
  const int64_t first_view = TrainingSetOutput::BytesOf(c.columns[1]);
  auto mixed = WriteThrough(c, n, entity_bytes + first_view, spill, dir.path() / "mixed.parquet");
  ASSERT_EQ(mixed.size(), 3u);
  EXPECT_FALSE(mixed[0].spilled);
  EXPECT_TRUE(mixed[1].spilled);
  EXPECT_TRUE(mixed[2].spilled);
  EXPECT_TRUE(Bytes(dir.path() / "mixed.parquet") == whole);
}

TEST(TrainingSetOutput, SpilledCsvIsTheWholeTablesText) {
  const int64_t n = 5'000;
  Columns c = MakeColumns(n, 7);
  c.fields.pop_back();  // CSV has no lists
  c.columns.pop_back();
  auto dir = TempDir::Make("granary-output-test-").ValueOrDie();
  const auto spill = dir.path() / "spill";
  std::filesystem::create_directory(spill);
  ASSERT_TRUE(WriteTableFile(*WholeTable(c, n), dir.path() / "whole.csv").ok());
  auto spilled = WriteThrough(c, n, 0, spill, dir.path() / "spilled.csv");
  for (const auto& p : spilled) EXPECT_TRUE(p.spilled);
  EXPECT_EQ(Bytes(dir.path() / "spilled.csv"), Bytes(dir.path() / "whole.csv"));
}

TEST(TrainingSetOutput, BatchesEndAtRowGroupsAndAtEveryChunkOfAHeldColumn) {
  const int64_t n = 10'000;
  Columns c = MakeColumns(n, 3);
  auto dir = TempDir::Make("granary-output-test-").ValueOrDie();
  TrainingSetOutputOptions options;
  options.rows = n;
  options.slice_rows = 4'000;
  options.hold_bytes = 0;
  options.spill_parent = dir.path();
  auto output = TrainingSetOutput::Make(options).ValueOrDie();
  for (size_t g = 0; g < c.fields.size(); ++g) {
    ASSERT_TRUE(
        output
            ->Add(c.fields[g], c.columns[g], g == 0 ? OutputHold::kHold : OutputHold::kWithinLimit)
            .ok());
  }
  EXPECT_EQ(output->held_bytes(), TrainingSetOutput::BytesOf(c.columns[0]));
  EXPECT_GT(output->spilled_bytes(), 0);
  EXPECT_EQ(FilesUnder(dir.path()), 5);  // the spill folder, its lock file, one file per view
  // Cuts: 4000, 8000 (row groups), n/3 + 17 and 2n/3 + 5 (the key's chunks), n/2 + 3 (zone's).
  std::vector<int64_t> ends;
  int64_t at = 0;
  while (true) {
    auto batch = output->Next().ValueOrDie();
    if (batch == nullptr) break;
    ASSERT_EQ(batch->num_columns(), 10);
    at += batch->num_rows();
    ends.push_back(at);
  }
  EXPECT_EQ(ends, (std::vector<int64_t>{3350, 4000, 5003, 6671, 8000, 10'000}));
  EXPECT_EQ(FilesUnder(dir.path()), 0);
}

TEST(TrainingSetOutput, LetsGoOfEachChunkOfAHeldColumnOnceItsBatchesAreOut) {
  // A held column of three chunks of 10 rows, the row groups' size: each chunk's memory is
  // freed once its batch is out and dropped, not when the whole table is.
  const int64_t n = 30;
  arrow::ArrayVector chunks;
  std::vector<std::weak_ptr<arrow::Buffer>> values;
  for (int k = 0; k < 3; ++k) {
    arrow::Int64Builder builder;
    for (int64_t i = 0; i < 10; ++i) ASSERT_TRUE(builder.Append(10 * k + i).ok());
    chunks.push_back(builder.Finish().ValueOrDie());
    values.push_back(chunks.back()->data()->buffers[1]);
  }
  TrainingSetOutputOptions options;
  options.rows = n;
  options.slice_rows = 10;
  options.hold_bytes = 1 << 20;
  auto output = TrainingSetOutput::Make(options).ValueOrDie();
  ASSERT_TRUE(output
                  ->Add({arrow::field("x", arrow::int64())},
                        {std::make_shared<arrow::ChunkedArray>(std::move(chunks))},
                        OutputHold::kHold)
                  .ok());
  chunks.clear();
  for (int k = 0; k < 3; ++k) {
    auto batch = output->Next().ValueOrDie();
    ASSERT_NE(batch, nullptr);
    ASSERT_EQ(batch->num_rows(), 10);
    const auto& x = static_cast<const arrow::Int64Array&>(*batch->column(0));
    EXPECT_EQ(x.Value(0), 10 * k);
    EXPECT_EQ(x.Value(9), 10 * k + 9);
    EXPECT_FALSE(values[k].expired()) << "chunk " << k << " while its batch is held";
    batch.reset();
    EXPECT_TRUE(values[k].expired()) << "chunk " << k << " after its batch";
    for (int later = k + 1; later < 3; ++later) EXPECT_FALSE(values[later].expired());
  }
  EXPECT_EQ(output->Next().ValueOrDie(), nullptr);
}

TEST(TrainingSetOutput, CancelledOrAbandonedItLeavesNoSpillFile) {
  const int64_t n = 3'000;
  Columns c = MakeColumns(n, 11);
  auto dir = TempDir::Make("granary-output-test-").ValueOrDie();
  CancelFlag cancel;
  {
    TrainingSetOutputOptions options;
    options.rows = n;
    options.slice_rows = 1'000;
    options.spill_parent = dir.path();
    options.cancel = &cancel;
    auto output = TrainingSetOutput::Make(options).ValueOrDie();
    for (size_t g = 0; g < c.fields.size(); ++g) {
      ASSERT_TRUE(output
                      ->Add(c.fields[g], c.columns[g],
                            g == 0 ? OutputHold::kHold : OutputHold::kWithinLimit)
                      .ok());
    }
    ASSERT_NE(output->Next().ValueOrDie(), nullptr);
    EXPECT_GT(FilesUnder(dir.path()), 0);
    cancel.Cancel();  // Ctrl-C while the training set is written
    auto next = output->Next();
    EXPECT_EQ(next.status().code(), StatusCode::kCancelled) << next.status().ToString();
  }
  EXPECT_EQ(FilesUnder(dir.path()), 0);
  {
    // Spilled, then never read (a later view's join failed).
    TrainingSetOutputOptions options;
    options.rows = n;
    options.spill_parent = dir.path();
    auto output = TrainingSetOutput::Make(options).ValueOrDie();
    ASSERT_TRUE(output->Add(c.fields[1], c.columns[1]).ValueOrDie().spilled);
    EXPECT_GT(FilesUnder(dir.path()), 0);
  }
  EXPECT_EQ(FilesUnder(dir.path()), 0);
}

TEST(TrainingSetOutput, AColumnOfAnotherLengthIsRefused) {
  Columns c = MakeColumns(100, 5);
  TrainingSetOutputOptions options;
  options.rows = 99;
  auto output = TrainingSetOutput::Make(options).ValueOrDie();
  auto added = output->Add(c.fields[1], c.columns[1]);
  EXPECT_FALSE(added.ok());
  EXPECT_NE(added.status().message().find("'rate' has 100 rows, not 99"), std::string::npos)
      << added.status().ToString();
}

TEST(TrainingSetOutput, ASpilledGroupOfTooFewOrTooManyRowsOrOtherTypesIsRefused) {
  auto dir = TempDir::Make("granary-output-test-").ValueOrDie();
  TrainingSetOutputOptions options;
  options.rows = 10;
  options.slice_rows = 4;
  options.spill_parent = dir.path();
  auto ints = [](int64_t length) {
    arrow::Int64Builder b;
    for (int64_t i = 0; i < length; ++i) EXPECT_TRUE(b.Append(i).ok());
    return b.Finish().ValueOrDie();
  };
  auto output = TrainingSetOutput::Make(options).ValueOrDie();
  ASSERT_TRUE(output->BeginSpilledGroup({arrow::field("x", arrow::int64())}).ok());
  EXPECT_EQ(output
                ->Add({arrow::field("y", arrow::int64())},
                      {std::make_shared<arrow::ChunkedArray>(ints(10))})
                .status()
                .code(),
            StatusCode::kInternal);
  arrow::DoubleBuilder doubles;
  ASSERT_TRUE(doubles.Append(1.5).ok());
  Status wrong_type = output->AppendToSpilledGroup({doubles.Finish().ValueOrDie()});
  EXPECT_NE(wrong_type.message().find("expected 1 of int64"), std::string::npos)
      << wrong_type.ToString();
  ASSERT_TRUE(output->AppendToSpilledGroup({ints(6)}).ok());
  Status too_many = output->AppendToSpilledGroup({ints(5)});
  EXPECT_NE(too_many.message().find("11 rows appended of 10"), std::string::npos)
      << too_many.ToString();
  auto too_few = output->EndSpilledGroup();
  ASSERT_FALSE(too_few.ok());
  EXPECT_NE(too_few.status().message().find("6 rows appended of 10"), std::string::npos)
      << too_few.status().ToString();
}

TEST(TrainingSetOutput, AnEmptyTrainingSetHasNoBatches) {
  TrainingSetOutputOptions options;
  options.rows = 0;
  auto output = TrainingSetOutput::Make(options).ValueOrDie();
  auto empty = arrow::MakeArrayOfNull(arrow::float64(), 0).ValueOrDie();
  ASSERT_TRUE(output
                  ->Add({arrow::field("x", arrow::float64())},
                        {std::make_shared<arrow::ChunkedArray>(empty)})
                  .ok());
  EXPECT_EQ(output->schema()->num_fields(), 1);
  EXPECT_EQ(output->Next().ValueOrDie(), nullptr);
}

}  // namespace
}  // namespace granary
