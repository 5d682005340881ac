"""pytest fixtures shared by the integration tests (see harness.py for the processes)."""

import os
import shutil
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

import harness  # noqa: E402


def pytest_collection_modifyitems(config, items):
    if not harness.direct_mode():
        return
    skip = pytest.mark.skip(reason="proxy-only behaviour; TETHER_DIRECT=1 targets redis-server")
    for item in items:
        if "proxy_only" in item.keywords:
            item.add_marker(skip)


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


def _failed(request):
    return any(getattr(request.node, "rep_" + w, None) is not None
               and getattr(request.node, "rep_" + w).failed for w in ("setup", "call"))


@pytest.fixture
def workdir(tmp_path):
    return str(tmp_path)


@pytest.fixture
def make_target(request, workdir):
    """make_target(overrides=None, unix=False, redis_args=()) -> started harness.Target.

    Every Target made here is stopped at teardown, by PID, pass or fail; on failure the
    proxy's stderr log, its config and the redis-server log are printed."""
    made = []

    def make(overrides=None, unix=False, redis_args=()):
        sub = os.path.join(workdir, f"t{len(made)}")
        os.makedirs(sub)
        target = harness.Target(sub, overrides, unix=unix, redis_args=redis_args)
        made.append(target)
        return target.start()

    yield make
    failed = _failed(request)
    problems = []
    for target in made:
        stop_problems = target.stop()
        if failed or stop_problems:
            print(target.logs())
        problems += stop_problems
    if not failed and not problems:
        shutil.rmtree(workdir, ignore_errors=True)
    # A sanitizer report or an unclean exit fails the test (reported as a teardown error).
    assert not problems, "redis-tether did not exit cleanly:\n" + "\n".join(problems)


@pytest.fixture
def target(make_target):
    """A started Target with the default configuration."""
    return make_target()

