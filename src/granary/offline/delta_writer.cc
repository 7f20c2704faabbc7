#include "granary/datagen/delta_writer.h"

#include <arrow/api.h>
#include <fmt/format.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <fstream>

#include "granary/common/time.h"

namespace granary::datagen {
namespace {

using JsonWriter = rapidjson::Writer<rapidjson::StringBuffer>;

void Key(JsonWriter& w, std::string_view k) {
  w.Key(k.data(), static_cast<rapidjson::SizeType>(k.size()));
}
void Str(JsonWriter& w, std::string_view v) {
  w.String(v.data(), static_cast<rapidjson::SizeType>(v.size()));
}

Result<const char*> DeltaTypeName(const arrow::DataType& type) {
  switch (type.id()) {
    case arrow::Type::INT64:
      return "long";
    case arrow::Type::INT32:
      return "integer";
    case arrow::Type::DOUBLE:
      return "double";
    case arrow::Type::BOOL:
      return "boolean";
    case arrow::Type::STRING:
      return "string";
    case arrow::Type::DATE32:
      return "date";
    case arrow::Type::TIMESTAMP: {
      const auto& ts = static_cast<const arrow::TimestampType&>(type);
      if (ts.unit() == arrow::TimeUnit::MICRO && !ts.timezone().empty()) return "timestamp";
      break;
    }
    default:
      break;
  }
  return Status::InvalidArgument(
      fmt::format("no Delta type for Arrow type {} in the generator's writer", type.ToString()));
}

}  // namespace

std::string DeltaTimestampJson(int64_t micros) {
  auto floor_div = [](int64_t a, int64_t b) {
    return a / b - ((a % b != 0) && ((a < 0) != (b < 0)));
  };
  const int64_t millis = floor_div(micros, 1000);
  const int64_t seconds = floor_div(millis, 1000);
  std::string text = FormatTimestamp(Timestamp::FromSeconds(seconds));  // "...T00:15:00Z"
  text.pop_back();
  return fmt::format("{}.{:03d}Z", text, millis - seconds * 1000);
}

std::string UuidFromBits(uint64_t hi, uint64_t lo) {
  hi = (hi & 0xffffffffffff0fffULL) | 0x0000000000004000ULL;  // version 4
  lo = (lo & 0x3fffffffffffffffULL) | 0x8000000000000000ULL;  // RFC 4122 variant
  return fmt::format("{:08x}-{:04x}-{:04x}-{:04x}-{:012x}", hi >> 32, (hi >> 16) & 0xffff,
                     hi & 0xffff, lo >> 48, lo & 0xffffffffffffULL);
}

Result<std::string> DeltaSchemaString(const arrow::Schema& schema) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  Key(w, "type");
  Str(w, "struct");
  Key(w, "fields");
  w.StartArray();
  for (const auto& f : schema.fields()) {
    GRANARY_ASSIGN_OR_RAISE(const char* type, DeltaTypeName(*f->type()));
    w.StartObject();
    Key(w, "name");
    Str(w, f->name());
    Key(w, "type");
    Str(w, type);
    Key(w, "nullable");
    w.Bool(f->nullable());
    Key(w, "metadata");
    w.StartObject();
    w.EndObject();
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

Status WriteDeltaLog(const std::filesystem::path& table, const DeltaTableSpec& spec,
                     const std::vector<DeltaAddFile>& files) {
  GRANARY_ASSIGN_OR_RAISE(std::string schema_string, DeltaSchemaString(*spec.schema));
  const std::filesystem::path log = table / "_delta_log";
  const std::filesystem::path commit = log / "00000000000000000000.json";
  std::error_code ec;
  if (std::filesystem::exists(commit, ec)) {
    return Status::AlreadyExists(fmt::format(
        "{} already has a Delta log; write the table into an empty folder", table.string()));
  }
  std::filesystem::create_directories(log, ec);
  if (ec) {
    return Status::IOError(fmt::format("cannot create {}: {}", log.string(), ec.message()));
  }

  // One action per line (newline-delimited JSON), as the protocol requires.
  std::string text;
  auto line = [&](auto&& fill) {
    rapidjson::StringBuffer buf;
    JsonWriter w(buf);
    w.StartObject();
    fill(w);
    w.EndObject();
    text.append(buf.GetString(), buf.GetSize());
    text.push_back('\n');
  };
  int64_t total_records = 0, total_bytes = 0;
  for (const DeltaAddFile& f : files) {
    total_records += f.num_records;
    total_bytes += f.size;
  }
  line([&](JsonWriter& w) {
    Key(w, "commitInfo");
    w.StartObject();
    Key(w, "timestamp");
    w.Int64(spec.created_time_ms);
    Key(w, "operation");
    Str(w, "WRITE");
    Key(w, "operationParameters");
    w.StartObject();
    Key(w, "mode");
    Str(w, "ErrorIfExists");
    Key(w, "partitionBy");
    std::string partition_by = "[";
    for (size_t i = 0; i < spec.partition_columns.size(); ++i) {
      partition_by += (i ? ",\"" : "\"") + spec.partition_columns[i] + "\"";
    }
    Str(w, partition_by + "]");
    w.EndObject();
    Key(w, "isBlindAppend");
    w.Bool(true);
    Key(w, "operationMetrics");
    w.StartObject();
    Key(w, "numFiles");
    Str(w, std::to_string(files.size()));
    Key(w, "numOutputRows");
    Str(w, std::to_string(total_records));
    Key(w, "numOutputBytes");
    Str(w, std::to_string(total_bytes));
    w.EndObject();
    Key(w, "engineInfo");
    Str(w, "granary-datagen/0.1.0");
    w.EndObject();
  });
  line([&](JsonWriter& w) {
    Key(w, "protocol");
    w.StartObject();
    Key(w, "minReaderVersion");
    w.Int(1);
    Key(w, "minWriterVersion");
    w.Int(2);
    w.EndObject();
  });
  line([&](JsonWriter& w) {
    Key(w, "metaData");
    w.StartObject();
    Key(w, "id");
    Str(w, spec.id);
    Key(w, "name");
    Str(w, spec.name);
    Key(w, "description");
    Str(w, spec.description);
    Key(w, "format");
    w.StartObject();
    Key(w, "provider");
    Str(w, "parquet");
    Key(w, "options");
    w.StartObject();
    w.EndObject();
    w.EndObject();
    Key(w, "schemaString");
    Str(w, schema_string);
    Key(w, "partitionColumns");
    w.StartArray();
    for (const std::string& c : spec.partition_columns) Str(w, c);
    w.EndArray();
    Key(w, "configuration");
    w.StartObject();
    w.EndObject();
    Key(w, "createdTime");
    w.Int64(spec.created_time_ms);
    w.EndObject();
  });
  for (const DeltaAddFile& f : files) {
    // The stats are themselves a JSON document stored as a string.
    rapidjson::StringBuffer stats_buf;
    {
      JsonWriter s(stats_buf);
      s.StartObject();
      Key(s, "numRecords");
      s.Int64(f.num_records);
      for (const char* which : {"minValues", "maxValues"}) {
        Key(s, which);
        s.StartObject();
        for (const DeltaColumnStats& c : f.stats) {
          Key(s, c.column);
          const std::string& v = which[1] == 'i' ? c.min_json : c.max_json;
          s.RawValue(v.data(), v.size(),
                     v.front() == '"' ? rapidjson::kStringType : rapidjson::kNumberType);
        }
        s.EndObject();
      }
      Key(s, "nullCount");
      s.StartObject();
      for (const DeltaColumnStats& c : f.stats) {
        Key(s, c.column);
        s.Int64(c.null_count);
      }
      s.EndObject();
      s.EndObject();
    }
    line([&](JsonWriter& w) {
      Key(w, "add");
      w.StartObject();
      Key(w, "path");
      Str(w, f.path);
      Key(w, "partitionValues");
      w.StartObject();
      for (const auto& [k, v] : f.partition_values) {
        Key(w, k);
        Str(w, v);
      }
      w.EndObject();
      Key(w, "size");
      w.Int64(f.size);
      Key(w, "modificationTime");
      w.Int64(f.modification_time_ms);
      Key(w, "dataChange");
      w.Bool(true);
      Key(w, "stats");
      w.String(stats_buf.GetString(), static_cast<rapidjson::SizeType>(stats_buf.GetSize()));
      w.EndObject();
    });
  }

  const std::filesystem::path tmp = log / ".00000000000000000000.json.tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    out.close();
    if (!out) return Status::IOError("cannot write " + tmp.string());
  }
  std::filesystem::rename(tmp, commit, ec);
  if (ec) {
    return Status::IOError(
        fmt::format("cannot rename {} to {}: {}", tmp.string(), commit.string(), ec.message()));
  }
  return Status::OK();
}

}  // namespace granary::datagen
