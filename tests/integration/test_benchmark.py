"""redis-benchmark through the proxy, briefly: it completes and reports throughput.
Not a speed assertion (bench/throughput.sh compares speeds)."""

import re
import subprocess


def test_redis_benchmark_set_get(target):
    host, port = target.host_port
    out = subprocess.run(["redis-benchmark", "-h", host, "-p", str(port), "-n", "20000",
                          "-c", "20", "-t", "set,get", "-q"],
                         capture_output=True, text=True, timeout=100)
    assert out.returncode == 0, out
    assert "rror" not in out.stdout + out.stderr, out
    # -q prints progress lines ending in '\r', then one final line per test.
    final = dict(re.findall(r"\b(SET|GET): ([0-9.]+) requests per second", out.stdout))
    assert set(final) == {"SET", "GET"}, out.stdout
    assert all(float(rps) > 0 for rps in final.values()), final
    with target.client() as c:
        # redis-benchmark's SET writes key:__rand_int__ with a 3-byte value (-d default).
        assert c.command("STRLEN", "key:__rand_int__") == 3
