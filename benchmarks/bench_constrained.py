"""Constrained decoding for SmolLM2: which structured-generation library, and what it costs.

Part 1 compares the three maintained libraries on the same tokenizer and the same 20-tool schema
(the schema hfbridge serve builds for ``tool_choice: "required"``): grammar compile time, cold
and cached, the per-token cost of the mask (computing it, applying it, advancing the matcher),
and two hostile schemas. Part 2 runs the chosen one (llguidance) inside the server's generation
backend, SmolLM2 loaded exactly as ``hfbridge serve`` loads it, and compares tokens/s with and
without a constraint.

    .venv/bin/python benchmarks/bench_constrained.py        # writes results/constrained.md

xgrammar and outlines-core are only needed for part 1 (``pip install xgrammar outlines-core``);
a library that is not installed is reported as such. Torch runs on one thread by default
(``--threads``): on a shared 2-core machine two threads are up to 10x slower and much noisier.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

import torch

RESULTS = Path(__file__).parent / "results"
SMOL = "HuggingFaceTB/SmolLM2-135M-Instruct"


# --------------------------------------------------------------------------------------------
# The workload
# --------------------------------------------------------------------------------------------
def twenty_tools(salt: str = "") -> list[dict[str, Any]]:
    """20 distinct, realistic tools: strings, enums, numbers, arrays, nested objects."""
    kinds = [
        ("get_weather", {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}}, ["city"]),
        ("convert_currency", {"amount": {"type": "number"}, "from": {"type": "string", "enum": ["USD", "EUR", "GBP"]}, "to": {"type": "string", "enum": ["USD", "EUR", "GBP"]}}, ["amount", "from", "to"]),
        ("set_timer", {"minutes": {"type": "integer", "minimum": 1, "maximum": 120}, "label": {"type": "string"}}, ["minutes"]),
        ("search_web", {"query": {"type": "string"}, "max_results": {"type": "integer", "minimum": 1, "maximum": 50}}, ["query"]),
        ("send_email", {"to": {"type": "array", "items": {"type": "string"}, "minItems": 1}, "subject": {"type": "string"}, "body": {"type": "string"}}, ["to", "subject"]),
        ("create_event", {"title": {"type": "string"}, "when": {"type": "object", "properties": {"date": {"type": "string"}, "hour": {"type": "integer"}}, "required": ["date"]}}, ["title", "when"]),
        ("translate", {"text": {"type": "string"}, "target": {"type": "string", "enum": ["fr", "de", "es", "it", "ja"]}}, ["text", "target"]),
        ("lookup_stock", {"ticker": {"type": "string", "pattern": "^[A-Z]{1,5}$"}}, ["ticker"]),
        ("play_music", {"artist": {"type": "string"}, "shuffle": {"type": "boolean"}}, ["artist"]),
        ("book_table", {"restaurant": {"type": "string"}, "people": {"type": "integer", "minimum": 1, "maximum": 20}, "time": {"type": "string"}}, ["restaurant", "people"]),
    ]
    tools = []
    for i in range(20):
        name, properties, required = kinds[i % len(kinds)]
        tools.append({"type": "function", "function": {
            "name": f"{name}_{i}{salt}", "description": f"{name.replace('_', ' ')} (variant {i})",
            "parameters": {"type": "object", "properties": properties, "required": required}}})
    return tools


HOSTILE = {
    "enum of 20,000 strings": {"enum": [f"value_{i}" for i in range(20000)]},
    "200 nested objects": None,
}
_nested: dict[str, Any] = {"type": "string"}
for _ in range(200):
    _nested = {"type": "object", "properties": {"a": _nested}, "required": ["a"]}
HOSTILE["200 nested objects"] = _nested


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


# --------------------------------------------------------------------------------------------
# Part 1: the libraries side by side
# --------------------------------------------------------------------------------------------
class Engine:
    """One library behind the three operations a decoding loop needs."""

    name = ""

    def __init__(self, tokenizer: Any, vocab: int, eos: int) -> None:
        self.tokenizer, self.vocab, self.eos = tokenizer, vocab, eos

    def compile(self, schema: dict[str, Any]) -> Any: ...
    def matcher(self, compiled: Any) -> Any: ...
    def step(self, matcher: Any, mask: torch.Tensor, logits: torch.Tensor, token: int) -> None: ...


class LLGuidance(Engine):
    name = "llguidance"

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        import llguidance
        import llguidance.hf

        from hfbridge.server.constraints import JSON_OPTIONS, apply_bitmask

        self.llg, self.options, self.apply = llguidance, JSON_OPTIONS, apply_bitmask
        self.engine_tokenizer = llguidance.hf.from_tokenizer(self.tokenizer, n_vocab=self.vocab, eos_token=[self.eos])

    def compile(self, schema: dict[str, Any]) -> Any:
        grammar = self.llg.LLMatcher.grammar_from_json_schema(json.dumps(schema), defaults=self.options)
        matcher = self.llg.LLMatcher(self.engine_tokenizer, grammar, log_level=0, limits=self.llg.LLParserLimits(verbose_errors=False))
        if not matcher.is_error():
            probe = torch.full((1, (self.vocab + 31) // 32), -1, dtype=torch.int32)
            matcher.unsafe_compute_mask_ptr(probe.data_ptr(), probe.numel() * 4)  # what the server's compile includes
        if matcher.is_error():
            raise ValueError(matcher.get_error().split("\n", 1)[0])
        return matcher

    def matcher(self, compiled: Any) -> Any:
        return compiled.deep_copy()

    def step(self, matcher: Any, mask: torch.Tensor, logits: torch.Tensor, token: int) -> None:
        matcher.unsafe_compute_mask_ptr(mask.data_ptr(), mask.numel() * 4)
        self.apply(logits, mask)
        assert matcher.consume_token(token), matcher.get_error()


class XGrammar(Engine):
    name = "xgrammar"

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        import xgrammar

        self.xgr = xgrammar
        info = xgrammar.TokenizerInfo.from_huggingface(self.tokenizer, vocab_size=self.vocab, stop_token_ids=[self.eos])
        self.compiler = xgrammar.GrammarCompiler(info, max_threads=1, cache_enabled=False)

    def compile(self, schema: dict[str, Any]) -> Any:
        try:
            return self.compiler.compile_json_schema(json.dumps(schema), any_whitespace=False)
        except RuntimeError as exc:
            raise ValueError(str(exc).strip().splitlines()[-1]) from None

    def matcher(self, compiled: Any) -> Any:
        return self.xgr.GrammarMatcher(compiled)

    def step(self, matcher: Any, mask: torch.Tensor, logits: torch.Tensor, token: int) -> None:
        matcher.fill_next_token_bitmask(mask)
        self.xgr.apply_token_bitmask_inplace(logits, mask)
        assert matcher.accept_token(token)


class OutlinesCore(Engine):
    name = "outlines-core"

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        from outlines_core import Guide, Index, Vocabulary
        from outlines_core.json_schema import build_regex_from_schema
        from transformers.convert_slow_tokenizer import bytes_to_unicode

        self.Guide, self.Index, self.regex = Guide, Index, build_regex_from_schema
        decode = {char: byte for byte, char in bytes_to_unicode().items()}
        tokens: dict[bytes, list[int]] = {}
        special = set(self.tokenizer.all_special_ids)
        for text, token_id in self.tokenizer.get_vocab().items():
            if token_id in special:
                continue
            tokens.setdefault(bytes(decode[c] for c in text), []).append(token_id)
        self.vocabulary = Vocabulary(self.eos, tokens)

    def compile(self, schema: dict[str, Any]) -> Any:
        # outlines' whitespace between JSON tokens: exactly the one space hfbridge writes
        return self.Index(self.regex(json.dumps(schema), whitespace_pattern=r"[ ]?"), self.vocabulary)

    def matcher(self, compiled: Any) -> Any:
        return self.Guide(compiled)

    def step(self, matcher: Any, mask: torch.Tensor, logits: torch.Tensor, token: int) -> None:
        from hfbridge.server.constraints import apply_bitmask

        matcher.write_mask_into(mask.data_ptr(), mask.numel(), 4)
        apply_bitmask(logits, mask)
        matcher.advance(token)


def compare_libraries(backend: Any, call_tokens: list[int], repeats: int) -> list[dict[str, Any]]:
    from hfbridge.server.toolcalls import ToolCallFormat

    tokenizer, vocab, eos = backend.tokenizer, backend.vocab_size, backend.tokenizer.eos_token_id
    rows = []
    for engine_class in (LLGuidance, XGrammar, OutlinesCore):
        row: dict[str, Any] = {"library": engine_class.name}
        try:
            started = time.perf_counter()
            engine = engine_class(tokenizer, vocab, eos)
            row["setup_s"] = time.perf_counter() - started
        except ImportError as exc:
            row["error"] = f"not installed ({exc.name})"
            rows.append(row)
            continue
        schemas = [ToolCallFormat.from_request(twenty_tools(f"_{k}"), "required", None).call_schema() for k in range(repeats)]
        cold = []
        try:
            for schema in schemas[: 1 if engine_class is OutlinesCore else repeats]:  # outlines: seconds each
                started = time.perf_counter()
                engine.compile(schema)
                cold.append(time.perf_counter() - started)
            compiled = engine.compile(ToolCallFormat.from_request(twenty_tools(), "required", None).call_schema())
        except Exception as exc:  # a library that cannot take the schema is a result, not a crash
            row["error"] = f"cannot compile the schema: {type(exc).__name__}: {str(exc)[:80]}"
            rows.append(row)
            continue
        row["compile_ms"] = median_ms(cold)
        per_token = []
        for _ in range(repeats):
            matcher = engine.matcher(compiled)
            mask = torch.full((1, (vocab + 31) // 32), -1, dtype=torch.int32)
            for token in call_tokens:
                logits = torch.randn(1, vocab)
                started = time.perf_counter()
                engine.step(matcher, mask, logits, token)
                per_token.append(time.perf_counter() - started)
                assert logits[0, token] > float("-inf"), f"{engine.name} refused a token of a valid call"
        row["per_token_us"] = statistics.median(per_token) * 1e6
        row["per_token_max_ms"] = max(per_token) * 1000
        for label, schema in HOSTILE.items():
            if engine_class is OutlinesCore:
                row[label] = "not run (20 tools already take seconds)"
                continue
            started = time.perf_counter()
            try:
                engine.compile(schema)
                outcome = "compiled"
            except ValueError as exc:
                outcome = f"error: {str(exc)[:60]}"
            row[label] = f"{(time.perf_counter() - started) * 1000:,.0f} ms ({outcome})"
        rows.append(row)
    return rows


# --------------------------------------------------------------------------------------------
# Part 2: inside the server's generation loop
# --------------------------------------------------------------------------------------------
def load_as_the_server_does(cache_dir: Path) -> Any:
    from hfbridge.server.models import ModelManager
    from hfbridge.server.registry import Registry

    manager = ModelManager(Registry.default(), cache_dir, workers=1)
    try:
        return manager.start_loading(SMOL).result(timeout=600)
    finally:
        manager.close()


def server_compile_times(backend: Any, repeats: int) -> dict[str, float]:
    from hfbridge.server.toolcalls import ToolCallFormat

    compiler = backend.constraints
    started = time.perf_counter()
    compiler.engine_tokenizer()
    figures = {"tokenizer_s": time.perf_counter() - started}
    for choice, key in (("required", "required"), ("auto", "auto")):
        cold, warm = [], []
        for k in range(repeats):
            spec = ToolCallFormat.from_request(twenty_tools(f"_{choice}{k}"), choice, None).constraint()
            started = time.perf_counter()
            compiler.compile(spec)
            cold.append(time.perf_counter() - started)
            started = time.perf_counter()
            compiler.compile(spec)
            warm.append(time.perf_counter() - started)
        figures[f"{key}_cold_ms"] = median_ms(cold)
        figures[f"{key}_cached_us"] = statistics.median(warm) * 1e6
    return figures


def decoding_speed(backend: Any, repeats: int, tokens: int) -> list[dict[str, Any]]:
    """Pairs of runs on the same prompt with the same budget, interleaved so machine load hits
    both alike: tokens/s (prompt included) and how many tokens the grammar made certain."""
    from hfbridge.server.constraints import ConstraintSpec
    from hfbridge.server.toolcalls import ToolCallFormat
    from hfbridge.tasks import Task

    compiler = backend.constraints
    # forces nothing and rarely bites: the mask's cost, computed and applied at every token
    no_braces = compiler.compile(ConstraintSpec.regex(r"[^{}]*", "bench"))
    animals = compiler.compile(ConstraintSpec.json_schema(
        {"type": "array", "items": {"type": "string", "maxLength": 12}, "minItems": 16}, "bench"))
    tools = ToolCallFormat.from_request(twenty_tools(), "required", None)
    calls = compiler.compile(tools.constraint())
    story = "Once upon a time, in a small village by the sea, there lived"
    listing = "Here is a list of animal names as a JSON array of strings:"
    messages = [{"role": "user", "content": "I need the weather in Paris, in celsius." + tools.prompt(None)}]
    tool_prompt = backend.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    cases = [
        ("free text", story, None, tokens),
        ("regex `[^{}]*` (a full mask at every token)", story, no_braces, tokens),
        ("free text", listing, None, tokens),
        ("JSON list of >= 16 strings", listing, animals, tokens),
        ("free text after the 20-tool prompt", tool_prompt, None, 40),
        ("tool call, 20 tools", tool_prompt, calls, 40),
    ]

    def run(text: str, constraint: Any, budget: int) -> tuple[float, int, int, list[int]]:
        parameters: dict[str, Any] = {"max_new_tokens": budget, "details": True, "return_full_text": False}
        if constraint is not None:
            parameters["constraint"] = constraint
        started = time.perf_counter()
        details = backend.predict(Task.TEXT_GENERATION, text, parameters)[0]["details"]
        elapsed = time.perf_counter() - started
        certain = sum(1 for t in details["tokens"] if t["logprob"] == 0.0) if constraint is not None else 0
        return details["generated_tokens"] / elapsed, details["generated_tokens"], certain, [t["id"] for t in details["tokens"]]

    rows = []
    for free, constrained in zip(cases[::2], cases[1::2]):
        run(*free[1:]), run(*constrained[1:])  # warm-up
        ratios, free_runs, constrained_runs = [], [], []
        for _ in range(repeats):  # A B B A: drift in machine load cancels out of each ratio
            a1, b1, b2, a2 = run(*free[1:]), run(*constrained[1:]), run(*constrained[1:]), run(*free[1:])
            ratios += [b1[0] / a1[0], b2[0] / a2[0]]
            free_runs += [a1, a2]
            constrained_runs += [b1, b2]
        mask_ms = mask_cost(constrained[2], constrained_runs[0][3], backend)
        rows.append({"label": free[0], "prompt": free[1][:40], "rate": statistics.median(r[0] for r in free_runs),
                     "tokens": statistics.median(r[1] for r in free_runs)})
        rows.append({"label": constrained[0], "rate": statistics.median(r[0] for r in constrained_runs),
                     "tokens": statistics.median(r[1] for r in constrained_runs), "certain": statistics.median(r[2] for r in constrained_runs),
                     "ratio": statistics.median(ratios), "mask_ms": mask_ms})
    return rows


def mask_cost(constraint: Any, tokens: list[int], backend: Any) -> float:
    """Median ms per token of the constraint's own work (mask, apply, advance), replaying an
    answer it produced: what the loop pays on top of the model, without the model's noise."""
    from hfbridge.server.constraints import allocate_bitmask, apply_bitmask

    matcher, mask, samples = constraint.matcher(), allocate_bitmask(1, backend.vocab_size), []
    for token in tokens:
        if token in backend.tokenizer.all_special_ids:
            break
        logits = torch.randn(1, backend.vocab_size)
        started = time.perf_counter()
        matcher.fill_bitmask(mask)
        apply_bitmask(logits, mask)
        matcher.accept(token)
        samples.append(time.perf_counter() - started)
    return median_ms(samples)


