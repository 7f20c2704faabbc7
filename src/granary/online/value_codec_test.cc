#include "granary/online/value_codec.h"

#include <arrow/api.h>
#include <gtest/gtest.h>

#include <limits>

#include "granary/online/entity_key.h"
#include "granary/testing/online_definitions.h"

namespace granary {
namespace {

using testing::EveryTypeValues;
using testing::MakeRows;
using testing::OnlineDefinitions;
using testing::Row;

std::shared_ptr<const ViewLayout> Layout(const Definitions& defs, const std::string& name) {
  return ViewLayout::Make(defs, *defs.FindFeatureView(name), Duration::Days(90)).ValueOrDie();
}

std::vector<Value> Decode(const ViewLayout& view, std::string_view body) {
  BodyHeader header;
  EXPECT_TRUE(ParseBodyHeader(body, view.features().size(), &header));
  std::vector<uint32_t> offsets(view.features().size());
  EXPECT_TRUE(IndexBody(view, body, header, offsets.data()));
  std::vector<Value> out;
  for (size_t f = 0; f < view.features().size(); ++f) {
    ValueRef ref;
    ref.type = view.features()[f].type;
    ref.data = offsets[f] == kNullOffset ? nullptr : body.data() + offsets[f];
    out.push_back(ref.ToValue());
  }
  return out;
}

TEST(EntityKey, IntegerKeysAreTheSameBytesFromEveryInput) {
  std::string a, b, c;
  ASSERT_TRUE(entity_key::AppendValue(&a, Value(int64_t{1001})).ok());
  ASSERT_TRUE(entity_key::AppendValue(&b, Value(int32_t{1001})).ok());
  entity_key::AppendInteger(&c, 1001);
  EXPECT_EQ(a, b);
  EXPECT_EQ(a, c);
  EXPECT_EQ(a, std::string("\x01\xd2\x0f", 3));  // tag, zigzag varint of 1001

  // From Arrow: int64 and int32 columns give the same keys as the values.
  Definitions defs = OnlineDefinitions();
  auto view = Layout(defs, "risk");
  for (auto type : {arrow::int64(), arrow::int32()}) {
    auto rows = MakeRows(*view, {Row{{Value(int64_t{1001})},
                                     Timestamp::FromSeconds(1),
                                     {},
                                     {Value(1.0), Value(int64_t{1})}}});
    std::shared_ptr<arrow::Array> ids;
    if (type->id() == arrow::Type::INT32) {
      arrow::Int32Builder builder;
      ASSERT_TRUE(builder.Append(1001).ok());
      ASSERT_TRUE(builder.Finish(&ids).ok());
    } else {
      arrow::Int64Builder builder;
      ASSERT_TRUE(builder.Append(1001).ok());
      ASSERT_TRUE(builder.Finish(&ids).ok());
    }
    rows = rows->SetColumn(0, arrow::field("customer_id", type), ids).ValueOrDie();
    auto keys = EncodeEntityKeys(*view, *rows);
    ASSERT_TRUE(keys.ok()) << keys.status().ToString();
    EXPECT_EQ(keys->key(0), a) << type->ToString();
  }
}

TEST(EntityKey, CompoundKeysFollowJoinKeyNamesAndTypesAreTagged) {
  Definitions defs = OnlineDefinitions();
  auto view = Layout(defs, "trip_stats");
  ASSERT_EQ(view->join_keys().size(), 2u);
  EXPECT_EQ(view->join_keys()[0].name, "driver_id");
  EXPECT_EQ(view->join_keys()[1].name, "rider_id");
  std::string s, i;
  entity_key::AppendString(&s, "1");
  entity_key::AppendInteger(&i, 1);
  EXPECT_NE(s, i);
  std::string neg_zero, zero;
  entity_key::AppendFloat(&neg_zero, -0.0);
  entity_key::AppendFloat(&zero, 0.0);
  EXPECT_EQ(neg_zero, zero);
  EXPECT_FALSE(entity_key::AppendValue(&s, Value::Null()).ok());
}

TEST(EntityKey, NullOrMissingKeyColumnsAreErrorsNamingThem) {
  Definitions defs = OnlineDefinitions();
  auto view = Layout(defs, "risk");
  auto rows = MakeRows(
      *view,
      {Row{{Value::Null()}, Timestamp::FromSeconds(1), {}, {Value(1.0), Value(int64_t{1})}}});
  auto keys = EncodeEntityKeys(*view, *rows);
  ASSERT_FALSE(keys.ok());
  EXPECT_NE(keys.status().message().find("join key 'customer_id' is null in row 0"),
            std::string::npos)
      << keys.status().ToString();
  auto no_key = rows->RemoveColumn(0).ValueOrDie();
  EXPECT_NE(EncodeEntityKeys(*view, *no_key).status().message().find("no column 'customer_id'"),
            std::string::npos);
}

TEST(ValueCodec, EveryTypeRoundTripsFromValuesAndFromArrowToTheSameBytes) {
  Definitions defs = OnlineDefinitions();
  auto view = Layout(defs, "every_type");
  std::vector<Row> rows;
  for (int64_t i = 0; i < 4; ++i) {
    rows.push_back(
        Row{{Value(i)},
            Timestamp::FromSeconds(1000 + i),
            i == 1 ? std::optional<Timestamp>(Timestamp::FromSeconds(900)) : std::nullopt,
            EveryTypeValues(i, /*nulls=*/i == 3)});
  }
  auto batch = MakeRows(*view, rows);
  auto encoder = BodyEncoder::Make(*view, *batch);
  ASSERT_TRUE(encoder.ok()) << encoder.status().ToString();
  for (int64_t i = 0; i < 4; ++i) {
    std::string from_arrow, from_values;
    ASSERT_TRUE(encoder->Append(i, &from_arrow).ok());
    WriteOrder order = encoder->Order(i);
    ASSERT_TRUE(EncodeBody(*view, order, rows[i].features, &from_values).ok());
    EXPECT_EQ(from_arrow, from_values) << "row " << i;
    EXPECT_EQ(Decode(*view, from_arrow), rows[i].features) << "row " << i;
    BodyHeader header;
    ASSERT_TRUE(ParseBodyHeader(from_arrow, 16, &header));
    EXPECT_EQ(header.fingerprint, view->fingerprint());
    EXPECT_EQ(header.order.event_micros, Timestamp::FromSeconds(1000 + i).micros);
    EXPECT_EQ(header.order.has_created, i == 1);
    if (i == 1) {
      EXPECT_EQ(header.order.created_micros, Timestamp::FromSeconds(900).micros);
    }
  }
}

TEST(ValueCodec, TruncatedOrPaddedBodiesAreRejected) {
  Definitions defs = OnlineDefinitions();
  auto view = Layout(defs, "every_type");
  std::string body;
  ASSERT_TRUE(EncodeBody(*view, WriteOrder{5}, EveryTypeValues(2), &body).ok());
  std::vector<uint32_t> offsets(16);
  for (size_t cut : {body.size() - 1, body.size() / 2, size_t{14}}) {
    std::string_view shorter(body.data(), cut);
    BodyHeader header;
    EXPECT_FALSE(ParseBodyHeader(shorter, 16, &header) &&
                 IndexBody(*view, shorter, header, offsets.data()))
        << cut;
  }
  std::string longer = body + "x";
  BodyHeader header;
  ASSERT_TRUE(ParseBodyHeader(longer, 16, &header));
  EXPECT_FALSE(IndexBody(*view, longer, header, offsets.data()));
}

TEST(ValueCodec, CreatedTimesAnyDistanceFromTheEventRoundTripWithoutOverflow) {
  // Seen while writing the value_codec fuzzer: a stored created code far from the event time made
  // event + UnZigZag(code - 1) overflow (UBSan); times from a source file can be as far apart.
  Definitions defs = OnlineDefinitions();
  auto view = Layout(defs, "risk");
  const int64_t kMax = std::numeric_limits<int64_t>::max();
  const int64_t kMin = std::numeric_limits<int64_t>::min();
  for (auto [event, created] : std::vector<std::pair<int64_t, int64_t>>{
           {kMax - 5, kMin + 3}, {kMin, kMax}, {kMax, kMax}, {-1, 1}, {1000, 900}}) {
    WriteOrder order{event, true, created};
    std::string body;
    ASSERT_TRUE(EncodeBody(*view, order, {Value(1.0), Value(int64_t{2})}, &body).ok());
    BodyHeader header;
    ASSERT_TRUE(ParseBodyHeader(body, 2, &header)) << event << " " << created;
    EXPECT_TRUE(header.order.has_created);
    EXPECT_EQ(header.order.event_micros, event);
    EXPECT_EQ(header.order.created_micros, created) << event;
  }
  // The largest code a stored varint can hold decodes to some time, not to undefined behaviour.
  std::string body;
  ASSERT_TRUE(EncodeBody(*view, WriteOrder{kMax}, {Value(1.0), Value(int64_t{2})}, &body).ok());
  std::string huge = body.substr(0, 12) + std::string(9, '\xff') + '\x01' + body.substr(13);
  BodyHeader header;
  ASSERT_TRUE(ParseBodyHeader(huge, 2, &header));
  EXPECT_TRUE(header.order.has_created);
  // code 2^64 - 1: a difference of INT64_MAX, taken modulo 2^64 from INT64_MAX.
  EXPECT_EQ(header.order.created_micros, -2);
  EXPECT_EQ(header.bitmap_offset, 22u);
}

TEST(ValueCodec, FixedWidthBodiesWithoutNullsUseKnownOffsetsAndStillCheckTheirSize) {
  Definitions defs = OnlineDefinitions();
  auto view = Layout(defs, "risk");  // float64, int64: fixed width
  ASSERT_EQ(view->fixed_values_size(), 16);
  EXPECT_EQ(Layout(defs, "every_type")->fixed_values_size(), -1);
  std::string body;
  ASSERT_TRUE(EncodeBody(*view, WriteOrder{7}, {Value(2.5), Value(int64_t{-3})}, &body).ok());
  EXPECT_EQ(Decode(*view, body), (std::vector<Value>{Value(2.5), Value(int64_t{-3})}));
  std::vector<uint32_t> offsets(2);
  BodyHeader header;
  for (std::string bad : {body + "x", body.substr(0, body.size() - 1)}) {
    ASSERT_TRUE(ParseBodyHeader(bad, 2, &header));
    EXPECT_FALSE(IndexBody(*view, bad, header, offsets.data())) << bad.size();
  }
}

TEST(ValueCodec, WideningColumnsAreEncodedAsTheDeclaredType) {
  Definitions defs = OnlineDefinitions();
  auto view = Layout(defs, "risk");  // score float64, failures int64
  arrow::Int32Builder ints;
  arrow::FloatBuilder floats;
  arrow::TimestampBuilder ts(arrow::timestamp(arrow::TimeUnit::NANO), arrow::default_memory_pool());
  arrow::Int64Builder ids;
  ASSERT_TRUE(ints.Append(12).ok());
  ASSERT_TRUE(floats.Append(0.5f).ok());
  ASSERT_TRUE(ts.Append(1'500'000'999).ok());  // 1.500000999 s
  ASSERT_TRUE(ids.Append(1).ok());
  auto batch = arrow::RecordBatch::Make(
      arrow::schema(
          {arrow::field("customer_id", arrow::int64()), arrow::field("event_timestamp", ts.type()),
           arrow::field("score", arrow::float32()), arrow::field("failures", arrow::int32())}),
      1,
      {ids.Finish().ValueOrDie(), ts.Finish().ValueOrDie(), floats.Finish().ValueOrDie(),
       ints.Finish().ValueOrDie()});
  auto encoder = BodyEncoder::Make(*view, *batch);
  ASSERT_TRUE(encoder.ok()) << encoder.status().ToString();
  std::string body;
  ASSERT_TRUE(encoder->Append(0, &body).ok());
  EXPECT_EQ(encoder->Order(0).event_micros, 1'500'000);
  EXPECT_EQ(Decode(*view, body), (std::vector<Value>{Value(0.5), Value(int64_t{12})}));
}

TEST(ValueCodec, EncoderErrorsNameTheViewColumnAndRow) {
  Definitions defs = OnlineDefinitions();
  auto view = Layout(defs, "every_type");
  auto batch = MakeRows(
      *view, {Row{{Value(int64_t{1})}, Timestamp::FromSeconds(1), {}, EveryTypeValues(1)}});
  auto missing = batch->RemoveColumn(batch->schema()->GetFieldIndex("f_int32")).ValueOrDie();
  EXPECT_NE(
      BodyEncoder::Make(*view, *missing).status().message().find("no column for feature 'f_int32'"),
      std::string::npos);
  auto strings = MakeArray(ValueType::Scalar(ScalarType::kString), {Value("x")}).ValueOrDie();
  auto wrong = batch
                   ->SetColumn(batch->schema()->GetFieldIndex("f_int64"),
                               arrow::field("f_int64", arrow::utf8()), strings)
                   .ValueOrDie();
  EXPECT_NE(BodyEncoder::Make(*view, *wrong)
                .status()
                .message()
                .find("feature 'f_int64' is int64 but source column is string"),
            std::string::npos)
      << BodyEncoder::Make(*view, *wrong).status().ToString();

  // A null element inside a list.
  arrow::ListBuilder list(arrow::default_memory_pool(), std::make_shared<arrow::Int32Builder>());
  ASSERT_TRUE(list.Append().ok());
  ASSERT_TRUE(list.value_builder()->AppendNull().ok());
  auto with_null = batch
                       ->SetColumn(batch->schema()->GetFieldIndex("l_int32"),
                                   arrow::field("l_int32", arrow::list(arrow::int32())),
                                   list.Finish().ValueOrDie())
                       .ValueOrDie();
  // Found when the encoder is made (one pass over the column), before any row is written.
  auto encoder = BodyEncoder::Make(*view, *with_null);
  ASSERT_FALSE(encoder.ok());
  EXPECT_EQ(encoder.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(encoder.status().message().find("feature 'l_int32' has a null list element in row 0"),
            std::string::npos)
      << encoder.status().ToString();
}

// A time in seconds, milliseconds or days beyond int64 microseconds was multiplied unchecked by
// the encoder's fast writers (and Order) and stored as some other time, wrapped. Make now
// rejects the batch naming the view, the column and the row.
TEST(ValueCodec, TimesBeyondInt64MicrosecondsAreRejectedNamingTheColumnAndRow) {
  Definitions defs = OnlineDefinitions();
  auto view = Layout(defs, "every_type");
  auto batch = MakeRows(
      *view, {Row{{Value(int64_t{1})}, Timestamp::FromSeconds(1), {}, EveryTypeValues(1)},
              Row{{Value(int64_t{2})}, Timestamp::FromSeconds(2), {}, EveryTypeValues(2)}});
  constexpr int64_t kFar = 1'700'000'000'000'000'000;  // seconds: about 5.4e10 years
  auto seconds = [](std::vector<int64_t> values) {
    arrow::TimestampBuilder b(arrow::timestamp(arrow::TimeUnit::SECOND),
                              arrow::default_memory_pool());
    EXPECT_TRUE(b.AppendValues(values).ok());
    return b.Finish().ValueOrDie();
  };
  auto replaced = [&](const std::string& name, std::shared_ptr<arrow::Array> column) {
    return batch
        ->SetColumn(batch->schema()->GetFieldIndex(name), arrow::field(name, column->type()),
                    column)
        .ValueOrDie();
  };
  auto error_of = [&](const std::shared_ptr<arrow::RecordBatch>& rows) {
    auto encoder = BodyEncoder::Make(*view, *rows);
    EXPECT_FALSE(encoder.ok());
    if (encoder.ok()) return std::string();
    EXPECT_EQ(encoder.status().code(), StatusCode::kInvalidArgument);
    return encoder.status().message();
  };
  const std::string beyond =
      "1700000000000000000 seconds since 1970-01-01 is beyond the times Granary holds";

  // Times in range, in seconds: encoded as microseconds. (The encoder reads the batch's arrays:
  // the batch must outlive it.)
  const auto in_range = replaced("f_timestamp", seconds({7, -7}));
  auto fine = BodyEncoder::Make(*view, *in_range);
  ASSERT_TRUE(fine.ok()) << fine.status().ToString();
  std::string body;
  ASSERT_TRUE(fine->Append(1, &body).ok());
  EXPECT_EQ(Decode(*view, body)[7], Value(Timestamp::FromSeconds(-7)));

  // A feature (fast writer), the event time and the created time (Order).
  std::string message = error_of(replaced("f_timestamp", seconds({7, kFar})));
  EXPECT_EQ(message.find("feature view 'every_type': feature 'f_timestamp', row 1: " + beyond), 0u)
      << message;
  message = error_of(replaced("event_timestamp", seconds({kFar, 7})));
  EXPECT_EQ(message.find("feature view 'every_type': column 'event_timestamp', row 0: " + beyond),
            0u)
      << message;
  auto with_created =
      batch->AddColumn(batch->num_columns(), "created_timestamp", seconds({7, kFar})).ValueOrDie();
  message = error_of(with_created);
  EXPECT_EQ(message.find("feature view 'every_type': column 'created_timestamp', row 1: " + beyond),
            0u)
      << message;

  // A date and an element of a list of times in milliseconds.
  arrow::Date32Builder days;
  ASSERT_TRUE(days.AppendValues({1, std::numeric_limits<int32_t>::max()}).ok());
  message = error_of(replaced("f_timestamp", days.Finish().ValueOrDie()));
  EXPECT_NE(message.find("feature 'f_timestamp', row 1: 2147483647 days since 1970-01-01"),
            std::string::npos)
      << message;
  arrow::ListBuilder list(
      arrow::default_memory_pool(),
      std::make_shared<arrow::TimestampBuilder>(arrow::timestamp(arrow::TimeUnit::MILLI),
                                                arrow::default_memory_pool()));
  auto* items = static_cast<arrow::TimestampBuilder*>(list.value_builder());
  ASSERT_TRUE(list.Append().ok());
  ASSERT_TRUE(items->Append(5).ok());
  ASSERT_TRUE(list.Append().ok());
  ASSERT_TRUE(items->AppendValues({6, std::numeric_limits<int64_t>::min()}).ok());
  message = error_of(replaced("l_timestamp", list.Finish().ValueOrDie()));
  EXPECT_NE(message.find("feature 'l_timestamp', row 1: -9223372036854775808 milliseconds"),
            std::string::npos)
      << message;
}

TEST(ViewLayout, FingerprintChangesWithTheSchemaButNotWithIntegerKeyWidth) {
  Definitions defs = OnlineDefinitions();
  auto base = Layout(defs, "risk");
  auto changed = [&](auto edit) {
    Definitions copy = defs;
    edit(copy);
    return Layout(copy, "risk")->fingerprint();
  };
  EXPECT_NE(base->fingerprint(), changed([](Definitions& d) {
              Field extra;
              extra.name = "extra";
              d.feature_views[1].schema.push_back(extra);
            }));
  EXPECT_NE(base->fingerprint(), changed([](Definitions& d) {
              d.feature_views[1].schema[1].type = ValueType::Scalar(ScalarType::kFloat64);
            }));
  EXPECT_NE(base->fingerprint(),
            changed([](Definitions& d) { d.feature_views[1].schema[0].name = "score2"; }));
  EXPECT_NE(base->fingerprint(), changed([](Definitions& d) {
              d.entities[0].join_key_types[0] = ValueType::Scalar(ScalarType::kString);
            }));
  EXPECT_EQ(base->fingerprint(), changed([](Definitions& d) {
              d.entities[0].join_key_types[0] = ValueType::Scalar(ScalarType::kInt32);
            }));
  EXPECT_EQ(base->fingerprint(), changed([](Definitions& d) { d.feature_views[1].ttl = {}; }));
  EXPECT_EQ(base->view_id(), ViewIdOf("risk"));
}

TEST(ViewLayout, KeyTtlComesFromTheViewOrTheStore) {
  Definitions defs = OnlineDefinitions();
  auto layouts = MakeViewLayouts(defs, Duration::Days(90)).ValueOrDie();
  EXPECT_EQ(layouts.count("offline_only"), 0u);
  EXPECT_EQ(layouts.at("bay_stats")->key_ttl(), Duration::Hours(2));
  EXPECT_EQ(layouts.at("risk")->key_ttl(), Duration::Days(90));
  EXPECT_EQ(layouts.at("risk")->ttl(), Duration::Hours(1));
}

TEST(WriteOrder, EventTimeThenCreatedTimeWithMissingCreatedFirst) {
  WriteOrder a{10, false, 0}, b{10, true, 5}, c{10, true, 6}, d{11, false, 0};
  EXPECT_LT(a.Compare(b), 0);
  EXPECT_LT(b.Compare(c), 0);
  EXPECT_LT(c.Compare(d), 0);
  EXPECT_EQ(c.Compare(c), 0);
  EXPECT_GT(d.Compare(a), 0);
}

}  // namespace
}  // namespace granary
