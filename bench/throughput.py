"""Throughput and memory benchmark: evalrun against the ideal and against a bare litellm loop.

Starts tests/loopback_server.py as a subprocess on 127.0.0.1 with a fixed latency, then measures
in one run:

  (a) ideal     concurrency / latency
  (b) bare      litellm.acompletion in a loop under an asyncio.Semaphore (fresh subprocess)
  (c) evalrun   `python -m evalrun run SPEC` on a generated spec of N jobs (fresh subprocess,
                fresh EVALRUN_HOME), with the sender processes it starts by default, then with
                `--workers 0` (every request sent from its own process); its rate is N / the run
                phase (`duration_s` in summary.json: the request loop only, without interpreter
                start, imports or report writing), and the whole process's wall time (start to
                exit, report written)
  (d) promptfoo with --promptfoo DIR (a folder where `npm install promptfoo` ran) or
                $EVALRUN_BENCH_PROMPTFOO: `promptfoo eval` on the equivalent config (the same N
                requests, same prompts, maxConcurrency = concurrency, no cache), whole process

and prints the ratios (whole-process wall times: evalrun against promptfoo and bare litellm),
then the peak RSS of whole `evalrun run` processes at each --memory size (os.wait4 on the child,
so only that process is counted; "with senders" adds its sender processes, sampled), next to that
of the bare loop run as a worker pool (`concurrency` workers, no task per job) at the same size:
what litellm itself keeps.
Each size above the first is reached twice: by more items (the dataset grows with the jobs) and
by more samples of the first size's items (only the jobs grow).

    .venv/bin/python bench/throughput.py --jobs 5000 --concurrency 100 --latency 0.05 --memory 5000,50000 \
        --promptfoo /work/promptfoo

(b), (c) and (d) time their first requests too (no warm-up), so none is favoured.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SERVER = ROOT / "tests" / "loopback_server.py"
MODEL = "openai/bench"  # unknown to litellm's price list, like most local models: exercises "cost unknown"
KEY_ENV = "EVALRUN_BENCH_KEY"
PROMPTFOO_ENV = "EVALRUN_BENCH_PROMPTFOO"


@contextlib.contextmanager
def serving(latency: float) -> Iterator[str]:
    """tests/loopback_server.py in a subprocess for the block's length; yields its base URL."""
    proc = subprocess.Popen([sys.executable, str(SERVER), "--latency", str(latency), "--port", "0"],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.startswith("PORT "):
            raise RuntimeError(f"loopback server did not start: {line!r}")
        yield f"http://127.0.0.1:{int(line.split()[1])}/v1"
    finally:
        proc.terminate()
        proc.wait()


def bare(base: str, jobs: int, concurrency: int, pool: bool = False) -> None:
    """Mode (b), run in its own process: print the request rate of a plain litellm loop as JSON.

    With `pool`, `concurrency` workers pull from one shared range instead of one task per job
    under a semaphore: the same requests, but memory flat in the number of jobs (N pending
    tasks cost ~1.5 KB each), so its peak RSS shows what litellm itself keeps per request.
    """
    import asyncio

    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    litellm.suppress_debug_info = True

    async def main() -> float:
        semaphore = asyncio.Semaphore(concurrency)

        async def one(i: int) -> None:
            async with semaphore:
                await litellm.acompletion(model=MODEL, api_base=base, api_key="sk-bench-key",
                                          messages=[{"role": "user", "content": f"Q {i}"}], num_retries=0,
                                          timeout=60)

        start = time.perf_counter()
        if pool:
            numbers = iter(range(jobs))

            async def worker() -> None:
                for i in numbers:
                    await one(i)

            await asyncio.gather(*(worker() for _ in range(concurrency)))
        else:
            await asyncio.gather(*(one(i) for i in range(jobs)))
        return time.perf_counter() - start

    print(json.dumps({"rate": jobs / asyncio.run(main())}))


def write_spec(folder: Path, base: str, jobs: int, concurrency: int, samples: int = 1) -> Path:
    """A spec of `jobs` requests: jobs/(2 x samples) items x 2 variants x 1 model x `samples` samples."""
    items = folder / "items.jsonl"
    with items.open("w") as f:
        for i in range(jobs // (2 * samples)):
            f.write(json.dumps({"id": f"i{i}", "text": f"item number {i}"}) + "\n")
    spec = folder / "bench.yaml"
    extract = '{type: choice, choices: {a: ["ok"], b: ["nope"]}}'
    spec.write_text(f"""name: bench
dataset: {{path: items.jsonl}}
labels: [a, b]
variants:
  first: {{prompt: "First question about {{{{ text }}}}", extract: {extract}}}
  second: {{prompt: "Second question about {{{{ text }}}}", extract: {extract}}}
models:
  - {{model: {MODEL}, api_base: "{base}", api_key_env: {KEY_ENV}, concurrency: {concurrency}}}
samples: {samples}
""")
    return spec


def _rss_kb(pid: int) -> int:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:  # gone meanwhile
        return 0
    return next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")), 0)


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
            except (OSError, ValueError, IndexError):
                continue
    return found


class TreeMemory(threading.Thread):
    """Samples, four times a second, the summed RSS of a process and its children (evalrun's sender
    processes), and how many children it had at most: os.wait4 sees the main process alone."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.peak_kb = 0
        self.most_children = 0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.25):
            children = _children(self.pid)
            self.most_children = max(self.most_children, len(children))
            self.peak_kb = max(self.peak_kb, _rss_kb(self.pid) + sum(_rss_kb(c) for c in children))


def run_evalrun(base: str, jobs: int, concurrency: int, samples: int = 1,
                workers: int | None = None) -> dict[str, float]:
    """One `evalrun run` in a subprocess with a fresh EVALRUN_HOME: run-phase rate, wall time, peak RSS of its
    own process and of it with its sender processes, and how many senders it started."""
    with tempfile.TemporaryDirectory(prefix="evalrun-bench-") as tmp:
        folder = Path(tmp)
        spec = write_spec(folder, base, jobs, concurrency, samples)
        env = {**os.environ, "EVALRUN_HOME": str(folder / "home"), KEY_ENV: "sk-bench-key",
               "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
        command = [sys.executable, "-m", "evalrun", "run", str(spec), "--out", str(folder / "out")]
        if workers is not None:
            command += ["--workers", str(workers)]
        start = time.perf_counter()
        proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        tree = TreeMemory(proc.pid)
        tree.start()
        assert proc.stdout is not None
        report = proc.stdout.read().strip()
        tree.done.set()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        tree.join()
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            raise RuntimeError(f"evalrun exited {proc.returncode}")
        summary = json.loads((Path(report).parent / "summary.json").read_text())
        if summary["totals"]["answered"] != jobs:
            raise RuntimeError(f"evalrun answered {summary['totals']['answered']} of {jobs} jobs")
        duration = summary["run"]["duration_s"]
        return {"rate": jobs / duration, "duration_s": duration, "wall_s": wall, "peak_rss_mb": usage.ru_maxrss / 1024,
                "tree_rss_mb": max(tree.peak_kb, usage.ru_maxrss) / 1024, "senders": tree.most_children}


def run_promptfoo(folder_with_node_modules: Path, base: str, jobs: int, concurrency: int) -> float:
    """`promptfoo eval` on the equivalent of write_spec's spec in a subprocess: whole-process wall time.

    The same requests: jobs/2 test cases x the same two prompts, one OpenAI-compatible provider at the
    loopback server, at most `concurrency` in flight, its cache off, results written to its own
    database and to a JSON file (as evalrun writes its store and report), each case asserting the
    answer contains "ok" (evalrun's labelling). Telemetry and update checks are off: nothing leaves
    the machine.
    """
    cli = folder_with_node_modules / "node_modules" / ".bin" / "promptfoo"
    with tempfile.TemporaryDirectory(prefix="promptfoo-bench-") as tmp:
        folder = Path(tmp)
        with (folder / "tests.csv").open("w") as f:
            f.write("text\n")
            for i in range(jobs // 2):
                f.write(f"item number {i}\n")
        # the model name matters to promptfoo only as the request's "model" field
        (folder / "promptfooconfig.yaml").write_text(f"""description: bench
prompts:
  - "First question about {{{{ text }}}}"
  - "Second question about {{{{ text }}}}"
providers:
  - id: openai:chat:bench
    config: {{apiBaseUrl: "{base}", apiKeyEnvar: {KEY_ENV}}}
defaultTest:
  assert: [{{type: icontains, value: ok}}]
tests: file://tests.csv
evaluateOptions: {{maxConcurrency: {concurrency}, cache: false, showProgressBar: false}}
""")
        env = {**os.environ, KEY_ENV: "sk-bench-key", "PROMPTFOO_CONFIG_DIR": str(folder / "home"),
               "PROMPTFOO_DISABLE_TELEMETRY": "1", "PROMPTFOO_DISABLE_UPDATE": "1", "PROMPTFOO_CACHE_ENABLED": "false",
               "PROMPTFOO_DISABLE_SHARING": "1"}
        start = time.perf_counter()
        done = subprocess.run([str(cli), "eval", "-c", str(folder / "promptfooconfig.yaml"), "--no-cache",
                               "-j", str(concurrency), "-o", str(folder / "results.json"), "--no-table"],
                              cwd=folder, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - start
        results = folder / "results.json"
        if not results.exists():
            raise RuntimeError(f"promptfoo eval exited {done.returncode}: {done.stderr.strip()[-500:]}")
        rows = json.loads(results.read_text())["results"]["results"]
        answered = sum(1 for row in rows if (row.get("response") or {}).get("output"))
        if answered != jobs:
            raise RuntimeError(f"promptfoo answered {answered} of {jobs} requests ({len(rows)} results)")
        return wall


def run_bare_pool(base: str, jobs: int, concurrency: int) -> dict[str, float]:
    """The bare loop as a worker pool in a subprocess: rate and peak RSS (os.wait4, that process only)."""
    proc = subprocess.Popen([sys.executable, __file__, "--bare", base, "--pool", "--jobs", str(jobs),
                             "--concurrency", str(concurrency)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True)
    assert proc.stdout is not None
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError("bare litellm pool failed")
    return {"rate": json.loads(out.strip().splitlines()[-1])["rate"], "peak_rss_mb": usage.ru_maxrss / 1024}


def three_way(base: str, jobs: int, concurrency: int, latency: float, promptfoo: Path | None) -> dict[str, float]:
    """(a) to (d) against the server at `base`, printed; returns evalrun's figures (its default senders)."""
    print(f"loopback server {base}, latency {latency * 1000:.0f} ms, concurrency {concurrency}, "
          f"{jobs} jobs; python {sys.version.split()[0]}, {os.cpu_count()} CPUs", flush=True)
    ideal = concurrency / latency
    start = time.perf_counter()
    out = subprocess.run([sys.executable, __file__, "--bare", base, "--jobs", str(jobs),
                          "--concurrency", str(concurrency)], check=True, capture_output=True, text=True)
    bare_wall = time.perf_counter() - start
    bare_rate = json.loads(out.stdout.strip().splitlines()[-1])["rate"]
    ours = run_evalrun(base, jobs, concurrency)
    alone = run_evalrun(base, jobs, concurrency, workers=0)
    cli = promptfoo / "node_modules" / ".bin" / "promptfoo" if promptfoo else None
    theirs = run_promptfoo(promptfoo, base, jobs, concurrency) if promptfoo and cli and cli.exists() else None
    print(f"(a) ideal      {ideal:8.0f} req/s")
    print(f"(b) bare       {bare_rate:8.0f} req/s   {bare_rate / ideal:.2f} of ideal   "
          f"whole process {bare_wall:5.1f} s")
    for name, figures in [(f"{ours['senders']:.0f} senders", ours), ("--workers 0", alone)]:
        print(f"(c) evalrun    {figures['rate']:8.0f} req/s   {figures['rate'] / ideal:.2f} of ideal, "
              f"{figures['rate'] / bare_rate:.2f} of bare litellm  (run phase {figures['duration_s']:.1f} s, peak RSS "
              f"{figures['peak_rss_mb']:.0f} MB, with senders {figures['tree_rss_mb']:.0f} MB)   "
              f"whole process {figures['wall_s']:5.1f} s   [{name}]")
    if theirs is None:
        print(f"(d) promptfoo  not run: not installed ({cli or f'no --promptfoo DIR or ${PROMPTFOO_ENV}'}; "
              "see bench/README.md)")
    else:
        print(f"(d) promptfoo  {jobs / theirs:8.0f} req/s (whole process)   whole process {theirs:5.1f} s")
    line = (f"whole process, {jobs} requests: evalrun {ours['wall_s']:.1f} s ({alone['wall_s']:.1f} s with "
            f"--workers 0), bare litellm {bare_wall:.1f} s")
    if theirs is not None:
        line += (f", promptfoo {theirs:.1f} s; evalrun/promptfoo {ours['wall_s'] / theirs:.2f} "
                 f"(evalrun {theirs / ours['wall_s']:.2f}x as fast)")
    print(line, flush=True)
    return ours


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=5000, help="jobs for the throughput comparison (even)")
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--latency", type=float, default=0.05, help="server latency per request, seconds")
    parser.add_argument("--memory", default="5000,50000", help="job counts for peak RSS ('' to skip)")
    parser.add_argument("--promptfoo", metavar="DIR", type=Path, default=os.environ.get(PROMPTFOO_ENV),
                        help=f"folder where promptfoo is installed (node_modules/.bin/promptfoo); "
                        f"default ${PROMPTFOO_ENV}")
    parser.add_argument("--bare", metavar="BASE_URL", help=argparse.SUPPRESS)  # internal: mode (b)
    parser.add_argument("--pool", action="store_true", help=argparse.SUPPRESS)  # internal: (b) as a worker pool
    args = parser.parse_args()
    if args.bare:
        bare(args.bare, args.jobs, args.concurrency, args.pool)
        return 0

    with serving(args.latency) as base:
        ours = three_way(base, args.jobs, args.concurrency, args.latency, args.promptfoo)
        sizes = [int(n) for n in args.memory.split(",") if n.strip()]
        for jobs in sizes:
            # more jobs by more items (the dataset grows too), and by more samples of the smallest size's items
            by_items = ours if jobs == args.jobs else run_evalrun(base, jobs, args.concurrency)
            grown = jobs > sizes[0]
            by_samples = run_evalrun(base, jobs, args.concurrency, samples=jobs // sizes[0]) if grown else None
            pooled = run_bare_pool(base, jobs, args.concurrency)
            line = (f"peak RSS at {jobs:6d} jobs: evalrun {by_items['peak_rss_mb']:4.0f} MB, with senders "
                    f"{by_items['tree_rss_mb']:4.0f} MB ({jobs // 2} items x 2 variants, {by_items['rate']:.0f} req/s)")
            if by_samples:
                line += (f", {by_samples['peak_rss_mb']:4.0f} MB, with senders {by_samples['tree_rss_mb']:4.0f} MB "
                         f"({sizes[0] // 2} items x 2 variants x {jobs // sizes[0]} samples, "
                         f"{by_samples['rate']:.0f} req/s)")
            print(f"{line}; bare litellm pool {pooled['peak_rss_mb']:4.0f} MB ({pooled['rate']:.0f} req/s)",
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
