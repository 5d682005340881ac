// MapReader: reads one YAML mapping into option fields and reports every problem.
//
//   YAML mapping ──► MapReader(allowed keys) ──► read_*(key, out) ──► out (valid value)
//                        │                           └──────────────► Errors (bad value)
//                        └─ unknown, duplicate and non-string keys reported on construction
//
// A key that is absent leaves `out` untouched, so the struct's default stands. Error lines
// are the key's line: a value on the next line (block mapping, empty value) has no better
// one.
//
// Private to the config module. Not thread-safe; one reader per mapping, on the stack,
// valid while the YAML tree and the Errors it reports to live.
#pragma once

#include <yaml-cpp/yaml.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "tether/config/config.hpp"
#include "tether/util/endpoint.hpp"

namespace tether::config::detail {

// Longest duration any option accepts (messages call it "24h"). Keeps deadline arithmetic
// (now + d) far from overflow; no timeout or backoff here has a reason to exceed a day.
inline constexpr std::chrono::milliseconds kMaxDuration = std::chrono::hours(24);

// Every problem found so far, in the order found (the loader sorts them by line).
class Errors {
 public:
  void add(std::string path, int line, std::string message);
  bool empty() const { return list_.empty(); }
  std::size_t size() const { return list_.size(); }
  std::vector<ConfigError> take() { return std::move(list_); }

 private:
  std::vector<ConfigError> list_;
};

// 1-based line of a node, or 0 when it has no position.
int line_of(const YAML::Node& node);

// join_path("services[0]", "pool") == "services[0].pool"; join_path("", "workers") == "workers".
std::string join_path(std::string_view parent, std::string_view key);

// "a mapping", "a list", "an empty value" or the quoted (truncated) scalar, for messages.
std::string describe(const YAML::Node& node);

class MapReader {
 public:
  // `node` should be a mapping; null reads as an empty mapping (all defaults). Anything
  // else is reported at `path`/`line` and the reader then holds no keys. `allowed` lists
  // the keys this mapping may hold, in the order error messages show them.
  MapReader(const YAML::Node& node, std::string path, int line,
            std::vector<std::string_view> allowed, Errors& errors);

  // False when the node was neither a mapping nor null.
  bool is_mapping() const { return is_mapping_; }
  bool has(std::string_view key) const { return find(key) != nullptr; }
  // The value of `key`, or nullptr when absent.
  const YAML::Node* value(std::string_view key) const;
  // Line of `key`, or of the mapping itself when the key is absent.
  int line(std::string_view key) const;
  int line() const { return line_; }
  std::string path(std::string_view key) const { return join_path(path_, key); }
  const std::string& path() const { return path_; }

  // A reader for the mapping under `key`; absent or empty reads as all defaults.
  MapReader child(std::string_view key, std::vector<std::string_view> allowed);

  // Reports `message` at path(key), line(key).
  void error(std::string_view key, std::string message);
  // Reports "required key is missing; expected <what>" when absent; returns has(key).
  bool require(std::string_view key, std::string_view what);

  // Typed reads. Each returns false only after reporting an error: when the key is absent
  // or the value valid it returns true (and sets `out` only in the valid case). Ranges are
  // inclusive; durations are also bounded by kMaxDuration. Messages echo the bad value,
  // except read_string's (it reads passwords).
  bool read_string(std::string_view key, std::string& out);
  bool read_count(std::string_view key, std::uint64_t min, std::uint64_t max, std::uint64_t& out);
  bool read_size(std::string_view key, std::uint64_t min, std::uint64_t max, std::uint64_t& out);
  bool read_duration(std::string_view key, std::chrono::milliseconds min,
                     std::chrono::milliseconds& out);
  bool read_endpoint(std::string_view key, util::Endpoint& out);
  // An octal permission string such as "0660" (at most 0777).
  bool read_file_mode(std::string_view key, std::uint32_t& out);

 private:
  struct Entry {
    std::string key;
    YAML::Node value;
    int line = 0;
  };

  const Entry* find(std::string_view key) const;
  // The scalar text of `key`; reports "expected <expected>, got ..." and returns nullptr
  // when the value is a mapping, a list or empty. Also nullptr when the key is absent.
  const std::string* scalar(std::string_view key, std::string_view expected);

  std::string path_;
  int line_ = 0;
  bool is_mapping_ = true;
  Errors& errors_;
  std::vector<Entry> entries_;
};

}  // namespace tether::config::detail
