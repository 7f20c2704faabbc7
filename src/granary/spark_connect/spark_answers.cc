#include "granary/spark_connect/spark_answers.h"

#include <arrow/api.h>
#include <arrow/io/memory.h>
#include <arrow/ipc/reader.h>
#include <fmt/format.h>

#include <limits>

#include "spark/connect/base.pb.h"

namespace granary::spark_connect {

namespace proto = ::spark::connect;

namespace {

Status FromArrow(const arrow::Status& st, std::string_view what) {
  if (st.ok()) return Status::OK();
  return Status::IOError(fmt::format("{}: {}", what, st.ToString()));
}

int64_t SaturatingAdd(int64_t a, int64_t b) {
  int64_t sum = 0;
  if (!__builtin_add_overflow(a, b, &sum)) return sum;
  return b > 0 ? std::numeric_limits<int64_t>::max() : std::numeric_limits<int64_t>::min();
}

}  // namespace

Result<std::shared_ptr<arrow::DataType>> ArrowTypeOfSpark(const proto::DataType& type) {
  switch (type.kind_case()) {
    case proto::DataType::kNull:
      return arrow::null();
    case proto::DataType::kBinary:
      return arrow::binary();
    case proto::DataType::kBoolean:
      return arrow::boolean();
    case proto::DataType::kByte:
      return arrow::int8();
    case proto::DataType::kShort:
      return arrow::int16();
    case proto::DataType::kInteger:
      return arrow::int32();
    case proto::DataType::kLong:
      return arrow::int64();
    case proto::DataType::kFloat:
      return arrow::float32();
    case proto::DataType::kDouble:
      return arrow::float64();
    case proto::DataType::kDecimal: {
      const int32_t precision = type.decimal().has_precision() ? type.decimal().precision() : 10;
      const int32_t scale = type.decimal().has_scale() ? type.decimal().scale() : 0;
      auto decimal = arrow::Decimal128Type::Make(precision, scale);
      if (!decimal.ok()) {
        return Status::IOError(fmt::format(
            "the server sent the type decimal({}, {}), which Spark never sends (its precision is "
            "1 to 38): {}",
            precision, scale, decimal.status().message()));
      }
      return *decimal;
    }
    case proto::DataType::kString:
    case proto::DataType::kChar:
    case proto::DataType::kVarChar:
      return arrow::utf8();
    case proto::DataType::kDate:
      return arrow::date32();
    case proto::DataType::kTimestamp:
      return arrow::timestamp(arrow::TimeUnit::MICRO, "UTC");
    case proto::DataType::kTimestampNtz:
      return arrow::timestamp(arrow::TimeUnit::MICRO);
    case proto::DataType::kArray: {
      GRANARY_ASSIGN_OR_RAISE(auto element, ArrowTypeOfSpark(type.array().element_type()));
      return arrow::list(element);
    }
    case proto::DataType::kStruct: {
      std::vector<std::shared_ptr<arrow::Field>> fields;
      for (const auto& f : type.struct_().fields()) {
        GRANARY_ASSIGN_OR_RAISE(auto t, ArrowTypeOfSpark(f.data_type()));
        fields.push_back(arrow::field(f.name(), t, f.nullable()));
      }
      return arrow::struct_(fields);
    }
    default:
      return Status::InvalidArgument(
          fmt::format("Spark type {} (DataType kind {}) has no Arrow equivalent here",
                      type.GetTypeName(), static_cast<int>(type.kind_case())));
  }
}

Result<std::shared_ptr<arrow::Schema>> ArrowSchemaOfSpark(const proto::DataType& type,
                                                          std::string_view what) {
  if (type.kind_case() != proto::DataType::kStruct) {
    return Status::IOError(fmt::format("{}: the schema is not a struct", what));
  }
  std::vector<std::shared_ptr<arrow::Field>> fields;
  for (const auto& f : type.struct_().fields()) {
    auto t = ArrowTypeOfSpark(f.data_type());
    if (!t.ok()) return t.status().WithContext(fmt::format("{}: column '{}'", what, f.name()));
    fields.push_back(arrow::field(f.name(), *t, f.nullable()));
  }
  return arrow::schema(std::move(fields));
}

Status ExecuteAnswers::Add(proto::ExecutePlanResponse* response) {
  if (response->has_metrics()) {
    for (const auto& node : response->metrics().metrics()) {
      // File scans ("Scan parquet", "Scan csv"), not the scans of uploaded rows.
      if (node.name().rfind("Scan ", 0) != 0) continue;
      for (const auto& [name, value] : node.execution_metrics()) {
        int64_t& sum = scan_metrics_[name];
        sum = SaturatingAdd(sum, value.value());
      }
    }
  }
  if (response->has_checkpoint_command_result()) {
    checkpoint_id_ = response->checkpoint_command_result().relation().relation_id();
  }
  if (!response->has_arrow_batch()) return Status::OK();
  auto* batch = response->mutable_arrow_batch();
  std::string data = std::move(*batch->mutable_data());
  if (batch->has_num_chunks_in_batch() && batch->num_chunks_in_batch() > 1) {
    if (batch->chunk_index() != chunks_) {
      return Status::IOError(
          fmt::format("{}: the server sent chunk {} of {} of an Arrow batch where chunk {} was due",
                      what_, batch->chunk_index(), batch->num_chunks_in_batch(), chunks_));
    }
    chunk_buffer_ += data;
    if (++chunks_ < batch->num_chunks_in_batch()) return Status::OK();
    data = std::move(chunk_buffer_);
    chunk_buffer_.clear();
    chunks_ = 0;
  } else if (chunks_ > 0) {
    return Status::IOError(fmt::format(
        "{}: the server sent a whole Arrow batch inside a chunked one ({} chunks received)", what_,
        chunks_));
  }
  return Decode(std::move(data));
}

Status ExecuteAnswers::End() const {
  if (chunks_ > 0) {
    return Status::IOError(fmt::format("{}: the result ended inside a chunked batch", what_));
  }
  return Status::OK();
}

Status ExecuteAnswers::Decode(std::string data) {
  auto buffer = arrow::Buffer::FromString(std::move(data));
  auto input = std::make_shared<arrow::io::BufferReader>(buffer);
  const std::string what = fmt::format("{}: decoding an Arrow batch", what_);
  auto reader = arrow::ipc::RecordBatchStreamReader::Open(input);
  if (!reader.ok()) return FromArrow(reader.status(), what);
  if (schema_ == nullptr) schema_ = (*reader)->schema();
  if (!(*reader)->schema()->Equals(*schema_)) {
    return Status::IOError(fmt::format("{}: its schema ({}) is not the result's ({})", what,
                                       (*reader)->schema()->ToString(), schema_->ToString()));
  }
  while (true) {
    std::shared_ptr<arrow::RecordBatch> batch;
    GRANARY_RETURN_NOT_OK(FromArrow((*reader)->ReadNext(&batch), what));
    if (batch == nullptr) break;
    GRANARY_RETURN_NOT_OK(FromArrow(batch->ValidateFull(), what));
    if (batch->num_rows() > 0) pending_.push_back(std::move(batch));
  }
  return Status::OK();
}

}  // namespace granary::spark_connect
