"""Load test of a Space folder (what the ``space`` stage writes) on loopback.

Starts ``python app.py`` in the folder, then loads it for ``--seconds`` under each of two
conditions, in ``--rounds`` interleaved rounds: ``--clients`` visitors that classify the
folder's example sentences back to back through the Gradio API (``/gradio_api/call/classify``,
the queue every browser goes through), and the same visitors beside one more client pasting
``--paste-chars`` characters (1 MB) again and again. Latency is what a client sees: request
sent to answer received. Writes JSON: per condition the visitors' requests, errors,
requests/s and p50/p99/max latency, the server's and client's CPU per request, and for the
pastes how long their refusal took (also alone, on an idle server) and the message::

    python scripts/space_load.py models/space --clients 32 --seconds 30 --out load.json

An error is a failed request, an answer that is not a prediction (a visitor) or not the
refusal (a paste), an answer that differs (the time shown aside) from the first answer to the
same input, or no answer within ``--timeout``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import httpx
import numpy as np

API = "/gradio_api/call/classify"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(folder: Path, python: str, timeout: float = 120.0) -> tuple[subprocess.Popen, str]:
    """``python app.py`` in ``folder`` on a free loopback port; returns (process, url)."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env.update(GRADIO_SERVER_PORT=str(port), GRADIO_ANALYTICS_ENABLED="False")
    proc = subprocess.Popen([python, "app.py"], cwd=folder, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"app.py exited with {proc.returncode}:\n{proc.stdout.read()}")
        try:
            with urllib.request.urlopen(url + "/", timeout=2) as r:
                if r.status == 200:
                    return proc, url
        except OSError:
            time.sleep(0.5)
    proc.kill()
    raise RuntimeError(f"app.py did not answer on {url} within {timeout:.0f} s")


async def call(client: httpx.AsyncClient, url: str, body: bytes) -> list:
    """One classification through Gradio's queue (``body``: the request's JSON, encoded once
    beforehand so that the client spends little time per call): the outputs, or an
    exception."""
    r = await client.post(url + API, content=body,
                          headers={"Content-Type": "application/json"})
    r.raise_for_status()
    event = None
    async with client.stream("GET", f"{url}{API}/{r.json()['event_id']}") as stream:
        stream.raise_for_status()
        async for line in stream.aiter_lines():
            if line.startswith("event: "):
                event = line[7:].strip()
            elif line.startswith("data: ") and event in ("complete", "error"):
                if event == "error":
                    raise RuntimeError(f"the app answered an error: {line[6:200]}")
                return json.loads(line[6:])
    raise RuntimeError("the stream ended without an answer")


class Tally:
    """Latencies (s) and errors of one kind of client, over every round of a condition."""

    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.errors: list[str] = []
        self.answers: list[list] = []
        self.first: dict[bytes, str] = {}
        """Request body -> its first answer (without the time shown): every later answer to
        the same input must equal it, whatever else runs at the same time."""

    def summary(self, seconds: float) -> dict:
        lat = np.asarray(self.latencies) * 1e3
        out = {"requests": len(lat) + len(self.errors), "errors": len(self.errors),
               "requests_per_s": round(len(lat) / seconds, 1)}
        if len(lat):
            p50, p99 = np.percentile(lat, [50, 99])
            out.update(p50_ms=round(float(p50), 1), p99_ms=round(float(p99), 1),
                       max_ms=round(float(lat.max()), 1))
        out["first_errors"] = self.errors[:5]
        return out


class Condition:
    """One load condition (visitors alone, or beside the paster), accumulated over rounds."""

    def __init__(self, paste: bytes | None) -> None:
        self.paste = paste
        self.visitors, self.pastes = Tally(), Tally()
        self.seconds = self.server_cpu = self.client_cpu = 0.0
        self.rounds: list[dict] = []
        """Per round: the visitors' requests/s and p99 (ms), to compare the conditions pair
        by pair (the machine's load changes between rounds)."""

    def add_round(self, seconds: float, latencies: list[float]) -> None:
        self.seconds += seconds
        self.rounds.append({"requests_per_s": round(len(latencies) / seconds, 1),
                            "p99_ms": round(float(np.percentile(latencies, 99)) * 1e3, 1)
                            if latencies else None})

    def summary(self) -> dict:
        answered = max(1, len(self.visitors.latencies) + len(self.pastes.latencies))
        out = {"seconds": round(self.seconds, 2),
               "visitors": self.visitors.summary(self.seconds),
               "server_cpu_ms_per_request": round(self.server_cpu * 1e3 / answered, 2),
               "client_cpu_ms_per_request": round(self.client_cpu * 1e3 / answered, 2),
               "rounds": self.rounds}
        if self.paste is not None:
            out["pastes"] = self.pastes.summary(self.seconds)
            out["pastes"]["message"] = self.pastes.answers[0][0] if self.pastes.answers else None
        return out


