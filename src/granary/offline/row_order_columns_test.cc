#include "granary/offline/row_order_columns.h"

#include <arrow/api.h>
#include <arrow/compute/api.h>
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <numeric>
#include <random>
#include <string>
#include <thread>

#include "granary/common/temp_dir.h"
#include "granary/offline/spilled_answers.h"
#include "granary/testing/test_seed.h"

namespace granary {
namespace {

std::shared_ptr<arrow::Array> Int64s(const std::vector<int64_t>& values) {
  arrow::Int64Builder builder;
  EXPECT_TRUE(builder.AppendValues(values).ok());
  return builder.Finish().ValueOrDie();
}

// Columns of `n` rows in row order, of every kind of type the window join's aggregations give
// (and a string one, which is not fixed width), nulls at a rate of `null_rate`; the last column
// has no nulls.
std::vector<std::shared_ptr<arrow::Array>> RandomColumns(std::mt19937_64& rng, int64_t n,
                                                         double null_rate) {
  std::bernoulli_distribution is_null(null_rate);
  std::uniform_int_distribution<int64_t> any(-1'000'000, 1'000'000);
  arrow::Int64Builder int64s;
  arrow::DoubleBuilder doubles;
  arrow::BooleanBuilder bools;
  arrow::TimestampBuilder times(arrow::timestamp(arrow::TimeUnit::MICRO, "UTC"),
                                arrow::default_memory_pool());
  arrow::Int32Builder int32s;
  arrow::StringBuilder strings;
  arrow::Int64Builder never_null;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t v = any(rng);
    if (is_null(rng)) {
      EXPECT_TRUE(int64s.AppendNull().ok());
    } else {
      EXPECT_TRUE(int64s.Append(v).ok());
    }
    if (is_null(rng)) {
      EXPECT_TRUE(doubles.AppendNull().ok());
    } else {
      EXPECT_TRUE(doubles.Append(static_cast<double>(v) / 7).ok());
    }
    if (is_null(rng)) {
      EXPECT_TRUE(bools.AppendNull().ok());
    } else {
      EXPECT_TRUE(bools.Append(v % 3 == 0).ok());
    }
    if (is_null(rng)) {
      EXPECT_TRUE(times.AppendNull().ok());
    } else {
      EXPECT_TRUE(times.Append(v * 1'000'000).ok());
    }
    if (is_null(rng)) {
      EXPECT_TRUE(int32s.AppendNull().ok());
    } else {
      EXPECT_TRUE(int32s.Append(static_cast<int32_t>(v)).ok());
    }
    if (is_null(rng)) {
      EXPECT_TRUE(strings.AppendNull().ok());
    } else {
      EXPECT_TRUE(strings.Append(std::string(static_cast<size_t>(v & 15), 'a' + (v & 7))).ok());
    }
    EXPECT_TRUE(never_null.Append(v).ok());
  }
  std::vector<std::shared_ptr<arrow::Array>> out;
  out.push_back(int64s.Finish().ValueOrDie());
  out.push_back(doubles.Finish().ValueOrDie());
  out.push_back(bools.Finish().ValueOrDie());
  out.push_back(times.Finish().ValueOrDie());
  out.push_back(int32s.Finish().ValueOrDie());
  out.push_back(strings.Finish().ValueOrDie());
  out.push_back(never_null.Finish().ValueOrDie());
  return out;
}

std::vector<std::shared_ptr<arrow::DataType>> TypesOf(
    const std::vector<std::shared_ptr<arrow::Array>>& columns) {
  std::vector<std::shared_ptr<arrow::DataType>> types;
  for (const auto& c : columns) types.push_back(c->type());
  return types;
}

struct Piece {
  std::shared_ptr<arrow::Array> rows;
  std::vector<std::shared_ptr<arrow::Array>> values;
};

// The row positions shuffled and cut into pieces of random sizes (some empty), each with the
// values of its rows taken from `expected`: what partitions' answers look like.
std::vector<Piece> CutIntoPieces(std::mt19937_64& rng,
                                 const std::vector<std::shared_ptr<arrow::Array>>& expected,
                                 int64_t n) {
  std::vector<int64_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), rng);
  std::vector<Piece> pieces;
  std::uniform_int_distribution<int64_t> size(0, std::max<int64_t>(1, n / 5));
  for (int64_t at = 0; at < n || pieces.empty();) {
    const int64_t length = std::min(n - at, size(rng));
    Piece piece;
    piece.rows = Int64s(std::vector<int64_t>(order.begin() + at, order.begin() + at + length));
    for (const auto& column : expected) {
      piece.values.push_back(arrow::compute::Take(*column, *piece.rows).ValueOrDie());
    }
    pieces.push_back(std::move(piece));
    at += length;
  }
  return pieces;
}

