// CopyRegistry: moves a whole registry (every version, watermark, run and push record, with their
// numbers and times) from one store to another, e.g. from the SQLite file to PostgreSQL and back
// (`granary registry export FILE` / `granary registry import FILE`).
//
// The source is read in one consistent snapshot; the target must be empty and is written in one
// transaction, then read back: the copy is accepted only when the target's contents fingerprint
// (RegistryContentsFingerprint) equals the source's. Thread-compatible.
#pragma once

#include <string>

#include "granary/common/result.h"
#include "granary/registry/registry_store.h"

namespace granary {

struct RegistryTransfer {
  int64_t versions = 0;
  int64_t watermarks = 0;
  int64_t runs = 0;
  int64_t pushes = 0;
  std::string fingerprint;         // of the contents, the same in source and target
  int64_t latest_version = 0;      // 0 when the source holds no version
  std::string latest_fingerprint;  // DefinitionsFingerprint of the newest version
};

// Copies `from` into the empty `to`. FailedPrecondition when `to` holds anything; Corruption when
// the copy read back differs (the target then holds the copy as written: remove it).
Result<RegistryTransfer> CopyRegistry(RegistryStore& from, RegistryStore& to);

}  // namespace granary
