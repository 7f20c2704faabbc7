// Parsing JSON from outside the process (HTTP request bodies, Delta Lake logs, run history) into
// a Boost.JSON DOM, so that no input can crash or mislead the reader:
//  - depth is limited (JsonParseOptions::max_depth, 64 by default): Boost.JSON's parser descends
//    recursively but checks the depth before each level, so the C stack stays bounded;
//  - numbers are correctly rounded: Boost 1.81's own conversion may be one ULP off (its
//    `number_precision::precise` came in 1.83), so the number text goes through std::from_chars
//    (correctly rounded in libstdc++ 12). A number too large for a double is an error; one too
//    small rounds to zero, as IEEE 754 does;
//  - strings must be valid UTF-8, and keys of one object unique (a duplicate is an error rather
//    than a silent choice of one value);
//  - NaN, Infinity and -Infinity are not JSON and are rejected, unless allow_non_finite accepts
//    them as whole values, as Python's json module writes them.
// Errors are InvalidArgument with "line L, column C: what" (1-based, columns in bytes), for the
// caller to prefix with what it was reading.
//
// JsonWriter is the matching writer: compact or indented JSON into a std::string.
//
// Stateless functions; thread-safe. A JsonWriter is used by one thread.
#pragma once

#include <boost/json/value.hpp>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "granary/common/result.h"

namespace granary {

struct JsonParseOptions {
  // Arrays and objects nested deeper than this are an error (the top value is depth 1).
  size_t max_depth = 64;
  // Accept NaN, Infinity and -Infinity where a value may stand (not glued to other text).
  bool allow_non_finite = false;
};

Result<boost::json::value> ParseJson(std::string_view text, const JsonParseOptions& options = {});

// "line 3, column 14": where byte `offset` of `text` is (1-based).
std::string JsonLineAndColumn(std::string_view text, size_t offset);

// Access helpers for DOM values, all tolerant of a value of another kind.
inline std::string_view JsonStringView(const boost::json::string& s) {
  return std::string_view(s.data(), s.size());
}
// The member `name` of an object, or nullptr when `v` is not an object or has no such member.
const boost::json::value* JsonMember(const boost::json::value& v, std::string_view name);
// A number of any kind (int64, uint64, double) as a double; 0 when `v` is not a number.
double JsonNumberAsDouble(const boost::json::value& v);
// "a string", "an object", ...: for messages.
const char* JsonKindName(const boost::json::value& v);

// Writes JSON into a string. Calls must form one valid value (as a SAX writer: StartObject,
// Key, value, ..., EndObject); strings are escaped, not validated. Doubles are written in their
// shortest round-trip form, always with a '.' or an exponent; NaN and infinities, which JSON
// cannot hold, are written as null. Indented output puts each member and element on its own line.
class JsonWriter {
 public:
  explicit JsonWriter(int indent = 0) : indent_(indent) {}

  void StartObject();
  void EndObject();
  void StartArray();
  void EndArray();
  void Key(std::string_view key);
  void Key(const char* key, size_t n) { Key(std::string_view(key, n)); }
  void String(std::string_view s);
  void String(const char* s, size_t n) { String(std::string_view(s, n)); }
  void Int(int v) { Int64(v); }
  void Int64(int64_t v);
  void Uint64(uint64_t v);
  void Double(double v);
  void Bool(bool v);
  void Null();
  // Text that is already one JSON value, written as it is.
  void RawValue(std::string_view json);
  // A parsed value, written compactly.
  void Value(const boost::json::value& v);

  const std::string& str() const { return out_; }
  std::string Release() { return std::move(out_); }

 private:
  void BeforeValue();
  void Newline();
  void AppendEscaped(std::string_view s);

  struct Level {
    bool object;
    size_t count = 0;
  };
  int indent_;
  bool after_key_ = false;
  std::vector<Level> levels_;
  std::string out_;
};

}  // namespace granary
