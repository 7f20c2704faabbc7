// granary_test_online_load REPO VIEW PARQUET: writes every row of a Parquet file into the
// repository's online store for one applied feature view, through OnlineStore::WriteBatch.
//
// A test tool for the command line's end-to-end tests (tests/test_cli_online.py), until
// `granary materialize` exists; not installed, not a user command. Columns are renamed as the
// view's source says: timestamp_field -> event_timestamp, created_timestamp_column ->
// created_timestamp, field_mapping source -> feature names.
#include <arrow/api.h>
#include <arrow/io/file.h>
#include <fmt/format.h>
#include <parquet/arrow/reader.h>

#include "granary/online/online_store.h"
#include "granary/registry/registry_store.h"

namespace granary {
namespace {

Status Run(const std::string& repo, const std::string& view_name, const std::string& parquet) {
  GRANARY_ASSIGN_OR_RAISE(RepoConfig config, LoadRepoConfig(repo));
  GRANARY_ASSIGN_OR_RAISE(auto registry,
                          OpenSqliteRegistry(config.RegistryPath(), OpenMode::kOpenExisting));
  GRANARY_ASSIGN_OR_RAISE(auto latest, registry->Latest());
  if (!latest) return Status::FailedPrecondition("nothing applied");
  const Definitions& defs = latest->definitions;
  const FeatureView* view = defs.FindFeatureView(view_name);
  if (view == nullptr) return Status::NotFound("no feature view " + view_name);
  const DataSource* source = defs.FindOfflineSource(view->source);
  GRANARY_ASSIGN_OR_RAISE(auto layout, ViewLayout::Make(defs, *view, config.online_store.key_ttl));

  auto file = arrow::io::ReadableFile::Open(parquet);
  if (!file.ok()) return Status::IOError(file.status().ToString());
  auto reader = parquet::arrow::OpenFile(*file, arrow::default_memory_pool());
  if (!reader.ok()) return Status::IOError(reader.status().ToString());
  auto read = (*reader)->ReadTable();
  if (!read.ok()) return Status::IOError(read.status().ToString());
  std::shared_ptr<arrow::Table> table = *read;
  std::vector<std::string> names;
  for (const auto& field : table->schema()->fields()) {
    std::string name = field->name();
    if (source != nullptr) {
      if (name == source->timestamp_field) name = "event_timestamp";
      if (name == source->created_timestamp_column) name = "created_timestamp";
      if (auto it = source->field_mapping.find(name); it != source->field_mapping.end()) {
        name = it->second;
      }
    }
    names.push_back(name);
  }
  auto renamed = table->RenameColumns(names);
  if (!renamed.ok()) return Status::InvalidArgument(renamed.status().ToString());
  GRANARY_ASSIGN_OR_RAISE(auto store, OpenOnlineStore(config));
  arrow::TableBatchReader batches(**renamed);
  std::shared_ptr<arrow::RecordBatch> batch;
  WriteStats total;
  while (batches.ReadNext(&batch).ok() && batch != nullptr) {
    GRANARY_ASSIGN_OR_RAISE(WriteStats s, store->WriteBatch(*layout, *batch));
    total += s;
  }
  fmt::print("wrote {} rows ({} skipped as older) of {} to {}\n", total.written,
             total.skipped_older, view_name, store->Describe());
  return Status::OK();
}

}  // namespace
}  // namespace granary

int main(int argc, char** argv) {
  if (argc != 4) {
    fmt::print(stderr, "usage: {} REPO VIEW PARQUET\n", argv[0]);
    return 2;
  }
  granary::Status st = granary::Run(argv[1], argv[2], argv[3]);
  if (!st.ok()) {
    fmt::print(stderr, "error: {}\n", st.ToString());
    return 1;
  }
  return 0;
}
