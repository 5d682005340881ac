// libFuzzer target: RequestScanner must give the same answer however the input is split,
// never read outside the view, and frame only requests ArgIterator can walk.
//
// For each input and for two sets of limits (Redis's defaults, and tiny ones that put
// every limit within reach): scan whole; scan split at a data-derived offset; scan grown
// a byte at a time (short inputs) and compare with the Redis model (redis_model.hpp:
// Redis 7.0's own algorithm with bytes arriving one at a time); then frame the whole
// input as a pipeline.
#include <cstdint>
#include <string>

#include "fuzz_common.hpp"
#include "redis_model.hpp"
#include "tether/resp/command_table.hpp"
#include "tether/resp/request_scanner.hpp"

using tether::fuzz::ExactCopy;
using tether::resp::ArgIterator;
using tether::resp::Limits;
using tether::resp::RequestScanner;
using tether::resp::ScanStatus;

namespace {

struct Result {
  ScanStatus status = ScanStatus::need_more;
  std::size_t size = 0;
  std::int64_t argc = 0;
  bool is_inline = false;
  std::string name;
  std::string error;
  bool operator==(const Result&) const = default;
};

Result result_of(const RequestScanner& s, ScanStatus st) {
  Result r;
  r.status = st;
  if (st == ScanStatus::complete) {
    r.size = s.request().size;
    r.argc = s.request().argc;
    r.is_inline = s.request().is_inline;
    r.name = std::string(s.request().name);
  } else if (st == ScanStatus::error) {
    r.error = s.error_message();
  }
  return r;
}

Result scan_whole(const std::uint8_t* data, std::size_t size, const Limits& limits) {
  RequestScanner s(limits);
  const ExactCopy copy(data, size);
  return result_of(s, s.scan(copy.view()));
}

Result scan_split(const std::uint8_t* data, std::size_t size, std::size_t cut,
                  const Limits& limits) {
  RequestScanner s(limits);
  const ExactCopy first(data, cut);
  ScanStatus st = s.scan(first.view());
  if (st != ScanStatus::need_more) return result_of(s, st);
  const ExactCopy all(data, size);
  return result_of(s, s.scan(all.view()));
}

Result scan_grown(const std::uint8_t* data, std::size_t size, const Limits& limits) {
  RequestScanner s(limits);
  Result r;
  for (std::size_t k = 0; k <= size; ++k) {
    const ExactCopy prefix(data, k);
    r = result_of(s, s.scan(prefix.view()));
    if (r.status != ScanStatus::need_more) break;
  }
  return r;
}

// A complete request's arguments: exactly argc of them, the first one the name.
void check_args(std::string_view bytes, const RequestScanner& s) {
  const auto& req = s.request();
  FUZZ_CHECK(req.size > 0 && req.size <= bytes.size());
  FUZZ_CHECK(req.argc >= 0);
  ArgIterator it(bytes, req);
  std::string scratch;
  std::string_view arg;
  std::int64_t n = 0;
  while (it.next(arg, scratch)) {
    if (n == 0) {
      const std::size_t keep = std::min(arg.size(), RequestScanner::kMaxNameLen);
      FUZZ_CHECK(req.name == arg || (req.is_inline && req.name == arg.substr(0, keep)));
    }
    ++n;
  }
  FUZZ_CHECK(n == req.argc);
  (void)tether::resp::classify_command(req.name);
}

// The scanner must answer as Redis does: same status, size, argc, name and error text.
// Inline names longer than kMaxNameLen may be truncated by the scanner (quoted ones).
void check_model(const std::uint8_t* data, std::size_t size, const Limits& limits,
                 const Result& ours) {
  const tether::fuzz::ModelResult redis = tether::fuzz::model_bytewise(
      std::string_view(reinterpret_cast<const char*>(data), size), limits);
  FUZZ_CHECK(ours.status == redis.status);
  FUZZ_CHECK(ours.error == redis.error);
  FUZZ_CHECK(ours.size == redis.size);
  FUZZ_CHECK(ours.argc == redis.argc);
  const std::size_t keep = ours.is_inline ? RequestScanner::kMaxNameLen : std::string::npos;
  FUZZ_CHECK(ours.name.substr(0, keep) == redis.name.substr(0, keep));
}

void run(const std::uint8_t* data, std::size_t size, const Limits& limits) {
  const Result whole = scan_whole(data, size, limits);
  FUZZ_CHECK(scan_split(data, size, tether::fuzz::derived_offset(data, size), limits) == whole);
  if (size <= 512) {
    FUZZ_CHECK(scan_grown(data, size, limits) == whole);
    check_model(data, size, limits, whole);
  }
  if (whole.status == ScanStatus::error) FUZZ_CHECK(whole.error.rfind("Protocol error: ", 0) == 0);

  // The whole input as a pipeline.
  const ExactCopy copy(data, size);
  std::string_view rest = copy.view();
  RequestScanner s(limits);
  while (!rest.empty() && s.scan(rest) == ScanStatus::complete) {
    check_args(rest, s);
    rest.remove_prefix(s.request().size);
    s.reset();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  run(data, size, Limits{});
  Limits tiny;
  tiny.max_bulk_len = 64;
  tiny.max_inline_len = 24;
  tiny.max_multibulk_len = 8;
  run(data, size, tiny);
  return 0;
}
