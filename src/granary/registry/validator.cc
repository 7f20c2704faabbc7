#include "granary/registry/validator.h"

#include <arrow/type.h>
#include <fmt/format.h>

#include <map>
#include <set>

#include "granary/common/strings.h"
#include "granary/types/arrow_convert.h"

namespace granary {
namespace {

bool IsName(const std::string& s) {
  if (s.empty() || std::isdigit(static_cast<unsigned char>(s[0]))) return false;
  for (char c : s) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_')) return false;
  }
  return s.find("__") == std::string::npos;
}

void CheckName(ObjectKind kind, const std::string& name, const SourceLocation& where,
               Diagnostics* diag) {
  if (!IsName(name)) {
    diag->Error(where, fmt::format("{} '{}': the name must be letters, digits and single "
                                   "underscores, not starting with a digit",
                                   ObjectKindName(kind), name));
  }
}

template <typename T>
void CheckUnique(ObjectKind kind, const std::vector<T>& items, Diagnostics* diag) {
  std::map<std::string, const T*> seen;
  for (const T& item : items) {
    CheckName(kind, item.name, item.location, diag);
    auto [it, inserted] = seen.emplace(item.name, &item);
    if (!inserted) {
      diag->Error(item.location,
                  fmt::format("{} '{}' is defined twice: here and at {}; rename or remove one",
                              ObjectKindName(kind), item.name, it->second->location.ToString()));
    }
  }
}

template <typename T>
std::vector<std::string> NamesOf(const std::vector<T>& items) {
  std::vector<std::string> names;
  for (const T& item : items) names.push_back(item.name);
  return names;
}

std::vector<std::string> FeatureNames(const FeatureView& view) {
  std::vector<std::string> names;
  for (const Field& f : view.schema) names.push_back(f.name);
  return names;
}

bool IsTimestampColumn(const arrow::DataType& type) {
  return type.id() == arrow::Type::TIMESTAMP || type.id() == arrow::Type::DATE32 ||
         type.id() == arrow::Type::DATE64;
}

// Checks the columns that `view` reads from `source` against the source's real schema.
void CheckViewAgainstSchema(const Definitions& defs, const FeatureView& view,
                            const DataSource& source, const InspectedSchema& inspected,
                            Diagnostics* diag) {
  const arrow::Schema& schema = *inspected.schema;
  std::vector<std::string> columns = schema.field_names();
  const std::string what = fmt::format("feature view '{}'", view.name);
  auto column = [&](const std::string& name) {
    return schema.GetFieldByName(source.SourceColumnFor(name));
  };
  auto missing = [&](const SourceLocation& where, const std::string& role,
                     const std::string& name) {
    std::string col = source.SourceColumnFor(name);
    diag->Error(where, fmt::format("{}: {} '{}' has no column '{}' in data source '{}' ({}){}; "
                                   "the columns are: {}",
                                   what, role, name, col, source.name, source.Where(),
                                   DidYouMean(col, columns), Join(columns, ", ")));
  };
  for (const std::string& entity_name : view.entities) {
    const Entity* entity = defs.FindEntity(entity_name);
    if (entity == nullptr) continue;
    for (size_t i = 0; i < entity->join_keys.size(); ++i) {
      auto field = column(entity->join_keys[i]);
      if (field == nullptr) {
        missing(view.location, "join key", entity->join_keys[i]);
      } else if (inspected.typed) {
        Status st = CheckReadableAs(*field->type(), entity->join_key_types[i]);
        if (!st.ok()) {
          diag->Error(view.location,
                      fmt::format("{}: join key '{}' of entity '{}' is {}; make the "
                                  "entity's value_type match the data",
                                  what, entity->join_keys[i], entity->name, st.message()));
        }
      }
    }
  }
  for (const Field& f : view.schema) {
    auto field = column(f.name);
    if (field == nullptr) {
      missing(f.location, "feature", f.name);
    } else if (inspected.typed) {
      Status st = CheckReadableAs(*field->type(), f.type);
      if (!st.ok()) {
        diag->Error(
            f.location,
            fmt::format("{}: field '{}' is {} '{}'; change the field's type to match the data",
                        what, f.name, st.message(), source.SourceColumnFor(f.name)));
      }
    }
  }
}

void CheckSourceColumns(const DataSource& source, const InspectedSchema& inspected,
                        Diagnostics* diag) {
  const arrow::Schema& schema = *inspected.schema;
  std::vector<std::string> columns = schema.field_names();
  const std::string what = fmt::format("data source '{}'", source.name);
  struct TimeColumn {
    const char* key;
    const std::string& name;
  };
  for (const TimeColumn& t :
       {TimeColumn{"timestamp_field", source.timestamp_field},
        TimeColumn{"created_timestamp_column", source.created_timestamp_column}}) {
    if (t.name.empty()) continue;
    std::string col = source.SourceColumnFor(t.name);
    auto field = schema.GetFieldByName(col);
    if (field == nullptr) {
      diag->Error(
          source.location,
          fmt::format("{}: {} '{}' is not a column of {}{}; the columns are: {}", what, t.key, col,
                      source.Where(), DidYouMean(col, columns), Join(columns, ", ")));
    } else if (inspected.typed && !IsTimestampColumn(*field->type())) {
      diag->Error(source.location,
                  fmt::format("{}: {} '{}' is {}, not a timestamp; point it at a timestamp column",
                              what, t.key, col, field->type()->ToString()));
    }
  }
}

// Rows pushed to a push source are typed by the views reading it: a column that two of them read
// must have one type.
void CheckPushSourceColumns(const Definitions& defs, Diagnostics* diag) {
  for (const DataSource& push : defs.data_sources) {
    if (!push.is_push()) continue;
    struct Use {
      ValueType type;
      const FeatureView* view;
    };
    std::map<std::string, Use> columns;
    for (const FeatureView& v : defs.feature_views) {
      if (v.source != push.name) continue;
      auto check = [&](const std::string& name, ValueType type, const SourceLocation& where) {
        auto [it, inserted] = columns.emplace(name, Use{type, &v});
        if (!inserted && it->second.type != type) {
          diag->Error(where, fmt::format("feature view '{}': '{}' is {} here but {} in feature "
                                         "view '{}', which reads the same push source '{}'; "
                                         "give it one type",
                                         v.name, name, type.ToString(), it->second.type.ToString(),
                                         it->second.view->name, push.name));
        }
      };
      for (const std::string& e : v.entities) {
        const Entity* entity = defs.FindEntity(e);
        if (entity == nullptr) continue;
        for (size_t i = 0; i < entity->join_keys.size() && i < entity->join_key_types.size(); ++i) {
          check(entity->join_keys[i], entity->join_key_types[i], v.location);
        }
      }
      for (const Field& f : v.schema) check(f.name, f.type, f.location);
    }
  }
}

}  // namespace

