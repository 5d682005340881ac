// tether_pipeline_client: many concurrent clients, each pipelining INCRs (with GETs in
// between) on its own key; every reply is checked by type, value and order.
//
//   client i (one non-blocking socket each, all driven by one poll() loop):
//     SET key_i base_i,  then N x { INCR key_i -> base_i + j ; every k-th: GET key_i },  DEL key_i
//   with --multi-every M, every M-th INCR runs as a transaction instead, pipelined like the
//   rest: WATCH key_i, MULTI, INCR key_i, GET key_i, EXEC -> [base_i + j, "base_i + j"]
//   base_i = (i + 1) * 10^7, so a reply routed to the wrong client has a wrong value,
//   and a reply out of order has a wrong value or type.
//
// hiredis formats the commands and parses the replies (redisReader); the I/O is ours, so
// that all clients write their whole pipeline without waiting for replies.
//
// Exit codes: 0 every reply right, 1 a wrong or missing reply / a closed connection /
// the deadline passed, 2 usage or connect error. Single-threaded.

#include <arpa/inet.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

struct Options {
  std::string host = "127.0.0.1";
  int port = 6379;
  std::string unix_path;  // when set, used instead of host:port
  int clients = 200;
  int incrs = 1000;
  int get_every = 10;   // a GET after every get_every-th INCR
  int multi_every = 0;  // every multi_every-th INCR inside WATCH/MULTI/EXEC (0: none)
  int timeout_s = 120;
  std::string prefix;
};

struct Expect {
  int type;  // REDIS_REPLY_*
  long long integer = 0;
  std::string str;
  std::string what;                // the command, for messages
  std::vector<Expect> elements{};  // REDIS_REPLY_ARRAY
};

struct ReaderDeleter {
  void operator()(redisReader* r) const { redisReaderFree(r); }
};

struct Client {
  int id = 0;
  int fd = -1;
  std::string out;
  std::size_t out_off = 0;
  std::unique_ptr<redisReader, ReaderDeleter> reader;
  std::vector<Expect> expects;
  std::size_t next = 0;
  bool done() const { return next == expects.size(); }
};

void usage() {
  std::fprintf(stderr,
               "usage: tether_pipeline_client [--host H] [--port P | --unix PATH] [--clients N]\n"
               "       [--incrs N] [--get-every K] [--multi-every M] [--timeout-s S]\n"
               "       [--prefix STR]\n");
}

std::optional<Options> parse_args(int argc, char** argv) {
  Options o;
  o.prefix = "tether:pipeline:" + std::to_string(getpid());
  const std::pair<const char*, std::string*> strings[] = {
      {"--host", &o.host}, {"--unix", &o.unix_path}, {"--prefix", &o.prefix}};
  const std::pair<const char*, int*> ints[] = {{"--port", &o.port},
                                               {"--clients", &o.clients},
                                               {"--incrs", &o.incrs},
                                               {"--get-every", &o.get_every},
                                               {"--multi-every", &o.multi_every},
                                               {"--timeout-s", &o.timeout_s}};
  if (argc % 2 != 1) return std::nullopt;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i];
    bool known = false;
    for (const auto& [name, field] : strings) {
      if (k != name) continue;
      *field = argv[i + 1];
      known = true;
    }
    for (const auto& [name, field] : ints) {
      if (k != name) continue;
      *field = std::atoi(argv[i + 1]);
      known = true;
    }
    if (!known) return std::nullopt;
  }
  if (o.clients <= 0 || o.incrs <= 0 || o.get_every <= 0 || o.multi_every < 0) {
    return std::nullopt;
  }
  return o;
}

int dial(const Options& o) {
  int fd = -1;
  if (!o.unix_path.empty()) {
    fd = socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::snprintf(a.sun_path, sizeof(a.sun_path), "%s", o.unix_path.c_str());
    if (fd < 0 || connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) return -1;
  } else {
    fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(o.port));
    if (fd < 0 || inet_pton(AF_INET, o.host.c_str(), &a.sin_addr) != 1 ||
        connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
      return -1;
    }
  }
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  return fd;
}

