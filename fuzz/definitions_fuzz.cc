// Fuzzes the definitions loader and validator with arbitrary YAML text. Beyond "never crash": a
// document that loads and validates without errors must survive the registry's canonical form
// unchanged (DefinitionsToYaml then DefinitionsFromYaml gives the same fingerprint).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "granary/registry/loader.h"
#include "granary/registry/serialize.h"
#include "granary/registry/validator.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  granary::Definitions defs;
  granary::Diagnostics diag;
  granary::LoadDefinitionsText("fuzz.yaml", text, &defs, &diag);
  if (diag.has_errors()) return 0;
  granary::ValidateDefinitions(defs, nullptr, &diag);
  if (diag.has_errors()) return 0;
  defs.project = "fuzz";
  const std::string canonical = granary::DefinitionsToYaml(defs);
  auto back = granary::DefinitionsFromYaml(canonical, "canonical");
  if (!back.ok()) {
    std::fprintf(stderr, "canonical form does not load back: %s\n%s\n",
                 back.status().ToString().c_str(), canonical.c_str());
    std::abort();
  }
  back->project = "fuzz";
  if (granary::DefinitionsFingerprint(*back) != granary::DefinitionsFingerprint(defs)) {
    std::fprintf(stderr, "canonical form changed the definitions:\n%s\n", canonical.c_str());
    std::abort();
  }
  return 0;
}
