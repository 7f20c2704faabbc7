// The definitions model: what a feature repository declares (Feast's concepts).
//
// Plain values produced by the YAML loader (loader.h), checked by the validator (validator.h) and
// stored as versions by a RegistryStore (registry_store.h). Every object remembers where it was
// defined so that messages can point at a file and line. Thread-compatible.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "granary/common/time.h"
#include "granary/types/value_type.h"

namespace granary {

// A place in a definitions file; line is 1-based, 0 when unknown.
struct SourceLocation {
  std::string file;
  int line = 0;
  // "defs/customer.yaml:14", "defs/customer.yaml" or "" .
  std::string ToString() const;
};

// The kinds of objects, as named on the command line and in messages.
enum class ObjectKind { kEntity, kDataSource, kFeatureView, kFeatureService };
// "entity", "data source", "feature view", "feature service".
std::string_view ObjectKindName(ObjectKind kind);

struct Entity {
  std::string name;
  std::vector<std::string> join_keys;     // at least one
  std::vector<ValueType> join_key_types;  // same length as join_keys
  std::string description;
  std::map<std::string, std::string> tags;
  SourceLocation location;
};

enum class SourceFormat { kParquet, kCsv, kDelta };
std::string_view SourceFormatName(SourceFormat format);

// A file or Delta source (the offline data of feature views), or a push source (Feast's
// PushSource): rows pushed to the feature server's POST /push, which names a batch source that
// holds them offline. A push source has no path or columns of its own: views reading it read its
// batch source offline, and pushed rows are named as the batch source's columns.
struct DataSource {
  std::string name;
  SourceFormat format = SourceFormat::kParquet;
  // type: push: the file or Delta source holding the pushed rows offline; empty otherwise.
  std::string batch_source;
  // Where the data is: exactly one of path, table and query (not for push sources).
  // A file, a directory, a glob or a Delta table's folder; relative paths are relative to the
  // repository root.
  std::string path;
  // A table of the offline engine's catalog ("catalog.schema.name"), or a SQL query whose rows
  // are the source's. Engines that run SQL read them (Spark); the embedded engine refuses them
  // with a clear error (OfflineEngine::ValidateSource).
  std::string table;
  std::string query;
  std::string timestamp_field;           // required: the event time of each row
  std::string created_timestamp_column;  // optional: when the row was written (tie-breaker)
  std::string date_partition_column;     // optional: a date partition column for pruning
  // Source column name -> name used in definitions (features, timestamps, join keys).
  std::map<std::string, std::string> field_mapping;
  std::string description;
  std::map<std::string, std::string> tags;
  SourceLocation location;

  // The source column that a definition name reads from (inverse of field_mapping).
  std::string SourceColumnFor(const std::string& name) const;
  bool is_push() const { return !batch_source.empty(); }
  // Where the data is, for messages: the path, "table catalog.schema.name" or "query".
  std::string Where() const;
};

struct Field {
  std::string name;
  ValueType type;
  std::string description;
  SourceLocation location;
};

struct FeatureView {
  std::string name;
  std::vector<std::string> entities;  // names of entities; their join keys key the view
  std::string source;                 // name of a DataSource
  Duration ttl;                       // 0 = no limit
  bool online = true;
  // How long the online store keeps an entity's values after their last write (refreshed on
  // every write); 0 = the online store's key_ttl.
  Duration online_key_ttl;
  std::vector<Field> schema;  // the features
  std::string owner;
  std::string description;
  std::map<std::string, std::string> tags;
  SourceLocation location;
  // The online schemas the view had before, newest first (OnlineSchemaText of each, at most
  // kOnlineHistoryLimit), so that values stored online under them stay readable feature by
  // feature (docs/ONLINE_LAYOUT.md, "Schema changes"). Kept by apply (CarryOnlineHistory), not
  // written by users; neither a plan change nor part of the definitions' fingerprint.
  std::vector<std::string> online_history;

  const Field* FindFeature(const std::string& feature) const;
};

// How many earlier online schemas a view remembers.
inline constexpr size_t kOnlineHistoryLimit = 4;

struct FeatureProjection {
  std::string view;
  std::vector<std::string> features;  // empty: every feature of the view
  SourceLocation location;
};

struct FeatureService {
  std::string name;
  std::vector<FeatureProjection> projections;
  std::string owner;
  std::string description;
  std::map<std::string, std::string> tags;
  SourceLocation location;
};

// Everything a repository defines. Names are unique within a kind (the validator checks).
struct Definitions {
  std::string project;
  std::vector<Entity> entities;
  std::vector<DataSource> data_sources;
  std::vector<FeatureView> feature_views;
  std::vector<FeatureService> feature_services;

  const Entity* FindEntity(const std::string& name) const;
  const DataSource* FindDataSource(const std::string& name) const;
  // The source whose files hold the rows of source `name`: its batch source for a push source,
  // else the source itself; null when either is not defined.
  const DataSource* FindOfflineSource(const std::string& name) const;
  const FeatureView* FindFeatureView(const std::string& name) const;
  const FeatureService* FindFeatureService(const std::string& name) const;

  // Sorts every kind by name, for stable output and fingerprints.
  void SortByName();
};

// The identity of the online layout of `view` (docs/ONLINE_LAYOUT.md, "Schema fingerprint"):
// "granary.schema.v1|<view>|<join key>:<type>,...|<feature>:<type>,..." with the join keys of its
// entities sorted by name (integer keys written "integer") and the features in schema order.
// Entities that `defs` does not define are left out.
std::string OnlineSchemaText(const Definitions& defs, const FeatureView& view);

// Sets the online_history of every online view of `after` from its version in `before`: the
// earlier history, with before's schema put first when the online schema changed. Schemas with
// other join keys than the view's current ones (their values belong to other entities) and the
// current schema itself are left out; at most kOnlineHistoryLimit are kept.
void CarryOnlineHistory(const Definitions& before, Definitions* after);

}  // namespace granary
