// libFuzzer target: ReplyFramer must give the same answer however the input is split,
// never read outside the view, and agree with hiredis's reader (the oracle) on RESP2.
//
// Oracle rule: when the input starts with a RESP2 type byte, hiredis 0.14 (Debian's,
// with the CVE-2021-32765 fix: strict bulk/multibulk lengths) is fed the whole input;
// both must say complete / need-more / error alike, and on complete give the same length
// for the first reply. Skipped, and only these, because they differ on purpose:
//  1. the framer refuses what Redis never sends and hiredis lets through: a ':' line that
//     is not a string2ll number, a bulk payload not followed by CRLF, a header line over
//     20 bytes, a bulk above max_reply_bulk_len (hiredis waits for it);
//  2. hiredis refuses nesting deeper than 8 aggregates ("depth > 7") and counts above
//     INT_MAX ("out of range"); the framer allows kMaxDepth and int64 counts;
//  3. hiredis 0.14 reads RESP2 only: it errors on RESP3 type bytes and on "*?"/"$?",
//     which the framer accepts. Detected conservatively: any such byte at a line start.
#include <hiredis/hiredis.h>

#include <cstdint>
#include <cstring>
#include <string>

#include "fuzz_common.hpp"
#include "tether/resp/reply_framer.hpp"

using tether::fuzz::ExactCopy;
using tether::resp::Limits;
using tether::resp::ReplyFramer;
using tether::resp::ScanStatus;

namespace {

struct Result {
  ScanStatus status = ScanStatus::need_more;
  std::size_t size = 0;
  char type = 0;
  std::string error;
  bool operator==(const Result&) const = default;
};

Result result_of(const ReplyFramer& f, ScanStatus st) {
  Result r;
  r.status = st;
  if (st == ScanStatus::complete) {
    r.size = f.reply().size;
    r.type = f.reply().type;
  } else if (st == ScanStatus::error) {
    r.error = f.error_message();
  }
  return r;
}

Result frame_split(const std::uint8_t* data, std::size_t size, std::size_t cut,
                   const Limits& limits) {
  ReplyFramer f(limits);
  const ExactCopy first(data, cut);
  const ScanStatus st = f.scan(first.view());
  if (st != ScanStatus::need_more) return result_of(f, st);
  const ExactCopy all(data, size);
  return result_of(f, f.scan(all.view()));
}

Result frame_grown(const std::uint8_t* data, std::size_t size, const Limits& limits) {
  ReplyFramer f(limits);
  Result r;
  for (std::size_t k = 0; k <= size; ++k) {
    const ExactCopy prefix(data, k);
    r = result_of(f, f.scan(prefix.view()));
    if (r.status != ScanStatus::need_more) break;
  }
  return r;
}

bool has_resp3_marker(std::string_view in) {
  for (std::size_t p = 0; p < in.size(); ++p) {
    if (p != 0 && (p < 2 || in[p - 2] != '\r' || in[p - 1] != '\n')) continue;
    if (std::strchr("_,#!=(%~>|;.", in[p]) != nullptr && in[p] != '\0') return true;
    if ((in[p] == '*' || in[p] == '$') && p + 1 < in.size() && in[p + 1] == '?') return true;
  }
  return false;
}

bool framer_stricter(const std::string& error) {
  return error == "invalid integer" || error == "bulk payload not followed by CRLF" ||
         error == "line too long" || error == "bulk length above max_reply_bulk_len";
}

void check_against_hiredis(std::string_view in, const Result& ours) {
  redisReader* r = redisReaderCreateWithFunctions(nullptr);  // frames, builds nothing
  FUZZ_CHECK(r != nullptr);
  FUZZ_CHECK(redisReaderFeed(r, in.data(), in.size()) == REDIS_OK);
  void* reply = nullptr;
  Result theirs;
  std::string their_error;
  if (redisReaderGetReply(r, &reply) != REDIS_OK) {
    theirs.status = ScanStatus::error;
    their_error = r->errstr;
  } else if (reply != nullptr) {
    theirs.status = ScanStatus::complete;
    theirs.size = in.size() - (r->len - r->pos);
  }
  redisReaderFree(r);

  if (ours.status == theirs.status) {
    if (ours.status == ScanStatus::complete) FUZZ_CHECK(ours.size == theirs.size);
    return;
  }
  if (ours.status == ScanStatus::error && framer_stricter(ours.error)) return;  // rule 1
  if (theirs.status == ScanStatus::error &&
      (their_error.find("depth > 7") != std::string::npos ||
       their_error.find("out of range") != std::string::npos)) {
    return;  // rule 2
  }
  if (theirs.status == ScanStatus::error && has_resp3_marker(in)) return;  // rule 3
  tether::fuzz::fail("framer and hiredis disagree");
}

void run(const std::uint8_t* data, std::size_t size, const Limits& limits, bool oracle) {
  const ExactCopy copy(data, size);
  ReplyFramer f(limits);
  const Result whole = result_of(f, f.scan(copy.view()));
  if (whole.status == ScanStatus::complete) {
    FUZZ_CHECK(whole.size > 0 && whole.size <= size);
  }
  FUZZ_CHECK(frame_split(data, size, tether::fuzz::derived_offset(data, size), limits) == whole);
  if (size <= 512) FUZZ_CHECK(frame_grown(data, size, limits) == whole);
  if (oracle && size > 0 && std::strchr("+-:$*", data[0]) != nullptr && data[0] != 0) {
    check_against_hiredis(copy.view(), whole);
  }

  // The whole input as a stream of replies.
  std::string_view rest = copy.view();
  f.reset();
  while (!rest.empty() && f.scan(rest) == ScanStatus::complete) {
    FUZZ_CHECK(f.reply().size > 0 && f.reply().size <= rest.size());
    rest.remove_prefix(f.reply().size);
    f.reset();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  run(data, size, Limits{}, true);
  Limits tiny;
  tiny.max_reply_bulk_len = 16;
  run(data, size, tiny, false);
  return 0;
}
