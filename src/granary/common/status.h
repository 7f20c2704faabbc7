// Status: the outcome of a fallible operation, as a value (no exceptions across subsystems).
//
// An OK status holds no allocation; an error holds a code and a message that says what went wrong,
// where, and how to fix it. Codes carry meaning for callers (see StatusCode). Thread-compatible:
// distinct objects may be used from distinct threads.
#pragma once

#include <memory>
#include <string>
#include <string_view>

namespace granary {

enum class StatusCode : int {
  kOk = 0,
  kInvalidArgument,     // bad user input: definitions, requests, command-line arguments
  kNotFound,            // a named object or file does not exist
  kAlreadyExists,       // creating something that is already there
  kFailedPrecondition,  // the system is not in a state to do this (e.g. no registry yet)
  kIOError,             // the file system or a network peer failed
  kCorruption,          // stored data is unreadable or inconsistent
  kUnavailable,         // a store is down or overloaded; retrying may succeed
  kCancelled,           // stopped on request (signal, Ctrl-C)
  kNotImplemented,      // this backend cannot do it (e.g. a `query:` source on the embedded engine)
  kInternal,            // a bug in Granary
};

// Returns the lower-case name of a code, e.g. "invalid argument".
std::string_view StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message);
  Status(const Status& other);
  Status& operator=(const Status& other);
  Status(Status&&) noexcept = default;
  Status& operator=(Status&&) noexcept = default;

  static Status OK() { return Status(); }
  static Status InvalidArgument(std::string msg) {
    return Status(StatusCode::kInvalidArgument, std::move(msg));
  }
  static Status NotFound(std::string msg) { return Status(StatusCode::kNotFound, std::move(msg)); }
  static Status AlreadyExists(std::string msg) {
    return Status(StatusCode::kAlreadyExists, std::move(msg));
  }
  static Status FailedPrecondition(std::string msg) {
    return Status(StatusCode::kFailedPrecondition, std::move(msg));
  }
  static Status IOError(std::string msg) { return Status(StatusCode::kIOError, std::move(msg)); }
  static Status Corruption(std::string msg) {
    return Status(StatusCode::kCorruption, std::move(msg));
  }
  static Status Unavailable(std::string msg) {
    return Status(StatusCode::kUnavailable, std::move(msg));
  }
  static Status Cancelled(std::string msg) {
    return Status(StatusCode::kCancelled, std::move(msg));
  }
  static Status NotImplemented(std::string msg) {
    return Status(StatusCode::kNotImplemented, std::move(msg));
  }
  static Status Internal(std::string msg) { return Status(StatusCode::kInternal, std::move(msg)); }

  bool ok() const { return state_ == nullptr; }
  StatusCode code() const { return state_ ? state_->code : StatusCode::kOk; }
  // The message without the code; empty when ok().
  const std::string& message() const;
  // "OK", or "<code name>: <message>".
  std::string ToString() const;

  // Returns a copy whose message is "<context>: <message>"; OK stays OK.
  Status WithContext(std::string_view context) const;

 private:
  struct State {
    StatusCode code;
    std::string message;
  };
  std::unique_ptr<State> state_;
};

}  // namespace granary

#define GRANARY_CONCAT_INNER(a, b) a##b
#define GRANARY_CONCAT(a, b) GRANARY_CONCAT_INNER(a, b)

// Returns from the calling function when `expr` (a Status or Result) is not OK.
#define GRANARY_RETURN_NOT_OK(expr)                                         \
  do {                                                                      \
    ::granary::Status _granary_st = ::granary::internal::GetStatus((expr)); \
    if (!_granary_st.ok()) return _granary_st;                              \
  } while (false)

namespace granary::internal {
inline Status GetStatus(Status s) { return s; }
}  // namespace granary::internal