// A round's columns and their pieces: one round in eight of empty columns, one in four without
// nulls.
struct Round {
  int64_t n = 0;
  std::vector<std::shared_ptr<arrow::Array>> expected;
  std::vector<Piece> pieces;
};
Round RandomRound(std::mt19937_64& rng) {
  Round round;
  round.n = rng() % 8 == 0 ? 0 : std::uniform_int_distribution<int64_t>(1, 3000)(rng);
  const double null_rate = rng() % 4 == 0 ? 0.0 : 0.2;
  round.expected = RandomColumns(rng, round.n, null_rate);
  round.pieces = CutIntoPieces(rng, round.expected, round.n);
  return round;
}

// Places `pieces` into `target` (RowOrderColumns or SpilledAnswers) from two threads, each
// placing every other piece: placing is thread-safe.
template <typename Target>
void PlaceOnTwoThreads(const std::vector<Piece>& pieces, Target* target) {
  auto place = [&](size_t first) {
    for (size_t p = first; p < pieces.size(); p += 2) {
      Status st = target->Place(*pieces[p].rows, pieces[p].values);
      EXPECT_TRUE(st.ok()) << st.ToString();
    }
  };
  std::thread other(place, 1);
  place(0);
  other.join();
}

TEST(RowOrderColumns, PiecesPlacedInAnyOrderGiveTheColumnsInRowOrder) {
  const uint64_t first_seed = testing::TestSeed();
  for (uint64_t round = 0; round < 40; ++round) {
    // Everything a round does comes from its seed, so that GRANARY_TEST_SEED replays it exactly
    // (as the first round); one round in eight is of empty columns, one in four without nulls.
    const uint64_t seed = first_seed + round;
    SCOPED_TRACE(testing::SeedTrace(seed));
    std::mt19937_64 rng(seed);
    const auto [n, expected, pieces] = RandomRound(rng);
    auto columns = RowOrderColumns::Make(TypesOf(expected), n);
    ASSERT_TRUE(columns.ok()) << columns.status().ToString();
    PlaceOnTwoThreads(pieces, columns->get());
    auto out = (*columns)->Finish();
    ASSERT_TRUE(out.ok()) << out.status().ToString();
    ASSERT_EQ(out->size(), expected.size());
    for (size_t c = 0; c < expected.size(); ++c) {
      SCOPED_TRACE(fmt::format("column {} ({})", c, expected[c]->type()->ToString()));
      ASSERT_EQ((*out)[c]->num_chunks(), 1);
      const auto& got = (*out)[c]->chunk(0);
      ASSERT_TRUE(got->ValidateFull().ok());
      EXPECT_TRUE(got->Equals(*expected[c])) << got->ToString() << "\nexpected\n"
                                             << expected[c]->ToString();
      EXPECT_EQ(got->null_count(), expected[c]->null_count());
      // Fixed width without nulls: no validity bitmap, as a Take of a column without nulls gives.
      if (expected[c]->null_count() == 0 && c != 5) {
        EXPECT_EQ(got->null_bitmap_data(), nullptr);
      }
    }
    // The slots of nulls hold zeros: the buffers' bytes depend on the values only.
    const auto& int64s = static_cast<const arrow::Int64Array&>(*(*out)[0]->chunk(0));
    for (int64_t i = 0; i < n; ++i) {
      if (int64s.IsNull(i)) {
        ASSERT_EQ(int64s.raw_values()[i], 0) << "row " << i;
      }
    }
  }
}

