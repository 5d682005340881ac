#include "map_reader.hpp"

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <optional>

#include "tether/util/units.hpp"

namespace tether::config::detail {
namespace {

// Longest scalar echoed back in a message; keeps one error on one readable line.
constexpr std::size_t kMaxEchoedChars = 40;

std::optional<std::uint64_t> parse_whole_number(std::string_view text) {
  std::uint64_t value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || text.empty() || ptr != text.data() + text.size()) return std::nullopt;
  return value;
}

// Levenshtein distance, for "did you mean" on misspelt keys (keys are short).
std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j)
    row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      std::size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

std::string unknown_key_message(std::string_view key,
                                const std::vector<std::string_view>& allowed) {
  std::string message = "unknown key";
  std::string_view best;
  std::size_t best_distance = 3;  // suggest only close misspellings
  for (auto candidate : allowed) {
    std::size_t d = edit_distance(key, candidate);
    if (d < best_distance && d < candidate.size()) {
      best = candidate;
      best_distance = d;
    }
  }
  if (!best.empty()) message += " (did you mean '" + std::string(best) + "'?)";
  message += "; expected one of: ";
  for (std::size_t i = 0; i < allowed.size(); ++i) {
    if (i != 0) message += ", ";
    message += allowed[i];
  }
  return message;
}

// "must be from 1 to 64" for a readable range; one-sided ("must be greater than zero",
// "must be at most 9223372036854775807B") when the bound is only a type's limit.
std::string range_message(std::uint64_t value, std::uint64_t min, std::uint64_t max,
                          std::string (*render)(std::uint64_t)) {
  if (max <= INT32_MAX) return "must be from " + render(min) + " to " + render(max);
  if (value > max) return "must be at most " + render(max);
  return min == 1 ? "must be greater than zero" : "must be at least " + render(min);
}

std::string render_count(std::uint64_t n) {
  return std::to_string(n);
}
std::string render_size(std::uint64_t n) {
  return util::format_size(n);
}

}  // namespace

void Errors::add(std::string path, int line, std::string message) {
  list_.push_back(ConfigError{std::move(path), line, std::move(message)});
}

int line_of(const YAML::Node& node) {
  if (!node.IsDefined()) return 0;
  int line = node.Mark().line;
  return line < 0 ? 0 : line + 1;
}

std::string join_path(std::string_view parent, std::string_view key) {
  if (parent.empty()) return std::string(key);
  std::string path(parent);
  path += '.';
  path += key;
  return path;
}

std::string describe(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map:
      return "a mapping";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Scalar: {
      const std::string& text = node.Scalar();
      if (text.size() <= kMaxEchoedChars) return "'" + text + "'";
      return "'" + text.substr(0, kMaxEchoedChars) + "...'";
    }
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      break;
  }
  return "an empty value";
}

MapReader::MapReader(const YAML::Node& node, std::string path, int line,
                     std::vector<std::string_view> allowed, Errors& errors)
    : path_(std::move(path)), line_(line), errors_(errors) {
  if (!node.IsDefined() || node.IsNull()) return;
  if (!node.IsMap()) {
    is_mapping_ = false;
    errors_.add(path_, line_, "expected a mapping of key: value lines, got " + describe(node));
    return;
  }
  for (auto it = node.begin(); it != node.end(); ++it) {
    int key_line = line_of(it->first);
    if (!it->first.IsScalar()) {
      errors_.add(join_path(path_, "?"), key_line,
                  "a key must be a plain word, got " + describe(it->first));
      continue;
    }
    const std::string& key = it->first.Scalar();
    if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
      errors_.add(join_path(path_, key), key_line, unknown_key_message(key, allowed));
    } else if (const Entry* first = find(key)) {
      errors_.add(join_path(path_, key), key_line,
                  "duplicate key; first set on line " + std::to_string(first->line));
    } else {
      entries_.push_back(Entry{key, it->second, key_line});
    }
  }
}

const MapReader::Entry* MapReader::find(std::string_view key) const {
  for (const Entry& e : entries_) {
    if (e.key == key) return &e;
  }
  return nullptr;
}

const YAML::Node* MapReader::value(std::string_view key) const {
  const Entry* e = find(key);
  return e ? &e->value : nullptr;
}

int MapReader::line(std::string_view key) const {
  const Entry* e = find(key);
  return e ? e->line : line_;
}

MapReader MapReader::child(std::string_view key, std::vector<std::string_view> allowed) {
  const Entry* e = find(key);
  return MapReader(e ? e->value : YAML::Node(), path(key), line(key), std::move(allowed), errors_);
}

