// RESP, the Redis protocol (versions 2 and 3): encoding commands and parsing replies.
//
// Replies are parsed in place: a Reply's strings point into the caller's receive buffer and are
// valid only until that buffer changes (the connection hands each reply to its handler, which
// copies what it keeps). Parsing a bulk string or an integer allocates nothing. Stateless
// functions; thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace granary::redis {

enum class ReplyType : uint8_t {
  kString,     // $ bulk string, = verbatim string (RESP3)
  kStatus,     // + simple string
  kError,      // - simple error, ! bulk error (RESP3)
  kInteger,    // :
  kNil,        // $-1, *-1, _ (RESP3)
  kArray,      // *, and RESP3 ~ set, > push; % map as key, value, key, value...
  kDouble,     // , (RESP3; the text is in str)
  kBool,       // # (RESP3; integer is 0 or 1)
  kBigNumber,  // ( (RESP3; the digits are in str)
};

struct Reply {
  ReplyType type = ReplyType::kNil;
  std::string_view str;
  int64_t integer = 0;
  std::vector<Reply> elements;

  bool is_error() const { return type == ReplyType::kError; }
  // The error's first word: "MOVED", "ASK", "NOSCRIPT", "WRONGPASS"...; "" when not an error.
  std::string_view ErrorCode() const;
};

// A Reply whose strings it owns; for replies kept after their buffer changes.
struct OwnedReply {
  ReplyType type = ReplyType::kNil;
  std::string str;
  int64_t integer = 0;
  std::vector<OwnedReply> elements;

  static OwnedReply From(const Reply& r);
};

// Parses one reply at the start of `data`. Returns the bytes it used; 0 when `data` does not hold
// a whole reply yet; -1 on a protocol error (with `error` set).
int64_t ParseReply(std::string_view data, Reply* out, std::string* error);

// Appends commands to a buffer as RESP arrays of bulk strings:
//   CommandWriter w(&buffer);
//   w.Begin(3).Arg("SET").Arg(key).Arg(value);
class CommandWriter {
 public:
  explicit CommandWriter(std::string* out) : out_(out) {}
  CommandWriter& Begin(size_t num_args);
  CommandWriter& Arg(std::string_view arg);
  CommandWriter& Arg(int64_t arg);

 private:
  std::string* out_;
};

// One whole command from its arguments.
std::string EncodeCommand(const std::vector<std::string_view>& args);

}  // namespace granary::redis
