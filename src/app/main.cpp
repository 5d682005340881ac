// redis-tether: entry point. Parses the command line, loads the configuration, opens the
// listening sockets, starts the workers and the admin port, and waits for a signal.
//
//   main ─► load_config ─► open_listen_socket (per service) ─► Worker × workers
//                                                           └─► AdminServer (optional)
//   SIGINT/SIGTERM ─► workers stop (clients and upstreams closed) ─► exit 0
#include <sys/socket.h>
#include <unistd.h>

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <iostream>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "tether/app/admin_server.hpp"
#include "tether/app/memory_trim.hpp"
#include "tether/app/systemd.hpp"
#include "tether/app/worker.hpp"
#include "tether/config/config.hpp"
#include "tether/proxy/listen_socket.hpp"
#include "tether/sentinel/watcher.hpp"
#include "tether/util/asio.hpp"
#include "tether/util/units.hpp"

namespace {

constexpr const char* kVersion = "0.1.0";

constexpr const char* kUsage = R"(Usage: redis-tether --config FILE [--check-config]
       redis-tether --help | --version

A sidecar proxy for Redis: applications connect to it as to Redis; it forwards their
commands over a few shared, pipelined connections to the Redis master (configured,
or learned from Redis Sentinel and followed through failovers).

Options:
  -c, --config FILE   YAML configuration (see /etc/redis-tether/redis-tether.yaml or
                      config/redis-tether.yaml for every key, annotated)
      --check-config  validate the configuration, print "config OK: FILE" and exit 0;
                      on errors print one line per error (FILE:LINE: key: problem), exit 2
  -h, --help          print this help and exit
  -V, --version       print the version and exit

Signals: SIGTERM or SIGINT stops accepting, lets every client receive the replies owed
for what it sent before (up to drain_timeout), then exits. SIGHUP re-reads the
configuration: limits, pools, hold, Sentinels and log level apply without closing a
client; an invalid file is logged and the running configuration stays.

Exit status: 0 on a clean stop (SIGINT or SIGTERM), 1 if start-up fails (e.g. an address
cannot be bound), 2 for a bad command line or configuration.
)";

struct Args {
  std::string config;
  bool check = false;
};

// Returns nullopt after printing what is needed, with `exit_code` set.
std::optional<Args> parse_args(int argc, char** argv, int& exit_code) {
  Args args;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "-h" || a == "--help") {
      std::cout << kUsage;
      exit_code = 0;
      return std::nullopt;
    }
    if (a == "-V" || a == "--version") {
      std::cout << "redis-tether " << kVersion << "\n";
      exit_code = 0;
      return std::nullopt;
    }
    if (a == "--check-config") {
      args.check = true;
    } else if ((a == "-c" || a == "--config") && i + 1 < argc) {
      args.config = argv[++i];
    } else if (a.starts_with("--config=")) {
      args.config = std::string(a.substr(9));
    } else {
      std::cerr << "redis-tether: unknown or incomplete option '" << a << "'\n\n" << kUsage;
      exit_code = 2;
      return std::nullopt;
    }
  }
  if (args.config.empty()) {
    std::cerr << "redis-tether: --config FILE is required\n\n" << kUsage;
    exit_code = 2;
    return std::nullopt;
  }
  return args;
}

void setup_logging(const std::string& level) {
  auto logger = std::make_shared<spdlog::logger>("redis-tether",
                                                 std::make_shared<spdlog::sinks::stderr_sink_mt>());
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e%z %l %v");
  logger->set_level(spdlog::level::from_str(level));
  logger->flush_on(spdlog::level::trace);
  spdlog::set_default_logger(logger);
}

