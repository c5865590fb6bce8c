"""A tool-calling round trip through LangChain's chat models: ``bind_tools(...).invoke`` gets a
tool call, the tool's result goes back, the model answers (two requests), for hfbridge's
``ChatHFInference`` and langchain-huggingface's ``ChatHuggingFace`` over ``HuggingFaceEndpoint``
on the same stub. Interleaved round trips, medians of wall and CPU time (this process only).

    .venv/bin/python -m benchmarks.bench_tool_round_trip   # writes results/tool_round_trip.md
"""

from __future__ import annotations

import os
import time
from typing import Any, Callable

from ._common import RESULTS_DIR, interleaved, machine, median, percentile
from ._stub import GENERATED_TEXT, TOOL_CALL, StubServer

MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct"
QUESTION = "What is the weather in Paris?"
ROUND_TRIPS = int(os.environ.get("ROUND_TRIPS", "200"))
WARMUP = 10


def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"It is sunny in {city}."


def round_trip(chat: Any) -> Callable[[], str]:
    from langchain_core.messages import HumanMessage, ToolMessage

    bound = chat.bind_tools([get_weather])

    def call() -> str:
        question = HumanMessage(QUESTION)
        asked = bound.invoke([question])
        (tool_call,) = asked.tool_calls
        assert tool_call["name"] == TOOL_CALL["name"] and tool_call["args"] == {"city": "Paris"}, asked
        result = ToolMessage(get_weather(**tool_call["args"]), tool_call_id=tool_call["id"])
        return bound.invoke([question, asked, result]).content

    return call


def hfbridge_chat(url: str) -> tuple[Any, Callable[[], Any]]:
    from hfbridge.langchain import ChatHFInference

    chat = ChatHFInference(base_url=url, token=None, model=MODEL, max_tokens=20)
    return chat, chat.close


def chat_huggingface(url: str) -> tuple[Any, Callable[[], Any]]:
    from langchain_huggingface import ChatHuggingFace, HuggingFaceEndpoint

    endpoint = HuggingFaceEndpoint(endpoint_url=f"{url}/models/{MODEL}", max_new_tokens=20, huggingfacehub_api_token="hf_unused")
    chat = ChatHuggingFace(llm=endpoint, model_id=MODEL)
    return chat, lambda: None


def main() -> None:
    os.environ.pop("HF_HUB_OFFLINE", None)  # huggingface_hub refuses even 127.0.0.1 while it is set
    rows: list[dict[str, Any]] = []
    with StubServer() as stub:
        cases = []
        for name, build in (("hfbridge ChatHFInference", hfbridge_chat), ("langchain-huggingface ChatHuggingFace", chat_huggingface)):
            chat, close = build(stub.url)
            fn = round_trip(chat)
            for _ in range(WARMUP):
                assert fn().strip() == GENERATED_TEXT.strip()
            cases.append({"name": name, "fn": fn, "close": close, "wall": [], "cpu": []})

        def measure(case: dict[str, Any], _: int) -> None:
            wall, cpu = time.perf_counter(), time.process_time()
            case["fn"]()
            case["cpu"].append(time.process_time() - cpu)
            case["wall"].append(time.perf_counter() - wall)

        stub.reset()
        interleaved(cases, ROUND_TRIPS, measure)
        requests = stub.stats()["requests"]
        for case in cases:
            case["close"]()
            rows.append({"name": case["name"], "median_ms": median(case["wall"]) * 1e3, "p90_ms": percentile(case["wall"], 90) * 1e3,
                         "cpu_ms": median(case["cpu"]) * 1e3})
    base = rows[1]
    info = machine()
    lines = [
        "# A tool-calling round trip through LangChain's chat models", "",
        f"`bind_tools([get_weather]).invoke(question)` -> a tool call -> `invoke([question, call, tool result])` -> the answer: "
        f"two chat requests per round trip against the stub ({requests} requests in {ROUND_TRIPS} interleaved round trips of "
        f"each client), after {WARMUP} warm-up round trips. Load average {info.get('load_average')}.", "",
        "| client | median ms | p90 ms | CPU ms | median vs ChatHuggingFace | CPU vs ChatHuggingFace |", "|---|---:|---:|---:|---:|---:|",
        *(f"| {r['name']} | {r['median_ms']:.2f} | {r['p90_ms']:.2f} | {r['cpu_ms']:.2f} | {r['median_ms'] / base['median_ms']:.2f}x | "
          f"{r['cpu_ms'] / base['cpu_ms']:.2f}x |" for r in rows), "",
    ]
    RESULTS_DIR.mkdir(exist_ok=True)
    (RESULTS_DIR / "tool_round_trip.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
