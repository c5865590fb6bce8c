"""Which URL a task's request goes to, and in which body style, for each URL layout.

Pure: a table from (layout, task, model, input) to (URL, body style). Kept apart from body
building because it is the one place that differs between the spec, the hosted API and a
dedicated endpoint, and it is tested as a table.

| layout   | model given                                   | no model          |
|----------|----------------------------------------------|-------------------|
| spec     | /models/{id}/{task} (13 tasks), else /models/{id} | /pipeline/{task} |
| hosted   | /models/{id}; /models/{id}/pipeline/{task} for embeddings; chat: /models/{id}/v1/chat/completions | error: needs a model |
| endpoint | base URL itself; chat: {base}/v1/chat/completions | same            |

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

    if layout is Layout.ENDPOINT:
        if task is Task.CONVERSATIONAL and not generic:
            return Route(f"{base}/v1/chat/completions", BodyStyle.CHAT, False)
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
        if task is Task.CONVERSATIONAL and not generic:
            return Route(f"{base}/models/{model}/v1/chat/completions", BodyStyle.CHAT, False)
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

