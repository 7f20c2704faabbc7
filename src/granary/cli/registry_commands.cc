// registry info, export, import: where the registry lives, and moving it with its history between
// a SQLite file and PostgreSQL (docs/OPERATIONS.md, "Moving a registry").
#include <fmt/format.h>

#include <filesystem>
#include <memory>
#include <string>

#include "granary/cli/cli.h"
#include "granary/registry/registry_factory.h"
#include "granary/registry/registry_store.h"
#include "granary/registry/registry_transfer.h"

namespace granary::cli {
namespace {

void PrintTransfer(const RegistryTransfer& t, const std::string& from, const std::string& to) {
  fmt::print(
      "copied {} versions, {} watermarks, {} runs and {} push records\n  from {}\n  to   {}\n",
      t.versions, t.watermarks, t.runs, t.pushes, from, to);
  if (t.latest_version > 0) {
    fmt::print("latest version {} (definitions fingerprint {})\n", t.latest_version,
               t.latest_fingerprint);
  }
  fmt::print("contents fingerprint {}: the copy read back matches the source\n", t.fingerprint);
}

Status RunInfo(const RepoConfig& config) {
  GRANARY_ASSIGN_OR_RAISE(auto store, OpenRegistry(config, OpenMode::kOpenExisting));
  GRANARY_ASSIGN_OR_RAISE(RegistryContents contents, store->Export());
  fmt::print("registry: {}\n", store->Describe());
  fmt::print("type: {}\n", config.Registry().is_postgresql() ? "postgresql" : "sqlite");
  fmt::print("versions: {}\n", contents.versions.size());
  if (!contents.versions.empty()) {
    const RegistryVersionInfo& latest = contents.versions.back().info;
    fmt::print("latest version: {} applied {} (definitions fingerprint {})\n", latest.version,
               FormatTimestamp(latest.applied_at), latest.fingerprint);
  }
  fmt::print("watermarks: {}\nruns: {}\npush records: {}\n", contents.watermarks.size(),
             contents.runs.size(), contents.pushes.size());
  fmt::print("contents fingerprint: {}\n", RegistryContentsFingerprint(contents));
  return Status::OK();
}

// The repository's registry into a new SQLite file.
Status RunExport(const RepoConfig& config, const std::string& file) {
  const std::filesystem::path path = std::filesystem::absolute(file);
  std::error_code ec;
  if (std::filesystem::exists(path, ec)) {
    return Status::AlreadyExists(fmt::format(
        "{} exists; export writes a new SQLite registry file: name another file or remove it",
        path.string()));
  }
  GRANARY_ASSIGN_OR_RAISE(auto from, OpenRegistry(config, OpenMode::kOpenExisting));
  auto to = OpenSqliteRegistry(path, OpenMode::kCreateIfMissing);
  Result<RegistryTransfer> copied = to.ok() ? CopyRegistry(*from, **to) : to.status();
  if (!copied.ok()) {
    if (to.ok()) to->reset();  // close before removing
    for (const char* suffix : {"", "-wal", "-shm"}) {
      std::filesystem::remove(path.string() + suffix, ec);
    }
    return copied.status().WithContext("nothing was exported");
  }
  PrintTransfer(*copied, from->Describe(), path.string());
  return Status::OK();
}

// A SQLite registry file into the repository's registry, which must be empty.
Status RunImport(const RepoConfig& config, const std::string& file) {
  const std::filesystem::path path = std::filesystem::absolute(file);
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    return Status::NotFound(fmt::format(
        "{} does not exist; import reads a SQLite registry file written by 'granary registry "
        "export' (or a repository's data/registry.db)",
        path.string()));
  }
  GRANARY_ASSIGN_OR_RAISE(auto from, OpenSqliteRegistry(path, OpenMode::kOpenExisting));
  GRANARY_ASSIGN_OR_RAISE(auto to, OpenRegistry(config, OpenMode::kCreateIfMissing));
  GRANARY_ASSIGN_OR_RAISE(RegistryTransfer copied, CopyRegistry(*from, *to));
  PrintTransfer(copied, path.string(), to->Describe());
  return Status::OK();
}

}  // namespace

void RegisterRegistryCommands(CLI::App& app, Context& ctx) {
  auto* registry = app.add_subcommand(
      "registry", "Where the registry lives; move it with its history (SQLite <-> PostgreSQL)");
  registry->require_subcommand(1);
  registry->add_subcommand("info", "Show the registry's location, counts and contents fingerprint")
      ->callback([&ctx] {
        RepoConfig config;
        if (!ctx.LoadConfig(&config)) return;
        if (Status st = RunInfo(config); !st.ok()) ctx.Fail(st);
      });
  auto file = std::make_shared<std::string>();
  auto* exp = registry->add_subcommand(
      "export", "Copy the registry (every version, watermark, run) into a new SQLite file");
  exp->add_option("file", *file, "The SQLite file to write (must not exist)")->required();
  exp->callback([&ctx, file] {
    RepoConfig config;
    if (!ctx.LoadConfig(&config)) return;
    if (Status st = RunExport(config, *file); !st.ok()) ctx.Fail(st);
  });
  auto* imp = registry->add_subcommand(
      "import", "Copy a SQLite registry file into this repository's registry, which must be empty");
  imp->add_option("file", *file, "The SQLite registry file to read")->required();
  imp->callback([&ctx, file] {
    RepoConfig config;
    if (!ctx.LoadConfig(&config)) return;
    if (Status st = RunImport(config, *file); !st.ok()) ctx.Fail(st);
  });
}

}  // namespace granary::cli
