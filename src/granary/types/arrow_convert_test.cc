#include "granary/types/arrow_convert.h"

#include <arrow/api.h>
#include <arrow/io/api.h>
#include <gtest/gtest.h>
#include <parquet/arrow/reader.h>
#include <parquet/arrow/writer.h>

#include <cstdint>
#include <filesystem>
#include <vector>

#include "granary/common/temp_dir.h"

namespace granary {
namespace {

// One sample column per value type: the values, with a null in each.
std::vector<std::pair<ValueType, std::vector<Value>>> Samples() {
  using S = ScalarType;
  const Timestamp t0 = ParseTimestamp("2026-11-23T02:00:00.123456Z").ValueOrDie();
  return {
      {ValueType::Scalar(S::kBool), {Value(true), Value(), Value(false)}},
      {ValueType::Scalar(S::kInt32), {Value(int32_t{-7}), Value(), Value(int32_t{1} << 30)}},
      {ValueType::Scalar(S::kInt64), {Value(int64_t{1} << 40), Value(), Value(int64_t{-1})}},
      {ValueType::Scalar(S::kFloat32), {Value(1.5f), Value(), Value(-0.25f)}},
      {ValueType::Scalar(S::kFloat64), {Value(0.125), Value(), Value(1e300)}},
      {ValueType::Scalar(S::kString), {Value("héllo wörld"), Value(), Value("")}},
      {ValueType::Scalar(S::kBytes),
       {Value(Bytes{std::string("\0\x01\xff", 3)}), Value(), Value(Bytes{})}},
      {ValueType::Scalar(S::kTimestamp), {Value(t0), Value(), Value(Timestamp::FromMicros(-1))}},
      {ValueType::List(S::kBool),
       {Value(std::vector<bool>{true, false}), Value(), Value(std::vector<bool>{})}},
      {ValueType::List(S::kInt32),
       {Value(std::vector<int32_t>{1, 2}), Value(), Value(std::vector<int32_t>{})}},
      {ValueType::List(S::kInt64),
       {Value(std::vector<int64_t>{3}), Value(), Value(std::vector<int64_t>{4, 5})}},
      {ValueType::List(S::kFloat32),
       {Value(std::vector<float>{0.1f, 0.2f, 0.3f}), Value(), Value(std::vector<float>{})}},
      {ValueType::List(S::kFloat64),
       {Value(std::vector<double>{1.0}), Value(), Value(std::vector<double>{2, 3})}},
      {ValueType::List(S::kString),
       {Value(std::vector<std::string>{"a", "ß"}), Value(), Value(std::vector<std::string>{""})}},
      {ValueType::List(S::kBytes),
       {Value(std::vector<Bytes>{Bytes{"x"}}), Value(), Value(std::vector<Bytes>{})}},
      {ValueType::List(S::kTimestamp),
       {Value(std::vector<Timestamp>{t0}), Value(), Value(std::vector<Timestamp>{})}},
  };
}

TEST(TimestampToMicros, ScalesEveryUnitAndFloorsNanoseconds) {
  EXPECT_EQ(TimestampToMicros(2, arrow::TimeUnit::SECOND), 2'000'000);
  EXPECT_EQ(TimestampToMicros(-3, arrow::TimeUnit::MILLI), -3000);
  EXPECT_EQ(TimestampToMicros(42, arrow::TimeUnit::MICRO), 42);
  EXPECT_EQ(TimestampToMicros(1999, arrow::TimeUnit::NANO), 1);
  EXPECT_EQ(TimestampToMicros(-1, arrow::TimeUnit::NANO), -1);  // the microsecond it lies in
  EXPECT_EQ(TimestampToMicros(-1000, arrow::TimeUnit::NANO), -1);
  static_assert(TimestampToMicros(5, arrow::TimeUnit::MILLI) == 5000);
}

TEST(TimestampToMicros, TimesBeyondInt64MicrosecondsAreNulloptNotWrapped) {
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
  // The last second and millisecond that fit, and the first that does not, either side of 1970.
  EXPECT_EQ(TimestampToMicros(kMax / 1'000'000, arrow::TimeUnit::SECOND),
            kMax / 1'000'000 * 1'000'000);
  EXPECT_EQ(TimestampToMicros(kMax / 1'000'000 + 1, arrow::TimeUnit::SECOND), std::nullopt);
  EXPECT_EQ(TimestampToMicros(kMin / 1'000'000 - 1, arrow::TimeUnit::SECOND), std::nullopt);
  EXPECT_EQ(TimestampToMicros(kMax / 1000, arrow::TimeUnit::MILLI), kMax / 1000 * 1000);
  EXPECT_EQ(TimestampToMicros(kMax / 1000 + 1, arrow::TimeUnit::MILLI), std::nullopt);
  EXPECT_EQ(TimestampToMicros(kMin, arrow::TimeUnit::MILLI), std::nullopt);
  // Microseconds and nanoseconds always fit.
  EXPECT_EQ(TimestampToMicros(kMax, arrow::TimeUnit::MICRO), kMax);
  EXPECT_EQ(TimestampToMicros(kMin, arrow::TimeUnit::NANO), kMin / 1000 - 1);
  EXPECT_EQ(DaysToMicros(-2), -2 * Duration::Days(1).micros);
  EXPECT_EQ(DaysToMicros(std::numeric_limits<int32_t>::max()), std::nullopt);
  EXPECT_EQ(DaysToMicros(std::numeric_limits<int32_t>::min()), std::nullopt);
  static_assert(!TimestampToMicros(kMax, arrow::TimeUnit::SECOND).has_value());
}

// ValueAt read a time in seconds, milliseconds or days unchecked: 1.7e18 s wrapped silently
// into some other time. Now an error (its callers add the column and the row).
TEST(ValueAt, TimesBeyondInt64MicrosecondsAreErrorsNamingTheRow) {
  const auto seconds = arrow::timestamp(arrow::TimeUnit::SECOND);
  arrow::TimestampBuilder b(seconds, arrow::default_memory_pool());
  ASSERT_TRUE(b.AppendValues({1'700'000'000, 1'700'000'000'000'000'000}).ok());
  auto times = b.Finish().ValueOrDie();
  const ValueType timestamp = ValueType::Scalar(ScalarType::kTimestamp);
  auto ok = ValueAt(*times, 0, timestamp);
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(*ok, Value(Timestamp::FromSeconds(1'700'000'000)));
  auto bad = ValueAt(*times, 1, timestamp);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(bad.status().message(),
            "1700000000000000000 seconds since 1970-01-01 is beyond the times Granary "
            "holds (int64 microseconds, about 292,000 years either side of 1970); fix the value "
            "or make it null");

  arrow::Date32Builder days;
  ASSERT_TRUE(days.AppendValues({19000, std::numeric_limits<int32_t>::max()}).ok());
  auto dates = days.Finish().ValueOrDie();
  EXPECT_EQ(*ValueAt(*dates, 0, timestamp), Value(Timestamp::FromSeconds(19000LL * 86400)));
  EXPECT_NE(ValueAt(*dates, 1, timestamp).status().message().find("2147483647 days since"),
            std::string::npos);

  arrow::Date64Builder millis;
  ASSERT_TRUE(millis.Append(std::numeric_limits<int64_t>::min()).ok());
  EXPECT_NE(ValueAt(*millis.Finish().ValueOrDie(), 0, timestamp)
                .status()
                .message()
                .find("-9223372036854775808 milliseconds since"),
            std::string::npos);

  // An element of a list of times.
  arrow::ListBuilder list(
      arrow::default_memory_pool(),
      std::make_shared<arrow::TimestampBuilder>(arrow::timestamp(arrow::TimeUnit::MILLI),
                                                arrow::default_memory_pool()));
  ASSERT_TRUE(list.Append().ok());
  auto* items = static_cast<arrow::TimestampBuilder*>(list.value_builder());
  ASSERT_TRUE(items->AppendValues({5, std::numeric_limits<int64_t>::max()}).ok());
  auto lists = list.Finish().ValueOrDie();
  auto in_list = ValueAt(*lists, 0, ValueType::List(ScalarType::kTimestamp));
  ASSERT_FALSE(in_list.ok());
  EXPECT_NE(in_list.status().message().find(
                "element 1: 9223372036854775807 milliseconds since 1970-01-01"),
            std::string::npos)
      << in_list.status().ToString();
}

// Found by fuzz/flight_entities_fuzz.cc (fuzz/corpus/flight_entities/crash_seconds_overflow): an
// uploaded entity time of 1.7e18 seconds was multiplied into microseconds unchecked (signed
// overflow) when the entity rows were normalized; file sources take the same path.
TEST(ToUtcMicros, TimesBeyondInt64MicrosecondsAreErrorsNamingTheRow) {
  auto times = [](std::shared_ptr<arrow::DataType> type, std::vector<int64_t> values,
                  std::vector<bool> valid) {
    arrow::TimestampBuilder b(type, arrow::default_memory_pool());
    EXPECT_TRUE(b.AppendValues(values, valid).ok());
    return b.Finish().ValueOrDie();
  };
  const auto seconds = arrow::timestamp(arrow::TimeUnit::SECOND);
  auto ok = ToUtcMicros(times(seconds, {1'700'000'000, 1'699'999'999'932'891'136}, {true, false}),
                        "event_timestamp");
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();  // a null slot may hold anything
  EXPECT_EQ(static_cast<const arrow::TimestampArray&>(**ok).Value(0), 1'700'000'000'000'000);
  EXPECT_TRUE((*ok)->IsNull(1));

  auto bad = ToUtcMicros(times(seconds, {1'700'000'000, 1'699'999'999'932'891'136}, {true, true}),
                         "event_timestamp");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("column 'event_timestamp', row 1: 1699999999932891136 "
                                        "seconds since 1970-01-01 is beyond the times Granary "
                                        "holds"),
            std::string::npos)
      << bad.status().message();

  arrow::Date32Builder days;
  ASSERT_TRUE(days.AppendValues({19000, INT32_MAX}).ok());
  auto far = ToUtcMicros(days.Finish().ValueOrDie(), "day");
  ASSERT_FALSE(far.ok());
  EXPECT_NE(far.status().message().find("column 'day', row 1: 2147483647 days"), std::string::npos)
      << far.status().message();
}

TEST(ArrowConvert, EveryTypeRoundTripsThroughArrowArrays) {
  for (const auto& [type, values] : Samples()) {
    auto array = MakeArray(type, values);
    ASSERT_TRUE(array.ok()) << type.ToString() << ": " << array.status().ToString();
    EXPECT_TRUE((*array)->type()->Equals(*ToArrowType(type))) << type.ToString();
    ASSERT_EQ(FromArrowType(*(*array)->type()).ValueOrDie(), type);
    for (size_t i = 0; i < values.size(); ++i) {
      auto v = ValueAt(**array, static_cast<int64_t>(i), type);
      ASSERT_TRUE(v.ok()) << v.status().ToString();
      EXPECT_EQ(*v, values[i]) << type.ToString() << " row " << i;
    }
  }
}

TEST(ArrowConvert, MapsForeignArrowTypesToTheirNaturalType) {
  EXPECT_EQ(FromArrowType(*arrow::int16()).ValueOrDie(), ValueType::Scalar(ScalarType::kInt32));
  EXPECT_EQ(FromArrowType(*arrow::large_utf8()).ValueOrDie(),
            ValueType::Scalar(ScalarType::kString));
  EXPECT_EQ(FromArrowType(*arrow::timestamp(arrow::TimeUnit::NANO)).ValueOrDie(),
            ValueType::Scalar(ScalarType::kTimestamp));
  EXPECT_EQ(FromArrowType(*arrow::dictionary(arrow::int32(), arrow::utf8())).ValueOrDie(),
            ValueType::Scalar(ScalarType::kString));
  EXPECT_EQ(FromArrowType(*arrow::fixed_size_list(arrow::float32(), 4)).ValueOrDie(),
            ValueType::List(ScalarType::kFloat32));
  EXPECT_FALSE(FromArrowType(*arrow::decimal128(10, 2)).ok());
  EXPECT_FALSE(FromArrowType(*arrow::list(arrow::list(arrow::int64()))).ok());
}

TEST(ArrowConvert, AllowsOnlyLosslessWidening) {
  EXPECT_TRUE(CheckReadableAs(*arrow::int32(), ValueType::Scalar(ScalarType::kInt64)).ok());
  EXPECT_TRUE(CheckReadableAs(*arrow::float32(), ValueType::Scalar(ScalarType::kFloat64)).ok());
  auto st = CheckReadableAs(*arrow::utf8(), ValueType::Scalar(ScalarType::kFloat64));
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.message(), "float64 but source column is string");
  EXPECT_FALSE(CheckReadableAs(*arrow::int64(), ValueType::Scalar(ScalarType::kInt32)).ok());
  EXPECT_FALSE(CheckReadableAs(*arrow::float64(), ValueType::List(ScalarType::kFloat64)).ok());
}

TEST(ArrowConvert, ReadsWidenedAndNanosecondValues) {
  auto ints = MakeArray(ValueType::Scalar(ScalarType::kInt32), {Value(int32_t{5})}).ValueOrDie();
  EXPECT_EQ(ValueAt(*ints, 0, ValueType::Scalar(ScalarType::kFloat64)).ValueOrDie(), Value(5.0));
  arrow::TimestampBuilder b(arrow::timestamp(arrow::TimeUnit::NANO), arrow::default_memory_pool());
  ASSERT_TRUE(b.Append(-1500).ok());
  std::shared_ptr<arrow::Array> ns;
  ASSERT_TRUE(b.Finish(&ns).ok());
  EXPECT_EQ(ValueAt(*ns, 0, ValueType::Scalar(ScalarType::kTimestamp)).ValueOrDie(),
            Value(Timestamp::FromMicros(-2)));  // floor, as for every negative time
}

// Proves that the C++ ABI of the pyarrow wheel's libarrow/libparquet fits this compiler: a table
// with every value type (strings and lists included) goes to a Parquet file and back unchanged.
TEST(ArrowConvert, AStringThatIsNotANumberNamesTheColumnAndTheFirstBadRow) {
  arrow::StringBuilder b;
  ASSERT_TRUE(b.AppendValues({"1", "2", "3", "4", "x5", "6", "y7"}).ok());
  std::shared_ptr<arrow::Array> strings = b.Finish().ValueOrDie();
  auto cast = CastToValueType(strings, ValueType::Scalar(ScalarType::kInt64), "customer_id");
  ASSERT_FALSE(cast.ok());
  EXPECT_EQ(cast.status().message(),
            "column 'customer_id', row 5: 'x5' is not a valid int64; fix the value or declare "
            "the column with the type of its data");
}

TEST(ParquetAbi, WritesAndReadsEveryValueTypeThroughTheCppApi) {
  std::vector<std::shared_ptr<arrow::Field>> fields;
  std::vector<std::shared_ptr<arrow::Array>> columns;
  int n = 0;
  for (const auto& [type, values] : Samples()) {
    fields.push_back(arrow::field("c" + std::to_string(n++), ToArrowType(type)));
    columns.push_back(MakeArray(type, values).ValueOrDie());
  }
  auto table = arrow::Table::Make(arrow::schema(fields), columns);
  TempDir dir = TempDir::Make("granary_abi_").ValueOrDie();
  auto path = dir.path() / "all_types.parquet";
  {
    auto out = arrow::io::FileOutputStream::Open(path.string()).ValueOrDie();
    ASSERT_TRUE(parquet::arrow::WriteTable(*table, arrow::default_memory_pool(), out, 2).ok());
    ASSERT_TRUE(out->Close().ok());
  }
  auto in = arrow::io::ReadableFile::Open(path.string()).ValueOrDie();
  auto reader = parquet::arrow::OpenFile(in, arrow::default_memory_pool()).ValueOrDie();
  auto back = reader->ReadTable().ValueOrDie();
  ASSERT_EQ(back->num_rows(), 3);
  n = 0;
  for (const auto& [type, values] : Samples()) {
    auto column = back->column(n++);
    for (int64_t i = 0; i < back->num_rows(); ++i) {
      auto chunk = column->chunk(0);
      EXPECT_EQ(ValueAt(*chunk, i, type).ValueOrDie(), values[i]) << type.ToString();
    }
  }
}

}  // namespace
}  // namespace granary
