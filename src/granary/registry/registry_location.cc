#include "granary/registry/registry_location.h"

#include <fmt/format.h>

#include <cctype>
#include <map>

namespace granary {
namespace {

bool IsSchemaName(std::string_view s) {
  if (s.empty() || s.size() > 63) return false;
  if (!(std::islower(static_cast<unsigned char>(s[0])) || s[0] == '_')) return false;
  for (char c : s) {
    if (!(std::islower(static_cast<unsigned char>(c)) ||
          std::isdigit(static_cast<unsigned char>(c)) || c == '_')) {
      return false;
    }
  }
  return true;
}

Result<std::string> PercentDecode(std::string_view s, std::string_view what) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out += s[i];
      continue;
    }
    if (i + 2 >= s.size() || !std::isxdigit(static_cast<unsigned char>(s[i + 1])) ||
        !std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
      return Status::InvalidArgument(
          fmt::format("registry: bad %-escape in the {}; write %25 for a literal '%'", what));
    }
    out += static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16));
    i += 2;
  }
  return out;
}

// A value of a key=value libpq connection string, quoted.
std::string Quote(std::string_view v) {
  std::string out = "'";
  for (char c : v) {
    if (c == '\'' || c == '\\') out += '\\';
    out += c;
  }
  return out + "'";
}

}  // namespace

RegistryLocation RegistryLocation::Sqlite(std::filesystem::path file) {
  RegistryLocation loc;
  loc.kind = Kind::kSqlite;
  loc.path = std::move(file);
  return loc;
}

std::string RegistryLocation::Describe() const {
  if (kind == Kind::kSqlite) return path.string();
  return fmt::format("{}?schema={}", display, schema);
}

Result<RegistryLocation> PostgresLocation(const std::map<std::string, std::string>& fields,
                                          const std::filesystem::path& root) {
  RegistryLocation loc;
  loc.kind = RegistryLocation::Kind::kPostgresql;
  loc.path = (root / "data" / "registry-pg").lexically_normal();
  std::string conninfo;
  bool has_timeout = false;
  for (const auto& [key, value] : fields) {
    if (key == "schema") {
      if (!IsSchemaName(value)) {
        return Status::InvalidArgument(fmt::format(
            "registry: schema '{}' is not a plain PostgreSQL name; use lower-case letters, "
            "digits and '_' (e.g. schema=granary)",
            value));
      }
      loc.schema = value;
      continue;
    }
    if (key == "connect_timeout") has_timeout = true;
    if (!conninfo.empty()) conninfo += ' ';
    conninfo += key + "=" + Quote(value);
  }
  // A registry host that does not answer must not hang a command or a server's reload: give up
  // connecting after 5 s, and notice a peer gone silent mid-connection (no RST: a host down, a
  // network cut) within about 15 s rather than the kernel's hours.
  if (!has_timeout) conninfo += std::string(conninfo.empty() ? "" : " ") + "connect_timeout=5";
  for (const auto& [key, value] : {std::pair<const char*, const char*>{"keepalives_idle", "5"},
                                   {"keepalives_interval", "2"},
                                   {"keepalives_count", "3"},
                                   {"tcp_user_timeout", "15000"}}) {
    if (fields.count(key) == 0) conninfo += fmt::format(" {}={}", key, value);
  }
  auto get = [&](const char* key, const char* fallback) {
    auto it = fields.find(key);
    return it == fields.end() || it->second.empty() ? std::string(fallback) : it->second;
  };
  const std::string user = get("user", "");
  loc.display = fmt::format("postgresql://{}{}:{}/{}", user.empty() ? "" : user + "@",
                            get("host", "localhost"), get("port", "5432"), get("dbname", ""));
  loc.conninfo = std::move(conninfo);
  return loc;
}

