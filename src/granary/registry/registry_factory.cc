#include "granary/registry/registry_factory.h"

#include "granary/registry/postgres_registry.h"

namespace granary {

Result<std::unique_ptr<RegistryStore>> OpenRegistry(const RegistryLocation& location,
                                                    OpenMode mode) {
  switch (location.kind) {
    case RegistryLocation::Kind::kSqlite:
      return OpenSqliteRegistry(location.path, mode);
    case RegistryLocation::Kind::kPostgresql:
      return OpenPostgresRegistry(location, mode);
  }
  return Status::Internal("unknown registry kind");
}

Result<std::unique_ptr<RegistryStore>> OpenRegistry(const RepoConfig& config, OpenMode mode) {
  return OpenRegistry(config.Registry(), mode);
}

Result<bool> DropRegistry(const RegistryLocation& location) {
  if (!location.is_postgresql()) {
    return Status::Internal("DropRegistry is for PostgreSQL registries; remove the file");
  }
  return DropPostgresRegistry(location);
}

bool RegistryMayExist(const RegistryLocation& location) {
  if (location.is_postgresql()) return true;
  std::error_code ec;
  return std::filesystem::exists(location.path, ec);
}

}  // namespace granary
