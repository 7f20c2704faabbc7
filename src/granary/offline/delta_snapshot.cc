// Delta Lake log replay: checkpoints and JSON commits to the set of live data files.
#include <arrow/api.h>
#include <arrow/io/api.h>
#include <fmt/format.h>
#include <parquet/arrow/reader.h>
#include <parquet/arrow/schema.h>
#include <parquet/exception.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <charconv>
#include <fstream>
#include <functional>
#include <limits>
#include <set>
#include <sstream>

#include "granary/common/strings.h"
#include "granary/offline/delta_json.h"
#include "granary/offline/delta_log.h"

namespace granary {
namespace {

using JsonValue = rapidjson::Value;

using delta_json::Member;
using delta_json::StringMember;

// Reader features whose meaning the offline store handles (deletionVectors: the rows a file's
// vector names are skipped when the file is read, see source_fragment.cc).
const std::set<std::string>& SupportedReaderFeatures() {
  static const std::set<std::string> kSupported = {"columnMapping",       "timestampNtz",
                                                   "typeWidening",        "typeWidening-preview",
                                                   "vacuumProtocolCheck", "deletionVectors"};
  return kSupported;
}

// The log state while replaying, before it becomes a DeltaSnapshot.
struct ReplayState {
  std::optional<int> min_reader_version;
  std::vector<std::string> reader_features;
  int min_writer_version = 0;
  std::vector<std::string> writer_features;
  std::optional<std::string> schema_string;
  std::vector<std::string> partition_columns;
  std::map<std::string, std::string> configuration;
  struct Live {
    DeltaDataFile file;    // partition_values keyed by physical names until Finish
    int64_t sequence = 0;  // replay order: of two entries for one path, the newer wins
  };
  std::map<std::string, Live> files;  // by raw (encoded) path + "#" + deletion vector id
  int64_t next_sequence = 0;
};

struct NamedFile {
  int64_t version;
  std::filesystem::path path;
};

// Parsed names in _delta_log: commits, and checkpoints grouped by version with their part count.
struct LogListing {
  std::vector<NamedFile> commits;  // sorted by version
  // version -> (expected parts, the part files found)
  std::map<int64_t, std::pair<int, std::vector<std::filesystem::path>>> checkpoints;
  std::vector<std::filesystem::path> v2_checkpoints;
};

bool AllDigits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// A decimal number that fills all of `text`; nullopt when it does not fit in T.
template <typename T>
std::optional<T> ParseDecimal(std::string_view text) {
  T value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

Result<LogListing> ListLog(const std::filesystem::path& log) {
  LogListing out;
  std::error_code ec;
  auto cannot_list = [&] {
    return Status::IOError(
        fmt::format("cannot list the Delta log {}: {}", log.string(), ec.message()));
  };
  std::filesystem::directory_iterator it(log, ec);
  if (ec) return cannot_list();
  for (; it != std::filesystem::directory_iterator(); it.increment(ec)) {
    if (ec) return cannot_list();
    const std::string name = it->path().filename().string();
    if (name.size() < 21 || !AllDigits(std::string_view(name).substr(0, 20)) || name[20] != '.')
      continue;
    const auto parsed_version = ParseDecimal<int64_t>(std::string_view(name).substr(0, 20));
    if (!parsed_version) {
      return Status::Corruption(fmt::format(
          "{}: the version number in the file name does not fit in 64 bits; a Delta log file "
          "is named by its version, at most {}",
          it->path().string(), std::numeric_limits<int64_t>::max()));
    }
    const int64_t version = *parsed_version;
    const std::string rest = name.substr(21);
    if (rest == "json") {
      out.commits.push_back({version, it->path()});
    } else if (rest == "checkpoint.parquet") {
      out.checkpoints[version] = {1, {it->path()}};
    } else if (rest.starts_with("checkpoint.") && rest.ends_with(".parquet")) {
      // checkpoint.<part>.<parts>.parquet (multi-part) or checkpoint.<uuid>.parquet (v2)
      std::string middle = rest.substr(11, rest.size() - 11 - 8);
      size_t dot = middle.find('.');
      if (dot != std::string::npos && AllDigits(middle.substr(0, dot)) &&
          AllDigits(middle.substr(dot + 1))) {
        const auto parts_count = ParseDecimal<int>(std::string_view(middle).substr(dot + 1));
        if (!parts_count) {
          return Status::Corruption(
              fmt::format("{}: the number of checkpoint parts in the file name is out of range",
                          it->path().string()));
        }
        auto& [parts, files] = out.checkpoints[version];
        parts = *parts_count;
        files.push_back(it->path());
      } else {
        out.v2_checkpoints.push_back(it->path());
      }
    } else if (rest.starts_with("checkpoint.") && rest.ends_with(".json")) {
      out.v2_checkpoints.push_back(it->path());
    }
  }
  if (ec) return cannot_list();
  std::sort(out.commits.begin(), out.commits.end(),
            [](const NamedFile& a, const NamedFile& b) { return a.version < b.version; });
  for (auto& [version, entry] : out.checkpoints)
    std::sort(entry.second.begin(), entry.second.end());
  return out;
}

// The version named by _last_checkpoint, if the file exists and is readable JSON.
std::optional<int64_t> LastCheckpointVersion(const std::filesystem::path& log) {
  std::ifstream in(log / "_last_checkpoint");
  if (!in) return std::nullopt;
  std::stringstream buf;
  buf << in.rdbuf();
  rapidjson::Document doc;
  doc.Parse(buf.str().c_str());
  if (doc.HasParseError()) return std::nullopt;
  const JsonValue* v = Member(doc, "version");
  if (v == nullptr || !v->IsInt64()) return std::nullopt;
  return v->GetInt64();
}

void ApplyProtocol(const JsonValue& protocol, ReplayState* state) {
  const JsonValue* reader = Member(protocol, "minReaderVersion");
  if (reader != nullptr && reader->IsInt()) state->min_reader_version = reader->GetInt();
  const JsonValue* writer = Member(protocol, "minWriterVersion");
  state->min_writer_version = writer != nullptr && writer->IsInt() ? writer->GetInt() : 0;
  auto strings = [&](const char* name, std::vector<std::string>* out) {
    out->clear();
    const JsonValue* features = Member(protocol, name);
    if (features != nullptr && features->IsArray()) {
      for (const auto& f : features->GetArray()) {
        if (f.IsString()) out->emplace_back(f.GetString());
      }
    }
  };
  strings("readerFeatures", &state->reader_features);
  strings("writerFeatures", &state->writer_features);
}

void ApplyMetadata(const JsonValue& meta, ReplayState* state) {
  const JsonValue* schema = Member(meta, "schemaString");
  if (schema != nullptr && schema->IsString()) state->schema_string = schema->GetString();
  state->partition_columns.clear();
  const JsonValue* parts = Member(meta, "partitionColumns");
  if (parts != nullptr && parts->IsArray()) {
    for (const auto& p : parts->GetArray()) {
      if (p.IsString()) state->partition_columns.emplace_back(p.GetString());
    }
  }
  state->configuration.clear();
  const JsonValue* config = Member(meta, "configuration");
  if (config != nullptr && config->IsObject()) {
    for (const auto& m : config->GetObject()) {
      if (m.value.IsString()) state->configuration[m.name.GetString()] = m.value.GetString();
    }
  }
}

// The deletionVector of an add or remove action; nullopt when there is none. A descriptor
// without a one-character storage type is Corruption.
Result<std::optional<DeletionVectorDescriptor>> ParseDeletionVector(const JsonValue* dv,
                                                                    const std::string& where) {
  if (dv == nullptr || dv->IsNull()) return std::optional<DeletionVectorDescriptor>();
  const std::string storage = dv->IsObject() ? StringMember(*dv, "storageType") : "";
  if (storage.size() != 1) {
    return Status::Corruption(where +
                              ": a deletionVector lacks a one-character storageType ('u', 'p' or "
                              "'i')");
  }
  DeletionVectorDescriptor out;
  out.storage_type = storage[0];
  out.path_or_inline_dv = StringMember(*dv, "pathOrInlineDv");
  auto integer = [&](const char* name) -> std::optional<int64_t> {
    const JsonValue* m = Member(*dv, name);
    return m != nullptr && m->IsInt64() ? std::optional(m->GetInt64()) : std::nullopt;
  };
  out.offset = integer("offset");
  out.size_in_bytes = integer("sizeInBytes").value_or(0);
  out.cardinality = integer("cardinality").value_or(0);
  return std::optional(std::move(out));
}

// The identity of a file entry in the log: its path plus its deletion vector's id, as the Delta
// protocol keys log replay (a DV update removes (path, old dv) and adds (path, new dv) in one
// commit, in either order).
std::string FileKey(const std::string& path, const std::optional<DeletionVectorDescriptor>& dv) {
  return path + "#" + (dv ? dv->UniqueId() : "");
}

Status ApplyAdd(const JsonValue& add, ReplayState* state, const std::string& where) {
  std::string path = StringMember(add, "path");
  if (path.empty()) return Status::Corruption(where + ": an add action has no path");
  ReplayState::Live live;
  live.file.path = path;
  const JsonValue* size = Member(add, "size");
  if (size != nullptr && size->IsInt64()) live.file.size = size->GetInt64();
  live.file.stats_json = StringMember(add, "stats");
  const JsonValue* values = Member(add, "partitionValues");
  if (values != nullptr && values->IsObject()) {
    for (const auto& m : values->GetObject()) {
      live.file.partition_values[m.name.GetString()] =
          m.value.IsString() ? std::optional<std::string>(m.value.GetString()) : std::nullopt;
    }
  }
  GRANARY_ASSIGN_OR_RAISE(live.file.deletion_vector,
                          ParseDeletionVector(Member(add, "deletionVector"), where));
  live.sequence = state->next_sequence++;
  const std::string key = FileKey(path, live.file.deletion_vector);
  state->files[key] = std::move(live);
  return Status::OK();
}

Status ReplayCommit(const NamedFile& commit, ReplayState* state) {
  std::ifstream in(commit.path);
  if (!in) return Status::IOError("cannot read " + commit.path.string());
  std::string line;
  int line_number = 0;
  while (std::getline(in, line)) {
    ++line_number;
    if (line.empty()) continue;
    const std::string where = fmt::format("{}:{}", commit.path.string(), line_number);
    rapidjson::Document action;
    action.Parse(line.c_str(), line.size());
    if (action.HasParseError() || !action.IsObject()) {
      return Status::Corruption(where + ": not a valid JSON action");
    }
    if (const JsonValue* add = Member(action, "add")) {
      GRANARY_RETURN_NOT_OK(ApplyAdd(*add, state, where));
    } else if (const JsonValue* remove = Member(action, "remove")) {
      GRANARY_ASSIGN_OR_RAISE(auto dv,
                              ParseDeletionVector(Member(*remove, "deletionVector"), where));
      state->files.erase(FileKey(StringMember(*remove, "path"), dv));
    } else if (const JsonValue* meta = Member(action, "metaData")) {
      ApplyMetadata(*meta, state);
    } else if (const JsonValue* protocol = Member(action, "protocol")) {
      ApplyProtocol(*protocol, state);
    }
  }
  return Status::OK();
}

// Accessors for the struct columns of a checkpoint file; absent children read as null.
std::shared_ptr<arrow::Array> Child(const arrow::StructArray& s, const char* name) {
  return s.GetFieldByName(name);
}

std::optional<std::string> StringAt(const std::shared_ptr<arrow::Array>& a, int64_t i) {
  if (a == nullptr || a->IsNull(i)) return std::nullopt;
  if (a->type_id() == arrow::Type::STRING)
    return static_cast<const arrow::StringArray&>(*a).GetString(i);
  if (a->type_id() == arrow::Type::LARGE_STRING)
    return static_cast<const arrow::LargeStringArray&>(*a).GetString(i);
  return std::nullopt;
}

// A map<string,string> at row i as (key, value-or-null) pairs.
std::vector<std::pair<std::string, std::optional<std::string>>> MapAt(
    const std::shared_ptr<arrow::Array>& a, int64_t i) {
  std::vector<std::pair<std::string, std::optional<std::string>>> out;
  if (a == nullptr || a->IsNull(i) || a->type_id() != arrow::Type::MAP) return out;
  const auto& map = static_cast<const arrow::MapArray&>(*a);
  for (int64_t j = map.value_offset(i); j < map.value_offset(i + 1); ++j) {
    auto key = StringAt(map.keys(), j);
    if (key) out.emplace_back(*key, StringAt(map.items(), j));
  }
  return out;
}

// An int32 or int64 at row i (checkpoint writers differ); nullopt when null or another type.
std::optional<int64_t> IntegerAt(const std::shared_ptr<arrow::Array>& a, int64_t i) {
  if (a == nullptr || a->IsNull(i)) return std::nullopt;
  if (a->type_id() == arrow::Type::INT32) return static_cast<const arrow::Int32Array&>(*a).Value(i);
  if (a->type_id() == arrow::Type::INT64) return static_cast<const arrow::Int64Array&>(*a).Value(i);
  return std::nullopt;
}

std::vector<std::string> StringListAt(const std::shared_ptr<arrow::Array>& a, int64_t i) {
  std::vector<std::string> out;
  if (a == nullptr || a->IsNull(i) || a->type_id() != arrow::Type::LIST) return out;
  const auto& list = static_cast<const arrow::ListArray&>(*a);
  for (int64_t j = list.value_offset(i); j < list.value_offset(i + 1); ++j) {
    if (auto s = StringAt(list.values(), j)) out.push_back(*s);
  }
  return out;
}

Status ReplayCheckpointPart(const std::filesystem::path& part, ReplayState* state) {
  auto file = arrow::io::ReadableFile::Open(part.string());
  if (!file.ok()) {
    return Status::IOError(
        fmt::format("cannot open checkpoint {}: {}", part.string(), file.status().message()));
  }
  auto reader = parquet::arrow::OpenFile(*file, arrow::default_memory_pool());
  if (!reader.ok()) {
    return Status::Corruption(
        fmt::format("checkpoint {}: {}", part.string(), reader.status().message()));
  }
  // ReadTable takes leaf column indices: collect the leaves of the three actions read here.
  std::vector<int> wanted;
  std::function<void(const parquet::arrow::SchemaField&)> collect =
      [&](const parquet::arrow::SchemaField& field) {
        if (field.is_leaf()) wanted.push_back(field.column_index);
        for (const auto& child : field.children) collect(child);
      };
  for (const auto& field : (*reader)->manifest().schema_fields) {
    const std::string& name = field.field->name();
    if (name == "add" || name == "metaData" || name == "protocol") collect(field);
  }
  auto table = (*reader)->ReadTable(wanted);
  if (!table.ok()) {
    return Status::Corruption(
        fmt::format("checkpoint {}: {}", part.string(), table.status().message()));
  }
  auto combined = (*table)->CombineChunksToBatch();
  if (!combined.ok()) return Status::Corruption("checkpoint " + part.string());
  const auto& batch = **combined;
  auto column = [&](const char* name) -> const arrow::StructArray* {
    auto c = batch.GetColumnByName(name);
    return c != nullptr && c->type_id() == arrow::Type::STRUCT
               ? static_cast<const arrow::StructArray*>(c.get())
               : nullptr;
  };
  const auto* add = column("add");
  const auto* meta = column("metaData");
  const auto* protocol = column("protocol");
  for (int64_t i = 0; i < batch.num_rows(); ++i) {
    if (protocol != nullptr && protocol->IsValid(i)) {
      auto reader_version = Child(*protocol, "minReaderVersion");
      if (reader_version != nullptr && reader_version->IsValid(i) &&
          reader_version->type_id() == arrow::Type::INT32) {
        state->min_reader_version = static_cast<const arrow::Int32Array&>(*reader_version).Value(i);
      }
      state->reader_features = StringListAt(Child(*protocol, "readerFeatures"), i);
      state->writer_features = StringListAt(Child(*protocol, "writerFeatures"), i);
      auto writer_version = Child(*protocol, "minWriterVersion");
      state->min_writer_version =
          writer_version != nullptr && writer_version->IsValid(i) &&
                  writer_version->type_id() == arrow::Type::INT32
              ? static_cast<const arrow::Int32Array&>(*writer_version).Value(i)
              : 0;
    }
    if (meta != nullptr && meta->IsValid(i)) {
      state->schema_string = StringAt(Child(*meta, "schemaString"), i);
      state->partition_columns = StringListAt(Child(*meta, "partitionColumns"), i);
      state->configuration.clear();
      for (auto& [k, v] : MapAt(Child(*meta, "configuration"), i)) {
        if (v) state->configuration[k] = *v;
      }
    }
    if (add != nullptr && add->IsValid(i)) {
      auto path = StringAt(Child(*add, "path"), i);
      if (!path)
        return Status::Corruption(fmt::format("checkpoint {}: an add without path", part.string()));
      ReplayState::Live live;
      live.file.path = *path;
      auto size = Child(*add, "size");
      if (size != nullptr && size->IsValid(i) && size->type_id() == arrow::Type::INT64) {
        live.file.size = static_cast<const arrow::Int64Array&>(*size).Value(i);
      }
      live.file.stats_json = StringAt(Child(*add, "stats"), i).value_or("");
      for (auto& [k, v] : MapAt(Child(*add, "partitionValues"), i)) {
        live.file.partition_values[k] = v;
      }
      auto dv = Child(*add, "deletionVector");
      if (dv != nullptr && dv->IsValid(i)) {
        if (dv->type_id() != arrow::Type::STRUCT) {
          return Status::Corruption(fmt::format(
              "checkpoint {}: add.deletionVector of {} is not a struct", part.string(), *path));
        }
        const auto& dv_struct = static_cast<const arrow::StructArray&>(*dv);
        const std::string storage = StringAt(Child(dv_struct, "storageType"), i).value_or("");
        if (storage.size() != 1) {
          return Status::Corruption(fmt::format(
              "checkpoint {}: the deletionVector of {} lacks a one-character storageType",
              part.string(), *path));
        }
        DeletionVectorDescriptor descriptor;
        descriptor.storage_type = storage[0];
        descriptor.path_or_inline_dv = StringAt(Child(dv_struct, "pathOrInlineDv"), i).value_or("");
        descriptor.offset = IntegerAt(Child(dv_struct, "offset"), i);
        descriptor.size_in_bytes = IntegerAt(Child(dv_struct, "sizeInBytes"), i).value_or(0);
        descriptor.cardinality = IntegerAt(Child(dv_struct, "cardinality"), i).value_or(0);
        live.file.deletion_vector = std::move(descriptor);
      }
      live.sequence = state->next_sequence++;
      const std::string key = FileKey(*path, live.file.deletion_vector);
      state->files[key] = std::move(live);
    }
  }
  return Status::OK();
}

// Turns the replayed state into a snapshot, checking protocol and metadata.
Result<DeltaSnapshot> Finish(const std::filesystem::path& table, int64_t version,
                             ReplayState state) {
  const std::string name = table.string();
  if (!state.min_reader_version) {
    return Status::Corruption(fmt::format(
        "Delta table {}: the log up to version {} has no protocol action", name, version));
  }
  if (!state.schema_string) {
    return Status::Corruption(fmt::format(
        "Delta table {}: the log up to version {} has no metaData action", name, version));
  }
  const int reader = *state.min_reader_version;
  if (reader < 1 || reader > 3) {
    return Status::InvalidArgument(fmt::format(
        "Delta table {} needs reader version {}; Granary reads versions 1 to 3", name, reader));
  }
  if (reader == 3) {
    for (const std::string& f : state.reader_features) {
      if (!SupportedReaderFeatures().contains(f)) {
        return Status::InvalidArgument(fmt::format(
            "Delta table {} uses the reader feature '{}', which Granary does not support "
            "(supported: {})",
            name, f,
            Join(std::vector<std::string>(SupportedReaderFeatures().begin(),
                                          SupportedReaderFeatures().end()),
                 ", ")));
      }
    }
  }
  DeltaSnapshot snap;
  snap.table = table;
  snap.version = version;
  GRANARY_ASSIGN_OR_RAISE(snap.schema, DeltaSchemaToArrow(*state.schema_string));
  snap.partition_columns = state.partition_columns;
  auto mode = state.configuration.find("delta.columnMapping.mode");
  if (mode != state.configuration.end()) snap.column_mapping_mode = mode->second;
  if (snap.column_mapping_mode != "none" && snap.column_mapping_mode != "name" &&
      snap.column_mapping_mode != "id") {
    return Status::InvalidArgument(fmt::format("Delta table {}: unknown column mapping mode '{}'",
                                               name, snap.column_mapping_mode));
  }
  // Physical names live in the schema's field metadata.
  rapidjson::Document schema_doc;
  schema_doc.Parse(state.schema_string->c_str());
  std::map<std::string, std::string> logical_of;  // physical -> logical
  if (const JsonValue* fields = Member(schema_doc, "fields"); fields && fields->IsArray()) {
    for (const auto& field : fields->GetArray()) {
      std::string logical = StringMember(field, "name");
      std::string physical = logical;
      if (snap.column_mapping_mode != "none") {
        const JsonValue* meta = Member(field, "metadata");
        std::string mapped = meta ? StringMember(*meta, "delta.columnMapping.physicalName") : "";
        if (!mapped.empty()) physical = mapped;
      }
      snap.physical_names[logical] = physical;
      logical_of[physical] = logical;
    }
  }
  snap.min_writer_version = state.min_writer_version;
  snap.writer_features = state.writer_features;
  snap.configuration = state.configuration;
  snap.schema_string = *state.schema_string;
  // One live entry per path: the newest (path, DV) pair (a writer that replaced a file's DV
  // without removing the old pair leaves both in the log).
  std::map<std::string, ReplayState::Live*> newest;
  for (auto& [key, live] : state.files) {
    ReplayState::Live*& slot = newest[live.file.path.string()];
    if (slot == nullptr || live.sequence > slot->sequence) slot = &live;
  }
  for (auto& [raw_path, live] : newest) {
    DeltaDataFile file = std::move(live->file);
    std::string decoded = PercentDecode(raw_path);
    if (decoded.starts_with("file://")) decoded = decoded.substr(7);
    if (decoded.starts_with("file:")) decoded = decoded.substr(5);
    std::filesystem::path p(decoded);
    file.path = p.is_absolute() ? p : table / p;
    std::map<std::string, std::optional<std::string>> by_logical;
    for (auto& [key, value] : file.partition_values) {
      auto it = logical_of.find(key);
      by_logical[it == logical_of.end() ? key : it->second] = std::move(value);
    }
    file.partition_values = std::move(by_logical);
    snap.files.push_back(std::move(file));
  }
  std::sort(snap.files.begin(), snap.files.end(),
            [](const DeltaDataFile& a, const DeltaDataFile& b) {
              return a.path.native() < b.path.native();  // byte-wise, as file listings
            });
  return snap;
}

}  // namespace

std::string PercentDecode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%' && i + 2 < text.size()) {
      int hi = hex(text[i + 1]), lo = hex(text[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
        continue;
      }
    }
    out.push_back(text[i]);
  }
  return out;
}