tether::app::ServiceRuntime make_runtime(const tether::config::ServiceConfig& s) {
  tether::app::ServiceRuntime r;
  r.pool.service = s.name;
  r.pool.target = s.upstream;
  r.pool.username = s.upstream_username;
  r.pool.password = s.upstream_password;
  r.pool.size = s.pool.size;
  r.pool.connect_timeout = s.pool.connect_timeout;
  r.pool.reconnect_min = s.pool.reconnect_min;
  r.pool.reconnect_max = s.pool.reconnect_max;
  r.pool.max_dedicated = s.pool.max_dedicated;
  r.pool.dedicated_warm = s.pool.dedicated_warm;
  r.pool.databases = s.pool.databases;
  r.pool.hold_timeout = s.hold.timeout;
  r.pool.hold_max_bytes = s.hold.max_bytes;
  r.pool.protocol = s.protocol;
  r.listener.service = s.name;
  r.listener.max_clients = s.limits.max_clients;
  r.listener.max_pending = s.limits.max_pending;
  r.listener.output_soft_limit = s.limits.output_soft_limit;
  r.listener.output_hard_limit = s.limits.output_hard_limit;
  r.listener.max_request_bytes = s.limits.max_request_bytes;
  r.listener.protocol = s.protocol;
  r.listener.deny_commands = s.deny_commands;
  r.listener.client_password = s.client_password;
  r.listener.session_mode = s.pool.mode == tether::config::PoolMode::session;
  return r;
}

tether::sentinel::WatcherSettings watcher_settings(const tether::config::ServiceConfig& s) {
  tether::sentinel::WatcherSettings w;
  w.service = s.name;
  w.master_name = s.master_name;
  w.sentinels = s.sentinels;
  w.sentinel_username = s.sentinel_username;
  w.sentinel_password = s.sentinel_password;
  w.upstream_username = s.upstream_username;
  w.upstream_password = s.upstream_password;
  w.poll_interval = s.failover.poll_interval;
  w.hold_bound = s.failover.hold_bound;
  w.connect_timeout = s.pool.connect_timeout;
  return w;
}

// The watcher's decisions, carried to the service's pool on every worker.
tether::sentinel::WatcherCallbacks pool_callbacks(
    std::vector<std::unique_ptr<tether::app::Worker>>& workers, std::size_t service) {
  auto each_pool = [&workers, service](std::function<void(tether::upstream::ServicePools&)> f) {
    for (auto& w : workers) {
      tether::asio::post(w->executor(), [pool = &w->pool(service), f] { f(*pool); });
    }
  };
  tether::sentinel::WatcherCallbacks cb;
  cb.retarget = [each_pool](const tether::util::Endpoint& master,
                            std::optional<std::chrono::steady_clock::time_point> began) {
    // A Sentinel switch means the old master lost its mastership: abandon it.
    std::optional<tether::upstream::Pool::FailoverTimer> timer;
    if (began) timer = {*began, std::make_shared<std::atomic<bool>>(false)};
    each_pool([master, timer](tether::upstream::ServicePools& p) {
      p.retarget(master, tether::upstream::Pool::RetargetMode::abandon, timer);
    });
  };
  cb.hold = [each_pool](const std::string& reason) {
    each_pool([reason](tether::upstream::ServicePools& p) { p.pause(reason); });
  };
  cb.release = [each_pool] { each_pool([](tether::upstream::ServicePools& p) { p.resume(); }); };
  cb.no_master = [each_pool](const std::string& reason) {
    each_pool([reason](tether::upstream::ServicePools& p) { p.set_unavailable_reason(reason); });
  };
  return cb;
}

// What a reload cannot change in a running process: the keys that differ, for the log.
std::vector<std::string> needs_restart(const tether::config::Config& cur,
                                       const tether::config::Config& next) {
  std::vector<std::string> keys;
  if (cur.workers != next.workers) keys.emplace_back("workers");
  if (cur.admin.listen != next.admin.listen) keys.emplace_back("admin.listen");
  if (cur.services.size() != next.services.size()) {
    keys.emplace_back("services (added or removed)");
    return keys;
  }
  for (std::size_t i = 0; i < cur.services.size(); ++i) {
    const auto& a = cur.services[i];
    const auto& b = next.services[i];
    const auto at = "services[" + std::to_string(i) + "].";
    if (a.name != b.name) keys.push_back(at + "name");
    if (a.listen != b.listen || a.listen_mode != b.listen_mode) keys.push_back(at + "listen");
    if (a.uses_sentinel() != b.uses_sentinel() || a.master_name != b.master_name)
      keys.push_back(at + "master_name");
  }
  return keys;
}

