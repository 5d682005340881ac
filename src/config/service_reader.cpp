#include "service_reader.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <system_error>

#include "tether/util/units.hpp"

namespace tether::config::detail {
namespace {

using std::chrono::milliseconds;

// Shared connections per service per worker. Far above any useful pipelining width, and
// low enough that a typo cannot exhaust Redis's maxclients (10000) across 64 workers by
// itself.
constexpr std::uint64_t kMaxPoolSize = 1024;
// Dedicated connections per service per worker: each is a socket and a client's state.
constexpr std::uint64_t kMaxDedicated = 100000;
// Warm (idle, ready) dedicated connections per service per worker and database in use:
// sockets held open whether used or not, so bounded like the shared ones (kMaxPoolSize).
constexpr std::uint64_t kMaxDedicatedWarm = kMaxPoolSize;
// Databases a client may SELECT, i.e. pools per service per worker (each with pool.size
// connections, kept until the worker stops): the bound on how many pools SELECT can
// create. Redis's own default is 16; 1024 keeps the worst case in the tens of thousands
// of connections instead of Redis's INT_MAX.
constexpr std::uint64_t kMaxDatabases = 1024;
// A service name is a log field and a metric label: short, and no spaces or quotes.
constexpr std::size_t kMaxNameLength = 64;
// Redis refuses a multibulk count above INT_MAX ("invalid multibulk length").
constexpr std::uint64_t kMaxMultibulkLen = INT_MAX;
// resp::Limits::max_bulk_len is signed, as Redis's proto-max-bulk-len (a long long) is.
constexpr std::uint64_t kMaxBulkLen = INT64_MAX;
// Redis's PROTO_INLINE_MAX_SIZE is compiled in: a longer line the proxy let through would
// be refused upstream, and Redis closes the connection on a protocol error, which on a
// shared connection fails every client's in-flight command.
constexpr std::uint64_t kMaxInlineLen = 64 * 1024;
// Replies may always carry what Redis's default proto-max-bulk-len allows, even when the
// request limit is set lower: a small request limit must not break large GET replies.
constexpr std::int64_t kMinReplyBulkLen = 512LL * 1024 * 1024;

constexpr milliseconds kOneMs{1};
// Sentinel's own timer runs ten times a second; polling every Sentinel faster than this
// learns nothing sooner and only loads them.
constexpr milliseconds kMinPollInterval{10};
// Sentinel takes the master name as one word of `sentinel monitor <name> ...`; 128 is far
// above any real name and keeps it readable in log lines and -NOMASTER replies.
constexpr std::size_t kMaxMasterNameLength = 128;

// The two ways to name a service's master, for messages.
constexpr std::string_view kModes =
    "set upstream (a static master) or master_name and sentinels (Sentinel mode)";
// Keys that only Sentinel mode reads; without master_name they are errors, not ignored.
constexpr std::array<std::string_view, 5> kSentinelOnlyKeys = {
    "sentinels", "sentinel_username", "sentinel_password", "sentinel_password_file", "failover"};

bool valid_name(const std::string& name) {
  return !name.empty() && name.size() <= kMaxNameLength &&
         std::all_of(name.begin(), name.end(), [](unsigned char c) {
           return std::isalnum(c) || c == '_' || c == '-' || c == '.';
         });
}

// No spaces or control characters: Sentinel's config lines and its event messages
// ("+switch-master <name> <old-ip> <old-port> ...") separate fields with spaces, so such a
// name could not be read back from them. Other bytes, UTF-8 included, are Sentinel's business.
bool valid_master_name(const std::string& name) {
  return !name.empty() && name.size() <= kMaxMasterNameLength &&
         std::none_of(name.begin(), name.end(),
                      [](unsigned char c) { return c <= ' ' || c == 0x7f; });
}

// First line of `path` without its line ending; nullopt with `why` set on failure.
std::optional<std::string> read_first_line(const std::filesystem::path& path, std::string& why) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    why = "it is a directory";
    return std::nullopt;
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    why = std::error_code(errno, std::generic_category()).message();
    return std::nullopt;
  }
  std::string line;
  std::getline(in, line);
  if (in.bad()) {
    why = "read error";
    return std::nullopt;
  }
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return line;
}