def call_tokens_of(backend: Any) -> list[int]:
    """The tokens of a real tool call SmolLM2 writes under the server's 20-tool constraint."""
    from hfbridge.server.toolcalls import ToolCallFormat
    from hfbridge.tasks import Task

    tools = ToolCallFormat.from_request(twenty_tools(), "required", None)
    messages = [{"role": "user", "content": "Send an email to bob@example.com about lunch." + tools.prompt(None)}]
    prompt = backend.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    answer = backend.predict(Task.TEXT_GENERATION, prompt, {"constraint": backend.constraints.compile(tools.constraint()),
                                                            "max_new_tokens": 80, "details": True, "return_full_text": False})[0]
    return [t["id"] for t in answer["details"]["tokens"] if not t["special"]]


# --------------------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=64)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from hfbridge.server.registry import default_cache_dir

    load_before = os.getloadavg()[0]
    backend = load_as_the_server_does(default_cache_dir())
    compile_times = server_compile_times(backend, args.repeats)
    call_tokens = call_tokens_of(backend)
    libraries = compare_libraries(backend, call_tokens, args.repeats)
    speed = decoding_speed(backend, args.repeats, args.tokens)
    args.load = (load_before, os.getloadavg()[0])
    write(libraries, compile_times, speed, call_tokens, backend, args)


