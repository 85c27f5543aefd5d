"""`tryouts run --executor ray` on a real Ray cluster on 127.0.0.1: a head and a second node (ray.cluster_utils),
drivers as real `tryouts run` processes, the scripted replay server, and SQLite or a real PostgreSQL ledger.

The cluster is started with the replay server's key in its environment and the drivers without it: every
answer that comes back proves a worker read the key itself. Each test then checks the ledger (one row per
cell), and the ones that stress the lanes check the server's own arrival times against the lane's limit.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from tryouts import errors
from tryouts.engine.executor import Schedule
from tryouts.engine.limits import RateBudget
from tryouts.engine.policy import LaneLimits, Policy
from tryouts.engine.ray_executor import check_no_secrets, ray_lanes
from tryouts.engine.ray_lanes import LoopLag
from tryouts.engine.schedule import schedule
from tryouts.store import Store
from tryouts.types import Cell, GenParams, Message, ModelSpec, Request

KEY = "sk-raytest-5b1e0c7d9a2f44aa93"
KEY_ENV = "OPENAI_COMPAT_API_KEY"


@pytest.fixture(scope="module")
def keyed_server():
    """A replay server that answers only requests carrying KEY."""
    from tryouts.testing.replay import start_replay_server

    with start_replay_server(require_key=KEY) as url:
        yield url


@pytest.fixture(scope="module")
def ray_cluster():
    """A head (2 CPUs) and a second node (1 CPU) on 127.0.0.1, with KEY in their environment; yields (address,
    Ray's temporary folder). This test process never connects to it as a driver."""
    from ray.cluster_utils import Cluster

    temp = tempfile.mkdtemp(prefix="ray-t-", dir="/tmp")  # short: Ray's socket paths must fit in 107 bytes
    # Ray notes the cluster's address in <tmp>/ray/ray_current_cluster whatever temp_dir says, without
    # creating that folder (a new machine has none)
    os.makedirs(os.path.join(tempfile.gettempdir(), "ray"), exist_ok=True)
    saved = {k: os.environ.get(k) for k in (KEY_ENV, "RAY_USAGE_STATS_ENABLED")}
    os.environ.update({KEY_ENV: KEY, "RAY_USAGE_STATS_ENABLED": "0"})
    try:
        cluster = Cluster(initialize_head=True, head_node_args={
            "num_cpus": 2, "include_dashboard": False, "node_ip_address": "127.0.0.1", "temp_dir": temp})
        cluster.add_node(num_cpus=1, node_ip_address="127.0.0.1")
        cluster.wait_for_nodes()
    finally:  # the drivers must not have the key: only the workers do
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    try:
        yield cluster.address, Path(temp)
    finally:
        cluster.shutdown()


def tryouts(*args, timeout=600):
    env = {k: v for k, v in os.environ.items() if k != KEY_ENV}
    p = subprocess.run([sys.executable, "-m", "tryouts", *args], capture_output=True, text=True, timeout=timeout,
                       env=env)
    p.said = " ".join((p.stdout + p.stderr).split())  # the terminal wraps long lines
    return p


def start(*args):
    env = {k: v for k, v in os.environ.items() if k != KEY_ENV}
    return subprocess.Popen([sys.executable, "-m", "tryouts", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def write_suite(tmp_path, url, n, *, extra="", models=None, name="suite.yaml"):
    refs = models or [f"openai-compat:{url}#tokens=3;ttft_ms=2", f"openai-compat:{url}#tokens=5;itl_ms=1"]
    body = "models:\n" + "".join(f"  - model: \"{r}\"\n    label: m{i}\n" for i, r in enumerate(refs))
    body += "prompts: [\"Item {{ n }}\"]\ncases:\n" + "".join(f"  - {{id: c{i}, vars: {{n: '{i}'}}}}\n"
                                                             for i in range(n))
    path = tmp_path / name
    path.write_text(body + extra)
    return str(path)


def ledger_counts(store: Store, run_id: str) -> tuple[int, int, int]:
    rows, _ = store.results(run_id, columns=["model_index", "case_index", "repeat_index", "cell_key", "ok"])
    return (len(rows), len({(r["model_index"], r["case_index"], r["repeat_index"]) for r in rows}),
            len({r["cell_key"] for r in rows}))


def arrivals(url: str) -> list[tuple[int, str]]:
    base = url.removesuffix("/v1")
    return [tuple(a) for a in httpx.get(f"{base}/_replay/arrivals", timeout=30).json()["arrivals"]]


def max_in_window(times_ns: list[int], window_s: float) -> int:
    times = sorted(times_ns)
    best, lo = 0, 0
    for hi, t in enumerate(times):
        while t - times[lo] >= window_s * 1e9:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


def files_containing(root: Path, needle: bytes) -> list[str]:
    found = []
    for path in root.rglob("*"):
        try:
            if path.is_file() and not path.is_symlink() and needle in path.read_bytes():
                found.append(str(path))
        except OSError:  # sockets, files removed meanwhile
            continue
    return found


# ---- on the cluster --------------------------------------------------------------------------------------


def test_a_suite_runs_on_the_cluster_with_keys_only_on_the_workers(tmp_path, ray_cluster, keyed_server):
    address, temp = ray_cluster
    db = str(tmp_path / "ray.db")
    path = write_suite(tmp_path, keyed_server, 150, extra="repeats: 2\nconcurrency: {openai-compat: 8}\n")
    p = tryouts("run", path, "--executor", "ray", "--ray-address", address, "--db", db, "-f", "json")
    assert p.returncode == 0, p.stderr[-3000:]
    data = json.loads(p.stdout)
    results = data["results"]
    assert data["run"]["status"] == "done" and len(results) == 600
    assert all(r["ok"] for r in results), results[0]["error"]  # the driver has no key: the workers' was used
    assert len({r["cell_key"] for r in results}) == 600
    assert {r["text"] for r in results if r["model_index"] == 0} == {" w0 w1 w2"}
    assert all(r["timing_valid"] is not None and r["ttft_ms"] is not None for r in results)
    # the same suite on the local executor (with the key) stores the same cells with the same answers
    local = subprocess.run([sys.executable, "-m", "tryouts", "run", path, "--db", db, "-f", "json", "--no-cache"],
                           capture_output=True, text=True, env={**os.environ, KEY_ENV: KEY}, timeout=600)
    assert local.returncode == 0, local.stderr[-2000:]
    there = {(r["cell_key"], r["text"]) for r in json.loads(local.stdout)["results"]}
    assert there == {(r["cell_key"], r["text"]) for r in results}
    # the key is in no log, spilled object or session file of the cluster
    assert files_containing(temp, KEY.encode()) == []
    assert KEY not in p.stdout + p.stderr


def test_two_drivers_a_lost_lane_actor_and_the_lane_limit(tmp_path, ray_cluster, keyed_server, pg_url):
    """Two --shard drivers on one PostgreSQL ledger share the lane's actor; it is killed mid-run. Every cell
    gets exactly one row, and the server never sees more than the lane's budget in any window."""
    address, _ = ray_cluster
    db = pg_url.replace("postgresql://", "postgresql+psycopg://")
    limit, window = 120, 1.0  # 7,200 a minute held over 1 s: at most 120 in any second
    model = f"openai-compat:{keyed_server}#tokens=2;ttft_ms=3;id=lane-{time.time_ns()}"
    path = write_suite(tmp_path, keyed_server, 1000, models=[model, model.replace("tokens=2", "tokens=3")], extra=(
        "repeats: 1\nconcurrency: {openai-compat: 8}\n"
        f"rate_limits: {{openai-compat: {{requests_per_minute: {limit * 60}, window_s: {window}}}}}\n"))
    before = len(arrivals(keyed_server))
    drivers = [start("run", path, "--executor", "ray", "--ray-address", address, "--db", db, "--shard", f"{i}/2",
                     "--run-id", "big-sweep", "--no-progress") for i in range(2)]
    store = Store(db)
    try:
        deadline = time.monotonic() + 240
        while True:
            assert time.monotonic() < deadline, "no results within 240 s"
            assert all(d.poll() is None for d in drivers), [d.communicate() for d in drivers]
            try:
                done = ledger_counts(store, "big-sweep")[0]
            except Exception:
                done = 0
            if done >= 300:
                break
            time.sleep(0.2)
        killer = subprocess.run([sys.executable, "-c", KILL_LANES, address], capture_output=True, text=True,
                                timeout=120, env={**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"})
        assert killer.returncode == 0 and int(killer.stdout.split()[-1]) >= 1, killer.stdout + killer.stderr
        outs = [d.communicate(timeout=600) for d in drivers]
    finally:
        for d in drivers:
            if d.poll() is None:
                d.kill()
    assert all(d.returncode == 0 for d in drivers), [o[1][-2000:] for o in outs]
    assert ledger_counts(store, "big-sweep") == (2000, 2000, 2000)
    rows, _ = store.results("big-sweep", columns=["ok", "error"])
    assert all(r["ok"] for r in rows), [r["error"] for r in rows if not r["ok"]][:3]
    assert store.get_run_row("big-sweep")["status"] == "done"
    seen = [t for t, script in arrivals(keyed_server)[before:] if "lane-" in script]
    assert len(seen) >= 2000  # a chunk lost with the actor is sent again: its cells may reach the server twice
    # the lane counts a request when it sends it, the server when it arrives: the requests in flight (8 at most)
    # may arrive in the next window on a busy machine
    assert max_in_window(seen, window) <= limit + 8


KILL_LANES = """
import sys, ray
ray.init(address=sys.argv[1], namespace="tryouts", log_to_driver=False)
killed = 0
for a in ray.util.list_named_actors(all_namespaces=True):
    if a["name"].startswith("tryouts-lane-"):
        ray.kill(ray.get_actor(a["name"], namespace=a["namespace"]))
        killed += 1
print("killed", killed)
"""


def test_a_killed_driver_resumes_on_the_cluster(tmp_path, ray_cluster, keyed_server):
    address, _ = ray_cluster
    db = str(tmp_path / "resume.db")
    path = write_suite(tmp_path, keyed_server, 400, models=[f"openai-compat:{keyed_server}#tokens=2;ttft_ms=20"],
                       extra="concurrency: {openai-compat: 4}\n")
    driver = start("run", path, "--executor", "ray", "--ray-address", address, "--db", db, "--no-progress")
    store = Store(db)
    deadline = time.monotonic() + 240
    while True:
        assert driver.poll() is None and time.monotonic() < deadline, driver.communicate()
        runs = store.list_runs()
        if runs and ledger_counts(store, runs[0]["id"])[0] >= 40:
            break
        time.sleep(0.2)
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    run_id = runs[0]["id"]
    kept = ledger_counts(store, run_id)[0]
    assert 40 <= kept < 400
    assert store.get_run_row(run_id)["status"] == "stale"
    p = tryouts("run", "--resume", run_id, "--executor", "ray", "--ray-address", address, "--db", db, "--no-progress")
    assert p.returncode == 0, p.stderr[-3000:]
    assert f"{400 - kept} of 400 cells to run" in p.said
    assert ledger_counts(store, run_id) == (400, 400, 400)
    assert store.get_run_row(run_id)["status"] == "done"


def test_local_models_load_once_per_actor_and_are_flagged_as_shared_cpu(tmp_path, ray_cluster, demo_models):
    address, _ = ray_cluster
    db = str(tmp_path / "local.db")
    path = write_suite(tmp_path, None, 6, models=[f"hf:{demo_models.hf_dir}", f"llamacpp:{demo_models.gguf_path}"],
                       extra="defaults: {params: {max_tokens: 4, temperature: 0}}\n")
    p = tryouts("run", path, "--executor", "ray", "--ray-address", address, "--db", db, "-f", "json")
    assert p.returncode == 0, p.stderr[-3000:]
    results = json.loads(p.stdout)["results"]
    assert len(results) == 12 and all(r["ok"] for r in results), [r["error"] for r in results if not r["ok"]]
    for m in (0, 1):
        mine = sorted((r for r in results if r["model_index"] == m), key=lambda r: r["case_index"])
        assert sum(r["load_ms"] is not None for r in mine) == 1  # loaded once, its load time on its first cell
        assert all(r["timing_valid"] is False for r in mine)  # a CPU shared with the node's other work
    shown = tryouts("show", "latest", "--db", db)
    assert "Speed figures leave out 12 cell(s)" in shown.said, shown.said


def test_the_cost_budget_holds_on_the_cluster(tmp_path, ray_cluster, keyed_server):
    address, _ = ray_cluster
    # 11 input + 4 output tokens at $1000/M in and $2000/M out: $0.019 a cell
    path = write_suite(tmp_path, keyed_server, 30, models=[f"openai-compat:{keyed_server}#tokens=4;ttft_ms=5"],
                       extra="concurrency: {openai-compat: 2}\ndefaults: {params: {max_tokens: 4}}\n")
    Path(path).write_text(Path(path).read_text().replace("    label: m0\n", "    label: m0\n    options: {price: "
                                                         "'1000,2000'}\n"))
    db = str(tmp_path / "b.db")
    p = tryouts("run", path, "--executor", "ray", "--ray-address", address, "--db", db, "--budget", "0.2")
    assert p.returncode == 3 and "Stopped at the budget" in p.said, p.said[-2000:]
    run = Store(db).get_run("latest")
    spent = sum(Decimal(r["cost_usd_exact"]) for r in run["results"])
    assert 0 < len(run["results"]) < 30 and spent <= Decimal("0.2")
    again = tryouts("run", "--resume", run["run"]["id"], "--executor", "ray", "--ray-address", address, "--db", db,
                    "--budget", "5")
    assert again.returncode == 0, again.said[-2000:]
    assert ledger_counts(Store(db), run["run"]["id"]) == (30, 30, 30)


def test_a_key_in_a_models_options_is_refused_before_anything_runs(tmp_path, ray_cluster, keyed_server):
    address, _ = ray_cluster
    path = write_suite(tmp_path, keyed_server, 2, models=[f"openai-compat:{keyed_server}#tokens=2"])
    text = Path(path).read_text().replace("    label: m0\n", "    label: m0\n    options: {headers: {Authorization: "
                                          f"'Bearer {KEY}'}}}}\n")
    Path(path).write_text(text)
    p = tryouts("run", path, "--executor", "ray", "--ray-address", address, "--db", str(tmp_path / "k.db"))
    assert p.returncode == 1, p.stdout + p.stderr
    assert "has a key in its reference or options" in p.said and "api_key_env" in p.said
    assert KEY not in p.stdout + p.stderr and "Traceback" not in p.stderr


# ---- the parts, without a cluster -------------------------------------------------------------------------


def cell(ref: str, m: int, c: int = 0, **options) -> Cell:
    spec = ModelSpec.parse(ref)
    if options:
        spec = spec.model_copy(update={"options": {**spec.options, **options}})
    return Cell(m, c, 0, spec, Request(messages=[Message(role="user", content="hi")], params=GenParams()), f"k{m}{c}")


def test_remote_lanes_split_by_key_and_model_and_a_local_server_stays_whole():
    remote = "openai-compat:http://192.0.2.10:9/v1#"  # never contacted: only scheduled
    cells = [cell(remote + "a", 0), cell(remote + "a", 0, 1), cell(remote + "b", 1),
             cell(remote + "a", 2, api_key_env="OTHER_KEY"),
             cell("openai-compat:http://127.0.0.1:9/v1#x", 3), cell("openai-compat:http://127.0.0.1:9/v1#y", 4)]
    lanes = ray_lanes(schedule(cells, Policy()), Policy(), 0.0)
    by_models = sorted(sorted({c.model_index for c in lane.cells}) for lane in lanes)
    assert by_models == [[0], [1], [2], [3, 4]]
    assert [lane.pinned for lane in lanes if {c.model_index for c in lane.cells} == {3, 4}] == [True]
    assert len({lane.name for lane in lanes}) == 4
    # the same lane with the same limits has the same name in every driver: they share its actor
    assert [lane.name for lane in ray_lanes(schedule(cells, Policy()), Policy(), 0.0)] == [lane.name for lane in lanes]


def test_a_secret_in_options_is_refused_and_not_echoed():
    sched = schedule([cell("openai-compat:http://192.0.2.10:9/v1#a", 0, headers={"Authorization": f"Bearer {KEY}"})],
                     Policy())
    with pytest.raises(errors.UsageError) as info:
        check_no_secrets(sched)
    assert KEY not in str(info.value) and "api_key_env" in str(info.value)
    with pytest.raises(errors.UsageError) as info:
        check_no_secrets(schedule([cell("openai-compat:http://alice:hunter2-secret@192.0.2.10:9/v1#a", 0)], Policy()))
    assert "hunter2" not in str(info.value)
    check_no_secrets(Schedule(lanes=[]))  # nothing to refuse


def test_the_loop_probe_sees_a_stalled_loop():
    async def main():
        lag = LoopLag()
        lag.start()
        await asyncio.sleep(0.05)
        t0 = time.perf_counter_ns()
        await asyncio.sleep(0.03)
        calm = lag.late_between(t0, time.perf_counter_ns())
        t1 = time.perf_counter_ns()
        time.sleep(0.05)  # the CPU is taken: every timestamp on this loop is late
        await asyncio.sleep(0.03)
        return calm, lag.late_between(t1, time.perf_counter_ns())

    calm, stalled = asyncio.run(main())
    assert stalled is True
    assert calm in (True, False)  # a busy machine may stall the calm part too; the stall must be seen


def test_a_lane_worker_made_after_a_loss_waits_one_window():
    now = [100.0]
    budget = RateBudget(10, 500, window_s=1.0, clock=lambda: now[0])
    budget.fill()  # a new worker knows nothing of what the lost one sent: the window counts as used up now
    assert budget.wait_needed() == pytest.approx(1.0)
    now[0] = 100.5
    assert budget.wait_needed() == pytest.approx(0.5)
    now[0] = 101.0
    assert budget.wait_needed() == 0
    tokens_only = RateBudget(None, 500, window_s=1.0, clock=lambda: now[0])
    tokens_only.fill()
    assert tokens_only.wait_needed() == pytest.approx(1.0)
    limits = LaneLimits(concurrency=4, requests_per_minute=600, window_s=1.0)
    assert limits.rate_budget().requests == pytest.approx(10)
    assert LaneLimits(concurrency=4).rate_budget() is None
