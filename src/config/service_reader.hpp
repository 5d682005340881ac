// Reads the `services:` list: each service's keys, its master (a static `upstream`, or
// `master_name` and `sentinels` in Sentinel mode, exactly one), its pool/hold/failover/limits
// sections, its upstream and Sentinel passwords (inline or from a file), and the checks that
// span services (duplicate names and listen addresses).
//
//   services node ──► read_services() ──► std::vector<ServiceConfig>
//                                    └──► Errors (every problem, none fatal to the rest)
//
// Private to the config module. Reads password files; otherwise pure.
#pragma once

#include <yaml-cpp/yaml.h>

#include <string>
#include <vector>

#include "map_reader.hpp"
#include "tether/config/config.hpp"

namespace tether::config::detail {

// Where a service's listen address was written, for checks against other keys.
struct ListenSite {
  util::Endpoint address;
  std::string path;  // e.g. "services[0].listen"
  int line = 0;
};

// `node` is the value of the `services` key written at `line`; `base_dir` resolves relative
// *_password_file paths (empty: the working directory). Appends the valid listen addresses
// to `listens` so the caller can check other listeners against them.
std::vector<ServiceConfig> read_services(const YAML::Node& node, int line,
                                         const std::string& base_dir, Errors& errors,
                                         std::vector<ListenSite>& listens);

}  // namespace tether::config::detail
