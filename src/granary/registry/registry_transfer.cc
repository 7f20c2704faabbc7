#include "granary/registry/registry_transfer.h"

#include <fmt/format.h>

namespace granary {

Result<RegistryTransfer> CopyRegistry(RegistryStore& from, RegistryStore& to) {
  GRANARY_ASSIGN_OR_RAISE(RegistryContents contents, from.Export());
  RegistryTransfer out;
  out.versions = static_cast<int64_t>(contents.versions.size());
  out.watermarks = static_cast<int64_t>(contents.watermarks.size());
  out.runs = static_cast<int64_t>(contents.runs.size());
  out.pushes = static_cast<int64_t>(contents.pushes.size());
  out.fingerprint = RegistryContentsFingerprint(contents);
  if (!contents.versions.empty()) {
    out.latest_version = contents.versions.back().info.version;
    out.latest_fingerprint = contents.versions.back().info.fingerprint;
  }
  GRANARY_RETURN_NOT_OK(
      to.Import(contents).WithContext(fmt::format("copying into {}", to.Describe())));
  GRANARY_ASSIGN_OR_RAISE(RegistryContents copied, to.Export());
  const std::string copied_fingerprint = RegistryContentsFingerprint(copied);
  if (copied_fingerprint != out.fingerprint) {
    return Status::Corruption(fmt::format(
        "the copy in {} reads back with fingerprint {}, not the source's {} ({}: {} versions, {} "
        "runs; copy: {} versions, {} runs); do not use it: remove it and copy again",
        to.Describe(), copied_fingerprint, out.fingerprint, from.Describe(), out.versions, out.runs,
        copied.versions.size(), copied.runs.size()));
  }
  return out;
}

}  // namespace granary