// Replaces each `${NAME}` in `text` by the environment variable NAME (`$${` stands for a
// literal `${`). nullopt with `why` naming the variable (never the text, which may be a
// secret) when one is unset or empty, or a `${` is not closed by a valid name and `}`.
std::optional<std::string> expand_environment(std::string_view text, std::string& why) {
  std::string out;
  std::size_t i = 0;
  while (i < text.size()) {
    if (text.substr(i, 3) == "$${") {
      out += "${";
      i += 3;
      continue;
    }
    if (text.substr(i, 2) != "${") {
      out += text[i++];
      continue;
    }
    const auto close = text.find('}', i + 2);
    const auto name =
        close == std::string_view::npos ? std::string_view() : text.substr(i + 2, close - i - 2);
    const bool valid = !name.empty() && !std::isdigit(static_cast<unsigned char>(name[0])) &&
                       std::all_of(name.begin(), name.end(),
                                   [](unsigned char c) { return std::isalnum(c) || c == '_'; });
    if (!valid) {
      why =
          "'${' must start a ${NAME} reference to an environment variable (write $${ for "
          "a literal ${)";
      return std::nullopt;
    }
    const char* value = std::getenv(std::string(name).c_str());
    if (value == nullptr || *value == '\0') {
      why = "environment variable " + std::string(name) + " is " +
            (value == nullptr ? "not set" : "empty");
      return std::nullopt;
    }
    out += value;
    i = close + 1;
  }
  return out;
}

// Expands `${NAME}` in the value just read from `key` (see expand_environment); reports
// an error on `key` and returns false when that fails.
bool expand_key(MapReader& r, const std::string& key, std::string& value) {
  if (value.find('$') == std::string::npos) return true;
  std::string why;
  auto expanded = expand_environment(value, why);
  if (!expanded) {
    r.error(key, why);
    value.clear();
    return false;
  }
  value = std::move(*expanded);
  return true;
}

// The `<prefix>_password` and `<prefix>_password_file` pair: at most one of them, `${NAME}`
// expanded in both, the file's first line. Messages name the keys and the file, never the
// secret. Returns whether either key is present.
bool read_password(MapReader& r, std::string_view prefix, const std::string& base_dir,
                   std::string& password) {
  const std::string password_key = std::string(prefix) + "_password";
  const std::string file_key = std::string(prefix) + "_password_file";
  bool inline_password = r.has(password_key);
  bool password_file = r.has(file_key);
  if (r.read_string(password_key, password)) expand_key(r, password_key, password);
  std::string file;
  bool file_ok = r.read_string(file_key, file) && expand_key(r, file_key, file);
  if (inline_password && password_file) {
    r.error(file_key, "cannot be combined with " + password_key + " (line " +
                          std::to_string(r.line(password_key)) + "); set only one of them");
  } else if (password_file && file_ok) {
    std::filesystem::path resolved(file);
    if (resolved.is_relative() && !base_dir.empty()) resolved = base_dir / resolved;
    std::string why;
    auto secret = read_first_line(resolved, why);
    if (!secret) {
      r.error(file_key, "cannot read password file '" + resolved.string() + "': " + why);
    } else if (secret->empty()) {
      r.error(file_key, "password file '" + resolved.string() +
                            "' is empty; its first line must be the password");
    } else {
      password = std::move(*secret);
    }
  }
  return inline_password || password_file;
}

// The `<prefix>_username`, `<prefix>_password` and `<prefix>_password_file` trio, for the
// upstream (prefix "upstream") and for the Sentinels (prefix "sentinel").
void read_auth(MapReader& r, std::string_view prefix, const std::string& base_dir,
               std::string& username, std::string& password) {
  const std::string user_key = std::string(prefix) + "_username";
  r.read_string(user_key, username);
  if (!read_password(r, prefix, base_dir, password) && r.has(user_key)) {
    r.error(user_key, "needs " + std::string(prefix) + "_password or " + std::string(prefix) +
                          "_password_file (an ACL user logs in with AUTH <username> <password>)");
  }
}

