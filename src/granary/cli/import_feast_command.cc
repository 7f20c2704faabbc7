// import-feast: a Feast repository (feature_store.yaml and its Python definitions) turned into a
// Granary repository (granary.yaml and features.yaml), with a report of everything that has no
// Granary equivalent (docs/FEAST.md, "Moving from Feast").
//
// Feast's definitions are Python: they are read by Feast itself, in the user's Feast environment
// (--feast-python), by a small script (feast_dump.py, embedded) that prints them as JSON. This
// file maps that JSON onto Granary's definitions model and writes it with the canonical YAML
// writer, then validates the result as `granary plan` would (every error at once).
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <set>

#include "granary/cli/cli.h"
#include "granary/cli/feast_dump_script.h"
#include "granary/common/json.h"
#include "granary/common/strings.h"
#include "granary/offline/source_inspector.h"
#include "granary/registry/loader.h"
#include "granary/registry/serialize.h"
#include "granary/registry/validator.h"

namespace granary::cli {
namespace {

namespace fs = std::filesystem;
namespace bj = boost::json;

struct Options {
  std::string feast_repo;
  std::string out;  // default: the Feast repository itself
  std::string feast_python;
  bool force = false;
};

// Runs argv, returning its stdout; its stderr goes to ours (Feast's warnings stay visible).
Result<std::string> RunCapturingStdout(const std::vector<std::string>& argv) {
  int out[2];
  if (pipe(out) != 0) return Status::IOError("pipe failed");
  const pid_t pid = fork();
  if (pid < 0) return Status::IOError("fork failed");
  if (pid == 0) {
    dup2(out[1], STDOUT_FILENO);
    close(out[0]);
    close(out[1]);
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execvp(args[0], args.data());
    fmt::print(stderr, "error: cannot run {}: {}\n", argv[0], std::strerror(errno));
    _exit(127);
  }
  close(out[1]);
  std::string text;
  char buf[65536];
  ssize_t n;
  while ((n = read(out[0], buf, sizeof(buf))) > 0 || (n < 0 && errno == EINTR)) {
    if (n > 0) text.append(buf, static_cast<size_t>(n));
  }
  close(out[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return Status::InvalidArgument(fmt::format(
        "{} could not read the Feast repository (exit {}; its error is above). Give a Python "
        "whose environment has the feast package with --feast-python (or GRANARY_FEAST_PYTHON)",
        argv[0], WIFEXITED(status) ? WEXITSTATUS(status) : -1));
  }
  return text;
}

std::string Str(const bj::value& v, std::string_view key) {
  if (!v.is_object()) return "";
  const bj::value* x = v.as_object().if_contains(key);
  return x != nullptr && x->is_string() ? std::string(x->as_string().c_str()) : std::string();
}

std::map<std::string, std::string> StrMap(const bj::value& v, std::string_view key) {
  std::map<std::string, std::string> out;
  const bj::value* x = v.is_object() ? v.as_object().if_contains(key) : nullptr;
  if (x == nullptr || !x->is_object()) return out;
  for (const auto& [k, val] : x->as_object()) {
    if (val.is_string()) out[std::string(k)] = std::string(val.as_string().c_str());
  }
  return out;
}

const bj::array& Arr(const bj::value& v, std::string_view key) {
  static const bj::array kEmpty;
  const bj::value* x = v.is_object() ? v.as_object().if_contains(key) : nullptr;
  return x != nullptr && x->is_array() ? x->as_array() : kEmpty;
}

// Feast's type names (str(dtype)) as Granary's; empty when there is none.
std::string GranaryType(const std::string& feast) {
  static const std::map<std::string, std::string> kScalars = {
      {"Int32", "int32"},     {"Int64", "int64"},
      {"Float32", "float32"}, {"Float64", "float64"},
      {"String", "string"},   {"Bytes", "bytes"},
      {"Bool", "bool"},       {"UnixTimestamp", "timestamp"},
      {"Json", "string"},  // JSON text, served as a string
  };
  if (auto it = kScalars.find(feast); it != kScalars.end()) return it->second;
  if (feast.starts_with("Array(") && feast.ends_with(")")) {
    const std::string inner = feast.substr(6, feast.size() - 7);
    auto it = kScalars.find(inner);
    if (it != kScalars.end() && inner != "Json") return "list<" + it->second + ">";
  }
  return "";
}

// Feast's Entity.value_type names.
std::string GranaryTypeOfValueType(const std::string& value_type) {
  static const std::map<std::string, std::string> kTypes = {
      {"INT32", "int32"},   {"INT64", "int64"},
      {"STRING", "string"}, {"BYTES", "bytes"},
      {"FLOAT", "float32"}, {"DOUBLE", "float64"},
      {"BOOL", "bool"},     {"UNIX_TIMESTAMP", "timestamp"}};
  auto it = kTypes.find(value_type);
  return it == kTypes.end() ? "" : it->second;
}

std::string DurationText(int64_t seconds) {
  if (seconds % 86400 == 0) return fmt::format("{}d", seconds / 86400);
  if (seconds % 3600 == 0) return fmt::format("{}h", seconds / 3600);
  if (seconds % 60 == 0) return fmt::format("{}m", seconds / 60);
  return fmt::format("{}s", seconds);
}

class Importer {
 public:
  Importer(const bj::value& dump, fs::path feast_repo, fs::path out)
      : dump_(dump), feast_repo_(std::move(feast_repo)), out_(std::move(out)) {}

  void Run() {
    defs_.project = Str(dump_, "project");
    if (!Str(dump_, "inference_error").empty()) {
      Report("repository", "",
             "Feast could not infer types from the data (" + Str(dump_, "inference_error") +
                 "); join key types come from the entities' value_type only");
    }
    Sources();
    Entities();
    Views();
    Services();
    for (const auto& v : Arr(dump_, "on_demand_feature_views")) {
      Report("on-demand feature view", v.as_string().c_str(),
             "Granary has no on-demand (request-time Python) transformations; compute the "
             "values in the caller, or materialize them into a batch source");
    }
    for (const auto& v : Arr(dump_, "stream_feature_views")) {
      Report("stream feature view", v.as_string().c_str(),
             "Granary has no stream processing; push the rows to a push source (POST /push)");
    }
  }

  std::string Config() {
    std::string text = fmt::format(
        "# Imported from the Feast repository {} by granary import-feast.\nproject: {}\n"
        "registry: data/registry.db\noffline_store: {{type: file}}\n",
        feast_repo_.string(), defs_.project);
    const bj::value* online = dump_.as_object().if_contains("online_store");
    const std::string type = online != nullptr ? Str(*online, "type") : "sqlite";
    std::string key_ttl;
    if (online != nullptr && online->is_object()) {
      const bj::value* ttl = online->as_object().if_contains("key_ttl_seconds");
      if (ttl != nullptr && ttl->is_int64() && ttl->as_int64() > 0) {
        key_ttl = ", key_ttl: " + DurationText(ttl->as_int64());
      }
    }
    if (type == "redis") {
      // Feast: "host:port,password=...,ssl=true,db=0"; Granary takes the same form.
      std::string conn = Str(*online, "connection_string");
      std::vector<std::string> kept, dropped;
      std::string rest = conn;
      std::vector<std::string> parts;
      size_t start = 0;
      while (start <= rest.size()) {
        size_t comma = rest.find(',', start);
        parts.push_back(rest.substr(start, comma == std::string::npos ? comma : comma - start));
        if (comma == std::string::npos) break;
        start = comma + 1;
      }
      std::vector<std::string> hosts;
      for (const std::string& p : parts) {
        if (p.empty()) continue;
        if (p.find('=') == std::string::npos) {
          hosts.push_back(p);
        } else if (p.starts_with("password=") || p.starts_with("username=") ||
                   p.starts_with("db=")) {
          kept.push_back(p);
        } else {
          dropped.push_back(p);
        }
      }
      for (const std::string& d : dropped) {
        Report("online store option", d,
               "Granary's Redis client has no such option (TLS: put a TLS proxy in front)");
      }
      for (const std::string& k : kept) {
        if (k.starts_with("password=")) {
          Report("online store option", "password",
                 "written as ${REDIS_PASSWORD} (Feast had expanded it): set that variable where "
                 "Granary runs; a password does not belong in a file");
        }
      }
      if (Str(*online, "redis_type") == "redis_cluster") {
        std::string nodes;
        for (const std::string& h : hosts)
          nodes += (nodes.empty() ? "" : ", ") + fmt::format("\"{}\"", h);
        std::string password;
        for (const std::string& k : kept) {
          if (k.starts_with("password=")) password = ", password: \"${REDIS_PASSWORD}\"";
        }
        text += fmt::format("online_store: {{type: redis_cluster, nodes: [{}]{}{}}}\n", nodes,
                            password, key_ttl);
      } else {
        std::string connection = hosts.empty() ? "localhost:6379" : hosts.front();
        for (const std::string& k : kept) {
          connection += "," + (k.starts_with("password=") ? "password=${REDIS_PASSWORD}" : k);
        }
        text += fmt::format("online_store: {{type: redis, connection_string: \"{}\"{}}}\n",
                            connection, key_ttl);
      }
    } else {
      if (type != "sqlite") {
        Report("online store", type,
               "Granary's online stores are RocksDB (embedded) and Redis (standalone or "
               "cluster); the import uses RocksDB");
      }
      text += fmt::format("online_store: {{type: rocksdb, path: data/online{}}}\n", key_ttl);
    }
    const bj::value* offline = dump_.as_object().if_contains("offline_store");
    const std::string offline_type = offline != nullptr ? Str(*offline, "type") : "dask";
    if (offline_type != "file" && offline_type != "dask" && offline_type != "duckdb") {
      Report("offline store", offline_type,
             "Granary's offline store reads Parquet, CSV and Delta files (type: file); the "
             "import uses it");
    }
    return text;
  }

  Definitions& definitions() { return defs_; }
  const std::vector<std::string>& report() const { return report_; }

 private:
  void Report(std::string_view kind, std::string_view name, std::string_view reason) {
    report_.push_back(name.empty() ? fmt::format("{}: {}", kind, reason)
                                   : fmt::format("{} '{}': {}", kind, name, reason));
  }

  // A path of the Feast repository as seen from the output folder.
  std::string MapPath(const std::string& path) {
    if (path.empty() || path.find("://") != std::string::npos) return path;
    fs::path p(path);
    if (p.is_relative()) p = feast_repo_ / p;
    p = p.lexically_normal();
    fs::path rel = p.lexically_relative(out_);
    if (!rel.empty() && !rel.string().starts_with("..")) return rel.string();
    return p.string();
  }

  // A file source into defs_; false (reported) when it has no equivalent.
  bool AddFileSource(const bj::value& s) {
    const std::string name = Str(s, "name");
    if (defs_.FindDataSource(name) != nullptr) return true;
    const std::string cls = Str(s, "class");
    if (cls != "FileSource") {
      Report("data source", name,
             fmt::format("{} has no Granary equivalent (Granary reads Parquet, CSV and Delta "
                         "files); copy its data to files and define a file source",
                         cls));
      return false;
    }
    DataSource out;
    out.name = name;
    out.path = MapPath(Str(s, "path"));
    const std::string format = Str(s, "file_format");
    out.format = format == "DeltaFormat" ? SourceFormat::kDelta : SourceFormat::kParquet;
    if (!format.empty() && format != "DeltaFormat" && format != "ParquetFormat") {
      Report("data source", name, format + " is not a format Granary reads; taken as Parquet");
    }
    out.timestamp_field = Str(s, "timestamp_field");
    out.created_timestamp_column = Str(s, "created_timestamp_column");
    out.date_partition_column = Str(s, "date_partition_column");
    out.field_mapping = StrMap(s, "field_mapping");
    out.description = Str(s, "description");
    out.tags = StrMap(s, "tags");
    defs_.data_sources.push_back(std::move(out));
    return true;
  }

  void Sources() {
    for (const auto& s : Arr(dump_, "data_sources")) {
      const std::string cls = Str(s, "class");
      if (cls == "PushSource") {
        const bj::value* batch = s.as_object().if_contains("batch_source");
        if (batch == nullptr || !AddFileSource(*batch)) {
          Report("push source", Str(s, "name"),
                 "its batch source has no Granary equivalent, so neither has it");
          continue;
        }
        DataSource push;
        push.name = Str(s, "name");
        push.batch_source = Str(*batch, "name");
        push.description = Str(s, "description");
        push.tags = StrMap(s, "tags");
        defs_.data_sources.push_back(std::move(push));
      } else if (cls == "RequestSource") {
        Report("request source", Str(s, "name"),
               "request data feeds on-demand feature views, which Granary does not have");
      } else {
        AddFileSource(s);
      }
    }
  }

  void Entities() {
    // Join key types: the entity's value_type, else what Feast inferred for the views' entity
    // columns.
    std::map<std::string, std::string> inferred;
    for (const auto& v : Arr(dump_, "feature_views")) {
      for (const auto& c : Arr(v, "entity_columns")) {
        inferred.emplace(Str(c, "name"), GranaryType(Str(c, "dtype")));
      }
    }
    for (const auto& e : Arr(dump_, "entities")) {
      const std::string name = Str(e, "name");
      if (name == "__dummy") continue;  // Feast's stand-in for views without entities
      Entity out;
      out.name = name;
      for (const auto& k : Arr(e, "join_keys")) out.join_keys.push_back(k.as_string().c_str());
      std::string type = GranaryTypeOfValueType(Str(e, "value_type"));
      for (const std::string& key : out.join_keys) {
        std::string t = type.empty() ? inferred[key] : type;
        if (t.empty()) {
          Report("entity", name,
                 fmt::format("the type of join key '{}' is unknown (no value_type, and Feast "
                             "could not infer it): written as string, check it",
                             key));
          t = "string";
        }
        out.join_key_types.push_back(ValueType::Parse(t).ValueOrDie());
      }
      out.description = Str(e, "description");
      out.tags = StrMap(e, "tags");
      if (!Str(e, "owner").empty()) out.tags.emplace("owner", Str(e, "owner"));
      defs_.entities.push_back(std::move(out));
    }
  }

  void Views() {
    for (const auto& v : Arr(dump_, "feature_views")) {
      const std::string name = Str(v, "name");
      FeatureView out;
      out.name = name;
      for (const auto& e : Arr(v, "entities")) {
        const std::string entity = e.as_string().c_str();
        if (entity != "__dummy") out.entities.push_back(entity);
      }
      if (out.entities.empty()) {
        Report("feature view", name,
               "it has no entities; Granary's views are keyed by at least one entity");
        continue;
      }
      const bj::value* stream = v.as_object().if_contains("stream_source");
      const bj::value* batch = v.as_object().if_contains("batch_source");
      if (stream != nullptr && stream->is_object()) {
        out.source = Str(*stream, "name");
      } else if (batch != nullptr && batch->is_object()) {
        out.source = Str(*batch, "name");
      }
      if (defs_.FindDataSource(out.source) == nullptr) {
        Report("feature view", name,
               fmt::format("its source '{}' has no Granary equivalent (see above)", out.source));
        skipped_views_.insert(name);
        continue;
      }
      const bj::value* ttl = v.as_object().if_contains("ttl_seconds");
      if (ttl != nullptr && ttl->is_int64()) out.ttl = Duration::Seconds(ttl->as_int64());
      out.online =
          v.as_object().if_contains("online") == nullptr || v.as_object().at("online").as_bool();
      for (const auto& f : Arr(v, "schema")) {
        const std::string feature = Str(f, "name");
        const std::string dtype = Str(f, "dtype");
        const std::string type = GranaryType(dtype);
        if (type.empty()) {
          Report("feature", name + ":" + feature,
                 fmt::format("Feast type {} has no Granary equivalent (scalars and lists of them "
                             "only); left out",
                             dtype));
          dropped_features_.insert(name + ":" + feature);
          continue;
        }
        if (dtype == "Json") {
          Report("feature", name + ":" + feature,
                 "Feast's Json is served as a string of JSON text in Granary");
        }
        Field field;
        field.name = feature;
        field.type = ValueType::Parse(type).ValueOrDie();
        field.description = Str(f, "description");
        out.schema.push_back(std::move(field));
      }
      if (out.schema.empty()) {
        Report("feature view", name, "none of its features has a Granary type; left out");
        skipped_views_.insert(name);
        continue;
      }
      out.owner = Str(v, "owner");
      out.description = Str(v, "description");
      out.tags = StrMap(v, "tags");
      defs_.feature_views.push_back(std::move(out));
    }
  }

  void Services() {
    std::set<std::string> odfvs;
    for (const auto& v : Arr(dump_, "on_demand_feature_views")) odfvs.insert(v.as_string().c_str());
    for (const auto& s : Arr(dump_, "feature_services")) {
      FeatureService out;
      out.name = Str(s, "name");
      for (const auto& p : Arr(s, "projections")) {
        const std::string view = Str(p, "view");
        if (odfvs.count(view) > 0 || skipped_views_.count(view) > 0 ||
            defs_.FindFeatureView(view) == nullptr) {
          Report("feature service", out.name,
                 fmt::format("its features of '{}' are left out ({} is not imported)", view,
                             odfvs.count(view) ? "an on-demand view" : "the view"));
          continue;
        }
        if (!Str(p, "alias").empty()) {
          Report("feature service", out.name,
                 fmt::format("the alias '{}' of view '{}' is dropped (Granary names features "
                             "by their view)",
                             Str(p, "alias"), view));
        }
        FeatureProjection projection;
        projection.view = view;
        const FeatureView* fv = defs_.FindFeatureView(view);
        for (const auto& f : Arr(p, "features")) {
          const std::string feature = f.as_string().c_str();
          if (dropped_features_.count(view + ":" + feature) > 0) continue;
          projection.features.push_back(feature);
        }
        if (projection.features.size() == fv->schema.size()) projection.features.clear();
        if (projection.features.empty() && !Arr(p, "features").empty() && fv->schema.empty()) {
          continue;
        }
        out.projections.push_back(std::move(projection));
      }
      if (out.projections.empty()) {
        Report("feature service", out.name, "nothing of it could be imported; left out");
        continue;
      }
      out.owner = Str(s, "owner");
      out.description = Str(s, "description");
      out.tags = StrMap(s, "tags");
      defs_.feature_services.push_back(std::move(out));
    }
  }

  const bj::value& dump_;
  fs::path feast_repo_, out_;
  Definitions defs_;
  std::vector<std::string> report_;
  std::set<std::string> skipped_views_, dropped_features_;
};

Status ImportFeast(const Options& o) {
  const fs::path feast_repo = fs::absolute(o.feast_repo).lexically_normal();
  if (!fs::exists(feast_repo / "feature_store.yaml")) {
    return Status::InvalidArgument(fmt::format(
        "{} has no feature_store.yaml; give the folder of a Feast repository (the one `feast "
        "apply` runs in, e.g. my_project/feature_repo)",
        feast_repo.string()));
  }
  const fs::path out = o.out.empty() ? feast_repo : fs::absolute(o.out).lexically_normal();
  for (const char* name : {"granary.yaml", "features.yaml"}) {
    if (fs::exists(out / name) && !o.force) {
      return Status::AlreadyExists(
          fmt::format("{} exists; import into another folder (--out) or overwrite it (--force)",
                      (out / name).string()));
    }
  }
  std::string python = o.feast_python;
  if (python.empty()) {
    const char* env = std::getenv("GRANARY_FEAST_PYTHON");
    python = env != nullptr && *env ? env : "python3";
  }
  GRANARY_ASSIGN_OR_RAISE(
      std::string text,
      RunCapturingStdout({python, "-c", std::string(kFeastDumpScript), feast_repo.string()}));
  auto dump = ParseJson(text);
  if (!dump.ok() || !dump->is_object()) {
    return Status::Internal("the Feast definitions dump is not a JSON object: " +
                            (dump.ok() ? std::string("wrong shape") : dump.status().message()));
  }
  Importer importer(*dump, feast_repo, out);
  importer.Run();
  const std::string config = importer.Config();
  Definitions& defs = importer.definitions();

  // Validate as `granary plan` will, against the data, before writing anything.
  Diagnostics diag;
  FileSourceInspector inspector(out);
  ValidateDefinitions(defs, &inspector, &diag);
  if (diag.has_errors()) {
    return diag.ToStatus().WithContext(
        "the imported definitions are not valid; nothing was written");
  }
  fs::create_directories(out);
  {
    std::ofstream f(out / "granary.yaml");
    f << config;
    if (!f) return Status::IOError("cannot write " + (out / "granary.yaml").string());
  }
  {
    std::ofstream f(out / "features.yaml");
    f << fmt::format(
             "# Imported from the Feast repository {} (feast {}) by granary "
             "import-feast.\n",
             feast_repo.string(), Str(*dump, "feast_version"))
      << DefinitionsToYaml(defs);
    if (!f) return Status::IOError("cannot write " + (out / "features.yaml").string());
  }
  // Feast's own YAML beside ours is no Granary definitions file: keep the loader off it.
  if (fs::exists(out / "feature_store.yaml")) {
    std::string ignore;
    if (std::ifstream in(out / ".granaryignore"); in) {
      ignore.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    }
    if (ignore.find("feature_store.yaml") == std::string::npos) {
      std::ofstream f(out / ".granaryignore", std::ios::app);
      f << (ignore.empty() || ignore.back() == '\n' ? "" : "\n")
        << "# Feast's configuration (granary import-feast)\nfeature_store.yaml\n";
    }
  }
  fmt::print(
      "Imported Feast project {} into {}: {} entities, {} data sources, {} feature views, "
      "{} feature services (granary.yaml, features.yaml)\n",
      defs.project, out.string(), defs.entities.size(), defs.data_sources.size(),
      defs.feature_views.size(), defs.feature_services.size());
  if (importer.report().empty()) {
    fmt::print("Everything has a Granary equivalent.\n");
  } else {
    fmt::print("Without a Granary equivalent ({}):\n", importer.report().size());
    for (const std::string& line : importer.report()) fmt::print("  - {}\n", line);
  }
  fmt::print("Next: granary -C {} plan, then apply and materialize\n", out.string());
  return Status::OK();
}

}  // namespace

void RegisterImportFeastCommand(CLI::App& app, Context& ctx) {
  auto o = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand(
      "import-feast",
      "Write a Granary repository (granary.yaml, features.yaml) from a Feast repository, and "
      "list what has no Granary equivalent");
  cmd->add_option("FEAST_REPO", o->feast_repo,
                  "The Feast repository: the folder holding feature_store.yaml")
      ->required();
  cmd->add_option("--out", o->out,
                  "Where to write granary.yaml and features.yaml (default: the Feast repository, "
                  "beside feature_store.yaml, so relative data paths stay valid)");
  cmd->add_option("--feast-python", o->feast_python,
                  "A Python whose environment has the feast package; it reads the definitions "
                  "(default: $GRANARY_FEAST_PYTHON, else python3)");
  cmd->add_flag("--force", o->force, "Overwrite granary.yaml and features.yaml");
  cmd->callback([&ctx, o] {
    Status st = ImportFeast(*o);
    if (!st.ok()) ctx.Fail(st);
  });
}

}  // namespace granary::cli
