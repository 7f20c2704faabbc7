// The definitions a fuzz target is built around (its views, sources, entities), written in the
// target as YAML: loaded once, and the process stops with the loader's errors when they do not
// load, which is a mistake in the target, not a finding.
#pragma once

#include <cstdio>
#include <cstdlib>

#include "granary/registry/definitions.h"
#include "granary/registry/loader.h"

namespace granary::fuzz {

inline Definitions FixedDefinitions(const char* yaml) {
  Definitions defs;
  Diagnostics diag;
  LoadDefinitionsText("fuzz.yaml", yaml, &defs, &diag);
  if (diag.has_errors()) {
    std::fprintf(stderr, "the fuzz target's definitions do not load: %s\n",
                 diag.ToStatus().ToString().c_str());
    std::abort();
  }
  defs.project = "fuzz";
  return defs;
}

// FixedDefinitions of the target's one YAML, loaded at the first call and kept for the process
// (every call must pass the same text).
inline const Definitions& TargetDefinitions(const char* yaml) {
  static const Definitions defs = FixedDefinitions(yaml);
  return defs;
}

}  // namespace granary::fuzz