Result<RegistryLocation> ParseRegistryLocation(const std::string& text,
                                               const std::filesystem::path& root) {
  const size_t scheme_end = text.find("://");
  if (scheme_end == std::string::npos) {
    if (text.empty()) {
      return Status::InvalidArgument(
          fmt::format("registry: empty; write {}", kSupportedRegistries));
    }
    std::filesystem::path p(text);
    return RegistryLocation::Sqlite(p.is_absolute() ? p : (root / p).lexically_normal());
  }
  std::string scheme = text.substr(0, scheme_end);
  for (char& c : scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  const std::string rest = text.substr(scheme_end + 3);
  if (scheme == "sqlite") {
    if (rest.empty() || rest[0] != '/') {
      return Status::InvalidArgument(fmt::format(
          "registry: '{}': a sqlite URL needs an absolute path (sqlite:///abs/registry.db); "
          "write a relative path without the scheme",
          text));
    }
    return RegistryLocation::Sqlite(std::filesystem::path(rest).lexically_normal());
  }
  if (scheme != "postgresql" && scheme != "postgres") {
    return Status::InvalidArgument(fmt::format(
        "registry: scheme '{}://' is not supported; write {}", scheme, kSupportedRegistries));
  }
  // postgresql://[user[:password]@][host][:port][/dbname][?key=value&...]. The user part ends at
  // the last '@', so a password substituted from ${VAR} may hold '@' or ':'.
  std::map<std::string, std::string> fields;
  std::string_view r(rest);
  std::string_view query;
  std::string_view authority_and_path = r;
  const size_t at = r.rfind('@');
  const size_t q = r.find('?', at == std::string_view::npos ? 0 : at);
  if (q != std::string_view::npos) {
    query = r.substr(q + 1);
    authority_and_path = r.substr(0, q);
  }
  std::string_view hostpart = authority_and_path;
  if (at != std::string_view::npos && at < authority_and_path.size()) {
    std::string_view userinfo = authority_and_path.substr(0, at);
    hostpart = authority_and_path.substr(at + 1);
    const size_t colon = userinfo.find(':');
    GRANARY_ASSIGN_OR_RAISE(fields["user"], PercentDecode(userinfo.substr(0, colon), "user"));
    if (colon != std::string_view::npos) {
      GRANARY_ASSIGN_OR_RAISE(fields["password"],
                              PercentDecode(userinfo.substr(colon + 1), "password"));
    }
  }
  const size_t slash = hostpart.find('/');
  std::string_view hostport = hostpart.substr(0, slash);
  if (slash != std::string_view::npos) {
    GRANARY_ASSIGN_OR_RAISE(fields["dbname"],
                            PercentDecode(hostpart.substr(slash + 1), "database name"));
  }
  if (!hostport.empty()) {
    // An IPv6 address is bracketed ([::1]:5432); its colons are not the port's.
    const size_t bracket = hostport[0] == '[' ? hostport.find(']') : std::string_view::npos;
    const size_t colon = hostport.rfind(':');
    if (hostport[0] == '[' && bracket == std::string_view::npos) {
      return Status::InvalidArgument(
          fmt::format("registry: '[' without ']' in the host of {}", text.substr(0, scheme_end)));
    }
    if (colon != std::string_view::npos && (bracket == std::string_view::npos || colon > bracket)) {
      fields["host"] =
          std::string(bracket == std::string_view::npos ? hostport.substr(0, colon)
                                                        : hostport.substr(1, bracket - 1));
      std::string port(hostport.substr(colon + 1));
      if (port.empty() || port.find_first_not_of("0123456789") != std::string::npos) {
        return Status::InvalidArgument(
            fmt::format("registry: port '{}' in {} is not a number", port,
                        text.substr(0, scheme_end + 3) + "...@" + std::string(hostport)));
      }
      fields["port"] = port;
    } else {
      fields["host"] = std::string(
          bracket == std::string_view::npos ? hostport : hostport.substr(1, bracket - 1));
    }
  }
  while (!query.empty()) {
    const size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (pair.empty()) continue;
    const size_t eq = pair.find('=');
    if (eq == std::string_view::npos) {
      return Status::InvalidArgument(fmt::format(
          "registry: parameter '{}' has no value; write key=value (e.g. ?schema=granary)", pair));
    }
    GRANARY_ASSIGN_OR_RAISE(std::string key, PercentDecode(pair.substr(0, eq), "parameter"));
    GRANARY_ASSIGN_OR_RAISE(fields[key], PercentDecode(pair.substr(eq + 1), "parameter"));
  }
  return PostgresLocation(fields, root);
}

}  // namespace granary