// `client_password` / `client_password_file`: what clients must AUTH with. An empty
// inline value would silently turn authentication off, so it is an error.
void read_client_password(MapReader& r, const std::string& base_dir, std::string& password) {
  if (r.has("client_password")) {
    const YAML::Node& value = *r.value("client_password");
    if (value.IsScalar() && value.Scalar().empty()) {
      r.error("client_password", "must not be empty; leave the key out for no password");
      return;
    }
  }
  read_password(r, "client", base_dir, password);
}

void read_pool(MapReader& parent, PoolOptions& pool) {
  MapReader r =
      parent.child("pool", {"mode", "size", "connect_timeout", "reconnect_min", "reconnect_max",
                            "max_dedicated", "dedicated_warm", "databases"});
  std::string mode;
  if (r.has("mode") && r.read_string("mode", mode)) {
    if (mode == "shared" || mode == "session") {
      pool.mode = mode == "session" ? PoolMode::session : PoolMode::shared;
    } else {
      r.error("mode", "expected one of: shared, session, got " + describe(*r.value("mode")));
    }
  }
  std::uint64_t size = pool.size;
  r.read_count("size", 1, kMaxPoolSize, size);
  pool.size = size;
  std::uint64_t max_dedicated = pool.max_dedicated;
  const bool max_ok = r.read_count("max_dedicated", 0, kMaxDedicated, max_dedicated);
  pool.max_dedicated = max_dedicated;
  std::uint64_t warm = pool.dedicated_warm;
  if (r.read_count("dedicated_warm", 0, kMaxDedicatedWarm, warm) && max_ok &&
      r.has("dedicated_warm") && warm > max_dedicated) {
    // Only when set: the default (2) stays valid with max_dedicated 0 or 1, where the pool
    // keeps max_dedicated warm instead.
    r.error("dedicated_warm", "dedicated_warm (" + std::to_string(warm) +
                                  ") must not exceed max_dedicated (" +
                                  std::to_string(max_dedicated) + ")");
  }
  pool.dedicated_warm = warm;
  std::uint64_t databases = pool.databases;
  r.read_count("databases", 1, kMaxDatabases, databases);
  pool.databases = static_cast<std::uint32_t>(databases);
  r.read_duration("connect_timeout", kOneMs, pool.connect_timeout);
  bool ok = r.read_duration("reconnect_min", kOneMs, pool.reconnect_min);
  ok = r.read_duration("reconnect_max", kOneMs, pool.reconnect_max) && ok;
  if (ok && pool.reconnect_min > pool.reconnect_max) {
    std::string_view at = r.has("reconnect_min") ? "reconnect_min" : "reconnect_max";
    r.error(at, "reconnect_min (" + util::format_duration(pool.reconnect_min) +
                    ") must not exceed reconnect_max (" +
                    util::format_duration(pool.reconnect_max) + ")");
  }
}

void read_hold(MapReader& parent, HoldOptions& hold) {
  MapReader r = parent.child("hold", {"timeout", "max_bytes"});
  // Zero is allowed for both: it turns holding off (immediate -NOMASTER / -HOLDFULL).
  r.read_duration("timeout", milliseconds{0}, hold.timeout);
  r.read_size("max_bytes", 0, UINT64_MAX, hold.max_bytes);
}

// `master_name`, which the caller has seen present.
void read_master_name(MapReader& r, std::string& out) {
  const YAML::Node& value = *r.value("master_name");
  if (!value.IsScalar()) {
    r.read_string("master_name", out);  // reports what was found instead of a string
    return;
  }
  if (!valid_master_name(value.Scalar())) {
    r.error("master_name", "expected 1 to " + std::to_string(kMaxMasterNameLength) +
                               " characters without spaces or control characters (the name the "
                               "Sentinels monitor, "
                               "as in 'sentinel monitor <name> <ip> <port> <quorum>'), got " +
                               describe(value));
    return;
  }
  out = value.Scalar();
}