TEST(RowOrderColumns, APositionPlacedTwiceOrOutOfRangeOrNeverPlacedIsAnError) {
  const auto type = std::vector<std::shared_ptr<arrow::DataType>>{arrow::int64()};
  {
    auto columns = RowOrderColumns::Make(type, 3).ValueOrDie();
    ASSERT_TRUE(columns->Place(*Int64s({0, 2}), {Int64s({10, 12})}).ok());
    Status twice = columns->Place(*Int64s({2}), {Int64s({13})});
    EXPECT_EQ(twice.code(), StatusCode::kInternal);
    EXPECT_NE(twice.message().find("row position 2 placed twice"), std::string::npos)
        << twice.ToString();
    auto missing = columns->Finish();
    ASSERT_FALSE(missing.ok());
    EXPECT_NE(missing.status().message().find("2 of 3 row positions placed"), std::string::npos)
        << missing.status().ToString();
  }
  {
    auto columns = RowOrderColumns::Make(type, 3).ValueOrDie();
    Status out_of_range = columns->Place(*Int64s({3}), {Int64s({13})});
    EXPECT_NE(out_of_range.message().find("row position 3 of 3 rows"), std::string::npos)
        << out_of_range.ToString();
    arrow::DoubleBuilder doubles;
    ASSERT_TRUE(doubles.Append(1.5).ok());
    Status wrong_type = columns->Place(*Int64s({1}), {doubles.Finish().ValueOrDie()});
    EXPECT_NE(wrong_type.message().find("expected 1 of int64"), std::string::npos)
        << wrong_type.ToString();
  }
}

// SpilledAnswers: the same pieces, placed from two threads into ranges of random sizes with a
// buffer that spills after every piece, after some, or never, give by range the columns
// RowOrderColumns gives whole; the spill folder is gone after Emit.
TEST(SpilledAnswers, PiecesSpilledByRangeGiveTheColumnsInRowOrder) {
  const uint64_t first_seed = testing::TestSeed();
  auto dir = TempDir::Make("granary_spilled_answers_").ValueOrDie();
  for (uint64_t round = 0; round < 30; ++round) {
    const uint64_t seed = first_seed + round;
    SCOPED_TRACE(testing::SeedTrace(seed));
    std::mt19937_64 rng(seed);
    // Not a structured binding: the lambda below uses n and expected (clang 14, which the
    // TSan and fuzz builds use, cannot capture bindings).
    const Round round_data = RandomRound(rng);
    const int64_t n = round_data.n;
    const auto& expected = round_data.expected;
    const auto& pieces = round_data.pieces;
    SpilledAnswersOptions options;
    options.num_rows = n;
    options.range_rows = std::uniform_int_distribution<int64_t>(1, n / 3 + 2)(rng);
    const int64_t buffers[] = {0, 4096, int64_t{1} << 30};
    options.buffer_bytes = buffers[rng() % 3];
    options.spill_parent = dir.path();
    SCOPED_TRACE(fmt::format("{} rows, ranges of {}, buffer {}", n, options.range_rows,
                             options.buffer_bytes));
    auto answers = SpilledAnswers::Make(TypesOf(expected), options);
    ASSERT_TRUE(answers.ok()) << answers.status().ToString();
    PlaceOnTwoThreads(pieces, answers->get());
    if (options.buffer_bytes == 0 && n > 0) {
      EXPECT_GT((*answers)->bytes_spilled(), 0);
    }
    if (options.buffer_bytes > (int64_t{1} << 20)) {
      EXPECT_EQ((*answers)->bytes_spilled(), 0);
    }
    std::vector<arrow::ArrayVector> got(expected.size());
    int64_t next = 0;
    Status emitted = (*answers)->Emit(
        [&](int64_t first_row, std::vector<std::shared_ptr<arrow::ChunkedArray>> columns) {
          EXPECT_EQ(first_row, next);
          EXPECT_EQ(columns.size(), expected.size());
          const int64_t length = columns.empty() ? 0 : columns[0]->length();
          EXPECT_EQ(length, std::min(options.range_rows, n - first_row));
          for (size_t c = 0; c < columns.size() && c < got.size(); ++c) {
            EXPECT_EQ(columns[c]->num_chunks(), 1);
            EXPECT_EQ(columns[c]->length(), length);
            for (const auto& chunk : columns[c]->chunks()) got[c].push_back(chunk);
          }
          next = first_row + length;
          return Status::OK();
        });
    ASSERT_TRUE(emitted.ok()) << emitted.ToString();
    EXPECT_EQ(next, n);
    EXPECT_TRUE(std::filesystem::is_empty(dir.path())) << "the spill folder is left after Emit";
    for (size_t c = 0; c < expected.size(); ++c) {
      SCOPED_TRACE(fmt::format("column {} ({})", c, expected[c]->type()->ToString()));
      if (n == 0) {
        EXPECT_TRUE(got[c].empty());
        continue;
      }
      auto column = arrow::Concatenate(got[c]).ValueOrDie();
      ASSERT_TRUE(column->ValidateFull().ok());
      EXPECT_TRUE(column->Equals(*expected[c])) << column->ToString() << "\nexpected\n"
                                                << expected[c]->ToString();
      EXPECT_EQ(column->null_count(), expected[c]->null_count());
    }
  }
}

