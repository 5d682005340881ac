// ReplyFramer against hiredis 0.14's reader on RESP2: same need-more/complete answer and
// the same frame length, for every prefix of every sample.
#include <hiredis/hiredis.h>

#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "resp_test_util.hpp"
#include "tether/resp/reply_framer.hpp"

using tether::resp::ReplyFramer;
using tether::resp::ScanStatus;
using tether::resp::test::show;

namespace {

struct Oracle {
  ScanStatus status;
  std::size_t size;
};

// hiredis with no object functions builds nothing: it only frames.
Oracle hiredis_frame(const std::string& in) {
  redisReader* r = redisReaderCreateWithFunctions(nullptr);
  REQUIRE(r != nullptr);
  Oracle o{ScanStatus::need_more, 0};
  void* reply = nullptr;
  if (!in.empty()) REQUIRE(redisReaderFeed(r, in.data(), in.size()) == REDIS_OK);
  if (redisReaderGetReply(r, &reply) != REDIS_OK) {
    o.status = ScanStatus::error;
  } else if (reply != nullptr) {
    o.status = ScanStatus::complete;
    o.size = in.size() - (r->len - r->pos);
  }
  redisReaderFree(r);
  return o;
}

const std::vector<std::string>& samples() {
  static const std::vector<std::string> kSamples = {
      "+OK\r\n",
      "+\r\n",
      "+a\rb\r\n",
      "-ERR wrong number of arguments for 'get' command\r\n",
      "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n",
      ":0\r\n",
      ":1\r\n",
      ":-42\r\n",
      ":9223372036854775807\r\n",
      "$0\r\n\r\n",
      "$-1\r\n",
      "$5\r\nhello\r\n",
      std::string("$3\r\n\0\r\n\r\n", 9),
      "*0\r\n",
      "*-1\r\n",
      "*2\r\n$3\r\nfoo\r\n$-1\r\n",
      "*3\r\n:1\r\n+two\r\n-three\r\n",
      "*2\r\n*2\r\n:1\r\n:2\r\n*2\r\n$1\r\na\r\n*0\r\n",
      // XREAD-shaped: [[stream, [[id, [field, value]]]]]
      "*1\r\n*2\r\n$1\r\ns\r\n*1\r\n*2\r\n$3\r\n1-0\r\n*2\r\n$1\r\nf\r\n$1\r\nv\r\n",
      // Seven levels deep: the most hiredis 0.14 accepts.
      "*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n",
      "*3\r\n$7\r\nmessage\r\n$7\r\nchannel\r\n$5\r\nhello\r\n",
  };
  return kSamples;
}

}  // namespace

TEST_CASE("framer agrees with hiredis on RESP2 samples and all their prefixes",
          "[reply_framer][hiredis]") {
  for (const std::string& sample : samples()) {
    for (const std::string& in : {sample, sample + "+OK\r\n", sample + sample}) {
      for (std::size_t k = 0; k <= in.size(); ++k) {
        const std::string prefix = in.substr(0, k);
        INFO(show(prefix));
        const Oracle want = hiredis_frame(prefix);
        ReplyFramer f;
        const ScanStatus got = f.scan(prefix);
        REQUIRE(got == want.status);
        if (got == ScanStatus::complete) {
          CHECK(f.reply().size == want.size);
          CHECK(f.reply().type == prefix[0]);
        }
      }
    }
  }
}

TEST_CASE("where hiredis 0.14 and the framer legitimately differ", "[reply_framer][hiredis]") {
  // Debian's hiredis 0.14.1 carries the CVE-2021-32765 fix: bulk and multibulk lengths
  // follow string2ll and a count above INT_MAX is refused. What is left:
  ReplyFramer f;
  // 1. hiredis refuses nesting deeper than 8 aggregates; we accept up to kMaxDepth.
  std::string deep;
  for (int i = 0; i < 9; ++i)
    deep += "*1\r\n";
  deep += ":1\r\n";
  CHECK(hiredis_frame(deep).status == ScanStatus::error);
  CHECK(f.scan(deep) == ScanStatus::complete);
  // 2. hiredis reads ':' lines laxly and does not check the CRLF after a bulk payload;
  //    the framer refuses what Redis never sends, to catch a desynchronised stream.
  for (const std::string lax : {":abc\r\n", ":+1\r\n", ":01\r\n", ":1\rx\r\n", "$1\r\naXY"}) {
    INFO(show(lax));
    CHECK(hiredis_frame(lax).status == ScanStatus::complete);
    ReplyFramer g;
    CHECK(g.scan(lax) == ScanStatus::error);
  }
  // 3. Limits: hiredis has no bulk limit and no header-line limit (it waits), we have
  //    max_reply_bulk_len and 20-byte header lines; hiredis caps counts at INT_MAX.
  for (const std::string waits : {"$9999999999999\r\n", "*123456789012345678901"}) {
    CHECK(hiredis_frame(waits).status == ScanStatus::need_more);
    ReplyFramer g;
    CHECK(g.scan(waits) == ScanStatus::error);
  }
  CHECK(hiredis_frame("*2147483648\r\n").status == ScanStatus::error);
  ReplyFramer h;
  CHECK(h.scan("*2147483648\r\n") == ScanStatus::need_more);
  // 4. hiredis 0.14 reads RESP2 only.
  CHECK(hiredis_frame("*1\r\n~0\r\n").status == ScanStatus::error);
  ReplyFramer k;
  CHECK(k.scan("*1\r\n~0\r\n") == ScanStatus::complete);
}
