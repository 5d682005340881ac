// Loader entry points: YAML text ──► syntax check ──► top-level keys (log_level, workers,
// admin) and read_services() ──► errors sorted by line, or a Config.
#include "tether/config/config.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>

#include "map_reader.hpp"
#include "service_reader.hpp"

namespace tether::config {
namespace {

// Worker threads, each with its own event loop and upstream pools. A sidecar shares its host
// with the apps it serves; a number above this is more likely a typo than a plan.
constexpr std::uint64_t kMaxWorkers = 64;

constexpr std::array<std::string_view, 7> kLogLevels = {"trace", "debug",    "info", "warn",
                                                        "error", "critical", "off"};

void read_log_level(detail::MapReader& r, std::string& out) {
  std::string level;
  if (!r.read_string("log_level", level) || !r.has("log_level")) return;
  if (std::find(kLogLevels.begin(), kLogLevels.end(), level) == kLogLevels.end()) {
    std::string expected;
    for (auto name : kLogLevels) {
      expected += (expected.empty() ? "" : ", ") + std::string(name);
    }
    r.error("log_level",
            "expected one of: " + expected + ", got " + detail::describe(*r.value("log_level")));
    return;
  }
  out = level;
}

void read_admin(detail::MapReader& root, AdminConfig& admin,
                const std::vector<detail::ListenSite>& listens) {
  detail::MapReader r = root.child("admin", {"listen"});
  util::Endpoint listen;
  if (!r.has("listen") || !r.read_endpoint("listen", listen)) return;
  if (listen.kind != util::Endpoint::Kind::tcp) {
    r.error("listen", "must be a TCP host:port; the metrics endpoint does not serve unix sockets");
    return;
  }
  for (const auto& site : listens) {
    if (site.address == listen) {
      r.error("listen", "address " + listen.to_string() + " is already used by " + site.path +
                            " (line " + std::to_string(site.line) + ")");
      return;
    }
  }
  admin.listen = std::move(listen);
}

Config read_root(const YAML::Node& root, const std::string& base_dir, detail::Errors& errors) {
  Config config;
  detail::MapReader r(root, "", detail::line_of(root),
                      {"log_level", "workers", "drain_timeout", "admin", "services"}, errors);
  if (!r.is_mapping()) return config;
  read_log_level(r, config.log_level);
  std::uint64_t workers = config.workers;
  r.read_count("workers", 1, kMaxWorkers, workers);
  config.workers = workers;
  r.read_duration("drain_timeout", std::chrono::milliseconds(0), config.drain_timeout);
  std::vector<detail::ListenSite> listens;
  if (r.require("services",
                "a list of services, each with name, listen and upstream (or master_name and "
                "sentinels)")) {
    config.services =
        detail::read_services(*r.value("services"), r.line("services"), base_dir, errors, listens);
  }
  read_admin(r, config.admin, listens);
  return config;
}

LoadResult load(const std::string& text, const std::string& base_dir) {
  detail::Errors errors;
  std::vector<YAML::Node> documents;
  try {
    documents = YAML::LoadAll(text);
  } catch (const YAML::ParserException& e) {
    errors.add("", e.mark.line < 0 ? 0 : e.mark.line + 1, "YAML syntax error: " + e.msg);
  } catch (const YAML::Exception& e) {
    errors.add("", 0, std::string("YAML error: ") + e.what());
  }
  LoadResult result;
  if (!errors.empty()) {
    result.errors = errors.take();
    return result;
  }
  if (documents.size() > 1) {
    errors.add("", detail::line_of(documents[1]),
               "a second YAML document ('---') starts here; the file must hold exactly one");
  }
  Config config = read_root(documents.empty() ? YAML::Node() : documents.front(), base_dir, errors);
  if (errors.empty()) {
    result.config = std::move(config);
    return result;
  }
  result.errors = errors.take();
  std::stable_sort(result.errors.begin(), result.errors.end(),
                   [](const ConfigError& a, const ConfigError& b) { return a.line < b.line; });
  return result;
}

}  // namespace

LoadResult load_config_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::error_code ec;
  if (!in || std::filesystem::is_directory(path, ec)) {
    LoadResult result;
    std::string why =
        in ? "it is a directory" : std::error_code(errno, std::generic_category()).message();
    result.errors.push_back(ConfigError{"", 0, "cannot read config file: " + why});
    return result;
  }
  std::ostringstream text;
  text << in.rdbuf();
  // Relative *_password_file paths are relative to the config file, so that a
  // config and its secrets can move together whatever the daemon's working directory.
  return load(text.str(), std::filesystem::path(path).parent_path().string());
}

LoadResult load_config_text(const std::string& text, const std::string& origin) {
  (void)origin;  // errors carry no file name; format_error() adds it
  return load(text, "");
}

std::string format_error(const std::string& file, const ConfigError& e) {
  std::string out = file;
  // Appended piecewise: GCC 12 at -O3 misreports "literal + std::string&&" (-Wrestrict,
  // GCC bug 105329), which would break Release builds under -Werror.
  if (e.line > 0) out.append(":").append(std::to_string(e.line));
  out += ": ";
  if (!e.path.empty()) out.append(e.path).append(": ");
  out += e.message;
  return out;
}

}  // namespace tether::config