def write(libraries: list[dict[str, Any]], compile_times: dict[str, float], speed: list[dict[str, Any]],
          call_tokens: list[int], backend: Any, args: argparse.Namespace) -> None:
    RESULTS.mkdir(exist_ok=True)
    lines = [
        "# Constrained decoding for SmolLM2-135M",
        "",
        f"`benchmarks/bench_constrained.py`; SmolLM2-135M-Instruct loaded as `hfbridge serve` loads it (GGUF de-quantised to float32),",
        f"torch on {args.threads} thread(s), 2 CPU cores shared with other work (load average {args.load[0]:.1f} at the start,",
        f"{args.load[1]:.1f} at the end); medians of {args.repeats}.",
        "",
        "## 1. The libraries, same tokenizer, same 20-tool schema",
        "",
        "The schema is the one the server builds for `tool_choice: \"required\"` over 20 tools (an `anyOf` of",
        "20 `{\"name\": const, \"arguments\": {...}}` objects, arguments under `$defs`). *Compile* is one new",
        "schema (cache off), first mask included; *per token* is computing the mask, applying it to the",
        f"logits and advancing the matcher, over the {len(call_tokens)} tokens of a real call SmolLM2 wrote.",
        "",
        "| library | tokenizer setup | compile, 20 tools | per token (median) | per token (max) | " + " | ".join(HOSTILE) + " |",
        "|---|---:|---:|---:|---:|" + "---|" * len(HOSTILE),
    ]
    for row in libraries:
        if "error" in row:
            lines.append(f"| {row['library']} | {row['error']} |" + " |" * (3 + len(HOSTILE)))
            continue
        lines.append(f"| {row['library']} | {row['setup_s']:.2f} s | {row['compile_ms']:,.1f} ms | {row['per_token_us']:,.0f} us | "
                     f"{row['per_token_max_ms']:.2f} ms | " + " | ".join(str(row[h]) for h in HOSTILE) + " |")
    lines += [
        "",
        "## 2. In the server's generation loop (llguidance)",
        "",
        "| grammar compile, 20 tools | first (new schema) | cached |",
        "|---|---:|---:|",
        f"| `tool_choice: \"required\"` (JSON schema) | {compile_times['required_cold_ms']:.1f} ms | {compile_times['required_cached_us']:.0f} us |",
        f"| `tool_choice: \"auto\"` (the tools and `no_tool`, one JSON schema) | {compile_times['auto_cold_ms']:.1f} ms | {compile_times['auto_cached_us']:.0f} us |",
        "",
        f"Once per model: the engine's view of the tokenizer, {compile_times['tokenizer_s']:.2f} s (on first constrained request).",
        "",
        f"Decoding: pairs on the same prompt with the same budget, run A B B A {args.repeats} times; *vs unconstrained*",
        "is the median of the per-pair ratios (tokens/s include the prompt's forward pass). *Mask* is the constraint's",
        "own work per token (mask, apply, advance), timed alone. *Certain* counts tokens the grammar left no choice",
        "for (log-probability 0); the ones it forces outright (`{\"name\": \"`, `\", \"arguments\": {\"`, property",
        "names) are fed to the model together in one forward pass.",
        "",
        "| decoding | tokens/s | vs unconstrained | mask per token | tokens | certain |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for free, constrained in zip(speed[::2], speed[1::2]):
        lines.append(f"| {free['label']} (*{free['prompt']!r}...*) | {free['rate']:.1f} | | | {free['tokens']:.0f} | |")
        lines.append(f"| {constrained['label']} | {constrained['rate']:.1f} | {100 * (constrained['ratio'] - 1):+.1f}% | "
                     f"{constrained['mask_ms']:.2f} ms | {constrained['tokens']:.0f} | {constrained['certain']:.0f} |")
    forward_ms = 1000 / speed[0]["rate"]
    worst_mask = max(row["mask_ms"] for row in speed[1::2])
    lines += [
        "",
        f"One unconstrained token takes ~{forward_ms:.0f} ms here; the costliest mask above is {worst_mask:.2f} ms per token "
        f"({100 * worst_mask / forward_ms:.1f}% of it): that is the stable figure. The end-to-end ratios move by several",
        "per cent either way with the machine's load, even between runs that do the same work.",
        f"Goals: constrained decoding within 10% of unconstrained tokens/s (measured: {100 * (speed[1]['ratio'] - 1):+.1f}% with a full mask",
        f"at every token, {100 * (speed[3]['ratio'] - 1):+.1f}% for a JSON list); a 20-tool schema compiled in under 50 ms (measured:",
        f"{compile_times['required_cold_ms']:.1f} ms, then {compile_times['required_cached_us']:.0f} us from the cache).",
        "",
        "## Choice: llguidance",
        "",
        "- Compile: the fastest on the 20-tool schema (it builds its lexer lazily); outlines-core builds a full",
        "  automaton over the vocabulary and takes seconds, far from the 50 ms goal.",
        "- Per token: llguidance and xgrammar both cost a fraction of a millisecond, under 1% of a SmolLM2",
        "  forward pass; either is fine at this model size.",
        "- Hostile schemas: llguidance's parser has resource limits (\"fuel\", recursion depth) and fails fast",
        "  with a clear error; xgrammar compiled for seconds (table above). The server also bounds every",
        "  compile in time (2 s, off the event loop) and caches failures.",
        "- Footprint: llguidance is one ~8 MB wheel with no dependencies; xgrammar pulls in triton (~1 GB) and",
        "  apache-tvm-ffi, of no use on a CPU server.",
        "- Grammars: JSON schema, regex and Lark with embedded JSON schemas; `tool_choice: \"auto\"` is one",
        "  JSON schema, the tools and TGI's `no_tool` (a text answer), as TGI does it; outlines-core takes regexes only.",
    ]
    (RESULTS / "constrained.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
