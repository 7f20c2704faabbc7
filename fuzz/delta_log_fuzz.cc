// Fuzzes the Delta Lake log replay (offline/delta_snapshot.cc, delta_log.cc) with a table's
// _delta_log written by anyone: JSON commit files (actions, the schemaString inside metaData)
// and Parquet checkpoints. The input is
//   - a Parquet checkpoint when it starts with "PAR1": written as version 0's checkpoint, then
//     a fixed commit 1 that adds and removes files replays on top of it;
//   - else JSON commits, split at form feeds ('\f'): part i is version i's commit file.
// One temporary table folder is reused by every run (no process per input). The schemaString
// conversion is also fed the whole input. Properties beyond "never crash": a replayed snapshot
// has a struct schema, absolute file paths in byte-wise order and a version that matches the
// files written.
#include <arrow/type.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

#include "granary/offline/delta_log.h"
#include "scratch_dir.h"

namespace {

namespace fs = std::filesystem;

constexpr std::string_view kCommitAfterCheckpoint =
    R"({"commitInfo":{"operation":"WRITE"}})"
    "\n"
    R"({"add":{"path":"part-00001%20a.parquet","partitionValues":{},"size":10,)"
    R"("modificationTime":1,"dataChange":true}})"
    "\n"
    R"({"remove":{"path":"part-00000-a.parquet","deletionTimestamp":1,"dataChange":true}})"
    "\n";

std::string LogName(int64_t version, const char* suffix) {
  char name[64];
  std::snprintf(name, sizeof(name), "%020lld.%s", static_cast<long long>(version), suffix);
  return name;
}

void Write(const fs::path& path, std::string_view bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

[[noreturn]] void Fail(const std::string& what) {
  std::fprintf(stderr, "%s\n", what.c_str());
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const fs::path table = granary::fuzz::ScratchDir("granary-fuzz-delta-").path() / "table";
  static const fs::path log = table / "_delta_log";
  static const bool made = fs::create_directories(log);
  (void)made;
  granary::fuzz::RemoveFilesIn(log);
  const std::string_view in(reinterpret_cast<const char*>(data), size);

  int64_t last_version = -1;
  if (in.starts_with("PAR1")) {
    Write(log / LogName(0, "checkpoint.parquet"), in);
    Write(log / LogName(1, "json"), kCommitAfterCheckpoint);
    last_version = 1;
  } else {
    std::string_view rest = in;
    for (int64_t version = 0;; ++version) {
      const size_t cut = rest.find('\f');
      Write(log / LogName(version, "json"), rest.substr(0, cut));
      last_version = version;
      if (cut == std::string_view::npos) break;
      rest.remove_prefix(cut + 1);
    }
  }

  (void)granary::DeltaSchemaToArrow(in);
  auto snapshot = granary::ReadDeltaSnapshot(table);
  if (!snapshot.ok()) return 0;
  if (snapshot->version != last_version) {
    Fail("replayed version " + std::to_string(snapshot->version) + ", the log ends at " +
         std::to_string(last_version));
  }
  if (snapshot->schema == nullptr) Fail("a snapshot without a schema");
  for (size_t i = 0; i < snapshot->files.size(); ++i) {
    if (!snapshot->files[i].path.is_absolute()) Fail("a relative data file path");
    if (i > 0 && snapshot->files[i - 1].path.native() > snapshot->files[i].path.native()) {
      Fail("data files out of order");
    }
  }
  for (const auto& field : snapshot->schema->fields()) {
    (void)snapshot->PhysicalName(field->name());
  }
  return 0;
}