// One `sentinels` item: a TCP address. nullopt with `why` set otherwise.
std::optional<util::Endpoint> parse_sentinel(const YAML::Node& node, std::string& why) {
  if (node.IsNull()) {
    why = "empty list item; expected a Sentinel address such as 127.0.0.1:26379";
    return std::nullopt;
  }
  if (!node.IsScalar()) {
    why = "expected a Sentinel address such as 127.0.0.1:26379, got " + describe(node);
    return std::nullopt;
  }
  std::string reason;
  auto address = util::parse_endpoint(node.Scalar(), &reason);
  if (!address) {
    // parse_endpoint's generic form names unix:/path, which a Sentinel address cannot be.
    if (reason == "expected host:port or unix:/path") reason = "expected host:port or [ipv6]:port";
    std::string hint = reason.starts_with("expected") ? "" : "; use host:port or [ipv6]:port";
    why = "invalid address " + describe(node) + ": " + reason + hint;
    return std::nullopt;
  }
  if (address->kind != util::Endpoint::Kind::tcp) {
    why =
        "must be a TCP host:port (Sentinels name each other and the master by IP and port), "
        "got " +
        describe(node);
    return std::nullopt;
  }
  return address;
}

// `sentinels`: a non-empty list of distinct TCP addresses, none of them `listen` (the
// service's own address; null when it did not parse). Item errors name `sentinels[i]`.
void read_sentinels(MapReader& r, const util::Endpoint* listen, Errors& errors,
                    std::vector<util::Endpoint>& out) {
  static constexpr std::string_view kExample = "[127.0.0.1:26379, 127.0.0.1:26380]";
  if (!r.require("sentinels", "a list of Sentinel addresses such as " + std::string(kExample))) {
    return;
  }
  const YAML::Node& list = *r.value("sentinels");
  if (list.IsNull() || (list.IsSequence() && list.size() == 0)) {
    r.error("sentinels",
            "must list at least one Sentinel address, such as " + std::string(kExample));
    return;
  }
  if (!list.IsSequence()) {
    r.error("sentinels", "expected a list of Sentinel addresses such as " + std::string(kExample) +
                             ", got " + describe(list));
    return;
  }
  struct Site {
    std::string path;
    int line;
  };
  std::vector<Site> sites;  // where each address in `out` was written
  for (std::size_t i = 0; i < list.size(); ++i) {
    std::string path = r.path("sentinels") + "[" + std::to_string(i) + "]";
    // yaml-cpp places an empty item at the next token, often another key's line; the
    // `sentinels` key's line is the honest one.
    int line = list[i].IsNull() || line_of(list[i]) == 0 ? r.line("sentinels") : line_of(list[i]);
    std::string why;
    auto address = parse_sentinel(list[i], why);
    if (!address) {
      errors.add(path, line, why);
      continue;
    }
    auto same = std::find(out.begin(), out.end(), *address);
    if (same != out.end()) {
      const auto& first = sites[static_cast<std::size_t>(same - out.begin())];
      errors.add(path, line,
                 "duplicate Sentinel address " + address->to_string() + "; already listed as " +
                     first.path + " (line " + std::to_string(first.line) + ")");
    } else if (listen && *address == *listen) {
      errors.add(path, line,
                 "is the same address as listen; the proxy would ask itself for the master");
    } else {
      out.push_back(std::move(*address));
      sites.push_back(Site{path, line});
    }
  }
}

// `deny_commands`: a list (possibly empty) of command names, kept upper-case.
void read_deny_commands(MapReader& r, Errors& errors, std::vector<std::string>& out) {
  if (!r.has("deny_commands")) return;
  const YAML::Node& list = *r.value("deny_commands");
  if (list.IsNull() || (list.IsSequence() && list.size() == 0)) {
    out.clear();  // deny nothing
    return;
  }
  if (!list.IsSequence()) {
    r.error("deny_commands",
            "expected a list of command names such as [SHUTDOWN, FLUSHALL], got " + describe(list));
    return;
  }
  out.clear();
  for (std::size_t i = 0; i < list.size(); ++i) {
    const std::string path = r.path("deny_commands") + "[" + std::to_string(i) + "]";
    const int line = line_of(list[i]) == 0 ? r.line("deny_commands") : line_of(list[i]);
    const bool ok = list[i].IsScalar() && !list[i].Scalar().empty() &&
                    std::all_of(list[i].Scalar().begin(), list[i].Scalar().end(),
                                [](unsigned char c) { return c > ' ' && c < 0x7f; });
    if (!ok) {
      errors.add(path, line, "expected a command name such as FLUSHALL, got " + describe(list[i]));
      continue;
    }
    std::string name = list[i].Scalar();
    for (char& c : name)
      c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    if (std::find(out.begin(), out.end(), name) == out.end()) out.push_back(std::move(name));
  }
}

