"""Run the side-by-side benchmarks and write ``RESULTS.md`` and the chart.

    .venv/bin/python -m benchmarks.run                 # everything (about 20 min on 2 cores)
    .venv/bin/python -m benchmarks.run --quick         # the harness end to end, a few minutes
    .venv/bin/python -m benchmarks.run --only latency,imports
    .venv/bin/python -m benchmarks.run --only serving --serving-parts embed   # the server's embeddings only
    .venv/bin/python -m benchmarks.run --report-only   # rewrite RESULTS.md from the saved JSON

A full run writes ``benchmarks/RESULTS.md`` and ``benchmarks/results/``; ``--quick`` writes to
``benchmarks/quick/`` (not committed) unless ``--out`` says otherwise. Each section runs in a
fresh interpreter of its own, so one section's imports, threads and memory never reach another.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from ._common import HERE, REPO, Budget, child_env, save

#: section -> (module, whether huggingface_hub must be allowed to send requests: it refuses any
#: request, even to 127.0.0.1, while HF_HUB_OFFLINE=1; the server section stays offline)
SECTIONS = {
    "embeddings": ("benchmarks.embeddings", True),
    "latency": ("benchmarks.latency", True),
    "profile": ("benchmarks.profile_call", True),
    "imports": ("benchmarks.imports", False),
    "serving": ("benchmarks.serving", False),
}


def _budget(name: str) -> Budget:
    return Budget.quick() if name == "quick" else Budget.full()


def _run_section(name: str, budget_name: str, out_dir: Path) -> None:
    """In this interpreter (the child's side)."""
    module = importlib.import_module(SECTIONS[name][0])
    load_at_start = [round(x, 2) for x in os.getloadavg()]
    data = module.run(_budget(budget_name))
    data["machine"]["load_average_at_start"] = load_at_start
    text = data.pop("text", None)
    if text is not None:
        (out_dir / "profile_text_generation.txt").write_text(text)
    save(name, data, out_dir)


def _spawn(name: str, budget_name: str, out_dir: Path, torch_threads: int | None, serving_parts: str | None = None) -> bool:
    env = child_env()
    if torch_threads is not None:
        env["HFBRIDGE_BENCH_TORCH_THREADS"] = str(torch_threads)
    if serving_parts:
        env["HFBRIDGE_BENCH_SERVING_PARTS"] = serving_parts
    env["HF_HUB_OFFLINE"] = "0" if SECTIONS[name][1] else "1"
    started = time.perf_counter()
    print(f"[{name}] running ({budget_name})...", flush=True)
    done = subprocess.run([sys.executable, "-m", "benchmarks.run", "--section", name, "--budget", budget_name,
                           "--results", str(out_dir)], cwd=REPO, env=env)
    print(f"[{name}] {'done' if done.returncode == 0 else f'FAILED (exit {done.returncode})'} "
          f"in {time.perf_counter() - started:.0f} s", flush=True)
    return done.returncode == 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a short run that checks the harness (figures too few to quote)")
    parser.add_argument("--only", default="", help=f"comma-separated sections of {', '.join(SECTIONS)}")
    parser.add_argument("--out", type=Path, default=None, help="where RESULTS.md goes (results/ beside it)")
    parser.add_argument("--torch-threads", type=int, default=None,
                        help="torch threads of the server and the raw model in the serving section (default 1)")
    parser.add_argument("--serving-parts", default=None, metavar="embed,generate",
                        help="the halves of the serving section to run (default both; embed alone takes minutes)")
    parser.add_argument("--save-baseline", action="store_true",
                        help="record this run's server generation tokens/s as the baseline the target is judged against")
    parser.add_argument("--report-only", action="store_true", help="only rewrite the report from saved results")
    parser.add_argument("--section", choices=list(SECTIONS), help=argparse.SUPPRESS)
    parser.add_argument("--budget", default="full", help=argparse.SUPPRESS)
    parser.add_argument("--results", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.section:  # we are a section's own interpreter
        _run_section(args.section, args.budget, args.results)
        return 0

    out = args.out or (HERE / "quick" if args.quick else HERE)
    results = out / "results"
    results.mkdir(parents=True, exist_ok=True)
    wanted = [s.strip() for s in args.only.split(",") if s.strip()] or list(SECTIONS)
    unknown = sorted(set(wanted) - set(SECTIONS))
    if unknown:
        parser.error(f"unknown sections {unknown}; choose from {list(SECTIONS)}")
    ok = True
    if not args.report_only:
        for name in wanted:
            ok = _spawn(name, "quick" if args.quick else "full", results, args.torch_threads, args.serving_parts) and ok
    from .report import save_baseline, write_report

    if args.save_baseline:
        print(f"baseline: {save_baseline(out)}")
    path = write_report(out)
    print(f"wrote {path}")
    print(json.dumps({"sections": wanted, "ok": ok}))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