async def client_loop(client, url: str, inputs: list[bytes], start_at: int, until: float,
                      tally: Tally, ok, pause: float = 0.0) -> None:
    """Send ``inputs`` (request bodies, cycling from ``start_at``) back to back until
    ``until``."""
    i = start_at
    while time.monotonic() < until:
        data = inputs[i % len(inputs)]
        i += 1
        t0 = time.perf_counter()
        try:
            answer = await call(client, url, data)
        except Exception as e:  # counted, the load goes on
            tally.errors.append(f"{type(e).__name__}: {e}"[:300])
            continue
        latency = time.perf_counter() - t0
        same = tally.first.setdefault(data, untimed(answer)) == untimed(answer)
        if ok(answer) and same:
            tally.latencies.append(latency)
            tally.answers[:] = tally.answers or [answer]
        else:
            what = "unexpected answer" if not same else "answer differs from the first one"
            tally.errors.append(f"{what}: {str(answer)[:300]}")
        if pause:
            await asyncio.sleep(pause)


def untimed(answer: list) -> str:
    """An answer without the call times the page shows (``· 1.23 ms``)."""
    return re.sub(r" · [\d.]+ ms", "", json.dumps(answer, sort_keys=True, ensure_ascii=False))


def is_prediction(answer: list) -> bool:
    return len(answer) >= 2 and str(answer[1]).startswith("**")


def is_refusal(answer: list) -> bool:
    return str(answer[0]).startswith("The input is") and "characters long" in str(answer[0])


def body(data: list[str]) -> bytes:
    return json.dumps({"data": data}).encode()


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU time of process ``pid`` so far (Linux ``/proc``; 0 when unknown)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, TypeError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Paster:
    """The pasting client, in a process of its own as another visitor's machine would be:
    sending 1 MB bodies from the visitors' event loop slows the visitors' client, not the
    server (measured with 4 visitors: about 100 -> 50 requests/s with the paster in their
    process, no change beyond the noise beside a separate ``curl`` loop)."""

    def __init__(self, url: str, paste: bytes, pause: float, timeout: float) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_paste_loop, args=(child, url, paste, pause, timeout),
                                daemon=True)
        self.proc.start()

    def start(self, until: float) -> None:
        """Paste until ``until`` (``time.monotonic``, the same clock in every process)."""
        self.conn.send(until)

    def collect(self, tally: Tally) -> None:
        latencies, errors, answers = self.conn.recv()
        tally.latencies += latencies
        tally.errors += errors
        tally.answers += answers

    def close(self) -> None:
        self.conn.send(None)
        self.proc.join(timeout=30)


def _paste_loop(conn, url: str, paste: bytes, pause: float, timeout: float) -> None:
    async def paste_until(until: float, tally: Tally) -> None:
        async with httpx.AsyncClient(timeout=timeout) as client:
            await client_loop(client, url, [paste], 0, until, tally, is_refusal, pause)

    while (until := conn.recv()) is not None:
        tally = Tally()
        asyncio.run(paste_until(until, tally))
        conn.send((tally.latencies, tally.errors, tally.answers[:1]))


async def phase(url: str, bodies: list[bytes], clients: int, seconds: float, timeout: float,
                cond: Condition, paster: Paster | None = None,
                server_pid: int | None = None) -> None:
    """``clients`` visitors (beside ``paster`` when given) for ``seconds``, added to ``cond``
    with the CPU time the server and the visitors' client spent."""
    server0, client0 = cpu_seconds(server_pid), time.process_time()
    limits = httpx.Limits(max_connections=2 * clients + 4, max_keepalive_connections=2 * clients)
    async with httpx.AsyncClient(timeout=timeout, limits=limits) as client:
        t0 = time.monotonic()
        until = t0 + seconds
        if paster is not None:
            paster.start(until)
        before = len(cond.visitors.latencies)
        tasks = [client_loop(client, url, bodies, k, until, cond.visitors, is_prediction)
                 for k in range(clients)]
        await asyncio.wait_for(asyncio.gather(*tasks), seconds + 2 * timeout)
        cond.add_round(time.monotonic() - t0, cond.visitors.latencies[before:])
    if paster is not None:
        paster.collect(cond.pastes)
    cond.server_cpu += cpu_seconds(server_pid) - server0
    cond.client_cpu += time.process_time() - client0


