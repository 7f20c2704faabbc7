#include "granary/offline/delta_writer.h"

#include <arrow/api.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>

#include "granary/common/json.h"
#include "granary/common/time.h"

namespace granary {
namespace {

void Key(JsonWriter& w, std::string_view k) { w.Key(k.data(), k.size()); }
void Str(JsonWriter& w, std::string_view v) { w.String(v.data(), v.size()); }

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
      fmt::format("no Delta type for Arrow type {} in Granary's Delta writer", type.ToString()));
}

std::string CommitName(int64_t version) { return fmt::format("{:020d}.json", version); }

// One action per line (newline-delimited JSON), as the protocol requires.
class CommitText {
 public:
  template <typename Fill>
  void Line(Fill&& fill) {
    JsonWriter w;
    w.StartObject();
    fill(w);
    w.EndObject();
    text_.append(w.str());
    text_.push_back('\n');
  }
  const std::string& text() const { return text_; }

 private:
  std::string text_;
};

void CommitInfo(CommitText& commit, int64_t timestamp_ms, const char* mode,
                const std::vector<std::string>& partition_columns,
                const std::vector<DeltaAddFile>& files, const std::string& engine) {
  int64_t total_records = 0, total_bytes = 0;
  for (const DeltaAddFile& f : files) {
    total_records += f.num_records;
    total_bytes += f.size;
  }
  commit.Line([&](JsonWriter& w) {
    Key(w, "commitInfo");
    w.StartObject();
    Key(w, "timestamp");
    w.Int64(timestamp_ms);
    Key(w, "operation");
    Str(w, "WRITE");
    Key(w, "operationParameters");
    w.StartObject();
    Key(w, "mode");
    Str(w, mode);
    Key(w, "partitionBy");
    std::string partition_by = "[";
    for (size_t i = 0; i < partition_columns.size(); ++i) {
      partition_by += (i ? ",\"" : "\"") + partition_columns[i] + "\"";
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
    Str(w, engine);
    w.EndObject();
  });
}

void AddActions(CommitText& commit, const std::vector<DeltaAddFile>& files) {
  for (const DeltaAddFile& f : files) {
    // The stats are themselves a JSON document stored as a string.
    std::string stats;
    {
      JsonWriter s;
      s.StartObject();
      Key(s, "numRecords");
      s.Int64(f.num_records);
      for (const char* which : {"minValues", "maxValues"}) {
        Key(s, which);
        s.StartObject();
        for (const DeltaColumnStats& c : f.stats) {
          const std::string& v = which[1] == 'i' ? c.min_json : c.max_json;
          if (v.empty()) continue;
          Key(s, c.column);
          s.RawValue(v);
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
      stats = s.Release();
    }
    commit.Line([&](JsonWriter& w) {
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
      w.String(stats);
      w.EndObject();
    });
  }
}

// Creates `commit` holding `text` only if it does not exist: the text goes to a temporary file,
// which is then hard-linked under the commit's name (link() fails with EEXIST rather than
// replacing, unlike rename()). AlreadyExists when another writer has that version.
Status PutIfAbsent(const std::filesystem::path& commit, const std::string& text) {
  // A temporary name of this writer's own (several threads may append at once).
  std::string tmp =
      (commit.parent_path() / ("." + commit.filename().string() + ".tmp-XXXXXX")).string();
  const int fd = mkstemp(tmp.data());
  if (fd < 0) {
    return Status::IOError(fmt::format("cannot create a file in {}: {}",
                                       commit.parent_path().string(), std::strerror(errno)));
  }
  const mode_t mask = ::umask(0);  // mkstemp makes the file private; give it a new file's mode
  ::umask(mask);
  (void)::fchmod(fd, 0666 & ~mask);
  size_t written = 0;
  while (written < text.size()) {
    const ssize_t n = ::write(fd, text.data() + written, text.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    written += static_cast<size_t>(n);
  }
  const bool complete = written == text.size() && ::fsync(fd) == 0;
  ::close(fd);
  int rc = -1, err = EIO;
  if (complete) {
    rc = link(tmp.c_str(), commit.c_str());
    err = errno;
  }
  std::error_code ec;
  std::filesystem::remove(tmp, ec);
  if (rc == 0) return Status::OK();
  if (!complete) return Status::IOError("cannot write " + tmp);
  if (err == EEXIST) return Status::AlreadyExists(commit.string() + " exists");
  return Status::IOError(fmt::format("cannot create {}: {}", commit.string(), std::strerror(err)));
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
  JsonWriter w;
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
  return w.Release();
}

Status WriteDeltaLog(const std::filesystem::path& table, const DeltaTableSpec& spec,
                     const std::vector<DeltaAddFile>& files, const std::string& engine) {
  GRANARY_ASSIGN_OR_RAISE(std::string schema_string, DeltaSchemaString(*spec.schema));
  const std::filesystem::path log = table / "_delta_log";
  std::error_code ec;
  std::filesystem::create_directories(log, ec);
  if (ec) {
    return Status::IOError(fmt::format("cannot create {}: {}", log.string(), ec.message()));
  }
  CommitText commit;
  CommitInfo(commit, spec.created_time_ms, "ErrorIfExists", spec.partition_columns, files, engine);
  commit.Line([&](JsonWriter& w) {
    Key(w, "protocol");
    w.StartObject();
    Key(w, "minReaderVersion");
    w.Int(1);
    Key(w, "minWriterVersion");
    w.Int(2);
    w.EndObject();
  });
  commit.Line([&](JsonWriter& w) {
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
  AddActions(commit, files);
  Status st = PutIfAbsent(log / CommitName(0), commit.text());
  if (st.code() == StatusCode::kAlreadyExists) {
    return Status::AlreadyExists(fmt::format(
        "{} already has a Delta log; write the table into an empty folder", table.string()));
  }
  return st;
}

Result<int64_t> LatestDeltaVersion(const std::filesystem::path& table) {
  const std::filesystem::path log = table / "_delta_log";
  std::error_code ec;
  if (!std::filesystem::is_directory(log, ec)) {
    return Status::NotFound(
        fmt::format("{} is not a Delta table (it has no _delta_log folder)", table.string()));
  }
  int64_t latest = -1;
  for (const auto& entry : std::filesystem::directory_iterator(log, ec)) {
    const std::string name = entry.path().filename().string();
    // <20 digits>.json, or a checkpoint <20 digits>.checkpoint[.<part>.<parts>].parquet
    if (name.size() < 21 || name[20] != '.') continue;
    if (name.substr(20) != ".json" && !name.substr(20).starts_with(".checkpoint")) continue;
    int64_t v = 0;
    bool digits = true;
    for (int i = 0; i < 20; ++i) {
      if (name[i] < '0' || name[i] > '9') digits = false;
      v = v * 10 + (name[i] - '0');
    }
    if (digits) latest = std::max(latest, v);
  }
  if (ec) return Status::IOError(fmt::format("cannot list {}: {}", log.string(), ec.message()));
  return latest;
}

Result<int64_t> AppendDeltaFiles(const std::filesystem::path& table,
                                 const std::vector<DeltaAddFile>& files, int64_t timestamp_ms,
                                 const std::string& engine) {
  CommitText commit;
  CommitInfo(commit, timestamp_ms, "Append", {}, files, engine);
  AddActions(commit, files);
  GRANARY_ASSIGN_OR_RAISE(int64_t version, LatestDeltaVersion(table));
  if (version < 0) {
    return Status::NotFound(fmt::format(
        "{} has an empty _delta_log; create the table with a first commit before appending",
        table.string()));
  }
  // Each conflict means another writer committed; the next free version is at most a few away.
  for (int attempt = 0; attempt < 1000; ++attempt) {
    ++version;
    Status st = PutIfAbsent(table / "_delta_log" / CommitName(version), commit.text());
    if (st.ok()) return version;
    if (st.code() != StatusCode::kAlreadyExists) return st;
  }
  return Status::Unavailable(fmt::format(
      "cannot append to the Delta table {}: 1000 versions were taken by other writers meanwhile",
      table.string()));
}

std::string DeltaPathEscape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || c == '/' || c == '=') {
      out.push_back(static_cast<char>(c));
    } else {
      out += fmt::format("%{:02X}", c);
    }
  }
  return out;
}

}  // namespace granary
