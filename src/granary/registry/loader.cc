#include "granary/registry/loader.h"

#include <fmt/format.h>
#include <fnmatch.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "granary/common/strings.h"
#include "granary/registry/yaml_reader.h"

namespace granary {
namespace {

const std::vector<std::string> kTopLevelKeys = {"entities", "data_sources", "feature_views",
                                                "feature_services"};

std::string Quoted(std::string_view kind, const std::optional<std::string>& name) {
  return fmt::format("{} '{}'", kind, name.value_or("?"));
}

void LoadEntity(const std::string& file, const YAML::Node& node, Definitions* out,
                Diagnostics* diag) {
  YamlMap m(node, file, "entity", diag);
  if (!m.valid()) return;
  auto name = m.String("name", true);
  YamlMap e(node, file, Quoted("entity", name), diag);
  Entity entity;
  entity.name = name.value_or("");
  entity.location = e.location();
  entity.join_keys = e.StringList("join_keys", false);
  e.Node("name", false);
  if (entity.join_keys.empty() && name) entity.join_keys = {*name};
  YAML::Node types = e.Node("value_type", true);
  std::vector<std::string> type_names;
  if (types.IsScalar()) {
    type_names.assign(entity.join_keys.size(), types.Scalar());
  } else if (types.IsSequence()) {
    type_names = e.StringList("value_type", true);
    if (type_names.size() != entity.join_keys.size()) {
      e.Error("value_type", fmt::format("lists {} types for {} join keys; give one per join key",
                                        type_names.size(), entity.join_keys.size()));
      type_names.clear();
    }
  } else if (types.IsDefined() && !types.IsNull()) {
    e.Error("value_type", "must be a type such as int64, or a list with one per join key");
  }
  bool ok = !type_names.empty() || !types.IsDefined();
  for (const std::string& t : type_names) {
    auto vt = ValueType::Parse(t);
    if (!vt.ok()) {
      e.Error("value_type", vt.status().message());
      ok = false;
    } else if (vt->is_list) {
      e.Error("value_type", "a join key cannot be a list");
      ok = false;
    } else {
      entity.join_key_types.push_back(*vt);
    }
  }
  if (auto d = e.String("description", false)) entity.description = *d;
  entity.tags = e.StringMap("tags");
  e.CheckUnknownKeys();
  if (name && ok && entity.join_key_types.size() == entity.join_keys.size()) {
    out->entities.push_back(std::move(entity));
  }
}

void LoadDataSource(const std::string& file, const YAML::Node& node, Definitions* out,
                    Diagnostics* diag) {
  YamlMap m(node, file, "data source", diag);
  if (!m.valid()) return;
  auto name = m.String("name", true);
  YamlMap s(node, file, Quoted("data source", name), diag);
  s.Node("name", false);
  DataSource source;
  source.name = name.value_or("");
  source.location = s.location();
  bool ok = name.has_value();
  std::string type = s.String("type", false).value_or("file");
  if (type == "push") {
    // Feast's PushSource: everything about the rows comes from the batch source.
    auto batch = s.String("batch_source", true);
    ok = ok && batch.has_value();
    source.batch_source = batch.value_or("");
    for (const char* key : {"path", "table", "query", "format", "timestamp_field",
                            "created_timestamp_column", "date_partition_column", "field_mapping"}) {
      if (s.Node(key, false).IsDefined()) {
        s.Error(key,
                "is not allowed here: a push source takes it from its batch_source; set it "
                "there and remove it here");
        ok = false;
      }
    }
    source.description = s.String("description", false).value_or("");
    source.tags = s.StringMap("tags");
    s.CheckUnknownKeys();
    if (ok) out->data_sources.push_back(std::move(source));
    return;
  }
  // Exactly one of path, table and query says where the data is; which forms the offline engine
  // can read is its own check (OfflineEngine::ValidateSource, at apply).
  source.path = s.String("path", false).value_or("");
  source.table = s.String("table", false).value_or("");
  source.query = s.String("query", false).value_or("");
  const int forms = !source.path.empty() + !source.table.empty() + !source.query.empty();
  if (forms == 0) {
    s.Error("path",
            "is required: say where the data is with path (files, a folder or a Delta table), "
            "table (a catalog table, e.g. main.parking.payments) or query (SQL)");
    ok = false;
  } else if (forms > 1) {
    s.Error(!source.table.empty() ? "table" : "query",
            "give only one of path, table and query: they each say where the data is");
    ok = false;
  }
  auto format = s.String("format", false);
  if (type == "delta") {
    source.format = SourceFormat::kDelta;
    if (format && *format != "delta")
      s.Error("format", "must be delta (or be left out) for a delta source");
  } else if (type == "file") {
    std::string f = format.value_or("");
    if (f.empty()) {
      std::string lower = source.path;
      std::transform(lower.begin(), lower.end(), lower.begin(), ::tolower);
      f = lower.ends_with(".csv") || lower.ends_with(".csv.gz") ? "csv" : "parquet";
    }
    if (f == "parquet") {
      source.format = SourceFormat::kParquet;
    } else if (f == "csv") {
      source.format = SourceFormat::kCsv;
    } else {
      s.Error("format", fmt::format("'{}' is not a file format; use parquet or csv", f));
      ok = false;
    }
  } else {
    s.Error("type", fmt::format("'{}' is not a source type; use file (Parquet or CSV), delta or "
                                "push",
                                type));
    ok = false;
  }
  if (s.Node("batch_source", false).IsDefined()) {
    s.Error("batch_source", "is only for push sources (type: push); remove it");
    ok = false;
  }
  auto ts = s.String("timestamp_field", true);
  ok = ok && ts.has_value();
  source.timestamp_field = ts.value_or("");
  source.created_timestamp_column = s.String("created_timestamp_column", false).value_or("");
  source.date_partition_column = s.String("date_partition_column", false).value_or("");
  source.field_mapping = s.StringMap("field_mapping");
  source.description = s.String("description", false).value_or("");
  source.tags = s.StringMap("tags");
  s.CheckUnknownKeys();
  if (ok) out->data_sources.push_back(std::move(source));
}

void LoadFeatureView(const std::string& file, const YAML::Node& node, Definitions* out,
                     Diagnostics* diag) {
  YamlMap m(node, file, "feature view", diag);
  if (!m.valid()) return;
  auto name = m.String("name", true);
  const std::string what = Quoted("feature view", name);
  YamlMap v(node, file, what, diag);
  v.Node("name", false);
  FeatureView view;
  view.name = name.value_or("");
  view.location = v.location();
  bool ok = name.has_value();
  view.entities = v.StringList("entities", true);
  auto source = v.String("source", true);
  ok = ok && source.has_value() && !view.entities.empty();
  view.source = source.value_or("");
  if (auto ttl = v.String("ttl", false)) {
    auto d = ParseDuration(*ttl);
    // A bad ttl is reported but the view is kept, so that references to it do not fail too.
    if (d.ok())
      view.ttl = *d;
    else
      v.Error("ttl", d.status().message());
  }
  view.online = v.Bool("online").value_or(true);
  if (auto key_ttl = v.String("online_key_ttl", false)) {
    auto d = ParseDuration(*key_ttl);
    if (d.ok() && d->micros > 0)
      view.online_key_ttl = *d;
    else
      v.Error("online_key_ttl", d.ok() ? "must be positive, e.g. 30d (leave it out to use "
                                         "online_store.key_ttl)"
                                       : d.status().message());
  }
  // Written by the registry (serialize.h), read back from it.
  view.online_history = v.StringList("online_history", false);
  YAML::Node schema = v.Node("schema", true);
  if (schema.IsDefined() && !schema.IsNull() && !schema.IsSequence()) {
    v.Error("schema", "must be a list of fields such as {name: tenure_days, type: int64}");
    ok = false;
  } else if (schema.IsSequence()) {
    if (schema.size() == 0) {
      v.Error("schema", "must list at least one feature");
      ok = false;
    }
    for (const auto& item : schema) {
      YamlMap fm(item, file, what + " field", diag);
      if (!fm.valid()) {
        ok = false;
        continue;
      }
      auto fname = fm.String("name", true);
      YamlMap f(item, file, fmt::format("{}: field '{}'", what, fname.value_or("?")), diag);
      f.Node("name", false);
      Field field;
      field.name = fname.value_or("");
      field.location = f.location();
      auto type = f.String("type", true);
      if (type) {
        auto vt = ValueType::Parse(*type);
        if (vt.ok())
          field.type = *vt;
        else
          f.Error("type", vt.status().message());
      }
      field.description = f.String("description", false).value_or("");
      f.CheckUnknownKeys();
      ok = ok && fname && type;
      view.schema.push_back(std::move(field));
    }
  } else {
    ok = false;
  }
  view.owner = v.String("owner", false).value_or("");
  view.description = v.String("description", false).value_or("");
  view.tags = v.StringMap("tags");
  v.CheckUnknownKeys();
  if (ok) out->feature_views.push_back(std::move(view));
}

void LoadFeatureService(const std::string& file, const YAML::Node& node, Definitions* out,
                        Diagnostics* diag) {
  YamlMap m(node, file, "feature service", diag);
  if (!m.valid()) return;
  auto name = m.String("name", true);
  const std::string what = Quoted("feature service", name);
  YamlMap s(node, file, what, diag);
  s.Node("name", false);
  FeatureService service;
  service.name = name.value_or("");
  service.location = s.location();
  bool ok = name.has_value();
  YAML::Node features = s.Node("features", true);
  if (features.IsSequence() && features.size() > 0) {
    for (const auto& item : features) {
      FeatureProjection p;
      p.location = LocationOf(file, item);
      if (item.IsScalar()) {
        const std::string& text = item.Scalar();
        size_t colon = text.find(':');
        p.view = text.substr(0, colon);
        if (colon != std::string::npos) p.features = {text.substr(colon + 1)};
      } else {
        YamlMap pm(item, file, what + " projection", diag);
        if (!pm.valid()) {
          ok = false;
          continue;
        }
        auto view = pm.String("view", true);
        p.view = view.value_or("");
        p.features = pm.StringList("features", false);
        pm.CheckUnknownKeys();
        if (!view) ok = false;
      }
      service.projections.push_back(std::move(p));
    }
  } else if (features.IsDefined() && !features.IsNull()) {
    s.Error("features",
            "must be a non-empty list of views or {view: NAME, features: [a, b]} projections");
    ok = false;
  } else {
    ok = false;
  }
  service.owner = s.String("owner", false).value_or("");
  service.description = s.String("description", false).value_or("");
  service.tags = s.StringMap("tags");
  s.CheckUnknownKeys();
  if (ok) out->feature_services.push_back(std::move(service));
}

bool IsIgnored(const std::string& relative, const std::vector<std::string>& patterns) {
  for (const std::string& p : patterns) {
    if (fnmatch(p.c_str(), relative.c_str(), 0) == 0) return true;
    std::string dir = p;
    while (!dir.empty() && dir.back() == '/') dir.pop_back();
    if (!dir.empty() && relative.starts_with(dir + "/")) return true;
  }
  return false;
}

}  // namespace

void LoadDefinitionsText(const std::string& file, const std::string& text, Definitions* out,
                         Diagnostics* diag) {
  YAML::Node doc;
  try {
    doc = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    diag->Error(SourceLocation{file, e.mark.is_null() ? 0 : e.mark.line + 1},
                fmt::format("unreadable YAML: {}; check the indentation and quoting there", e.msg));
    return;
  }
  if (!doc.IsDefined() || doc.IsNull()) return;  // an empty file defines nothing
  bool has_known =
      doc.IsMap() && std::any_of(kTopLevelKeys.begin(), kTopLevelKeys.end(),
                                 [&](const std::string& k) { return doc[k].IsDefined(); });
  if (!has_known) {
    diag->Warning(
        LocationOf(file, doc),
        fmt::format("skipped: no top-level {} (list it in .granaryignore to silence this)",
                    Join(kTopLevelKeys, ", ")));
    return;
  }
  YamlMap top(doc, file, "file", diag);
  using LoadFn = void (*)(const std::string&, const YAML::Node&, Definitions*, Diagnostics*);
  const std::pair<const char*, LoadFn> kinds[] = {{"entities", LoadEntity},
                                                  {"data_sources", LoadDataSource},
                                                  {"feature_views", LoadFeatureView},
                                                  {"feature_services", LoadFeatureService}};
  for (const auto& [key, load] : kinds) {
    YAML::Node list = top.Node(key, false);
    if (!list.IsDefined() || list.IsNull()) continue;
    if (!list.IsSequence()) {
      top.Error(key, "must be a list (each item starting with '- ')");
      continue;
    }
    for (const auto& item : list) load(file, item, out, diag);
  }
  top.CheckUnknownKeys();
}

Result<std::vector<std::filesystem::path>> FindDefinitionFiles(const RepoConfig& config) {
  std::vector<std::string> ignore;
  if (std::ifstream in(config.root / ".granaryignore"); in) {
    std::string line;
    while (std::getline(in, line)) {
      while (!line.empty() && (line.back() == ' ' || line.back() == '\r')) line.pop_back();
      if (!line.empty() && line[0] != '#') ignore.push_back(line);
    }
  }
  std::vector<std::filesystem::path> files;
  std::error_code ec;
  auto it = std::filesystem::recursive_directory_iterator(
      config.root, std::filesystem::directory_options::skip_permission_denied, ec);
  if (ec)
    return Status::IOError(fmt::format("cannot list {}: {}", config.root.string(), ec.message()));
  for (auto end = std::filesystem::recursive_directory_iterator(); it != end; it.increment(ec)) {
    if (ec)
      return Status::IOError(fmt::format("cannot list {}: {}", config.root.string(), ec.message()));
    const auto& path = it->path();
    const std::string name = path.filename().string();
    const std::string relative = path.lexically_relative(config.root).string();
    if (name.starts_with(".") || IsIgnored(relative, ignore)) {
      if (it->is_directory()) it.disable_recursion_pending();
      continue;
    }
    if (!it->is_regular_file()) continue;
    if (relative == "granary.yaml") continue;
    if (path.extension() == ".yaml" || path.extension() == ".yml") files.push_back(path);
  }
  std::sort(files.begin(), files.end());
  return files;
}

Result<Definitions> LoadRepositoryDefinitions(const RepoConfig& config, Diagnostics* diag) {
  GRANARY_ASSIGN_OR_RAISE(auto files, FindDefinitionFiles(config));
  Definitions defs;
  defs.project = config.project;
  for (const auto& path : files) {
    std::ifstream in(path);
    std::stringstream buffer;
    buffer << in.rdbuf();
    if (!in) return Status::IOError(fmt::format("cannot read {}", path.string()));
    LoadDefinitionsText(path.lexically_relative(config.root).string(), buffer.str(), &defs, diag);
  }
  return defs;
}

}  // namespace granary