void read_failover(MapReader& parent, FailoverOptions& failover) {
  MapReader r = parent.child("failover", {"poll_interval", "hold_bound"});
  r.read_duration("poll_interval", kMinPollInterval, failover.poll_interval);
  r.read_duration("hold_bound", kOneMs, failover.hold_bound);
}

// Exactly one of `upstream` (static mode) and `master_name` (Sentinel mode, with
// `sentinels`, the sentinel_* trio and `failover`). Sentinel-only keys without master_name
// are errors: silently ignoring them would hide a half-written Sentinel setup.
void read_master(MapReader& r, const std::string& base_dir, bool listen_ok, Errors& errors,
                 ServiceConfig& svc) {
  bool is_static = r.has("upstream");
  bool is_sentinel = r.has("master_name");
  if (!is_static && !is_sentinel) {
    r.error("upstream", "required key is missing; " + std::string(kModes));
  } else if (is_static && is_sentinel) {
    r.error("master_name", "cannot be combined with upstream (line " +
                               std::to_string(r.line("upstream")) + "); " + std::string(kModes) +
                               ", not both");
  }
  if (is_static && r.read_endpoint("upstream", svc.upstream) && !is_sentinel && listen_ok &&
      svc.listen == svc.upstream) {
    r.error("upstream", "is the same address as listen; the proxy would connect to itself");
  }
  if (!is_sentinel) {
    for (auto key : kSentinelOnlyKeys) {
      if (r.has(key)) {
        r.error(key,
                "needs master_name: only Sentinel mode uses it, and without master_name "
                "the service asks no Sentinel");
      }
    }
    return;
  }
  read_master_name(r, svc.master_name);
  read_sentinels(r, listen_ok ? &svc.listen : nullptr, errors, svc.sentinels);
  read_auth(r, "sentinel", base_dir, svc.sentinel_username, svc.sentinel_password);
  read_failover(r, svc.failover);
}

void read_limits(MapReader& parent, ClientLimits& limits, resp::Limits& protocol) {
  MapReader r = parent.child(
      "limits", {"max_clients", "max_pending", "output_soft_limit", "output_hard_limit",
                 "max_request_bytes", "max_bulk_len", "max_inline_len", "max_multibulk_len"});
  std::uint64_t n = limits.max_clients;
  r.read_count("max_clients", 1, UINT64_MAX, n);
  limits.max_clients = n;
  n = limits.max_pending;
  r.read_count("max_pending", 1, UINT64_MAX, n);
  limits.max_pending = n;
  bool ok = r.read_size("output_soft_limit", 1, UINT64_MAX, limits.output_soft_limit);
  ok = r.read_size("output_hard_limit", 1, UINT64_MAX, limits.output_hard_limit) && ok;
  if (ok && limits.output_soft_limit > limits.output_hard_limit) {
    std::string_view at = r.has("output_soft_limit") ? "output_soft_limit" : "output_hard_limit";
    r.error(at, "output_soft_limit (" + util::format_size(limits.output_soft_limit) +
                    ") must not exceed output_hard_limit (" +
                    util::format_size(limits.output_hard_limit) + ")");
  }
  r.read_size("max_request_bytes", 1, UINT64_MAX, limits.max_request_bytes);
  n = static_cast<std::uint64_t>(protocol.max_bulk_len);
  r.read_size("max_bulk_len", 1, kMaxBulkLen, n);
  protocol.max_bulk_len = static_cast<std::int64_t>(n);
  protocol.max_reply_bulk_len = std::max(protocol.max_bulk_len, kMinReplyBulkLen);
  n = protocol.max_inline_len;
  r.read_size("max_inline_len", 1, kMaxInlineLen, n);
  protocol.max_inline_len = n;
  n = static_cast<std::uint64_t>(protocol.max_multibulk_len);
  r.read_count("max_multibulk_len", 1, kMaxMultibulkLen, n);
  protocol.max_multibulk_len = static_cast<std::int64_t>(n);
}