void MapReader::error(std::string_view key, std::string message) {
  errors_.add(path(key), line(key), std::move(message));
}

bool MapReader::require(std::string_view key, std::string_view what) {
  if (has(key) || !is_mapping_) return has(key);
  error(key, "required key is missing; expected " + std::string(what));
  return false;
}

const std::string* MapReader::scalar(std::string_view key, std::string_view expected) {
  const Entry* e = find(key);
  if (!e) return nullptr;
  if (!e->value.IsScalar()) {
    error(key, "expected " + std::string(expected) + ", got " + describe(e->value));
    return nullptr;
  }
  return &e->value.Scalar();
}

bool MapReader::read_string(std::string_view key, std::string& out) {
  // Never echo the value: this reads passwords too.
  const std::string* text = scalar(key, "a string");
  if (!text) return !has(key);
  if (text->empty()) {
    error(key, "must not be empty; remove the key to leave it unset");
    return false;
  }
  out = *text;
  return true;
}

bool MapReader::read_count(std::string_view key, std::uint64_t min, std::uint64_t max,
                           std::uint64_t& out) {
  const std::string* text = scalar(key, "a whole number");
  if (!text) return !has(key);
  auto value = parse_whole_number(*text);
  if (!value) {
    std::string what = text->starts_with("-") ? "must not be negative" : "expected a whole number";
    error(key, what + ", got " + describe(*this->value(key)));
    return false;
  }
  if (*value < min || *value > max) {
    error(key, range_message(*value, min, max, render_count) + ", got " + *text);
    return false;
  }
  out = *value;
  return true;
}

bool MapReader::read_size(std::string_view key, std::uint64_t min, std::uint64_t max,
                          std::uint64_t& out) {
  const std::string* text = scalar(key, "a size such as 65536, 64KiB, 16MiB or 1GiB");
  if (!text) return !has(key);
  auto value = util::parse_size(*text);
  if (!value) {
    std::string what = text->starts_with("-")
                           ? "must not be negative"
                           : "expected a size such as 65536, 64KiB, 16MiB or 1GiB";
    error(key, what + ", got " + describe(*this->value(key)));
    return false;
  }
  if (*value < min || *value > max) {
    error(key, range_message(*value, min, max, render_size) + ", got " + *text);
    return false;
  }
  out = *value;
  return true;
}

bool MapReader::read_duration(std::string_view key, std::chrono::milliseconds min,
                              std::chrono::milliseconds& out) {
  const std::string* text = scalar(key, "a duration such as 250ms, 5s or 2m");
  if (!text) return !has(key);
  auto value = util::parse_duration(*text);
  if (!value) {
    std::string what =
        text->starts_with("-")
            ? "must not be negative"
            : "expected a duration with a unit (us, ms, s, m, h) such as 250ms or 5s";
    error(key, what + ", got " + describe(*this->value(key)));
    return false;
  }
  if (*value > kMaxDuration) {
    error(key, "must be at most 24h, got " + *text);
    return false;
  }
  if (*value < min) {
    error(key, (min.count() == 1 ? std::string("must be greater than zero")
                                 : "must be at least " + util::format_duration(min)) +
                   ", got " + *text);
    return false;
  }
  out = *value;
  return true;
}

bool MapReader::read_endpoint(std::string_view key, util::Endpoint& out) {
  const std::string* text = scalar(key, "an address such as 127.0.0.1:6379 or unix:/path");
  if (!text) return !has(key);
  std::string why;
  auto endpoint = util::parse_endpoint(*text, &why);
  if (!endpoint) {
    // parse_endpoint's reasons either say what form it expected or what part is wrong.
    std::string hint =
        why.starts_with("expected") ? "" : "; use host:port, [ipv6]:port or unix:/path";
    error(key, "invalid address " + describe(*value(key)) + ": " + why + hint);
    return false;
  }
  out = std::move(*endpoint);
  return true;
}

bool MapReader::read_file_mode(std::string_view key, std::uint32_t& out) {
  static constexpr std::string_view kExpected = "an octal file mode such as \"0660\"";
  const std::string* text = scalar(key, kExpected);
  if (!text) return !has(key);
  std::uint32_t mode = 0;
  bool octal = !text->empty() && text->size() <= 4 &&
               std::all_of(text->begin(), text->end(), [](char c) { return c >= '0' && c <= '7'; });
  if (octal) {
    std::from_chars(text->data(), text->data() + text->size(), mode, 8);
  }
  if (!octal || mode > 0777) {
    error(key, "expected " + std::string(kExpected) + " (at most \"0777\"), got " +
                   describe(*value(key)));
    return false;
  }
  out = mode;
  return true;
}

}  // namespace tether::config::detail
