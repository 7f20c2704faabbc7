// Boost.JSON is compiled here, header-only, rather than linked from Debian's libboost_json: one
// package less, and the parser gets the same compiler flags as the code around it (ASan, UBSan
// and the fuzzers' coverage instrumentation see inside it). No other file may include src.hpp.
#include <boost/json/src.hpp>
// (the line above must stay first: it defines the library for the whole program)

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <new>

#include "granary/common/json.h"

namespace granary {
namespace {

namespace bj = boost::json;

// Builds the DOM from basic_parser's events on Boost's value_stack (which relocates finished
// values into arrays and objects without moving them one by one). Numbers are converted from
// their text; the keys of each open object are kept aside to find a duplicate, which
// value_stack would silently drop.
class DomBuilder {
 public:
  static constexpr size_t max_array_size = static_cast<size_t>(-1);
  static constexpr size_t max_object_size = static_cast<size_t>(-1);
  static constexpr size_t max_string_size = static_cast<size_t>(-1);
  static constexpr size_t max_key_size = static_cast<size_t>(-1);

  DomBuilder() { stack_.reset(); }

  bool on_document_begin(bj::error_code&) { return true; }
  bool on_document_end(bj::error_code&) { return true; }
  bool on_array_begin(bj::error_code&) { return true; }
  bool on_array_end(size_t n, bj::error_code&) {
    stack_.push_array(n);
    return true;
  }
  bool on_object_begin(bj::error_code&) { return true; }
  bool on_object_end(size_t n, bj::error_code& ec) {
    const size_t first = keys_.size() - n;
    if (const std::string* dup = FindDuplicate(first); dup != nullptr) {
      std::string key = *dup;
      if (key.size() > 60) key = key.substr(0, 57) + "...";
      error_ = fmt::format("the key \"{}\" appears twice in the object that ends here", key);
      ec = bj::error::syntax;
      return false;
    }
    keys_.resize(first);
    stack_.push_object(n);
    return true;
  }
  bool on_string_part(bj::string_view s, size_t, bj::error_code&) {
    stack_.push_chars(s);
    return true;
  }
  bool on_string(bj::string_view s, size_t, bj::error_code&) {
    stack_.push_string(s);
    return true;
  }
  bool on_key_part(bj::string_view s, size_t, bj::error_code&) {
    key_.append(s.data(), s.size());
    stack_.push_chars(s);
    return true;
  }
  bool on_key(bj::string_view s, size_t, bj::error_code&) {
    key_.append(s.data(), s.size());
    keys_.push_back(std::move(key_));
    key_.clear();
    stack_.push_key(s);
    return true;
  }
  bool on_number_part(bj::string_view s, bj::error_code&) {
    number_.append(s.data(), s.size());
    return true;
  }
  bool on_int64(int64_t v, bj::string_view, bj::error_code&) {
    number_.clear();
    if (substitute_) {
      // The "0" fed in place of NaN or an infinity (see ParseJson).
      substitute_ = false;
      stack_.push_double(substitute_value_);
      return true;
    }
    stack_.push_int64(v);
    return true;
  }
  bool on_uint64(uint64_t v, bj::string_view, bj::error_code&) {
    number_.clear();
    stack_.push_uint64(v);
    return true;
  }
  bool on_double(double, bj::string_view s, bj::error_code& ec) {
    const char* first = s.data();
    const char* last = s.data() + s.size();
    if (!number_.empty()) {  // the number came in pieces
      number_.append(s.data(), s.size());
      first = number_.data();
      last = number_.data() + number_.size();
    }
    double d = 0;
    auto [end, err] = std::from_chars(first, last, d);
    if (err == std::errc::result_out_of_range) {
      // from_chars leaves `d` alone out of range; strtod tells underflow (a correctly rounded
      // zero) from overflow (HUGE_VAL).
      const std::string text(first, last);
      d = std::strtod(text.c_str(), nullptr);
      if (std::isinf(d)) {
        error_ = fmt::format("the number {} is too large for a double",
                             text.size() > 40 ? text.substr(0, 37) + "..." : text);
        ec = bj::error::exponent_overflow;
        return false;
      }
    } else if (err != std::errc() || end != last) {
      error_ = "a number Granary cannot read";  // Boost.JSON accepted it: not expected
      ec = bj::error::syntax;
      return false;
    }
    number_.clear();
    stack_.push_double(d);
    return true;
  }
  bool on_bool(bool v, bj::error_code&) {
    stack_.push_bool(v);
    return true;
  }
  bool on_null(bj::error_code&) {
    stack_.push_null();
    return true;
  }
  bool on_comment_part(bj::string_view, bj::error_code&) { return true; }
  bool on_comment(bj::string_view, bj::error_code&) { return true; }

