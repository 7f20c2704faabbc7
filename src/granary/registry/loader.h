// Loading definitions from YAML: the repository's *.yaml files, or a registry snapshot.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "granary/common/result.h"
#include "granary/registry/definitions.h"
#include "granary/registry/diagnostics.h"
#include "granary/registry/repo_config.h"

namespace granary {

// Every *.yaml and *.yml under the repository root except granary.yaml, hidden files and folders,
// and paths matched by a pattern in <root>/.granaryignore (one glob per line, relative to the
// root; a pattern that names a folder skips what is inside). Sorted, so loading is deterministic.
Result<std::vector<std::filesystem::path>> FindDefinitionFiles(const RepoConfig& config);

// Parses one definitions document. `file` names it in messages. Problems go to `diag`;
// objects that parsed are appended to `out` even when others did not.
void LoadDefinitionsText(const std::string& file, const std::string& text, Definitions* out,
                         Diagnostics* diag);

// Loads every definitions file of the repository (FindDefinitionFiles). Problems in the files go
// to `diag`; the returned Status fails only when files cannot be listed or read.
Result<Definitions> LoadRepositoryDefinitions(const RepoConfig& config, Diagnostics* diag);

}  // namespace granary
