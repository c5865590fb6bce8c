"""Which URL a task's request goes to, and in which body style, for each URL layout.

Pure: a table from (layout, task, model, input) to (URL, body style). Kept apart from body
building because it is the one place that differs between the spec, the hosted API and a
dedicated endpoint, and it is tested as a table.

| layout   | model given                                   | no model          |
|----------|----------------------------------------------|-------------------|
| spec     | /models/{id}/{task} (13 tasks), else /models/{id} | /pipeline/{task} |
| hosted   | /models/{id}; /models/{id}/pipeline/{task} for embeddings; chat: /models/{id}/v1/chat/completions | error: needs a model |
| endpoint | base URL itself; chat: {base}/v1/chat/completions | same            |
| openai   | chat: {base}/chat/completions, the model in the body (``org/name:provider``) | error |

Chat completions go to the OpenAI-compatible route in every layout: ``/models/{id}/v1/chat/completions``
(spec and hosted), ``/v1/chat/completions`` on a spec server without a model (its default chat model).

The legacy host (api-inference.huggingface.co) took ``/pipeline/{task}/{id}`` for every task;
recordings made against it still replay through the hosted layout.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from .config import ClientConfig, Layout
from .errors import InvalidInputError
from .tasks import Task, TaskSpec

__all__ = ["BodyStyle", "Route", "plan_route"]


class BodyStyle(str, Enum):
    JSON = "json"  # {"inputs", "parameters", "options"?}
    RAW = "raw"  # the image/audio bytes themselves
    CHAT = "chat"  # OpenAI-style chat completion body


@dataclass(frozen=True)
class Route:
    url: str
    style: BodyStyle
    #: options travel in the JSON body (spec layout) rather than as X-* headers
    options_in_body: bool
    #: a URL-valued image may be passed through for the server to fetch
    accepts_url_input: bool = False


def plan_route(
    config: ClientConfig,
    spec: TaskSpec,
    model: str | None,
    *,
    has_parameters: bool,
    generic: bool = False,
    force_task: bool = False,
) -> Route:
    """The route for one call.

    ``generic`` is :meth:`run` / :meth:`run_pipeline` (always JSON), ``force_task`` a ``run``
    that names a task to override the model's own (the hosted pipeline route).
    """
    base = config.base_url
    layout = config.layout
    task = spec.task
    binary = spec.input_kind.is_binary and not generic
    raw_ok = binary and not has_parameters
    if model is not None and ":" in model and layout is not Layout.OPENAI:
        raise InvalidInputError(
            "model", f"a ':provider' suffix ({model!r}) is only understood by the router's OpenAI-compatible "
            "base (layout='openai', base_url='https://router.huggingface.co/v1')"
        )
    if task is Task.CONVERSATIONAL and not generic:
        return _chat_route(config, model)

    if layout is Layout.OPENAI:
        raise InvalidInputError(
            "layout", f"an OpenAI-compatible base ({base}) serves chat completions, not '{task.value}'; "
            "use layout='endpoint' (a TGI/TEI server), 'hosted' or 'spec' for other tasks"
        )

    if layout is Layout.ENDPOINT:
        return Route(base, BodyStyle.RAW if raw_ok else BodyStyle.JSON, False)

    if layout is Layout.HOSTED:
        if model is None:
            raise InvalidInputError(
                "model",
                f"the hosted API needs a model id for task '{task.value}'; pass model=... "
                "(only a server in the spec layout picks a default model per task)",
            )
        if config.is_legacy_host and (force_task or not generic):
            return Route(f"{base}/pipeline/{task.value}/{model}", BodyStyle.RAW if raw_ok else BodyStyle.JSON, False)
        if spec.hosted_pipeline_route or (generic and force_task):
            return Route(f"{base}/models/{model}/pipeline/{task.value}", BodyStyle.JSON, False)
        return Route(f"{base}/models/{model}", BodyStyle.RAW if raw_ok else BodyStyle.JSON, False)

    # spec layout
    if model is None:
        return Route(f"{base}/pipeline/{task.value}", BodyStyle.JSON, True)
    if generic or not spec.spec_route:
        return Route(f"{base}/models/{model}", BodyStyle.JSON, True)
    url = f"{base}/models/{model}/{task.value}"
    if binary:
        return Route(url, BodyStyle.RAW if raw_ok else BodyStyle.JSON, not raw_ok, spec.spec_route_accepts_url)
    return Route(url, BodyStyle.JSON, True)



def _chat_route(config: ClientConfig, model: str | None) -> Route:
    base, layout = config.base_url, config.layout
    if layout is Layout.OPENAI:
        if model is None:
            raise InvalidInputError("model", f"an OpenAI-compatible base ({base}) needs a model id in every chat request")
        return Route(f"{base}/chat/completions", BodyStyle.CHAT, False)
    if layout is Layout.ENDPOINT:
        return Route(f"{base}/v1/chat/completions", BodyStyle.CHAT, False)
    if model is None:
        if layout is Layout.HOSTED:
            raise InvalidInputError("model", "the hosted API needs a model id for chat completions (task 'conversational'); pass model=...")
        return Route(f"{base}/v1/chat/completions", BodyStyle.CHAT, False)
    return Route(f"{base}/models/{model}/v1/chat/completions", BodyStyle.CHAT, False)