struct ServiceRead {
  ServiceConfig config;
  bool name_ok = false;
  bool listen_ok = false;
  int name_line = 0;
  int listen_line = 0;
};

ServiceRead read_service(const YAML::Node& node, const std::string& path, int line,
                         const std::string& base_dir, Errors& errors) {
  ServiceRead out;
  ServiceConfig& svc = out.config;
  MapReader r(node, path, line,
              {"name", "listen", "listen_mode", "upstream", "upstream_username",
               "upstream_password", "upstream_password_file", "master_name", "sentinels",
               "sentinel_username", "sentinel_password", "sentinel_password_file", "pool", "hold",
               "failover", "limits", "deny_commands", "client_password", "client_password_file"},
              errors);
  if (!r.is_mapping()) return out;
  if (r.require("name", "a short label such as main") && r.read_string("name", svc.name)) {
    out.name_ok = valid_name(svc.name);
    if (!out.name_ok) {
      r.error("name", "expected 1 to " + std::to_string(kMaxNameLength) +
                          " letters, digits, '_', '-' or '.' (it is a log field and a metric "
                          "label), got " +
                          describe(*r.value("name")));
    }
  }
  out.name_line = r.line("name");
  std::string_view address = "host:port, [ipv6]:port or unix:/path";
  out.listen_ok = r.require("listen", address) && r.read_endpoint("listen", svc.listen);
  out.listen_line = r.line("listen");
  r.read_file_mode("listen_mode", svc.listen_mode);
  read_master(r, base_dir, out.listen_ok, errors, svc);
  read_auth(r, "upstream", base_dir, svc.upstream_username, svc.upstream_password);
  read_client_password(r, base_dir, svc.client_password);
  read_pool(r, svc.pool);
  read_hold(r, svc.hold);
  read_limits(r, svc.limits, svc.protocol);
  read_deny_commands(r, errors, svc.deny_commands);
  return out;
}

}  // namespace

std::vector<ServiceConfig> read_services(const YAML::Node& node, int line,
                                         const std::string& base_dir, Errors& errors,
                                         std::vector<ListenSite>& listens) {
  std::vector<ServiceConfig> services;
  if (node.IsNull() || (node.IsSequence() && node.size() == 0)) {
    errors.add("services", line, "must list at least one service");
    return services;
  }
  if (!node.IsSequence()) {
    errors.add(
        "services", line,
        "expected a list of services (each item starting with '- name:'), got " + describe(node));
    return services;
  }
  struct NameSite {
    std::string name;
    std::string path;
    int line;
  };
  std::vector<NameSite> names;
  for (std::size_t i = 0; i < node.size(); ++i) {
    std::string path = "services[" + std::to_string(i) + "]";
    if (node[i].IsNull()) {
      errors.add(path, line_of(node[i]),
                 "empty list item; expected a service with name, listen and upstream (or "
                 "master_name and sentinels)");
      continue;
    }
    ServiceRead s = read_service(node[i], path, line_of(node[i]), base_dir, errors);
    if (s.name_ok) {
      auto same = std::find_if(names.begin(), names.end(),
                               [&](const NameSite& n) { return n.name == s.config.name; });
      if (same != names.end()) {
        errors.add(path + ".name", s.name_line,
                   "duplicate service name '" + s.config.name + "'; already used by " + same->path +
                       " (line " + std::to_string(same->line) + ")");
      } else {
        names.push_back(NameSite{s.config.name, path + ".name", s.name_line});
      }
    }
    if (s.listen_ok) {
      auto same = std::find_if(listens.begin(), listens.end(),
                               [&](const ListenSite& l) { return l.address == s.config.listen; });
      if (same != listens.end()) {
        errors.add(path + ".listen", s.listen_line,
                   "address " + s.config.listen.to_string() + " is already used by " + same->path +
                       " (line " + std::to_string(same->line) + ")");
      } else {
        listens.push_back(ListenSite{s.config.listen, path + ".listen", s.listen_line});
      }
    }
    services.push_back(std::move(s.config));
  }
  return services;
}

}  // namespace tether::config::detail
