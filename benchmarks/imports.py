"""Cold imports, each in a fresh interpreter: wall and CPU time of the import statement itself.

The child first imports what the measure subtracts (``import langchain_core``, untimed), then
times only the statement under test, so interpreter start-up is in no figure. Bytecode is
compiled once by a discarded warm-up run of each case; the cases are then interleaved.

The adapters' targets compare ``from hfbridge.langchain import ...`` on top of
``import langchain_core`` (the framework package itself) with langchain-huggingface the same
way. ``import langchain_core`` alone loads little of LangChain; the classes any integration
subclasses (``BaseChatModel``, ``BaseLLM``, ``Embeddings``) cost far more, so a second pair of
rows subtracts those too: what the integration itself adds on top of the framework parts it
cannot avoid. ``-X importtime`` runs of each case then say which packages the time went to.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass, field
from typing import Any

from ._common import REPO, Budget, child_env, describe_error, interleaved, machine, median

_CHILD = """\
import time
{pre}
_wall, _cpu = time.perf_counter(), time.process_time()
{stmt}
print("RESULT", time.perf_counter() - _wall, time.process_time() - _cpu)
"""

LANGCHAIN_BASES = ("import langchain_core.language_models.chat_models, langchain_core.language_models.llms, "
                   "langchain_core.embeddings, langchain_core.tools")
LLAMA_INDEX_BASES = ("import llama_index.core.llms.custom, llama_index.core.llms.function_calling, "
                     "llama_index.core.base.embeddings.base, llama_index.core.tools")


@dataclass
class Case:
    key: str
    name: str
    family: str
    group: str  # which rows compare: "core" | "langchain" | "langchain-bases" | "llama-index" | ...
    stmt: str
    pre: str = ""
    error: str | None = None
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)


def cases() -> list[Case]:
    lc_ours = "from hfbridge.langchain import ChatHFInference, HFInferenceLLM, HFInferenceEmbeddings"
    lc_peer = "from langchain_huggingface import ChatHuggingFace, HuggingFaceEndpoint, HuggingFaceEndpointEmbeddings"
    li_ours = "from hfbridge.llama_index import HFInferenceChat, HFInferenceLLM, HFInferenceEmbedding"
    li_peer = ("from llama_index.llms.huggingface_api import HuggingFaceInferenceAPI\n"
               "from llama_index.embeddings.huggingface_api import HuggingFaceInferenceAPIEmbedding")
    return [
        Case("hfbridge", "import hfbridge", "hfbridge", "core", "import hfbridge"),
        Case("hub", "from huggingface_hub import InferenceClient", "peer", "core", "from huggingface_hub import InferenceClient"),
        Case("langchain_core", "import langchain_core", "framework", "framework", "import langchain_core"),
        Case("lc_ours", "hfbridge.langchain", "hfbridge", "langchain", lc_ours, "import langchain_core"),
        Case("lc_peer", "langchain_huggingface", "peer", "langchain", lc_peer, "import langchain_core"),
        Case("lc_ours_b", "hfbridge.langchain", "hfbridge", "langchain-bases", lc_ours, LANGCHAIN_BASES),
        Case("lc_peer_b", "langchain_huggingface", "peer", "langchain-bases", lc_peer, LANGCHAIN_BASES),
        Case("llama_index_core", "import llama_index.core", "framework", "framework", "import llama_index.core"),
        Case("li_ours", "hfbridge.llama_index", "hfbridge", "llama-index", li_ours, "import llama_index.core"),
        Case("li_peer", "LlamaIndex HF API packages", "peer", "llama-index", li_peer, "import llama_index.core"),
        Case("li_ours_b", "hfbridge.llama_index", "hfbridge", "llama-index-bases", li_ours, LLAMA_INDEX_BASES),
        Case("li_peer_b", "LlamaIndex HF API packages", "peer", "llama-index-bases", li_peer, LLAMA_INDEX_BASES),
    ]


def _once(case: Case) -> tuple[float, float]:
    code = _CHILD.format(pre=case.pre, stmt=case.stmt)
    done = subprocess.run([sys.executable, "-c", code], env=child_env(), cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            wall, cpu = line.split()[1:]
            return float(wall), float(cpu)
    raise RuntimeError(f"exit {done.returncode}: {done.stderr.strip().splitlines()[-1:] or done.stdout}")


def _importtime(case: Case) -> dict[str, float]:
    """``-X importtime`` of the statement alone: own time (ms) by top-level package."""
    code = f"{case.pre}\nimport sys\nsys.stderr.write('MARK\\n')\n{case.stmt}"
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", code], env=child_env(), cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    totals: dict[str, float] = {}
    after_mark = False
    for line in done.stderr.splitlines():
        if line == "MARK":
            after_mark = True
        elif after_mark and line.startswith("import time:") and "|" in line:
            own, _, name = line[len("import time:"):].split("|")
            if own.strip().isdigit():
                package = name.strip().split(".")[0]
                totals[package] = totals.get(package, 0.0) + int(own) / 1e3
    return totals


def _breakdown(case: Case, reps: int, top: int = 8) -> list[tuple[str, float]]:
    """The median over ``reps`` runs of each package's own import time, largest first."""
    runs = [_importtime(case) for _ in range(reps)]
    packages = {name for run in runs for name in run}
    medians = {name: median([run.get(name, 0.0) for run in runs]) for name in packages}
    return sorted(medians.items(), key=lambda item: -item[1])[:top]


def run(budget: Budget) -> dict[str, Any]:
    all_cases = cases()
    for case in all_cases:
        try:
            _once(case)  # compiles bytecode; not counted
        except Exception as exc:
            case.error = describe_error(exc)

    def measure(case: Case, _: int) -> None:
        if case.error:
            return
        wall, cpu = _once(case)
        case.wall.append(wall)
        case.cpu.append(cpu)

    interleaved([c for c in all_cases if not c.error], budget.import_reps, measure)
    breakdown = {c.key: _breakdown(c, budget.importtime_reps) for c in all_cases if not c.error and c.family != "framework"}
    rows = [{"key": c.key, "name": c.name, "family": c.family, "group": c.group, "stmt": c.stmt, "pre": c.pre,
             "error": c.error, "wall_ms": median(c.wall) * 1e3 if c.wall else None,
             "cpu_ms": median(c.cpu) * 1e3 if c.cpu else None, "reps": len(c.wall)} for c in all_cases]
    return {"section": "imports", "budget": budget.name, "reps": budget.import_reps, "machine": machine(), "rows": rows,
            "importtime_reps": budget.importtime_reps, "importtime_top_packages_ms": breakdown}