TEST(SpilledAnswers, APositionPlacedTwiceOrOutOfRangeOrNeverPlacedIsAnError) {
  auto dir = TempDir::Make("granary_spilled_answers_").ValueOrDie();
  const auto type = std::vector<std::shared_ptr<arrow::DataType>>{arrow::int64()};
  SpilledAnswersOptions options;
  options.num_rows = 6;
  options.range_rows = 4;
  options.spill_parent = dir.path();
  auto ignore = [](int64_t, std::vector<std::shared_ptr<arrow::ChunkedArray>>) {
    return Status::OK();
  };
  {
    auto answers = SpilledAnswers::Make(type, options).ValueOrDie();
    ASSERT_TRUE(answers->Place(*Int64s({0, 5, 2, 1, 3}), {Int64s({10, 15, 12, 11, 13})}).ok());
    ASSERT_TRUE(answers->Place(*Int64s({2, 4}), {Int64s({22, 14})}).ok());
    Status twice = answers->Emit(ignore);
    EXPECT_EQ(twice.code(), StatusCode::kInternal);
    EXPECT_NE(twice.message().find("rows 0 to 4: RowOrderColumns: row position 2 placed twice"),
              std::string::npos)
        << twice.ToString();
  }
  {
    auto answers = SpilledAnswers::Make(type, options).ValueOrDie();
    ASSERT_TRUE(answers->Place(*Int64s({0, 1, 2, 3, 4}), {Int64s({10, 11, 12, 13, 14})}).ok());
    std::vector<int64_t> firsts;
    Status missing = answers->Emit([&](int64_t first, auto) {
      firsts.push_back(first);
      return Status::OK();
    });
    EXPECT_NE(missing.message().find("rows 4 to 6: RowOrderColumns: 1 of 2 row positions placed"),
              std::string::npos)
        << missing.ToString();
    EXPECT_EQ(firsts, std::vector<int64_t>{0});
  }
  {
    auto answers = SpilledAnswers::Make(type, options).ValueOrDie();
    Status out_of_range = answers->Place(*Int64s({6}), {Int64s({16})});
    EXPECT_NE(out_of_range.message().find("row position 6 of 6 rows"), std::string::npos)
        << out_of_range.ToString();
  }
  EXPECT_TRUE(std::filesystem::is_empty(dir.path()));
}

}  // namespace
}  // namespace granary