// SIGHUP: re-reads the file. An invalid file is logged and changes nothing. Otherwise log
// level, drain_timeout, every service's limits, hold and pool settings (a changed fixed
// upstream included) and its Sentinels apply at once, no client connection is closed;
// what needs a restart (see needs_restart) is logged and left as it runs.
void reload(const std::string& path, tether::config::Config& current,
            std::vector<std::unique_ptr<tether::app::Worker>>& workers,
            const std::vector<tether::sentinel::Watcher*>& watcher_of,
            tether::app::StatusBoard& board) {
  spdlog::info("event=reloading config={}", path);
  auto loaded = tether::config::load_config_file(path);
  if (!loaded.errors.empty()) {
    for (const auto& e : loaded.errors) {
      spdlog::error("event=reload_failed error=\"{}\"", tether::config::format_error(path, e));
    }
    spdlog::error("event=reload_rejected errors={} detail=\"the running configuration stays\"",
                  loaded.errors.size());
    return;
  }
  auto next = std::move(*loaded.config);
  const auto skipped = needs_restart(current, next);
  for (const auto& key : skipped)
    spdlog::warn("event=reload_needs_restart key={}", key);
  spdlog::default_logger()->set_level(spdlog::level::from_str(next.log_level));
  current.log_level = next.log_level;
  current.drain_timeout = next.drain_timeout;
  if (current.services.size() == next.services.size()) {
    for (std::size_t i = 0; i < next.services.size(); ++i) {
      auto& svc = next.services[i];
      const auto& running = current.services[i];
      // Kept as running when they cannot change live.
      svc.name = running.name;
      svc.listen = running.listen;
      svc.listen_mode = running.listen_mode;
      if (svc.uses_sentinel() != running.uses_sentinel() ||
          svc.master_name != running.master_name) {
        svc.upstream = running.upstream;
        svc.master_name = running.master_name;
        svc.sentinels = running.sentinels;
      }
      const auto runtime = make_runtime(svc);
      for (auto& w : workers)
        w->reconfigure(i, runtime.listener, runtime.pool);
      if (watcher_of[i] && svc.uses_sentinel()) watcher_of[i]->reconfigure(watcher_settings(svc));
      if (!svc.uses_sentinel()) board.set_upstream(i, svc.upstream.to_string());
      current.services[i] = std::move(svc);
    }
  }
  spdlog::info("event=reloaded config={} needs_restart={}", path, skipped.size());
}

