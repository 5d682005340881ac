#include "service_reader.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <climits>
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

bool valid_name(const std::string& name) {
  return !name.empty() && name.size() <= kMaxNameLength &&
         std::all_of(name.begin(), name.end(), [](unsigned char c) {
           return std::isalnum(c) || c == '_' || c == '-' || c == '.';
         });
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

void read_auth(MapReader& r, const std::string& base_dir, ServiceConfig& svc) {
  bool inline_password = r.has("upstream_password");
  bool password_file = r.has("upstream_password_file");
  r.read_string("upstream_username", svc.upstream_username);
  r.read_string("upstream_password", svc.upstream_password);
  std::string file;
  bool file_ok = r.read_string("upstream_password_file", file);
  if (inline_password && password_file) {
    r.error("upstream_password_file", "cannot be combined with upstream_password (line " +
                                          std::to_string(r.line("upstream_password")) +
                                          "); set only one of them");
  } else if (password_file && file_ok) {
    std::filesystem::path resolved(file);
    if (resolved.is_relative() && !base_dir.empty()) resolved = base_dir / resolved;
    std::string why;
    auto secret = read_first_line(resolved, why);
    if (!secret) {
      r.error("upstream_password_file",
              "cannot read password file '" + resolved.string() + "': " + why);
    } else if (secret->empty()) {
      r.error("upstream_password_file", "password file '" + resolved.string() +
                                            "' is empty; its first line must be the password");
    } else {
      svc.upstream_password = std::move(*secret);
    }
  }
  if (r.has("upstream_username") && !inline_password && !password_file) {
    r.error("upstream_username",
            "needs upstream_password or upstream_password_file (an ACL user logs in with "
            "AUTH <username> <password>)");
  }
}

void read_pool(MapReader& parent, PoolOptions& pool) {
  MapReader r = parent.child("pool", {"size", "connect_timeout", "reconnect_min", "reconnect_max"});
  std::uint64_t size = pool.size;
  r.read_count("size", 1, kMaxPoolSize, size);
  pool.size = size;
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
               "upstream_password", "upstream_password_file", "pool", "hold", "limits"},
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
  bool upstream_ok = r.require("upstream", address) && r.read_endpoint("upstream", svc.upstream);
  if (out.listen_ok && upstream_ok && svc.listen == svc.upstream) {
    r.error("upstream", "is the same address as listen; the proxy would connect to itself");
  }
  read_auth(r, base_dir, svc);
  read_pool(r, svc.pool);
  read_hold(r, svc.hold);
  read_limits(r, svc.limits, svc.protocol);
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
                 "empty list item; expected a service with name, listen and upstream");
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
