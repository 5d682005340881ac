// Helpers shared by the config tests: load text, find an error by key path, temp files.
#pragma once

#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

#include "tether/config/config.hpp"

namespace tether::config::test {

// The smallest valid file; tests append keys or build their own.
inline constexpr std::string_view kMinimal =
    "services:\n"
    "  - name: main\n"
    "    listen: 127.0.0.1:6379\n"
    "    upstream: 127.0.0.1:6380\n";

// The smallest valid Sentinel-mode file: master_name and sentinels instead of upstream.
inline constexpr std::string_view kMinimalSentinel =
    "services:\n"
    "  - name: main\n"
    "    listen: 127.0.0.1:6379\n"
    "    master_name: mymaster\n"
    "    sentinels: [127.0.0.1:26379, 127.0.0.1:26380]\n";

// Drops the newline that follows R"( so that line 1 of the YAML is its first key line.
inline std::string yaml(std::string_view text) {
  if (!text.empty() && text.front() == '\n') text.remove_prefix(1);
  return std::string(text);
}

// Every error as it would be printed, for failure messages.
inline std::string dump(const LoadResult& result) {
  std::string out;
  for (const auto& e : result.errors)
    out += format_error("t.yaml", e) + "\n";
  return out;
}

inline LoadResult load(const std::string& text) {
  return load_config_text(text, "t.yaml");
}

// The error at `path`, or nullptr.
inline const ConfigError* error_at(const LoadResult& result, std::string_view path) {
  for (const auto& e : result.errors) {
    if (e.path == path) return &e;
  }
  return nullptr;
}

// Asserts one error at `path` on `line` whose message contains `words`.
inline void require_error(const LoadResult& result, std::string_view path, int line,
                          std::string_view words) {
  INFO("errors:\n" << dump(result));
  INFO("looking for " << path << " on line " << line << " containing '" << words << "'");
  const ConfigError* e = error_at(result, path);
  REQUIRE(e != nullptr);
  CHECK(e->line == line);
  CHECK(e->message.find(words) != std::string::npos);
}

// A fresh directory under the system temp dir, removed with its contents on destruction.
class TempDir {
 public:
  TempDir() {
    static int counter = 0;
    path_ = std::filesystem::temp_directory_path() /
            ("tether-config-test-" + std::to_string(::getpid()) + "-" + std::to_string(++counter));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }

  // Writes `content` to `name` inside the directory; returns the full path.
  std::string write(const std::string& name, std::string_view content) const {
    auto file = path_ / name;
    std::ofstream(file, std::ios::binary) << content;
    return file.string();
  }

 private:
  std::filesystem::path path_;
};

}  // namespace tether::config::test