async def refusals_alone(url: str, paste: bytes, n: int, timeout: float) -> dict:
    """Median and max time to refuse ``n`` pastes sent one by one to an idle server."""
    times = []
    async with httpx.AsyncClient(timeout=timeout) as client:
        for _ in range(n):
            t0 = time.perf_counter()
            answer = await call(client, url, paste)
            times.append((time.perf_counter() - t0) * 1e3)
            if not is_refusal(answer):
                raise RuntimeError(f"a paste was not refused: {str(answer)[:300]}")
    return {"p50_ms": round(float(np.median(times)), 1), "max_ms": round(max(times), 1)}


def examples(folder: Path, n_inputs: int) -> list[list[str]]:
    """The folder's example sentences as API inputs (with their pair when the page has two
    boxes)."""
    rows = [json.loads(x) for x in (folder / "examples.jsonl").read_text().splitlines() if x]
    if not rows:
        rows = [{"text": "a gorgeous , witty , seductive movie ."}]
    return [[r["text"], r.get("text_pair", "")][:n_inputs] for r in rows]


def n_inputs(url: str) -> int:
    with urllib.request.urlopen(url + "/gradio_api/info", timeout=10) as r:
        return len(json.load(r)["named_endpoints"]["/classify"]["parameters"])


def run(args: argparse.Namespace) -> dict:
    """Warm up, time pastes alone, then ``args.rounds`` rounds of the two conditions,
    alternating which goes first (so a change in the machine's load hits both alike)."""
    proc, url = start(args.space, args.python) if args.url is None else (None, args.url)
    pid = None if proc is None else proc.pid
    try:
        k = n_inputs(url)
        bodies = [body(d) for d in examples(args.space, k)]
        text = ("the film is good " * (args.paste_chars // 17 + 1))[: args.paste_chars]
        paste = body([text] + ["x"] * (k - 1))
        asyncio.run(phase(url, bodies, 2, 2.0, args.timeout, Condition(None)))  # warm up
        result = {"clients": args.clients, "seconds": args.seconds, "rounds": args.rounds,
                  "paste_chars": args.paste_chars, "cpus": os.cpu_count(),
                  "load_avg_before": [round(x, 2) for x in os.getloadavg()],
                  "space": str(args.space), "server_python": args.python,
                  "paste_alone_ms": asyncio.run(refusals_alone(url, paste, 5, args.timeout))}
        conditions = {"plain": Condition(None), "with_pastes": Condition(paste)}
        paster = Paster(url, paste, args.paste_pause, args.timeout)
        try:
            for r in range(args.rounds):
                for name in (conditions if r % 2 == 0 else reversed(conditions)):
                    cond = conditions[name]
                    asyncio.run(phase(url, bodies, args.clients, args.seconds / args.rounds,
                                      args.timeout, cond, paster if cond.paste else None, pid))
        finally:
            paster.close()
        result.update({name: c.summary() for name, c in conditions.items()})
        result["paired_rounds"] = paired(conditions["plain"].rounds,
                                         conditions["with_pastes"].rounds)
        result["load_avg_after"] = [round(x, 2) for x in os.getloadavg()]
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=30)
    return result


def paired(plain: list[dict], pastes: list[dict]) -> dict:
    """With pastes minus without, round by round: the mean difference of the visitors'
    requests/s and p99, and the smallest and largest."""
    out = {}
    for key in ("requests_per_s", "p99_ms"):
        d = [b[key] - a[key] for a, b in zip(plain, pastes, strict=True)
             if a[key] is not None and b[key] is not None]
        if d:
            out[key] = {"mean": round(float(np.mean(d)), 1), "min": round(min(d), 1),
                        "max": round(max(d), 1)}
    return out


def bounded(lo: float, hi: float, kind=int):
    def parse(text: str):
        value = kind(text)
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"expected {lo} to {hi}, got {value}")
        return value
    return parse


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("space", type=Path, help="the Space folder (app.py, model.onnx, ...)")
    ap.add_argument("--clients", type=bounded(1, 256), default=32)
    ap.add_argument("--seconds", type=bounded(0.5, 600, float), default=30.0)
    ap.add_argument("--rounds", type=bounded(1, 100), default=6,
                    help="rounds per condition, interleaved (each of seconds / rounds)")
    ap.add_argument("--paste-chars", type=bounded(1, 64 * 2**20), default=2**20)
    ap.add_argument("--paste-pause", type=float, default=0.2,
                    help="seconds the paster waits between pastes")
    ap.add_argument("--timeout", type=float, default=30.0, help="per request, seconds")
    ap.add_argument("--python", default=sys.executable,
                    help="interpreter for app.py (e.g. a venv of the Space's requirements)")
    ap.add_argument("--url", default=None, help="an app already running (not started here)")
    ap.add_argument("--out", type=Path, default=None, help="JSON file (default: stdout only)")
    args = ap.parse_args(argv)
    result = run(args)
    text = json.dumps(result, indent=2)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    print(text)
    return result


if __name__ == "__main__":
    main()