const std::string& DeltaSnapshot::PhysicalName(const std::string& logical) const {
  auto it = physical_names.find(logical);
  return it == physical_names.end() ? logical : it->second;
}

Result<DeltaSnapshot> ReadDeltaSnapshot(const std::filesystem::path& table) {
  std::error_code ec;
  if (!std::filesystem::exists(table, ec)) {
    return Status::NotFound(fmt::format("no Delta table at {}", table.string()));
  }
  const auto log = table / "_delta_log";
  if (!std::filesystem::is_directory(log, ec)) {
    return Status::InvalidArgument(fmt::format(
        "{} is not a Delta table: it has no _delta_log folder; for plain Parquet or CSV files "
        "use type: file",
        table.string()));
  }
  GRANARY_ASSIGN_OR_RAISE(LogListing listing, ListLog(log));
  // The newest complete checkpoint, preferring the one _last_checkpoint names.
  std::optional<int64_t> checkpoint;
  auto complete = [&](int64_t v) {
    auto it = listing.checkpoints.find(v);
    return it != listing.checkpoints.end() &&
           static_cast<int>(it->second.second.size()) == it->second.first;
  };
  if (auto named = LastCheckpointVersion(log); named && complete(*named)) checkpoint = named;
  for (auto it = listing.checkpoints.rbegin(); it != listing.checkpoints.rend(); ++it) {
    if (complete(it->first) && (!checkpoint || it->first > *checkpoint)) {
      checkpoint = it->first;
      break;
    }
  }
  if (!listing.v2_checkpoints.empty() && !checkpoint && listing.commits.empty()) {
    return Status::InvalidArgument(fmt::format(
        "Delta table {} has only v2 checkpoints (reader feature 'v2Checkpoint'), which Granary "
        "does not support",
        table.string()));
  }
  ReplayState state;
  int64_t version = -1;
  if (checkpoint) {
    for (const auto& part : listing.checkpoints[*checkpoint].second) {
      try {
        GRANARY_RETURN_NOT_OK(ReplayCheckpointPart(part, &state));
      } catch (const std::exception& e) {
        return Status::Corruption(fmt::format("checkpoint {}: {}", part.string(), e.what()));
      }
    }
    version = *checkpoint;
  }
  for (const NamedFile& commit : listing.commits) {
    if (commit.version <= version) continue;
    if (commit.version != version + 1) {
      return Status::Corruption(fmt::format(
          "Delta table {}: the log jumps from version {} to {} (a commit file is missing)",
          table.string(), version, commit.version));
    }
    GRANARY_RETURN_NOT_OK(ReplayCommit(commit, &state));
    version = commit.version;
  }
  if (version < 0) {
    return Status::Corruption(
        fmt::format("Delta table {}: _delta_log holds no commit or checkpoint", table.string()));
  }
  return Finish(table, version, std::move(state));
}

}  // namespace granary
