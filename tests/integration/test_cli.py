"""redis-cli and raw RESP through the proxy: basic commands, inline commands, pipelined
input, a refused stateful command, QUIT."""

import subprocess

import pytest

from harness import RespError, encode_command


def cli(target, *args, stdin=None, timeout=30):
    host, port = target.host_port
    return subprocess.run(["redis-cli", "-h", host, "-p", str(port), *args], input=stdin,
                          capture_output=True, timeout=timeout)


def test_set_get_incr(target):
    assert cli(target, "SET", "cli:k", "hello world").stdout == b"OK\n"
    assert cli(target, "GET", "cli:k").stdout == b"hello world\n"
    assert cli(target, "GET", "cli:missing").stdout == b"\n"
    for expected in (b"1\n", b"2\n", b"3\n"):
        assert cli(target, "INCR", "cli:n").stdout == expected
    assert cli(target, "INCRBY", "cli:n", "40").stdout == b"43\n"
    # Binary-safe and multi-line values survive the round trip.
    value = b"a\r\nb\x00c\xff" * 100
    with target.client() as c:
        assert c.command("SET", "cli:bin", value) == "OK"
        assert c.command("GET", "cli:bin") == value
        assert c.command("STRLEN", "cli:bin") == len(value)


def test_commands_from_stdin_share_one_connection(target):
    # redis-cli reads one command per line from stdin and sends them on one connection.
    script = b"SET cli:s 10\nINCR cli:s\nGET cli:s\n"
    out = cli(target, stdin=script)
    lines = out.stdout.decode().splitlines()
    assert lines == ["OK", "11", "11"], out


def test_inline_commands(target):
    with target.client() as c:
        c.send(b"SET cli:inline hello\r\nGET cli:inline\r\nPING\r\n")
        assert c.read_reply() == "OK"
        assert c.read_reply() == b"hello"
        assert c.read_reply() == "PONG"
        # Quoting rules of inline commands: the argument has a space and an escape.
        c.send(b'SET "cli:inline quoted" "a b\\x41"\r\n')
        assert c.read_reply() == "OK"
        assert c.command("GET", "cli:inline quoted") == b"a bA"
        # Inline and multibulk mixed in one write, bare LF line ending accepted.
        c.send(b"INCR cli:inline:n\n" + encode_command("INCR", "cli:inline:n")
               + b"INCR cli:inline:n\r\n")
        assert [c.read_reply() for _ in range(3)] == [1, 2, 3]


def test_pipelined_raw_socket(target):
    n = 5000
    with target.client() as c:
        payload = b"".join(encode_command("SET", f"cli:p:{i}", i * 7) for i in range(n))
        payload += b"".join(encode_command("GET", f"cli:p:{i}") for i in range(n))
        c.send(payload)
        assert [c.read_reply() for _ in range(n)] == ["OK"] * n
        assert [c.read_reply() for _ in range(n)] == [str(i * 7).encode() for i in range(n)]


def test_redis_cli_pipe(target):
    n = 2000
    data = b"".join(encode_command("RPUSH", "cli:piped", i) for i in range(n))
    out = cli(target, "--pipe", stdin=data)
    assert out.returncode == 0, out
    assert b"errors: 0, replies: %d" % n in out.stdout, out
    with target.client() as c:
        assert c.command("LRANGE", "cli:piped", 0, -1) == [str(i).encode() for i in range(n)]


@pytest.mark.proxy_only
def test_stateful_command_refused_and_connection_stays(target):
    with target.client() as c:
        assert c.command("SET", "cli:m", "1") == "OK"
        for cmd in (["CLIENT", "LIST"], ["CLIENT", "KILL", "ID", "1"], ["SCRIPT", "DEBUG", "yes"]):
            reply = c.command(*cmd)
            assert isinstance(reply, RespError), (cmd, reply)
            assert reply.code == "NOTSUPPORTED", (cmd, reply)
            assert f"'{cmd[0]}'" in reply, (cmd, reply)
        # Still usable, and no state leaked: INCR executes at once.
        assert c.command("INCR", "cli:m") == 2


def test_transactions_and_blocking_commands_through_redis_cli(target):
    # redis-cli in stdin mode: one connection for all lines, as an app would send them.
    out = cli(target, stdin=b"SET cli:t 1\nMULTI\nINCR cli:t\nGET cli:t\nEXEC\n"
                            b"RPUSH cli:l a\nBLPOP cli:l 1\nBLPOP cli:l 0.1\nGET cli:t\n")
    # The nil of the BLPOP that timed out prints as an empty line.
    assert out.stdout.decode().splitlines() == [
        "OK", "OK", "QUEUED", "QUEUED", "2", "2", "1", "cli:l", "a", "", "2"], out


@pytest.mark.proxy_only
def test_topology_commands_denied_and_redis_untouched(target):
    with target.client() as c:
        for cmd in (["SHUTDOWN", "NOSAVE"], ["shutdown"], ["REPLICAOF", "127.0.0.1", "1"],
                    ["SLAVEOF", "127.0.0.1", "1"], ["FAILOVER"]):
            reply = c.command(*cmd)
            assert isinstance(reply, RespError) and reply.code == "DENIED", (cmd, reply)
            assert f"'{cmd[0].upper()}'" in reply, (cmd, reply)
        assert c.is_alive()
    # Nothing reached Redis: it is up and still a master.
    with target.redis.client() as direct:
        assert direct.command("ROLE")[0] == b"master"


def test_quit(target):
    with target.client() as c:
        c.send(b"SET cli:q 1\r\nGET cli:q\r\nQUIT\r\nINCR cli:q\r\n")
        assert c.read_reply() == "OK"
        assert c.read_reply() == b"1"
        assert c.read_reply() == "OK"
        assert c.read_raw_until_eof() == b""  # closed, and nothing after QUIT answered
    with target.client() as c:
        assert c.command("GET", "cli:q") == b"1"  # the INCR after QUIT never ran
