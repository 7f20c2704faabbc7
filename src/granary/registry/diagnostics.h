// Diagnostics: errors and warnings gathered while loading and validating a repository, so a user
// sees every problem at once instead of one per run. Not thread-safe.
#pragma once

#include <string>
#include <vector>

#include "granary/common/status.h"
#include "granary/registry/definitions.h"

namespace granary {

struct Diagnostic {
  enum class Severity { kError, kWarning };
  Severity severity;
  SourceLocation where;
  std::string message;  // names the object and field, and says how to fix

  // "defs/x.yaml:14: feature view 'v': ..." (the location is left out when unknown).
  std::string ToString() const;
};

class Diagnostics {
 public:
  void Error(const SourceLocation& where, std::string message);
  void Warning(const SourceLocation& where, std::string message);

  bool has_errors() const { return error_count_ > 0; }
  int error_count() const { return error_count_; }
  const std::vector<Diagnostic>& items() const { return items_; }
  std::vector<std::string> Warnings() const;

  // OK when there are no errors, else InvalidArgument listing every error, one per line.
  Status ToStatus() const;

 private:
  std::vector<Diagnostic> items_;
  int error_count_ = 0;
};

}  // namespace granary
