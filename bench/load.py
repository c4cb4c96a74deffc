"""Many owners at once: answer-to-update time with N concurrent app sessions (issue #18).

    .venv/bin/python bench/load.py [--sessions 20] [--answers 10] [--think 0] [--runs 1]

Starts the app as `.ci/app` does (`ui/serve.py`, headless, own free port), opens N sessions at once and
has each answer the questions an owner answers: the seven basics (province, city, county, kind,
industry, staff, revenue), then `--answers` follow-ups (bringing each up first with "show more" or
the change-an-answer list, as a person does), some of them changed again later. Three journeys are
spread over the sessions (a Shijiazhuang caterer, a Zhengzhou retailer, a Guangyuan shop, as in
tests/test_e2e_browser.py and bench/ui.py), with the numbers varied per session.

"Answer time" is the issue's "answer time": from the moment an answer is sent until the app's rerun
has been fully received — the app ends every run with a marker element (`<span class="run-done"
data-run=N>`), and the bench waits for the marker of the run that answer started. Printed: median,
p90 and max over every session's answers (and apart: the seven basics, the follow-ups, and the
"show more"/"change an answer" clicks), the app's own script time per run (the marker's data-ms), and
the server process's CPU (user+system, and as a share of the machine's cores) and resident size.

Why the websocket protocol and not browsers: each session here is a Streamlit client speaking the
app's own protocol (the BackMsg/ForwardMsg protobufs over /_stcore/stream, as the browser's frontend
does: a widget's new value with every other live widget's value, the fragment the widget is in, and
the deltas of the run read back). Twenty Chromium pages on a 2-core machine would spend more CPU
rendering than the server spends answering, on the same two cores, and the figure would measure the
browsers fighting the server; in real use each owner's browser renders on the owner's own device. So
this measures what the server makes everyone wait for; the browser's own rendering of one answer
(bench/ui.py: the browser's answer time minus the script time, some 100–250 ms on this machine) comes
on top, on the owner's device. The bench process itself uses little CPU (its own CPU is printed, so
a reader can check that it did not starve the server).

--think S waits S seconds (±50 %, at random) between a session's answers, as a person reading the
result does; the default 0 is the hardest case: all N sessions answer back to back, every moment.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SERVE = ROOT / "ui" / "serve.py"  # how .ci/app starts the app
RUN_DONE = re.compile(r'class="run-done" data-run="(\d+)" data-ms="(\d+)"')

# (province, city, county, kind, industry, staff, revenue) and the follow-ups, in the order asked; each
# follow-up is (fact, value as typed or the option's words); facts asked again later change an answer
JOURNEYS = [
    (("河北省", "石家庄市", "长安区", "企业", "餐饮业", "{e}", "3000000"),
     [("rents_state_owned_premises", "是"), ("monthly_rent", "10000"), ("insured_employees", "{e}"),
      ("unemployment_claimants", "2"), ("unemployment_insurance_paid", "24000"), ("monthly_rent", "12000"),
      ("unemployment_insurance_paid", "30000"), ("monthly_rent", "8000"), ("insured_employees", "{e1}"),
      ("unemployment_claimants", "1"), ("monthly_rent", "9000"), ("unemployment_insurance_paid", "26000")]),
    (("河南省", "郑州市", "金水区", "企业", "零售业", "{e}", "3,000,000"),
     [("rents_state_owned_premises", "是"), ("monthly_rent", "8000"), ("epidemic_cannot_operate_normally", "是"),
      ("insured_employees", "{e}"), ("monthly_rent", "9000"), ("unemployment_claimants", "1"),
      ("monthly_rent", "7000"), ("insured_employees", "{e1}"), ("monthly_rent", "8500"),
      ("unemployment_claimants", "0"), ("monthly_rent", "6000"), ("insured_employees", "{e}")]),
    (("四川省", "广元市", "利州区", "个体工商户", "零售业", "3", "50万"),
     [("plans_outdoor_promotion_or_stall", "是"), ("purchases_new_energy_vehicle", "否"),
      ("won_consumption_creation_title", "否"), ("holds_large_event", "是"),
      ("holds_repeated_large_events_same_venue", "否"), ("new_consumption_construction_project", "否"),
      ("plans_outdoor_promotion_or_stall", "否"), ("holds_large_event", "否"), ("purchases_new_energy_vehicle", "是"),
      ("plans_outdoor_promotion_or_stall", "是"), ("won_consumption_creation_title", "是"),
      ("holds_large_event", "是")]),
]
BASIC_KEYS = ("q_province", "q_city", "q_county", "q_entity_type", "q_industry", "q_employees", "q_revenue")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def p90(xs: list[float]) -> float:
    """The 90th percentile, nearest rank."""
    xs = sorted(xs)
    return xs[max(0, -(-len(xs) * 9 // 10) - 1)]


def start_server() -> tuple[subprocess.Popen, int]:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k != "ELIGIBILITY_RULES_DIR"}
    proc = subprocess.Popen([sys.executable, str(SERVE), "--server.headless=true", f"--server.port={port}",
                             "--server.address=127.0.0.1", "--browser.gatherUsageStats=false",
                             "--server.fileWatcherType=none"],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.monotonic() + 90
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as r:
                if r.read().strip() == b"ok":
                    return proc, port
        except OSError:
            time.sleep(0.1)
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            raise RuntimeError("the app did not start")


# ---------------------------------------------------------------- one session, over the websocket


@dataclass
class Widget:
    kind: str  # the element's type: text_input, selectbox, radio, button, ...
    id: str
    fragment: str
    options: list[str]


@dataclass
class Session:
    n: int
    port: int
    think: float
    timings: dict[str, list[float]] = field(default_factory=lambda: {"basic": [], "follow_up": [], "navigate": []})
    script_ms: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def __post_init__(self):
        self.widgets: dict[str, Widget] = {}  # user key -> the live widget
        self.states: dict[str, object] = {}  # widget id -> its WidgetState (the values the frontend holds)
        self.run = 0  # the last run marker received
        self.page_hash = ""
        self.rng = random.Random(self.n)

    async def open(self):
        import websockets

        self.ws = await websockets.connect(f"ws://127.0.0.1:{self.port}/_stcore/stream", subprotocols=["streamlit"],
                                           max_size=None, open_timeout=60, ping_interval=None)
        await self._send(None)  # the first run, as the frontend asks for it on connecting

    async def close(self):
        await self.ws.close()

    async def _send(self, change):
        """A rerun request with every live widget's value; `change` is (key, WidgetState fields)."""
        from streamlit.proto.BackMsg_pb2 import BackMsg

        msg = BackMsg()
        cs = msg.rerun_script
        cs.query_string = ""
        cs.page_script_hash = self.page_hash
        trigger = None
        if change is not None:
            key, kind, value = change
            w = self.widgets[key]
            cs.fragment_id = w.fragment
            if kind == "trigger_value":
                trigger = (w.id, value)
            else:
                self.states[w.id] = (kind, value)
        live = {w.id for w in self.widgets.values()}
        for wid, (kind, value) in self.states.items():
            if wid in live:
                ws = cs.widget_states.widgets.add()
                ws.id = wid
                setattr(ws, kind, value)
        if trigger:
            ws = cs.widget_states.widgets.add()
            ws.id, ws.trigger_value = trigger[0], True
        await self.ws.send(msg.SerializeToString())
        return await self._read_run()

    async def _read_run(self):
        """Read the run's messages until its end marker; the live widgets are the run's."""
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        seen: dict[str, Widget] = {}
        fragment_run = False
        self.shown_at = None
        while True:
            raw = await asyncio.wait_for(self.ws.recv(), 120)
            fm = ForwardMsg()
            fm.ParseFromString(raw)
            kind = fm.WhichOneof("type")
            if kind == "new_session":
                self.page_hash = fm.new_session.page_script_hash or fm.new_session.main_script_hash
            elif kind == "delta" and fm.delta.WhichOneof("type") == "new_element":
                el = fm.delta.new_element
                ek = el.WhichOneof("type")
                body = getattr(el, ek)
                if fm.delta.fragment_id:
                    fragment_run = True
                if ek == "exception":
                    self.errors.append(f"session {self.n}: {body.type}: {body.message}")
                elif ek == "html" and "run-done" in body.body:
                    m = RUN_DONE.search(body.body)
                    if m and int(m.group(1)) > self.run:
                        self.run = int(m.group(1))
                        self.script_ms.append(float(m.group(2)))
                        self.shown_at = time.perf_counter()  # the answer is fully received
                wid = getattr(body, "id", "")
                if isinstance(wid, str) and wid.startswith("$$ID-"):
                    key = wid.split("-", 2)[2]
                    seen[key] = Widget(ek, wid, fm.delta.fragment_id, list(getattr(body, "options", [])))
            elif kind == "script_finished":  # follows the marker: read it, so the next run starts clean
                if self.shown_at is None:
                    self.errors.append(f"session {self.n}: a run ended without its marker")
                    self.shown_at = time.perf_counter()
                self._live(seen, fragment_run)
                return

    def _live(self, seen, fragment_run):
        if fragment_run:  # a fragment's rerun replaces the fragment's widgets, the others stay
            self.widgets = {k: w for k, w in self.widgets.items() if not w.fragment} | seen
        else:
            self.widgets = seen

    async def act(self, what: str, key: str, kind: str, value) -> None:
        t = time.perf_counter()
        await self._send((key, kind, value))
        self.timings[what].append(self.shown_at - t)
        if self.think:
            await asyncio.sleep(self.think * self.rng.uniform(0.5, 1.5))

    async def answer(self, what: str, key: str, value: str) -> None:
        w = self.widgets[key]
        if w.kind in ("selectbox", "radio"):
            if value not in w.options:
                raise RuntimeError(f"{key}: no option {value!r} in {w.options}")
        await self.act(what, key, "string_value", value)

    async def journey(self, answers: int, facts, start: asyncio.Event) -> None:
        basics, follow = JOURNEYS[self.n % len(JOURNEYS)]
        e = 12 + self.n % 40
        fill = {"e": str(e), "e1": str(e + 1)}
        await self.open()
        await start.wait()
        for key, value in zip(BASIC_KEYS, basics):
            await self.answer("basic", key, value.format(**fill))
        answered: set[str] = set()
        for fact, value in (follow * (answers // len(follow) + 1))[:answers]:
            key = f"q_{fact}"
            for _ in range(40):  # bring the question up, as a person does (timed apart)
                if key in self.widgets:
                    break
                if fact in answered and "edit_fact" in self.widgets:
                    await self.answer("navigate", "edit_fact", facts[fact].zh)
                elif "more_questions" in self.widgets:
                    asked = {k for k in self.widgets if k.startswith("q_")}
                    await self.act("navigate", "more_questions", "trigger_value", True)
                    if {k for k in self.widgets if k.startswith("q_")} <= asked:
                        break  # nothing new asked: the app does not ask this one
                else:
                    break
            if key not in self.widgets:
                self.skipped.append(fact)
                continue
            await self.answer("follow_up", key, value.format(**fill))
            answered.add(fact)
        await self.close()


# ---------------------------------------------------------------- the run


class Sampler(threading.Thread):
    """The server's resident size every 0.2 s (and its peak)."""

    def __init__(self, proc):
        super().__init__(daemon=True)
        self.proc, self.peak, self.stop = proc, 0, threading.Event()

    def run(self):
        while not self.stop.is_set():
            try:
                self.peak = max(self.peak, self.proc.memory_info().rss)
            except Exception:  # noqa: BLE001 - the server ended: nothing more to sample
                return
            self.stop.wait(0.2)


async def drive(port: int, n: int, answers: int, think: float) -> list[Session]:
    from eligibility import default_facts

    facts = default_facts()
    start = asyncio.Event()
    sessions = [Session(i, port, think) for i in range(n)]
    tasks = [asyncio.create_task(s.journey(answers, facts, start)) for s in sessions]
    while not all(s.run for s in sessions):  # every first screen shown, then all start together
        await asyncio.sleep(0.05)
        for t in tasks:
            if t.done() and t.exception():
                raise t.exception()
    start.set()
    await asyncio.gather(*tasks)
    return sessions


def one_round(n: int, answers: int, think: float, profile: str | None = None) -> dict:
    import psutil

    proc, port = start_server()
    server = psutil.Process(proc.pid)
    try:
        asyncio.run(drive(port, 1, 1, 0))  # one visitor first: the rules are loaded, the server warm
        sampler = Sampler(server)
        sampler.start()
        spy = None
        if profile:  # py-spy (pip install py-spy) samples the server while the sessions answer
            spy = subprocess.Popen([str(Path(sys.executable).with_name("py-spy")), "record", "-p", str(proc.pid),
                                    "-o", profile, "-f", "raw", "-r", "50", "--gil", "--nonblocking"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        c0, me0, w0 = server.cpu_times(), time.process_time(), time.perf_counter()
        sessions = asyncio.run(drive(port, n, answers, think))
        if spy:
            spy.send_signal(2)
            spy.wait(30)
        wall = time.perf_counter() - w0
        c1, me1 = server.cpu_times(), time.process_time()
        rss = server.memory_info().rss
        sampler.stop.set()
        sampler.join()
    finally:
        os.killpg(proc.pid, 15)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
    cpu = (c1.user - c0.user) + (c1.system - c0.system)
    return {"sessions": sessions, "wall": wall, "cpu": cpu, "bench_cpu": me1 - me0, "rss": rss,
            "peak": max(sampler.peak, rss)}


def show(name: str, xs: list[float]) -> str:
    if not xs:
        return f"  {name:<28}: none"
    return (f"  {name:<28}: median {statistics.median(xs) * 1000:6.0f} ms, p90 {p90(xs) * 1000:6.0f} ms, "
            f"max {max(xs) * 1000:6.0f} ms  ({len(xs)} over the sessions)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sessions", type=int, default=20)
    ap.add_argument("--answers", type=int, default=10, help="follow-up answers per session, after the 7 basics")
    ap.add_argument("--think", type=float, default=0.0, help="seconds between a session's answers (±50 %%)")
    ap.add_argument("--runs", type=int, default=1, help="rounds, each on a freshly started server")
    ap.add_argument("--profile", metavar="FILE", help="py-spy's collapsed stacks of the server under load")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    load = os.getloadavg()
    print(f"{args.sessions} sessions, 7 basics + {args.answers} follow-ups each, think {args.think} s; "
          f"machine: {os.cpu_count()} CPUs, load before {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    for r in range(args.runs):
        res = one_round(args.sessions, args.answers, args.think, args.profile)
        ss = res["sessions"]
        every = {k: [x for s in ss for x in s.timings[k]] for k in ("basic", "follow_up", "navigate")}
        answers = every["basic"] + every["follow_up"]
        script = [x / 1000 for s in ss for x in s.script_ms]
        print(f"round {r + 1}: {res['wall']:.1f} s wall")
        print(show("answer -> update, all", answers))
        print(show("  the 7 basics", every["basic"]))
        print(show("  the follow-ups", every["follow_up"]))
        print(show("show more / change (clicks)", every["navigate"]))
        print(show("app script per run (data-ms)", script))
        print(f"  server: CPU {res['cpu']:.1f} s = {res['cpu'] / res['wall'] / (os.cpu_count() or 1):.0%} of "
              f"{os.cpu_count()} cores, RSS {res['rss'] / 2**20:.0f} MiB at the end (peak {res['peak'] / 2**20:.0f} "
              f"MiB); bench client CPU {res['bench_cpu']:.1f} s")
        skipped = [f for s in ss for f in s.skipped]
        errors = [e for s in ss for e in s.errors]
        if skipped:
            print(f"  not asked by the app (skipped): {len(skipped)}: {sorted(set(skipped))}")
        if errors:
            print(f"  ERRORS: {len(errors)}: " + "; ".join(errors[:5]))
    load = os.getloadavg()
    print(f"load after {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")


if __name__ == "__main__":
    main()