  void SubstituteNextNumber(double v) {
    substitute_ = true;
    substitute_value_ = v;
  }
  const std::string& error() const { return error_; }
  bj::value Release() { return stack_.release(); }

 private:
  // A key of the object whose keys start at keys_[first] that appears twice, or nullptr.
  const std::string* FindDuplicate(size_t first) const {
    const size_t n = keys_.size() - first;
    if (n < 2) return nullptr;
    if (n <= 16) {
      for (size_t i = first + 1; i < keys_.size(); ++i) {
        for (size_t j = first; j < i; ++j) {
          if (keys_[i] == keys_[j]) return &keys_[i];
        }
      }
      return nullptr;
    }
    std::vector<const std::string*> sorted;
    sorted.reserve(n);
    for (size_t i = first; i < keys_.size(); ++i) sorted.push_back(&keys_[i]);
    std::sort(sorted.begin(), sorted.end(),
              [](const std::string* a, const std::string* b) { return *a < *b; });
    for (size_t i = 1; i < sorted.size(); ++i) {
      if (*sorted[i] == *sorted[i - 1]) return sorted[i];
    }
    return nullptr;
  }

  bj::value_stack stack_;
  std::vector<std::string> keys_;  // the keys of every open object, outermost first
  std::string key_;                // the key being read, when it comes in pieces
  std::string number_;             // the number being read, when it comes in pieces
  bool substitute_ = false;
  double substitute_value_ = 0;
  std::string error_;  // set when a handler fails
};

// NaN, Infinity or -Infinity at `text[i]` standing alone as a value: after a value start ('[',
// ',', ':' or the beginning, whitespace aside) and before a delimiter. Returns its length, or 0.
size_t NonFiniteTokenAt(std::string_view text, size_t i, double* value) {
  static constexpr struct {
    std::string_view token;
    double value;
  } kTokens[] = {{"NaN", std::numeric_limits<double>::quiet_NaN()},
                 {"Infinity", std::numeric_limits<double>::infinity()},
                 {"-Infinity", -std::numeric_limits<double>::infinity()}};
  for (const auto& t : kTokens) {
    if (text.substr(i, t.token.size()) != t.token) continue;
    size_t before = i;
    while (before > 0 && (text[before - 1] == ' ' || text[before - 1] == '\t' ||
                          text[before - 1] == '\n' || text[before - 1] == '\r')) {
      --before;
    }
    if (before > 0 && text[before - 1] != '[' && text[before - 1] != ',' &&
        text[before - 1] != ':') {
      return 0;
    }
    const size_t after = i + t.token.size();
    if (after < text.size() && text[after] != ',' && text[after] != ']' && text[after] != '}' &&
        text[after] != ' ' && text[after] != '\t' && text[after] != '\n' && text[after] != '\r') {
      return 0;
    }
    *value = t.value;
    return t.token.size();
  }
  return 0;
}

std::string DescribeError(std::string_view text, size_t offset, const bj::error_code& ec,
                          const std::string& handler_error, const JsonParseOptions& options) {
  if (!handler_error.empty()) return handler_error;
  if (ec == bj::error::too_deep) {
    return fmt::format(
        "arrays and objects are nested more than {} deep; Granary reads at most {} levels",
        options.max_depth, options.max_depth);
  }
  if (ec == bj::error::extra_data) return "text after the end of the JSON value";
  if (ec == bj::error::incomplete || offset >= text.size()) return "the text ends too early";
  if (ec != bj::error::syntax) return ec.message();
  const auto c = static_cast<unsigned char>(text[offset]);
  const std::string_view rest = text.substr(offset);
  if (rest.starts_with("NaN") || rest.starts_with("Inf") || rest.starts_with("-Inf") ||
      rest.starts_with("-NaN")) {
    return options.allow_non_finite
               ? "not JSON: NaN, Infinity and -Infinity are read only as whole values"
               : "NaN and Infinity are not JSON; send null or a finite number";
  }
  if (c >= 0x80) return fmt::format("byte 0x{:02x} is not valid UTF-8", c);
  if (c < 0x20) {
    return fmt::format("control character 0x{:02x} (escape it in a string, as \\n or \\u00XX)", c);
  }
  return fmt::format("unexpected '{}'", static_cast<char>(c));
}

}  // namespace

Result<bj::value> ParseJson(std::string_view text, const JsonParseOptions& options) {
  bj::parse_options po;
  po.max_depth = options.max_depth;
  bj::basic_parser<DomBuilder> parser(po);
  bj::error_code ec;
  size_t pos = 0;     // bytes of `text` given to the parser
  size_t offset = 0;  // where an error is
  auto fail = [&]() -> Status {
    return Status::InvalidArgument(
        fmt::format("{}: {}", JsonLineAndColumn(text, offset),
                    DescribeError(text, offset, ec, parser.handler().error(), options)));
  };
  try {
    if (options.allow_non_finite) {
      // Boost 1.81 has no option for these tokens: the parser is given "0" in their place and
      // the DOM builder turns that number into the token's value. Tokens are found outside
      // strings only; the parser checks all the rest.
      bool in_string = false;
      for (size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        if (in_string) {
          if (c == '\\') {
            ++i;
          } else if (c == '"') {
            in_string = false;
          }
          continue;
        }
        if (c == '"') {
          in_string = true;
          continue;
        }
        if (c != 'N' && c != 'I' && c != '-') continue;
        double value = 0;
        const size_t length = NonFiniteTokenAt(text, i, &value);
        if (length == 0) continue;
        size_t n = parser.write_some(true, text.data() + pos, i - pos, ec);
        if (ec) {
          offset = pos + n;
          return fail();
        }
        parser.handler().SubstituteNextNumber(value);
        parser.write_some(true, "0", 1, ec);
        if (ec) {
          offset = i;
          return fail();
        }
        pos = i + length;
        i = pos - 1;
      }
    }
    size_t n = parser.write_some(false, text.data() + pos, text.size() - pos, ec);
    if (!ec && pos + n < text.size()) ec = bj::error::extra_data;  // it stops after one value
    if (ec) {
      offset = pos + n;
      return fail();
    }
  } catch (const std::bad_alloc&) {
    return Status::Unavailable(fmt::format("out of memory reading {} bytes of JSON", text.size()));
  } catch (const std::exception& e) {
    return Status::InvalidArgument(fmt::format("JSON: {}", e.what()));
  }
  return parser.handler().Release();
}

std::string JsonLineAndColumn(std::string_view text, size_t offset) {
  size_t line = 1, column = 1;
  for (size_t i = 0; i < offset && i < text.size(); ++i) {
    if (text[i] == '\n') {
      ++line;
      column = 1;
    } else {
      ++column;
    }
  }
  return fmt::format("line {}, column {}", line, column);
}

const bj::value* JsonMember(const bj::value& v, std::string_view name) {
  const bj::object* object = v.if_object();
  if (object == nullptr) return nullptr;
  return object->if_contains(bj::string_view(name.data(), name.size()));
}

double JsonNumberAsDouble(const bj::value& v) {
  switch (v.kind()) {
    case bj::kind::int64:
      return static_cast<double>(v.get_int64());
    case bj::kind::uint64:
      return static_cast<double>(v.get_uint64());
    case bj::kind::double_:
      return v.get_double();
    default:
      return 0;
  }
}

const char* JsonKindName(const bj::value& v) {
  switch (v.kind()) {
    case bj::kind::null:
      return "null";
    case bj::kind::bool_:
      return "a boolean";
    case bj::kind::int64:
    case bj::kind::uint64:
    case bj::kind::double_:
      return "a number";
    case bj::kind::string:
      return "a string";
    case bj::kind::array:
      return "an array";
    case bj::kind::object:
      return "an object";
  }
  return "a value";
}

// ------------------------------------------------------------------------------ JsonWriter

void JsonWriter::Newline() {
  out_.push_back('\n');
  out_.append(levels_.size() * static_cast<size_t>(indent_), ' ');
}

void JsonWriter::BeforeValue() {
  if (after_key_) {
    after_key_ = false;
    return;
  }
  if (levels_.empty()) return;
  Level& level = levels_.back();
  if (level.count++ > 0) out_.push_back(',');
  if (indent_ > 0) Newline();
}

void JsonWriter::StartObject() {
  BeforeValue();
  out_.push_back('{');
  levels_.push_back({true});
}

void JsonWriter::EndObject() {
  const bool empty = levels_.back().count == 0;
  levels_.pop_back();
  if (indent_ > 0 && !empty) Newline();
  out_.push_back('}');
}

void JsonWriter::StartArray() {
  BeforeValue();
  out_.push_back('[');
  levels_.push_back({false});
}

void JsonWriter::EndArray() {
  const bool empty = levels_.back().count == 0;
  levels_.pop_back();
  if (indent_ > 0 && !empty) Newline();
  out_.push_back(']');
}

void JsonWriter::Key(std::string_view key) {
  BeforeValue();
  AppendEscaped(key);
  out_.append(indent_ > 0 ? ": " : ":");
  after_key_ = true;
}

void JsonWriter::String(std::string_view s) {
  BeforeValue();
  AppendEscaped(s);
}

void JsonWriter::Int64(int64_t v) {
  BeforeValue();
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  out_.append(buf, end);
}

void JsonWriter::Uint64(uint64_t v) {
  BeforeValue();
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  out_.append(buf, end);
}

void JsonWriter::Double(double v) {
  BeforeValue();
  if (!std::isfinite(v)) {
    out_.append("null");
    return;
  }
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  const std::string_view text(buf, static_cast<size_t>(end - buf));
  out_.append(text);
  if (text.find_first_of(".e") == std::string_view::npos) out_.append(".0");
}

void JsonWriter::Bool(bool v) {
  BeforeValue();
  out_.append(v ? "true" : "false");
}

void JsonWriter::Null() {
  BeforeValue();
  out_.append("null");
}

void JsonWriter::RawValue(std::string_view json) {
  BeforeValue();
  out_.append(json);
}

void JsonWriter::Value(const bj::value& v) {
  switch (v.kind()) {
    case bj::kind::null:
      Null();
      return;
    case bj::kind::bool_:
      Bool(v.get_bool());
      return;
    case bj::kind::int64:
      Int64(v.get_int64());
      return;
    case bj::kind::uint64:
      Uint64(v.get_uint64());
      return;
    case bj::kind::double_:
      Double(v.get_double());
      return;
    case bj::kind::string:
      String(JsonStringView(v.get_string()));
      return;
    case bj::kind::array:
      StartArray();
      for (const bj::value& e : v.get_array()) Value(e);
      EndArray();
      return;
    case bj::kind::object:
      StartObject();
      for (const auto& member : v.get_object()) {
        Key(std::string_view(member.key().data(), member.key().size()));
        Value(member.value());
      }
      EndObject();
      return;
  }
}

void JsonWriter::AppendEscaped(std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out_.push_back('"');
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"':
        out_.append("\\\"");
        break;
      case '\\':
        out_.append("\\\\");
        break;
      case '\n':
        out_.append("\\n");
        break;
      case '\r':
        out_.append("\\r");
        break;
      case '\t':
        out_.append("\\t");
        break;
      case '\b':
        out_.append("\\b");
        break;
      case '\f':
        out_.append("\\f");
        break;
      default:
        if (c < 0x20) {
          const char esc[6] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 15]};
          out_.append(esc, 6);
        } else {
          out_.push_back(ch);
        }
    }
  }
  out_.push_back('"');
}

}  // namespace granary