void append(Client& c, Expect e, const char* fmt, const std::string& key, long long arg = 0) {
  char* cmd = nullptr;
  int len = redisFormatCommand(&cmd, fmt, key.c_str(), arg);
  c.out.append(cmd, static_cast<std::size_t>(len));
  redisFreeCommand(cmd);
  c.expects.push_back(std::move(e));
}

// Builds client i's whole pipeline and the replies it must get, in order.
void plan(Client& c, const Options& o) {
  const std::string key = o.prefix + ":" + std::to_string(c.id);
  const long long base = (c.id + 1) * 10000000LL;
  append(c, {REDIS_REPLY_STATUS, 0, "OK", "SET"}, "SET %s %lld", key, base);
  for (int j = 1; j <= o.incrs; ++j) {
    const std::string n = std::to_string(j);
    if (o.multi_every > 0 && j % o.multi_every == 0) {
      append(c, {REDIS_REPLY_STATUS, 0, "OK", "WATCH before INCR #" + n}, "WATCH %s", key);
      append(c, {REDIS_REPLY_STATUS, 0, "OK", "MULTI before INCR #" + n}, "MULTI", key);
      append(c, {REDIS_REPLY_STATUS, 0, "QUEUED", "INCR #" + n + " in MULTI"}, "INCR %s", key);
      append(c, {REDIS_REPLY_STATUS, 0, "QUEUED", "GET #" + n + " in MULTI"}, "GET %s", key);
      Expect exec{REDIS_REPLY_ARRAY, 0, "", "EXEC of INCR #" + n};
      exec.elements = {{REDIS_REPLY_INTEGER, base + j, "", "INCR #" + n + " in EXEC"},
                       {REDIS_REPLY_STRING, 0, std::to_string(base + j), "GET #" + n + " in EXEC"}};
      append(c, std::move(exec), "EXEC", key);
      continue;
    }
    append(c, {REDIS_REPLY_INTEGER, base + j, "", "INCR #" + n}, "INCR %s", key);
    if (j % o.get_every == 0) {
      append(
          c,
          {REDIS_REPLY_STRING, 0, std::to_string(base + j), "GET after INCR #" + std::to_string(j)},
          "GET %s", key);
    }
  }
  append(c, {REDIS_REPLY_INTEGER, 1, "", "DEL"}, "DEL %s", key);
}

std::string describe(const redisReply* r) {
  switch (r->type) {
    case REDIS_REPLY_INTEGER:
      return "integer " + std::to_string(r->integer);
    case REDIS_REPLY_STRING:
      return "bulk \"" + std::string(r->str, r->len) + "\"";
    case REDIS_REPLY_STATUS:
      return "status \"" + std::string(r->str, r->len) + "\"";
    case REDIS_REPLY_ERROR:
      return "error \"" + std::string(r->str, r->len) + "\"";
    case REDIS_REPLY_NIL:
      return "nil";
    case REDIS_REPLY_ARRAY: {
      std::string out = "array [";
      for (std::size_t i = 0; i < r->elements; ++i)
        out += (i ? ", " : "") + describe(r->element[i]);
      return out + "]";
    }
    default:
      return "type " + std::to_string(r->type);
  }
}

// Empty when `r` is what `e` says; otherwise what was wrong.
std::string check(const Expect& e, const redisReply* r) {
  bool ok = r->type == e.type;
  if (ok && e.type == REDIS_REPLY_ARRAY) {
    if (r->elements != e.elements.size()) {
      ok = false;
    } else {
      for (std::size_t i = 0; i < r->elements; ++i) {
        if (auto err = check(e.elements[i], r->element[i]); !err.empty()) return err;
      }
      return {};
    }
  }
  if (ok && e.type == REDIS_REPLY_INTEGER) ok = r->integer == e.integer;
  if (ok && e.type != REDIS_REPLY_INTEGER) ok = std::string(r->str, r->len) == e.str;
  if (ok) return {};
  std::string want = e.type == REDIS_REPLY_INTEGER ? "integer " + std::to_string(e.integer)
                     : e.type == REDIS_REPLY_ARRAY
                         ? "an array of " + std::to_string(e.elements.size())
                         : "\"" + e.str + "\"";
  return e.what + ": expected " + want + ", got " + describe(r);
}