void ValidateDefinitions(const Definitions& defs, SourceInspector* inspector, Diagnostics* diag) {
  CheckUnique(ObjectKind::kEntity, defs.entities, diag);
  CheckUnique(ObjectKind::kDataSource, defs.data_sources, diag);
  CheckUnique(ObjectKind::kFeatureView, defs.feature_views, diag);
  CheckUnique(ObjectKind::kFeatureService, defs.feature_services, diag);

  const auto entity_names = NamesOf(defs.entities);
  const auto source_names = NamesOf(defs.data_sources);
  const auto view_names = NamesOf(defs.feature_views);

  for (const Entity& e : defs.entities) {
    std::set<std::string> keys;
    for (const std::string& k : e.join_keys) {
      if (!keys.insert(k).second) {
        diag->Error(e.location,
                    fmt::format("entity '{}': join key '{}' is listed twice", e.name, k));
      }
    }
  }

  for (const DataSource& s : defs.data_sources) {
    if (s.is_push()) {
      const DataSource* batch = defs.FindDataSource(s.batch_source);
      if (batch == nullptr) {
        diag->Error(s.location,
                    fmt::format("data source '{}': unknown batch_source '{}'{}; name the file or "
                                "delta source that keeps the pushed rows offline (data sources: "
                                "{})",
                                s.name, s.batch_source, DidYouMean(s.batch_source, source_names),
                                Join(source_names, ", ")));
      } else if (batch->is_push()) {
        diag->Error(s.location,
                    fmt::format("data source '{}': batch_source '{}' is a push source itself; "
                                "name a file or delta source",
                                s.name, s.batch_source));
      }
      continue;
    }
    std::map<std::string, std::string> targets;
    for (const auto& [column, name] : s.field_mapping) {
      auto [it, inserted] = targets.emplace(name, column);
      if (!inserted) {
        diag->Error(s.location,
                    fmt::format("data source '{}': field_mapping maps both '{}' and '{}' "
                                "to '{}'; map each name once",
                                s.name, it->second, column, name));
      }
    }
  }

  for (const FeatureView& v : defs.feature_views) {
    const std::string what = fmt::format("feature view '{}'", v.name);
    std::set<std::string> join_keys;
    for (const std::string& e : v.entities) {
      const Entity* entity = defs.FindEntity(e);
      if (entity == nullptr) {
        diag->Error(v.location,
                    fmt::format("{}: unknown entity '{}'{}; define it under entities: "
                                "or fix the name (entities: {})",
                                what, e, DidYouMean(e, entity_names),
                                entity_names.empty() ? "none" : Join(entity_names, ", ")));
        continue;
      }
      join_keys.insert(entity->join_keys.begin(), entity->join_keys.end());
    }
    if (defs.FindDataSource(v.source) == nullptr) {
      diag->Error(v.location,
                  fmt::format("{}: unknown data source '{}'{}; define it under "
                              "data_sources: or fix the name (data sources: {})",
                              what, v.source, DidYouMean(v.source, source_names),
                              source_names.empty() ? "none" : Join(source_names, ", ")));
    }
    if (v.ttl.micros < 0) diag->Error(v.location, what + ": ttl must not be negative");
    std::map<std::string, const Field*> features;
    for (const Field& f : v.schema) {
      if (!IsName(f.name)) {
        diag->Error(f.location, fmt::format("{}: field '{}': the name must be letters, digits and "
                                            "single underscores",
                                            what, f.name));
      }
      auto [it, inserted] = features.emplace(f.name, &f);
      if (!inserted) {
        diag->Error(f.location, fmt::format("{}: field '{}' is listed twice (also at {})", what,
                                            f.name, it->second->location.ToString()));
      }
      if (join_keys.count(f.name)) {
        diag->Error(f.location, fmt::format("{}: field '{}' is a join key of the view's entities; "
                                            "join keys are not features, remove it from schema",
                                            what, f.name));
      }
    }
  }

  CheckPushSourceColumns(defs, diag);

  for (const FeatureService& s : defs.feature_services) {
    const std::string what = fmt::format("feature service '{}'", s.name);
    std::map<std::string, SourceLocation> seen_views;
    for (const FeatureProjection& p : s.projections) {
      const FeatureView* view = defs.FindFeatureView(p.view);
      if (view == nullptr) {
        diag->Error(p.location, fmt::format("{}: unknown feature view '{}'{} (feature views: {})",
                                            what, p.view, DidYouMean(p.view, view_names),
                                            view_names.empty() ? "none" : Join(view_names, ", ")));
        continue;
      }
      auto [it, inserted] = seen_views.emplace(p.view, p.location);
      if (!inserted) {
        diag->Error(p.location,
                    fmt::format("{}: feature view '{}' is projected twice (also at {}); "
                                "list its features in one projection",
                                what, p.view, it->second.ToString()));
      }
      std::set<std::string> listed;
      for (const std::string& feature : p.features) {
        if (view->FindFeature(feature) == nullptr) {
          auto names = FeatureNames(*view);
          diag->Error(p.location, fmt::format("{}: feature view '{}' has no feature '{}'{} "
                                              "(its features: {})",
                                              what, p.view, feature, DidYouMean(feature, names),
                                              Join(names, ", ")));
        } else if (!listed.insert(feature).second) {
          diag->Error(p.location,
                      fmt::format("{}: feature '{}:{}' is listed twice", what, p.view, feature));
        }
      }
    }
  }

  if (inspector == nullptr) return;
  for (const DataSource& source : defs.data_sources) {
    if (source.is_push()) continue;  // its batch source holds the data
    auto inspected = inspector->Inspect(source);
    if (!inspected.ok()) {
      diag->Error(source.location,
                  fmt::format("data source '{}': {}", source.name, inspected.status().message()));
      continue;
    }
    if (!inspected->has_value()) {
      diag->Warning(source.location,
                    fmt::format("data source '{}': no data at '{}' yet, so its columns were not "
                                "checked; apply again once the data exists",
                                source.name, source.path));
      continue;
    }
    CheckSourceColumns(source, **inspected, diag);
    for (const FeatureView& v : defs.feature_views) {
      if (defs.FindOfflineSource(v.source) == &source) {
        CheckViewAgainstSchema(defs, v, source, **inspected, diag);
      }
    }
  }
}

}  // namespace granary
