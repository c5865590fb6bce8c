"""The ``hfbridge`` command: ``serve``, ``models list``, ``demo``."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
from pathlib import Path
from typing import Sequence

__all__ = ["main"]


def _registry(path: str | None):  # type: ignore[no-untyped-def]
    from .server.registry import Registry, RegistryError

    try:
        return Registry.from_file(path) if path else Registry.default()
    except RegistryError as exc:
        raise SystemExit(f"hfbridge: {exc}") from None


def _tokens(args: argparse.Namespace) -> list[str]:
    """``--token`` arguments, ``--token-file`` files and ``$HFBRIDGE_SERVE_TOKENS``, together."""
    from .server.guards import read_token_file, tokens_from_env

    tokens = list(args.token or ())
    for path in args.token_file or ():
        try:
            tokens += read_token_file(path)
        except (OSError, ValueError) as exc:
            raise SystemExit(f"hfbridge: --token-file: {exc}") from None
    return tokens + tokens_from_env(os.environ)


def _knobs(cls: type, args: argparse.Namespace):  # type: ignore[no-untyped-def]
    """A settings dataclass (Limits, BatchSettings, Decoding) from the options given for its
    fields (each class names its options and where argparse keeps them); a bad value exits
    naming the option."""
    dest = getattr(cls, "dest", lambda name: name)
    given = {spec.name: getattr(args, dest(spec.name)) for spec in dataclasses.fields(cls) if getattr(args, dest(spec.name)) is not None}
    try:
        return cls(**given)
    except ValueError as exc:
        name = str(exc).split()[0]
        raise SystemExit(f"hfbridge: {cls.option(name)}: {exc}") from None


def _settings(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from .server.app import ServerSettings
    from .server.batching import BatchSettings
    from .server.decoding import Decoding
    from .server.limits import Limits
    from .server.guards import parse_rate
    from .server.registry import default_cache_dir

    try:
        rate = parse_rate(args.rate_limit) if args.rate_limit else None
    except ValueError as exc:
        raise SystemExit(f"hfbridge: --rate-limit: {exc}") from None
    return ServerSettings(
        registry=_registry(args.models),
        cache_dir=Path(args.cache_dir) if args.cache_dir else default_cache_dir(),
        tokens=_tokens(args),
        rate_limit=rate,
        allow_urls=args.allow_urls,
        preload=args.preload,
        limits=_knobs(Limits, args),
        batching=_knobs(BatchSettings, args),
        decoding=_knobs(Decoding, args),
    )


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from .server.app import create_app
    from .server.connections import uvicorn_config
    from .server.runner import listening_socket

    settings = _settings(args)
    app = create_app(settings)
    url = f"http://{args.host}:{args.port}"
    print(f"hfbridge serve: {len(settings.registry)} models from {settings.registry.origin} registry, cache {settings.cache_dir}")
    for entry in settings.registry:
        note = "  [random weights: meaningless outputs]" if entry.is_tiny else ""
        print(f"  {url}/models/{entry.model_id}  ({', '.join(t.value for t in entry.tasks)}){note}")
    print(f"  {url}/pipeline/{{task}}  (the default model per task)")
    if settings.tokens:
        print(f"  auth: {len(settings.tokens)} token(s) accepted")
    if args.token:
        print("  note: --token values are visible to every local user in the process list; "
              "prefer --token-file or $HFBRIDGE_SERVE_TOKENS", file=sys.stderr)
    if settings.rate_limit:
        print(f"  rate limit: {settings.rate_limit} requests/min per token")
    sys.stdout.flush()
    server = uvicorn.Server(uvicorn_config(app, settings.limits, log_level=args.log_level))
    server.run(sockets=[listening_socket(args.host, args.port)])
    return 0


def _models_list(args: argparse.Namespace) -> int:
    from .server.models import ModelManager
    from .server.registry import default_cache_dir

    registry = _registry(args.models)
    cache_dir = Path(args.cache_dir) if args.cache_dir else default_cache_dir()
    manager = ModelManager(registry, cache_dir, workers=1)
    defaults = {mid: [t.value for t, m in registry.defaults.items() if m == mid] for mid in registry.entries}
    if registry.reranker:
        defaults[registry.reranker].append("/rerank")
    rows = []
    for entry in registry:
        cached = "cached" if manager.is_cached(entry) else "not cached"
        label = "MEANINGLESS (tiny random weights)" if entry.is_tiny else "real weights"
        if entry.reranks:
            label += f", reranks as a {entry.reranks}"
        default = f"default for {', '.join(defaults[entry.model_id])}" if defaults[entry.model_id] else ""
        rows.append((entry.model_id, ",".join(t.value for t in entry.tasks), entry.source, cached, label, default))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    print(f"registry: {registry.origin}    cache: {cache_dir}")
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row[:4], widths)) + f"  {row[4]}" + (f"; {row[5]}" if row[5] else ""))
    manager.close()
    return 0


def _demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    return run_demo(base_url=args.base_url, cache_dir=args.cache_dir)


def limit_options(group: argparse._ArgumentGroup) -> None:
    """One option per :class:`~hfbridge.server.limits.Limits` field, named after it."""
    from .server.limits import Limits

    for spec in dataclasses.fields(Limits):
        default = f"{spec.default:,}" if isinstance(spec.default, int) else f"{spec.default:g}"
        group.add_argument(Limits.option(spec.name), dest=spec.name, type=type(spec.default), metavar="N",
                           help=f"{spec.metadata['help']} (default: {default})")


def batching_options(group: argparse._ArgumentGroup) -> None:
    """One option per :class:`~hfbridge.server.batching.BatchSettings` field, named after it."""
    from .server.batching import BatchSettings

    for spec in dataclasses.fields(BatchSettings):
        default = f"{spec.default:,}" if isinstance(spec.default, int) else f"{spec.default:g}"
        group.add_argument(BatchSettings.option(spec.name), dest=BatchSettings.dest(spec.name), type=type(spec.default), metavar="N",
                           help=f"{spec.metadata['help']} (default: {default})")


def decoding_options(group: argparse._ArgumentGroup) -> None:
    """One option per :class:`~hfbridge.server.decoding.Decoding` field, named after it."""
    from .server.decoding import Decoding

    for spec in dataclasses.fields(Decoding):
        group.add_argument(Decoding.option(spec.name), dest=Decoding.dest(spec.name), type=int, metavar="N",
                           help=f"{spec.metadata['help']} (default: {spec.default:,})")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hfbridge", description="Hugging Face inference for LangChain and LlamaIndex.")
    sub = parser.add_subparsers(dest="command", required=True)

    def registry_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--models", metavar="REGISTRY.toml", help="model registry (default: the built-in one)")
        p.add_argument("--cache-dir", help="where converted and tiny models are cached (default: $HFBRIDGE_CACHE or ~/.cache/hfbridge)")

    serve = sub.add_parser("serve", help="serve the Inference API locally with real transformers inference")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    registry_options(serve)
    serve.add_argument("--token", action="append", help="an accepted bearer token (repeatable; visible in the process list: "
                       "prefer --token-file or $HFBRIDGE_SERVE_TOKENS); no token anywhere: open server")
    serve.add_argument("--token-file", action="append", metavar="PATH", help="a file of accepted tokens, one per line (repeatable)")
    serve.add_argument("--rate-limit", metavar="N/min", help="requests per minute per token, e.g. 60/min")
    serve.add_argument("--preload", action="store_true", help="load every model at start-up instead of on first use")
    serve.add_argument("--allow-urls", action="store_true", help="let JSON inputs be http(s) URLs that the server fetches")
    serve.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    limit_options(serve.add_argument_group("limits", "what one request may cost; over a limit the answer is 400 (413/408 for bodies)"))
    batching_options(serve.add_argument_group(
        "batching", "concurrent requests to one encoder model (embeddings, classification, entities, fill-mask, "
                    "zero-shot, /rerank, /predict, /v1/embeddings) share forward passes within these bounds"))
    decoding_options(serve.add_argument_group("batching", "concurrent generations of one model decode together "
                                                          "(continuous batching)"))
    serve.set_defaults(run=_serve)

    models = sub.add_parser("models", help="inspect the model registry")
    models_sub = models.add_subparsers(dest="models_command", required=True)
    listing = models_sub.add_parser("list", help="list the registry's models and whether they are cached")
    registry_options(listing)
    listing.set_defaults(run=_models_list)

    demo = sub.add_parser("demo", help="run a LangChain chain, a LlamaIndex query and an agent tool call")
    demo.add_argument("--base-url", help="use this server instead of starting the embedded one")
    demo.add_argument("--cache-dir", help="model cache for the embedded server")
    demo.set_defaults(run=_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    return int(args.run(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