// Reads what is available and checks every complete reply. False on a failure (printed).
bool on_readable(Client& c) {
  char buf[65536];
  while (true) {
    ssize_t n = recv(c.fd, buf, sizeof(buf), 0);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      std::fprintf(stderr, "FAIL client %d: connection closed (%s) after %zu of %zu replies\n",
                   c.id, n == 0 ? "EOF" : std::strerror(errno), c.next, c.expects.size());
      return false;
    }
    redisReaderFeed(c.reader.get(), buf, static_cast<std::size_t>(n));
  }
  void* reply = nullptr;
  while (redisReaderGetReply(c.reader.get(), &reply) == REDIS_OK && reply != nullptr) {
    std::unique_ptr<redisReply, decltype(&freeReplyObject)> r(static_cast<redisReply*>(reply),
                                                              freeReplyObject);
    reply = nullptr;
    if (c.done()) {
      std::fprintf(stderr, "FAIL client %d: unexpected extra reply %s\n", c.id,
                   describe(r.get()).c_str());
      return false;
    }
    std::string err = check(c.expects[c.next], r.get());
    if (!err.empty()) {
      std::fprintf(stderr, "FAIL client %d reply %zu: %s\n", c.id, c.next, err.c_str());
      return false;
    }
    ++c.next;
  }
  if (c.reader->err != 0) {
    std::fprintf(stderr, "FAIL client %d: unparsable reply stream: %s\n", c.id, c.reader->errstr);
    return false;
  }
  return true;
}

bool on_writable(Client& c) {
  while (c.out_off < c.out.size()) {
    ssize_t n = send(c.fd, c.out.data() + c.out_off, c.out.size() - c.out_off, MSG_NOSIGNAL);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      std::fprintf(stderr, "FAIL client %d: send: %s\n", c.id, std::strerror(errno));
      return false;
    }
    c.out_off += static_cast<std::size_t>(n);
  }
  return true;
}

// Drives every client until all are done; false on the first failure or the deadline.
bool run(std::vector<Client>& clients, const Options& o) {
  const auto deadline = Clock::now() + std::chrono::seconds(o.timeout_s);
  std::vector<pollfd> fds;
  std::vector<Client*> owners;
  while (true) {
    fds.clear();
    owners.clear();
    for (auto& c : clients) {
      if (c.done()) continue;
      short ev = POLLIN;
      if (c.out_off < c.out.size()) ev |= POLLOUT;
      fds.push_back({c.fd, ev, 0});
      owners.push_back(&c);
    }
    if (fds.empty()) return true;
    if (Clock::now() > deadline) {
      std::fprintf(stderr, "FAIL: deadline of %d s passed with %zu clients unfinished\n",
                   o.timeout_s, fds.size());
      for (auto* c : owners) {
        std::fprintf(stderr, "  client %d: %zu of %zu replies, %zu of %zu bytes sent\n", c->id,
                     c->next, c->expects.size(), c->out_off, c->out.size());
      }
      return false;
    }
    if (poll(fds.data(), fds.size(), 100) < 0 && errno != EINTR) return false;
    for (std::size_t i = 0; i < fds.size(); ++i) {
      if ((fds[i].revents & POLLOUT) && !on_writable(*owners[i])) return false;
      if ((fds[i].revents & (POLLIN | POLLHUP | POLLERR)) && !on_readable(*owners[i])) {
        return false;
      }
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  auto opts = parse_args(argc, argv);
  if (!opts) {
    usage();
    return 2;
  }
  std::vector<Client> clients(static_cast<std::size_t>(opts->clients));
  std::size_t total = 0;
  for (int i = 0; i < opts->clients; ++i) {
    Client& c = clients[static_cast<std::size_t>(i)];
    c.id = i;
    c.fd = dial(*opts);
    if (c.fd < 0) {
      std::fprintf(stderr, "connect failed for client %d: %s\n", i, std::strerror(errno));
      return 2;
    }
    c.reader.reset(redisReaderCreate());
    plan(c, *opts);
    total += c.expects.size();
  }
  const auto start = Clock::now();
  const bool ok = run(clients, *opts);
  const double secs = std::chrono::duration<double>(Clock::now() - start).count();
  for (auto& c : clients)
    close(c.fd);
  if (!ok) return 1;
  std::printf("ok: %d clients, %zu replies checked in %.2f s\n", opts->clients, total, secs);
  return 0;
}
