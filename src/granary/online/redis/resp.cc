#include "granary/online/redis/resp.h"

#include <charconv>

namespace granary::redis {
namespace {

// Nesting deeper than this is refused (no Redis reply we read comes close).
constexpr int kMaxDepth = 16;
// Elements (map entries) of one aggregate, at most.
constexpr int64_t kMaxElements = int64_t{1} << 28;

// Reads a "\r\n"-terminated line starting at `pos`; false when incomplete.
bool ReadLine(std::string_view data, size_t pos, std::string_view* line, size_t* next) {
  size_t end = data.find("\r\n", pos);
  if (end == std::string_view::npos) return false;
  *line = data.substr(pos, end - pos);
  *next = end + 2;
  return true;
}

bool ToInt(std::string_view s, int64_t* v) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *v);
  return ec == std::errc() && p == s.data() + s.size();
}

// Returns bytes used, 0 incomplete, -1 error.
int64_t Parse(std::string_view data, size_t pos, Reply* out, std::string* error, int depth) {
  if (depth > kMaxDepth) {
    *error = "reply nested too deeply";
    return -1;
  }
  if (pos >= data.size()) return 0;
  const char kind = data[pos];
  std::string_view line;
  size_t next = 0;
  if (!ReadLine(data, pos + 1, &line, &next)) return 0;
  out->elements.clear();
  out->str = {};
  out->integer = 0;
  switch (kind) {
    case '+':
      out->type = ReplyType::kStatus;
      out->str = line;
      return static_cast<int64_t>(next - pos);
    case '-':
      out->type = ReplyType::kError;
      out->str = line;
      return static_cast<int64_t>(next - pos);
    case ':':
      out->type = ReplyType::kInteger;
      if (!ToInt(line, &out->integer)) {
        *error = "bad integer reply";
        return -1;
      }
      return static_cast<int64_t>(next - pos);
    case ',':
      out->type = ReplyType::kDouble;
      out->str = line;
      return static_cast<int64_t>(next - pos);
    case '(':
      out->type = ReplyType::kBigNumber;
      out->str = line;
      return static_cast<int64_t>(next - pos);
    case '#':
      out->type = ReplyType::kBool;
      out->integer = line == "t" ? 1 : 0;
      return static_cast<int64_t>(next - pos);
    case '_':
      out->type = ReplyType::kNil;
      return static_cast<int64_t>(next - pos);
    case '$':
    case '=':
    case '!': {
      int64_t len = 0;
      if (!ToInt(line, &len) || len < -1) {
        *error = "bad bulk length";
        return -1;
      }
      if (len == -1) {
        out->type = ReplyType::kNil;
        return static_cast<int64_t>(next - pos);
      }
      if (data.size() - next < static_cast<size_t>(len) + 2) return 0;
      out->type = kind == '!' ? ReplyType::kError : ReplyType::kString;
      out->str = data.substr(next, len);
      if (kind == '=' && out->str.size() >= 4) out->str.remove_prefix(4);  // "txt:"
      if (data[next + len] != '\r' || data[next + len + 1] != '\n') {
        *error = "bulk string without CRLF";
        return -1;
      }
      return static_cast<int64_t>(next + len + 2 - pos);
    }
    case '*':
    case '~':
    case '>':
    case '%': {
      int64_t count = 0;
      if (!ToInt(line, &count) || count < -1) {
        *error = "bad aggregate length";
        return -1;
      }
      if (count == -1) {
        out->type = ReplyType::kNil;
        return static_cast<int64_t>(next - pos);
      }
      // No reply Granary reads comes near this; checked before doubling a map's count, which
      // could overflow (seen while writing the resp fuzzer: "%9223372036854775807").
      if (count > kMaxElements) {
        *error = "aggregate too large";
        return -1;
      }
      if (kind == '%') count *= 2;
      // Each element takes at least 3 bytes: do not reserve for a count the data cannot hold.
      if (static_cast<size_t>(count) <= (data.size() - next) / 3 + 1) {
        out->elements.reserve(count);
      }
      out->type = ReplyType::kArray;
      size_t at = next;
      for (int64_t i = 0; i < count; ++i) {
        Reply element;
        int64_t used = Parse(data, at, &element, error, depth + 1);
        if (used <= 0) return used;
        out->elements.push_back(std::move(element));
        at += used;
      }
      return static_cast<int64_t>(at - pos);
    }
    default:
      *error = std::string("unknown reply type byte '") + kind + "'";
      return -1;
  }
}

}  // namespace

std::string_view Reply::ErrorCode() const {
  if (type != ReplyType::kError) return {};
  size_t space = str.find(' ');
  return space == std::string_view::npos ? str : str.substr(0, space);
}

OwnedReply OwnedReply::From(const Reply& r) {
  OwnedReply o;
  o.type = r.type;
  o.str = std::string(r.str);
  o.integer = r.integer;
  for (const Reply& e : r.elements) o.elements.push_back(From(e));
  return o;
}

int64_t ParseReply(std::string_view data, Reply* out, std::string* error) {
  return Parse(data, 0, out, error, 0);
}

CommandWriter& CommandWriter::Begin(size_t num_args) {
  char buf[24];
  buf[0] = '*';
  auto [p, ec] = std::to_chars(buf + 1, buf + sizeof(buf) - 2, num_args);
  *p++ = '\r';
  *p++ = '\n';
  out_->append(buf, p - buf);
  return *this;
}

CommandWriter& CommandWriter::Arg(std::string_view arg) {
  char buf[24];
  buf[0] = '$';
  auto [p, ec] = std::to_chars(buf + 1, buf + sizeof(buf) - 2, arg.size());
  *p++ = '\r';
  *p++ = '\n';
  out_->append(buf, p - buf);
  out_->append(arg);
  out_->append("\r\n", 2);
  return *this;
}

CommandWriter& CommandWriter::Arg(int64_t arg) {
  char digits[24];
  auto [p, ec] = std::to_chars(digits, digits + sizeof(digits), arg);
  return Arg(std::string_view(digits, p - digits));
}

std::string EncodeCommand(const std::vector<std::string_view>& args) {
  std::string out;
  CommandWriter w(&out);
  w.Begin(args.size());
  for (std::string_view a : args) w.Arg(a);
  return out;
}

}  // namespace granary::redis
