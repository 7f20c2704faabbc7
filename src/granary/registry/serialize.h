// The canonical YAML form of definitions: sorted by name, keys in a fixed order, no locations;
// printed from the neutral tree of document.h, as the other serializations are.
// It is what the registry stores, what `describe` prints, and what fingerprints are taken of, so
// two repositories that define the same things have the same text. Thread-safe.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "granary/common/result.h"
#include "granary/registry/definitions.h"

namespace granary {

// One object as (key, canonical YAML of the value) pairs, in the canonical key order; keys with
// default values (empty description, no tags...) are left out.
using ObjectFields = std::vector<std::pair<std::string, std::string>>;
ObjectFields FieldsOf(const Entity& e);
ObjectFields FieldsOf(const DataSource& s);
ObjectFields FieldsOf(const FeatureView& v);
ObjectFields FieldsOf(const FeatureService& s);

// One object as a YAML mapping ("name: ...\njoin_keys: ...").
std::string ObjectToYaml(const ObjectFields& fields);

// The whole definitions document (without the project), sorted by name.
std::string DefinitionsToYaml(Definitions defs);

// Parses a document written by DefinitionsToYaml; `origin` names it in errors.
Result<Definitions> DefinitionsFromYaml(const std::string& text, const std::string& origin);

// A stable fingerprint of a project's definitions (16 hex digits).
std::string DefinitionsFingerprint(const Definitions& defs);

}  // namespace granary
