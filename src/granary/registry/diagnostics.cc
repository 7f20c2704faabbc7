#include "granary/registry/diagnostics.h"

#include <fmt/format.h>

namespace granary {

std::string Diagnostic::ToString() const {
  std::string where_text = where.ToString();
  return where_text.empty() ? message : where_text + ": " + message;
}

void Diagnostics::Error(const SourceLocation& where, std::string message) {
  items_.push_back({Diagnostic::Severity::kError, where, std::move(message)});
  ++error_count_;
}

void Diagnostics::Warning(const SourceLocation& where, std::string message) {
  items_.push_back({Diagnostic::Severity::kWarning, where, std::move(message)});
}

std::vector<std::string> Diagnostics::Warnings() const {
  std::vector<std::string> out;
  for (const Diagnostic& d : items_) {
    if (d.severity == Diagnostic::Severity::kWarning) out.push_back(d.ToString());
  }
  return out;
}

Status Diagnostics::ToStatus() const {
  if (error_count_ == 0) return Status::OK();
  std::string msg;
  if (error_count_ > 1) msg = fmt::format("{} errors in the definitions:", error_count_);
  for (const Diagnostic& d : items_) {
    if (d.severity != Diagnostic::Severity::kError) continue;
    if (!msg.empty()) msg += "\n  ";
    msg += d.ToString();
  }
  return Status::InvalidArgument(std::move(msg));
}

}  // namespace granary
