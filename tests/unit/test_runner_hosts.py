"""Search workers SIGKILLed at four points of a trial's life, with workers on two "machines".

The machines are two network namespaces, each joined by veth to a bridge and given its own
address; a PostgreSQL server of their own listens on the bridge, so the workers in each reach
the study over TCP as they would from another host (the traffic stays on this machine). Each
pausing worker (:class:`~tests.unit.search_toys.Pausing`) stops for good at its kill point after
one finished trial and is killed there:

- ``trial``: inside the objective;
- ``ask``: right after ``ask``, before the trial's first heartbeat;
- ``tell``: the objective has returned, its value is not stored;
- ``idle``: between trials (no trial held).

On PostgreSQL the live workers fail the dead ones' trials once their heartbeat is ``grace``
seconds old (or, never having had one, once they have been seen silent that long), re-queue
their parameters and fill the study. On the journal (one machine, no heartbeat) the rerun of
the stage fails and re-queues them. Either way: exactly ``n`` finished trials, each
configuration finished once, every killed trial's configuration among them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from optuna.trial import TrialState

from distillery.search import runner
from tests.conftest import fresh_database
from tests.unit.search_toys import BRANIN, KILL_POINTS, NAS_SPACE, Pausing

ROOT = Path(__file__).resolve().parents[2]
HEARTBEAT = (1, 5)
"""Seconds between heartbeats and before a silent trial is failed (as in
``test_runner_workers``: short, with a grace period a loaded 2-core machine does not exceed)."""
CODE = "from tests.unit.search_toys import Pausing; Pausing(*{!r})({})"
REACH = ("import socket, sys, urllib.parse as u; a = u.urlsplit(sys.argv[1]); "
         "socket.create_connection((a.hostname, a.port), 5)")


@dataclass
class Hosts:
    namespaces: tuple[str, str]
    addresses: tuple[str, str]
    server: str
    """URL of the server's maintenance database (at the bridge's address)."""


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


def _remove(tag: str) -> None:
    """Delete the namespaces and bridge named with ``tag`` (a pid), where they exist."""
    for args in (["netns", "del", f"distillery-{tag}-a"], ["netns", "del", f"distillery-{tag}-b"],
                 ["link", "del", f"dsb{tag}"]):
        subprocess.run(["ip", *args], capture_output=True)


def _remove_leftovers() -> None:
    """Namespaces of test sessions that were killed before their teardown."""
    names = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    for pid in set(re.findall(r"^distillery-(\d+)-[ab]", names, re.M)):
        if not Path(f"/proc/{pid}").exists():
            _remove(pid)


def _subnet() -> str:
    """A /24 of 10.213.0.0/16 that no interface here uses: ``10.213.K``."""
    used = subprocess.run(["ip", "-4", "-o", "addr"], capture_output=True, text=True).stdout
    for k in (os.getpid() + i for i in range(250)):
        if f"10.213.{k % 250 + 1}." not in used:
            return f"10.213.{k % 250 + 1}"
    raise RuntimeError("no free subnet in 10.213.0.0/16")


def _build(tag: str, net: str) -> tuple[str, str]:
    """Bridge ``dsb<tag>`` at ``net.1``; namespaces ``distillery-<tag>-{a,b}`` at ``net.2``,
    ``net.3``, each joined to it by a veth pair."""
    _ip("link", "add", f"dsb{tag}", "type", "bridge", "forward_delay", "0")
    _ip("addr", "add", f"{net}.1/24", "dev", f"dsb{tag}")
    _ip("link", "set", f"dsb{tag}", "up")
    names = []
    for i, h in enumerate("ab"):
        ns, veth = f"distillery-{tag}-{h}", f"dsv{tag}{h}"
        _ip("netns", "add", ns)
        _ip("link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
        _ip("link", "set", veth, "master", f"dsb{tag}")
        _ip("link", "set", veth, "up")
        _ip("-n", ns, "addr", "add", f"{net}.{i + 2}/24", "dev", "eth0")
        _ip("-n", ns, "link", "set", "eth0", "up")
        _ip("-n", ns, "link", "set", "lo", "up")
        names.append(ns)
    return names[0], names[1]


@pytest.fixture(scope="module")
def two_hosts() -> Iterator[Hosts]:
    """Two namespaces on a bridge and a PostgreSQL server listening on the bridge only,
    trusting that subnet (skips, with the reason, when either cannot be made)."""
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("network namespaces need root and iproute2's `ip`")
    _remove_leftovers()
    tag, net = str(os.getpid()), _subnet()
    try:
        namespaces = _build(tag, net)
    except subprocess.CalledProcessError as e:
        _remove(tag)
        pytest.skip(f"network namespaces could not be made: {' '.join(e.cmd)}: {e.stderr}")
    script, folder = ROOT / "scripts" / "postgres.sh", tempfile.mkdtemp(prefix="distillery-pg.")
    proc = subprocess.run(["bash", str(script), "--listen", f"{net}.1", "--allow", f"{net}.0/24",
                           folder], capture_output=True, text=True, timeout=600)
    try:
        if proc.returncode != 0:
            pytest.skip(f"PostgreSQL could not start: {proc.stderr.strip()[-500:]}")
        server = proc.stdout.strip()
        for ns in namespaces:  # e.g. a firewall on bridged traffic
            reach = subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-c", REACH,
                                    server], capture_output=True, text=True)
            if reach.returncode != 0:
                pytest.skip(f"namespace {ns} cannot reach {server}: {reach.stderr[-300:]}")
        yield Hosts(namespaces, (f"{net}.2", f"{net}.3"), server)
    finally:
        subprocess.run(["bash", str(script), "--stop", folder], capture_output=True)
        _remove(tag)


# --------------------------------------------------------------------------- running and killing


def events(log: Path) -> list[tuple[float, str, int, str]]:
    """``(time, event, worker, key)`` per line of a :class:`Pausing` log."""
    out = []
    for line in log.read_text().splitlines() if log.exists() else []:
        t, event, worker, key = line.split(" ", 3)
        out.append((float(t), event, int(worker), key))
    return out


def wait_for(condition: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.time() + seconds
    while not condition():
        if time.time() > deadline:
            raise AssertionError(f"timed out after {seconds} s waiting for {what}")
        time.sleep(0.02)


def run(workers: list[tuple[str | None, Pausing]], gate: Path, log: Path,
        when_ready: Callable[[], None] = lambda: None) -> dict[int, tuple[float, str]]:
    """Start ``(namespace or None, worker)`` ``i`` as worker ``i``; once all are ready, call
    ``when_ready`` and open the gate; SIGKILL each pausing worker the moment it pauses; wait
    for the others to end.

    Returns:
        Per killed worker: the time of its kill and the key it paused on (``-``: none).
    """
    procs = [subprocess.Popen((["ip", "netns", "exec", ns] if ns else []) + [
        sys.executable, "-c", CODE.format(dataclasses.astuple(w), i)], cwd=ROOT)
        for i, (ns, w) in enumerate(workers)]
    pausing = {i for i, (_, w) in enumerate(workers) if w.pause}
    kills: dict[int, tuple[float, str]] = {}
    try:
        wait_for(lambda: sum(e[1] == "ready" for e in events(log)) == len(procs), 120,
                 "the workers to start")
        when_ready()
        gate.touch()
        while pausing - set(kills):
            for _, event, i, key in events(log):
                if event == "pause" and i not in kills:
                    procs[i].send_signal(signal.SIGKILL)
                    kills[i] = (time.time(), key)
            assert all(procs[i].poll() is None for i in pausing - set(kills)), \
                "a pausing worker ended before its kill point"
            time.sleep(0.02)
        for i, proc in enumerate(procs):
            if i not in pausing:
                assert proc.wait(timeout=120) == 0
    finally:
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            proc.wait()
    return kills


def check(storage: str, name: str, key: Callable, log: Path, workers: list[Pausing],
          kills: dict[int, tuple[float, str]]) -> dict[str, float]:
    """Study ``name`` holds its ``n_trials`` finished trials, each configuration once; the
    trials its killed workers held (and only those) failed, and their configurations finished;
    each configuration was started once, twice where a kill ended it after its start.

    Returns:
        Per kill point that held a trial: seconds from the kill to the trial's failure.
    """
    n = next(w.n_trials for w in workers if w.study == name)
    others = {i for i, w in enumerate(workers) if w.study != name}  # another study's
    kills = {i: kill for i, kill in kills.items() if i not in others}
    trials = runner.load(storage, name, heartbeat=HEARTBEAT).get_trials(deepcopy=False)
    finished = [str(key(t.params)) for t in trials if t.state == TrialState.COMPLETE]
    assert len(finished) == n and len(set(finished)) == n  # none finished twice
    failed = {str(key(t.params)): t for t in trials
              if t.state == TrialState.FAIL and "surplus" not in t.user_attrs}
    held = {workers[i].pause: k for i, (_, k) in kills.items() if workers[i].pause != "idle"}
    assert sorted(failed) == sorted(held.values())  # the dead workers' trials, no other
    assert set(held.values()) <= set(finished)  # none lost
    starts = Counter(k for _, event, i, k in events(log) if event == "start" and i not in others)
    rerun = {k for point, k in held.items() if point in ("trial", "tell")}
    assert set(starts) == set(finished)
    assert {k: c for k, c in starts.items() if c != 1} == {k: 2 for k in rerun}
    assert all(t.state in (TrialState.COMPLETE, TrialState.FAIL) for t in trials)
    killed_at = {k: t for t, k in kills.values()}
    return {point: failed[k].datetime_complete.timestamp() - killed_at[k]
            for point, k in held.items()}


def report(what: str, lag: dict[str, float]) -> None:
    """Print the measured figures (``pytest -s``; quoted in docs/search.md)."""
    print(f"\n{what}: seconds from kill to failure: "
          + ", ".join(f"{p} {s:.1f}" for p, s in sorted(lag.items())))


# --------------------------------------------------------------------------- the tests


def test_workers_on_two_hosts_killed_at_four_points_lose_and_repeat_nothing(two_hosts, tmp_path):
    """PostgreSQL over TCP from two namespaces, an HPO study and a NAS study
    (:func:`distillery.nas.search`, the same runner) at once. HPO: a live worker on one host,
    one killed at each kill point, across both hosts; NAS: a live worker on the other host,
    one killed at each kill point, across both hosts. The live workers fail the dead trials
    within the grace period after the kills and re-run their configurations."""
    from distillery import nas

    log, gate = tmp_path / "events.log", tmp_path / "go"
    with fresh_database(two_hosts.server) as url:
        def worker(search: str, pause: str) -> Pausing:
            n = {"hpo": 12, "nas": 10}[search]
            return Pausing(url, search, n, str(log), pause, 0.3, HEARTBEAT, search, str(gate))

        a, b = two_hosts.namespaces
        plan = [(a, worker("hpo", "")), (b, worker("hpo", "trial")), (a, worker("hpo", "ask")),
                (b, worker("hpo", "tell")), (a, worker("hpo", "idle")),
                (b, worker("nas", "")), (a, worker("nas", "trial")), (b, worker("nas", "ask")),
                (a, worker("nas", "tell")), (b, worker("nas", "idle"))]
        study, design = runner.open_study(url, "hpo", "random", BRANIN, 0, heartbeat=HEARTBEAT)
        runner.prepare(study, design, journal=False)
        runner.load(url, "nas", heartbeat=HEARTBEAT)

        def two_clients() -> None:  # each namespace's workers connect from its own address
            import psycopg

            with psycopg.connect(url) as db:
                rows = db.execute("SELECT host(client_addr) FROM pg_stat_activity "
                                  "WHERE datname = current_database()").fetchall()
            assert set(two_hosts.addresses) <= {r[0] for r in rows}

        kills = run(plan, gate, log, two_clients)
        workers = [w for _, w in plan]
        lag = {"hpo": check(url, "hpo", BRANIN.key, log, workers, kills),
               "nas": check(url, "nas", nas.GenomeSpace(NAS_SPACE).key, log, workers, kills)}
    for search, seconds in lag.items():
        report(f"{search}, PostgreSQL, two hosts", seconds)
    grace, interval = HEARTBEAT[1], HEARTBEAT[0]
    assert all(0 < s <= grace + 2 * interval + 1 for d in lag.values() for s in d.values()), lag


@pytest.mark.parametrize("search", ["hpo", "nas"])
def test_workers_killed_at_four_points_on_the_journal_are_rerun_by_the_next_run(search, tmp_path):
    """Journal file, one machine, HPO and NAS: the live worker stops when the rest of the
    study is held by dead workers; the stage's rerun (``runner.prepare``, as stages ``hpo`` and
    ``nas`` call it) fails and re-queues their trials, and a worker finishes the study."""
    from distillery import nas

    n, log, gate = 12, tmp_path / "events.log", tmp_path / "go"
    storage = str(tmp_path / "s.journal")
    plan = [(None, Pausing(storage, "s", n, str(log), p, 0.3, search=search, gate=str(gate)))
            for p in ("", *KILL_POINTS)]

    def stage() -> dict[str, int]:
        if search == "hpo":
            study, design = runner.open_study(storage, "s", "random", BRANIN, 0)
        else:
            study, design = runner.load(storage, "s"), []
        return runner.prepare(study, design, journal=True)

    stage()
    kills = run(plan, gate, log)
    assert stage()["stale"] == 3  # the stage again
    Pausing(storage, "s", n, str(log), search=search)(len(plan))
    key = BRANIN.key if search == "hpo" else nas.GenomeSpace(NAS_SPACE).key
    check(storage, "s", key, log, [w for _, w in plan], kills)
