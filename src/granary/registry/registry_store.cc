#include "granary/registry/registry_store.h"

#include <fmt/format.h>

#include "granary/common/hash.h"

namespace granary {

std::string_view RunStatusName(RunStatus status) {
  switch (status) {
    case RunStatus::kRunning:
      return "running";
    case RunStatus::kSucceeded:
      return "succeeded";
    case RunStatus::kFailed:
      return "failed";
  }
  return "unknown";
}

}  // namespace granary

namespace granary {

Status NoDefinitionsApplied(const std::string& describe) {
  return Status::FailedPrecondition(fmt::format(
      "registry {} holds no definitions yet: run 'granary apply' (in Python: FeatureStore.apply()) "
      "in the repository first",
      describe));
}

bool IsNoDefinitionsApplied(const Status& status) {
  return status.code() == StatusCode::kFailedPrecondition &&
         status.message().find("holds no definitions yet") != std::string::npos;
}

Result<RegistryVersion> LatestApplied(DefinitionStore& store) {
  GRANARY_ASSIGN_OR_RAISE(std::optional<RegistryVersion> latest, store.Latest());
  if (!latest) return NoDefinitionsApplied(store.Describe());
  return std::move(*latest);
}

std::string RegistryContentsFingerprint(const RegistryContents& c) {
  // Each field is framed by its length, so that no two contents hash the same text.
  uint64_t h = Fnv1a64("granary-registry-contents-v1");
  auto add = [&h](std::string_view s) {
    h = Fnv1a64(std::to_string(s.size()) + ":", h);
    h = Fnv1a64(s, h);
  };
  auto add_int = [&add](int64_t v) { add(std::to_string(v)); };
  auto add_time = [&add](const std::optional<Timestamp>& t) {
    add(t ? std::to_string(t->micros) : "null");
  };
  add_int(static_cast<int64_t>(c.versions.size()));
  for (const StoredVersion& v : c.versions) {
    add_int(v.info.version);
    add_int(v.info.applied_at.micros);
    add(v.info.fingerprint);
    add(v.info.project);
    add(v.definitions_yaml);
  }
  add_int(static_cast<int64_t>(c.watermarks.size()));
  for (const auto& [view, w] : c.watermarks) {
    add(view);
    add_int(w.watermark.micros);
    add(w.layout);
    add_int(w.updated_at.micros);
    add_time(w.newest_event);
    add_int(w.online_marker ? 1 : 0);
  }
  add_int(static_cast<int64_t>(c.runs.size()));
  for (const MaterializationRun& r : c.runs) {
    add_int(r.id);
    add(r.view);
    add_int(r.interval_start.micros);
    add_int(r.interval_end.micros);
    add(r.trigger);
    add_int(r.started_at.micros);
    add_time(r.finished_at);
    add(RunStatusName(r.status));
    add_int(r.rows_read);
    add_int(r.entities_written);
    add_int(r.entities_skipped);
    add(r.error);
    add_int(r.pid);
    add(r.host);
    add(r.lock_token);
    add(r.note);
    add_time(r.newest_event);
  }
  add_int(static_cast<int64_t>(c.pushes.size()));
  for (const auto& [view, p] : c.pushes) {
    add(view);
    add_int(p.last_push_at.micros);
    add_int(p.rows);
  }
  return fmt::format("{:016x}", h);
}

}  // namespace granary
