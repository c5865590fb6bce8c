"""Where one ``InferenceClient.text_generation`` call spends its time, next to a raw
``httpx.Client.post`` of the same request: cProfile over many calls against the stub; the run
writes it to ``results/profile_text_generation.txt`` to guide the call-path work.

The summary groups own time (cProfile's ``tottime``) by where the code lives (hfbridge's
modules one by one, requests, urllib3, http.client, the socket layer, JSON, pydantic, the rest
of the standard library, C functions by name), per call, in CPU time (the profiler's clock is
``time.process_time``: time blocked on the socket is the server's, not the client's); the full
top lists follow.
"""

from __future__ import annotations

import cProfile
import io
import pstats
import sysconfig
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable

from ._common import Budget, machine
from ._stub import StubServer
from .latency import MAX_TOKENS, MODEL, PROMPT

_STDLIB = Path(sysconfig.get_paths()["stdlib"]).resolve().as_posix() + "/"


def _area(filename: str, function: str) -> str:
    path = filename.replace("\\", "/")
    if "/hfbridge/" in path:
        return "hfbridge." + path.rsplit("/hfbridge/", 1)[1].removesuffix(".py").replace("/", ".")
    for package in ("requests", "urllib3", "httpx", "httpcore", "pydantic_core", "pydantic", "orjson", "h11",
                    "charset_normalizer", "idna", "certifi", "anyio"):
        if f"/site-packages/{package}/" in path:
            return package
    if path.endswith(("http/client.py", "email/feedparser.py", "email/parser.py", "email/message.py",
                      "email/_policybase.py", "email/_parseaddr.py", "email/utils.py")):
        return "stdlib http.client (with its email header parsing)"
    if path == "~":  # a C function: its own name says what it is
        return "C: " + function.removeprefix("<built-in method ").removeprefix("<method ").rstrip(">")
    if path.startswith("<frozen "):  # os, abc, _collections_abc, posixpath: stdlib frozen in the binary
        return "stdlib " + path.removeprefix("<frozen ").rstrip(">")
    if path.startswith(_STDLIB):
        return "stdlib " + path.removeprefix(_STDLIB).removesuffix(".py").removesuffix("/__init__").replace("/", ".")
    return "other " + path.rsplit("/", 1)[-1]


def _profile(fn: Callable[[], Any], calls: int) -> tuple[pstats.Stats, float]:
    for _ in range(20):
        fn()
    started = time.perf_counter()
    for _ in range(calls):
        fn()
    plain = (time.perf_counter() - started) / calls
    profiler = cProfile.Profile(time.process_time)  # CPU: a wait on the socket is not the client's work
    profiler.enable()
    for _ in range(calls):
        fn()
    profiler.disable()
    return pstats.Stats(profiler), plain


def _by_area(stats: pstats.Stats, calls: int) -> list[tuple[str, float]]:
    totals: dict[str, float] = defaultdict(float)
    for (filename, _, function), (_, _, own, _, _) in stats.stats.items():  # type: ignore[attr-defined]
        totals[_area(filename, function)] += own
    return sorted(((area, seconds / calls) for area, seconds in totals.items()), key=lambda x: -x[1])


def _short(filename: str, line: int, function: str) -> str:
    path = filename.replace("\\", "/")
    for marker in ("/site-packages/", "/hfbridge/", _STDLIB):
        if marker in path:
            path = path.rsplit(marker, 1)[1]
            break
    return f"{path}:{line}({function})" if path != "~" else function


def _cumulative(stats: pstats.Stats, calls: int, limit: int = 14) -> list[tuple[str, float]]:
    """The functions with the most cumulative time per call (us), below the benchmark's lambda."""
    entries = [((f, ln, fn), ct) for (f, ln, fn), (_, _, _, ct, _) in stats.stats.items()  # type: ignore[attr-defined]
               if fn != "<lambda>" and "profile_call" not in f and "disable" not in fn]
    entries.sort(key=lambda e: -e[1])
    return [(_short(*key), seconds / calls * 1e6) for key, seconds in entries[:limit]]


def _top(stats: pstats.Stats, key: str, limit: int) -> str:
    out = io.StringIO()
    stats.stream = out  # type: ignore[attr-defined]
    stats.sort_stats(key).print_stats(limit)
    text = out.getvalue()
    return text[text.find("   ncalls"):] if "   ncalls" in text else text


def run(budget: Budget) -> dict[str, Any]:
    import httpx

    from hfbridge import InferenceClient

    calls = budget.profile_calls
    with StubServer() as stub:
        client = InferenceClient(stub.url, token=False)
        raw = httpx.Client()
        url = f"{stub.url}/models/{MODEL}/text-generation"
        body = {"inputs": PROMPT, "parameters": {"max_new_tokens": MAX_TOKENS}}
        try:
            ours, ours_plain = _profile(lambda: client.text_generation(PROMPT, model=MODEL, max_new_tokens=MAX_TOKENS), calls)
            theirs, theirs_plain = _profile(lambda: raw.post(url, json=body).json()[0]["generated_text"], calls)
        finally:
            client.close()
            raw.close()

    where = machine()
    lines = [
        "Where one hfbridge InferenceClient.text_generation call goes, next to httpx.Client.post",
        f"{calls} calls each against the benchmark stub (127.0.0.1, separate process); {where['time']}, "
        f"load average {where['load_average']}; hfbridge {where['versions']['hfbridge']}, requests "
        f"{where['versions']['requests']}, httpx {where['versions']['httpx']}",
        "",
        f"unprofiled wall per call: hfbridge {ours_plain * 1e3:.3f} ms, httpx {theirs_plain * 1e3:.3f} ms "
        f"(ratio {ours_plain / theirs_plain:.2f})",
        f"profiled CPU per call (profiler overhead included):    hfbridge {ours.total_tt / calls * 1e6:.0f} us, "  # type: ignore[attr-defined]
        f"httpx {theirs.total_tt / calls * 1e6:.0f} us",  # type: ignore[attr-defined]
        "",
        "Own time per call by area (us), hfbridge call:",
    ]
    areas = _by_area(ours, calls)
    lines += [f"  {seconds * 1e6:8.1f}  {area}" for area, seconds in areas if seconds * 1e6 >= 0.5]
    lines += ["", "Own time per call by area (us), httpx call:"]
    lines += [f"  {seconds * 1e6:8.1f}  {area}" for area, seconds in _by_area(theirs, calls) if seconds * 1e6 >= 0.5]
    lines += ["", "=" * 100, "hfbridge: top functions by cumulative time", _top(ours, "cumulative", 45),
              "=" * 100, "hfbridge: top functions by own time", _top(ours, "tottime", 35),
              "=" * 100, "httpx: top functions by own time", _top(theirs, "tottime", 25)]
    return {"section": "profile", "budget": budget.name, "calls": calls, "machine": where,
            "hfbridge_ms": ours_plain * 1e3, "httpx_ms": theirs_plain * 1e3,
            "hfbridge_areas_us": [(a, s * 1e6) for a, s in areas[:12]],
            "hfbridge_own_us": sum(s for a, s in areas if a.startswith("hfbridge.")) * 1e6,
            "profiled_cpu_us": ours.total_tt / calls * 1e6,  # type: ignore[attr-defined]
            "hfbridge_cumulative_us": _cumulative(ours, calls),
            "text": "\n".join(lines) + "\n"}