int run(tether::config::Config cfg, const std::string& config_path) {
  // Signal handlers first: a SIGTERM arriving during start-up still stops cleanly.
  tether::asio::io_context signals_io;
  tether::asio::signal_set signals(signals_io, SIGINT, SIGTERM);
  int stop_signal = 0;
  signals.async_wait([&](const boost::system::error_code&, int sig) { stop_signal = sig; });
  tether::asio::signal_set hangups(signals_io, SIGHUP);
  bool reload_requested = false;
  std::function<void()> await_hangup = [&] {
    hangups.async_wait([&](const boost::system::error_code& ec, int) {
      if (ec) return;
      reload_requested = true;
      await_hangup();
    });
  };
  await_hangup();

  std::vector<std::string> names;
  for (const auto& s : cfg.services)
    names.push_back(s.name);
  tether::metrics::Metrics metrics(names);

  // Sockets passed by systemd (socket activation) replace binding `listen` for the
  // service whose name they carry; see systemd/redis-tether.socket.
  std::string inherit_error;
  auto inherited = tether::app::InheritedSockets::from_environment(inherit_error);
  if (inherit_error.empty()) inherited.assign(names, inherit_error);
  if (!inherit_error.empty()) {
    spdlog::critical("event=listen_inherited_failed error=\"{}\"", inherit_error);
    return 1;
  }
  std::vector<tether::app::ServiceRuntime> services;
  std::vector<bool> listen_inherited;
  for (const auto& s : cfg.services) {
    auto r = make_runtime(s);
    std::string error;
    auto passed = inherited.take(services.size(), s.listen, error);
    if (passed) {
      r.listen_fd = passed->fd;
      spdlog::info("event=listen_inherited service={} fd_name={} address={} configured={}", s.name,
                   passed->name, passed->address, s.listen.to_string());
      if (!passed->matches) {
        spdlog::warn("event=listen_inherited_mismatch service={} address={} configured={}", s.name,
                     passed->address, s.listen.to_string());
      }
    } else if (error.empty()) {
      r.listen_fd = tether::proxy::open_listen_socket(s.listen, s.listen_mode, error);
    }
    listen_inherited.push_back(passed.has_value());
    if (r.listen_fd < 0) {
      spdlog::critical("event=listen_failed service={} address={} error=\"{}\"", s.name,
                       s.listen.to_string(), error);
      return 1;
    }
    sockaddr_storage addr{};
    socklen_t len = sizeof addr;
    ::getsockname(r.listen_fd, reinterpret_cast<sockaddr*>(&addr), &len);
    r.listen_family = addr.ss_family;
    spdlog::info("event=listening service={} address={} upstream={}", s.name, s.listen.to_string(),
                 s.uses_sentinel() ? "sentinel:" + s.master_name : s.upstream.to_string());
    services.push_back(std::move(r));
  }

  std::vector<tether::app::StatusBoard::ServiceInfo> board_services;
  for (const auto& s : cfg.services) {
    board_services.push_back({s.name, s.listen.to_string(),
                              s.uses_sentinel() ? std::string() : s.upstream.to_string(),
                              s.master_name});
  }
  tether::app::StatusBoard board(std::move(board_services), metrics);

  std::unique_ptr<tether::app::AdminServer> admin;
  if (cfg.admin.listen) {
    try {
      admin = std::make_unique<tether::app::AdminServer>(*cfg.admin.listen, metrics, board);
    } catch (const std::exception& e) {
      spdlog::critical("event=admin_listen_failed error=\"{}\"", e.what());
      return 1;
    }
    admin->start();
    spdlog::info("event=admin_listening address={}", cfg.admin.listen->to_string());
  }

  std::vector<std::unique_ptr<tether::app::Worker>> workers;
  for (std::size_t i = 0; i < cfg.workers; ++i) {
    workers.push_back(std::make_unique<tether::app::Worker>(i, services, metrics));
  }
  // Sentinel-managed services: one watcher each, on a control thread; its decisions are
  // posted to that service's pool on every worker.
  tether::asio::io_context control_io(1);
  std::vector<std::unique_ptr<tether::sentinel::Watcher>> watchers;
  std::vector<tether::sentinel::Watcher*> watcher_of(cfg.services.size(), nullptr);
  for (std::size_t i = 0; i < cfg.services.size(); ++i) {
    const auto& s = cfg.services[i];
    if (!s.uses_sentinel()) continue;
    auto callbacks = pool_callbacks(workers, i);
    callbacks.state = [&board, i](tether::sentinel::WatcherState state) {
      board.update(i, std::move(state));
    };
    watchers.push_back(std::make_unique<tether::sentinel::Watcher>(
        control_io.get_executor(), watcher_settings(s), std::move(callbacks), metrics.service(i)));
    // What the pools see of the master (-READONLY, a lost connection) reaches the
    // watcher at once. Set before the workers start; the watcher outlives every call.
    auto* watcher = watchers.back().get();
    watcher_of[i] = watcher;
    for (auto& w : workers) {
      w->pool(i).set_feedback(
          {[watcher](const tether::util::Endpoint& n) { watcher->upstream_refused(n); },
           [watcher](const tether::util::Endpoint& n) { watcher->upstream_lost(n); }});
    }
  }
  for (auto& w : workers)
    w->start();
  for (auto& w : watchers)
    w->start();
  std::thread control_thread;
  if (!watchers.empty()) control_thread = std::thread([&control_io] { control_io.run(); });
  spdlog::info("event=started version={} workers={} services={}", kVersion, cfg.workers,
               cfg.services.size());
  std::vector<std::pair<std::string, std::string>> states;
  for (const auto& s : cfg.services) {
    states.emplace_back(s.name, s.uses_sentinel() ? "sentinel " + s.master_name
                                                  : "upstream " + s.upstream.to_string());
  }
  tether::app::notify_ready(states, cfg.workers);
  // The watchdog pings from this thread only while every worker and the Sentinel control
  // loop answer its probes.
  std::vector<tether::app::Watchdog::Probed> probed;
  for (std::size_t i = 0; i < workers.size(); ++i)
    probed.push_back({"worker-" + std::to_string(i), workers[i]->executor()});
  if (control_thread.joinable()) probed.push_back({"sentinel", control_io.get_executor()});
  tether::app::Watchdog watchdog(signals_io, std::move(probed));
  watchdog.start();
  // After a burst of clients or pipelined requests, resident memory comes back down.
  tether::app::MemoryTrim memory_trim(signals_io, std::chrono::seconds(10), 16u << 20);
  memory_trim.start();

  while (stop_signal == 0 && signals_io.run_one() > 0) {
    if (std::exchange(reload_requested, false)) {
      tether::app::notify_reloading();
      reload(config_path, cfg, workers, watcher_of, board);
      tether::app::notify_reloaded();
    }
  }
  watchdog.stop();
  memory_trim.stop();

  const char* signal_name = stop_signal == SIGINT ? "SIGINT" : "SIGTERM";
  tether::app::notify_stopping(signal_name);
  spdlog::info("event=stopping signal={} drain_timeout={}", signal_name,
               tether::util::format_duration(cfg.drain_timeout));
  // Drain: every worker stops accepting (closing its copy of each listening socket; this
  // one is closed here, so new connections are refused, or with socket activation wait
  // in systemd's queue for the next start) and each client gets the replies owed for
  // what it sent before the signal. The watchers keep following Sentinel meanwhile.
  for (auto& w : workers)
    w->drain(cfg.drain_timeout);
  for (auto& s : services)
    ::close(std::exchange(s.listen_fd, -1));
  for (auto& w : workers)
    w->join();
  if (control_thread.joinable()) {
    tether::asio::post(control_io, [&] {
      for (auto& w : watchers)
        w->stop();
      control_io.stop();
    });
    control_thread.join();
  }
  workers.clear();
  watchers.clear();  // after the workers: their pools call into the watchers
  if (admin) admin->stop();
  for (std::size_t i = 0; i < services.size(); ++i) {
    const auto& ep = cfg.services[i].listen;
    // A socket passed by systemd is systemd's: its path stays for the next start.
    if (ep.kind == tether::util::Endpoint::Kind::unix_socket && !listen_inherited[i]) {
      std::error_code ignored;
      std::filesystem::remove(ep.path, ignored);
    }
  }
  spdlog::info("event=stopped");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  int exit_code = 0;
  auto args = parse_args(argc, argv, exit_code);
  if (!args) return exit_code;

  auto loaded = tether::config::load_config_file(args->config);
  if (!loaded.errors.empty()) {
    for (const auto& e : loaded.errors) {
      std::cerr << tether::config::format_error(args->config, e) << "\n";
    }
    return 2;
  }
  if (args->check) {
    std::cout << "config OK: " << args->config << "\n";
    return 0;
  }
  std::signal(SIGPIPE, SIG_IGN);
  setup_logging(loaded.config->log_level);
  return run(std::move(*loaded.config), args->config);
}
