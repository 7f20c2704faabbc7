// Result<T>: either a value of type T or an error Status (as arrow::Result).
#pragma once

#include <cassert>
#include <cstdlib>
#include <iostream>
#include <utility>
#include <variant>

#include "granary/common/status.h"

namespace granary {

template <typename T>
class [[nodiscard]] Result {
 public:
  // An error; `status` must not be OK.
  Result(Status status) : data_(std::move(status)) {  // NOLINT: implicit by design
    if (std::get<Status>(data_).ok()) {
      data_ = Status::Internal("Result constructed from an OK status without a value");
    }
  }
  Result(T value) : data_(std::move(value)) {}  // NOLINT: implicit by design
  template <typename U>
  requires(std::is_convertible_v<U&&, T> && !std::is_same_v<std::decay_t<U>, T> &&
           !std::is_same_v<std::decay_t<U>, Status>) Result(U&& value)
      : data_(T(std::forward<U>(value))) {}  // NOLINT

  bool ok() const { return std::holds_alternative<T>(data_); }
  Status status() const { return ok() ? Status::OK() : std::get<Status>(data_); }

  const T& ValueOrDie() const& {
    CheckOk();
    return std::get<T>(data_);
  }
  T& ValueOrDie() & {
    CheckOk();
    return std::get<T>(data_);
  }
  T ValueOrDie() && {
    CheckOk();
    return std::move(std::get<T>(data_));
  }
  const T& operator*() const& { return ValueOrDie(); }
  T& operator*() & { return ValueOrDie(); }
  const T* operator->() const { return &ValueOrDie(); }
  T* operator->() { return &ValueOrDie(); }
  // Moves the value out; only valid when ok().
  T MoveValueUnsafe() { return std::move(std::get<T>(data_)); }

 private:
  void CheckOk() const {
    if (!ok()) {
      std::cerr << "granary: ValueOrDie on an error: " << std::get<Status>(data_).ToString()
                << std::endl;
      std::abort();
    }
  }
  std::variant<Status, T> data_;
};

namespace internal {
template <typename T>
Status GetStatus(const Result<T>& r) {
  return r.status();
}
}  // namespace internal

}  // namespace granary

#define GRANARY_ASSIGN_OR_RAISE_IMPL(tmp, lhs, rexpr) \
  auto tmp = (rexpr);                                 \
  if (!tmp.ok()) return tmp.status();                 \
  lhs = tmp.MoveValueUnsafe()

// Evaluates `rexpr` (a Result<T>); on error returns its status, else assigns the value to `lhs`
// (which may be a declaration: GRANARY_ASSIGN_OR_RAISE(auto x, F());).
#define GRANARY_ASSIGN_OR_RAISE(lhs, rexpr) \
  GRANARY_ASSIGN_OR_RAISE_IMPL(GRANARY_CONCAT(_granary_result_, __LINE__), lhs, rexpr)
