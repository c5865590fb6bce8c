"""``HFInferenceToolSpec``: one LlamaIndex function tool per task, from the task registry."""

from __future__ import annotations

import inspect
import os
from typing import Any, Callable, Iterable, Mapping

from llama_index.core.tools import FunctionTool
from llama_index.core.tools.tool_spec.base import BaseToolSpec

from ..adapters import ClientPair, ToolRunner, tool_description, tool_tasks
from ..async_client import AsyncInferenceClient
from ..client import InferenceClient
from ..tasks import TASKS, Task, find_task

__all__ = ["HFInferenceToolSpec", "ToolText"]


class ToolText(str):
    """A tool's text for the agent, carrying the typed result (or media bytes) as ``artifact``."""

    artifact: Any

    def __new__(cls, content: str, artifact: Any) -> "ToolText":
        obj = super().__new__(cls, content)
        obj.artifact = artifact
        return obj


def _signature(runner: ToolRunner) -> inspect.Signature:
    params = []
    for name, info in runner.spec.tool_args.model_fields.items():
        default = inspect.Parameter.empty if info.is_required() else info.default
        params.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=info.annotation))
    return inspect.Signature(params, return_annotation=str)


class HFInferenceToolSpec(BaseToolSpec):
    """Tools for ``tasks`` (default: the 20 tasks of the spec's enum but conversational).

    ``models`` maps a task to its model id; without one, the spec layout's ``/pipeline/{task}``
    picks the server's model, and the hosted layout fails at construction naming the task.
    Every function exists sync and async (``spec.text_classification(text=...)`` and
    ``await spec.atext_classification(text=...)``); arguments are validated against the task's
    argument model before anything is sent."""

    def __init__(
        self,
        base_url: str | None = None,
        token: Any = None,
        *,
        models: Mapping[str, str] | None = None,
        tasks: Iterable[Task | str] | None = None,
        layout: str | None = None,
        timeout: float | None = None,
        max_retries: int | None = None,
        output_dir: str | os.PathLike[str] | None = None,
        client: InferenceClient | None = None,
        async_client: AsyncInferenceClient | None = None,
    ) -> None:
        self.clients = ClientPair(base_url=base_url, token=token, layout=layout, timeout=timeout,
                                  max_retries=max_retries, client=client, async_client=async_client)
        chosen = {find_task(k, "models"): v for k, v in (models or {}).items()}
        self._runners = {task: ToolRunner(self.clients, TASKS[task], chosen.get(task), output_dir) for task in tool_tasks(tasks)}
        self.spec_functions = []
        for task, runner in self._runners.items():
            name = TASKS[task].tool_name
            setattr(self, name, self._sync_fn(runner))
            setattr(self, f"a{name}", self._async_fn(runner))
            self.spec_functions.append((name, f"a{name}"))

    @staticmethod
    def _sync_fn(runner: ToolRunner) -> Callable[..., ToolText]:
        def call(**kwargs: Any) -> ToolText:
            return ToolText(*runner.run(kwargs))

        call.__name__ = runner.spec.tool_name
        call.__doc__ = tool_description(runner.spec)
        call.__signature__ = _signature(runner)  # type: ignore[attr-defined]
        return call

    @staticmethod
    def _async_fn(runner: ToolRunner) -> Callable[..., Any]:
        async def call(**kwargs: Any) -> ToolText:
            return ToolText(*(await runner.arun(kwargs)))

        call.__name__ = f"a{runner.spec.tool_name}"
        call.__doc__ = tool_description(runner.spec)
        call.__signature__ = _signature(runner)  # type: ignore[attr-defined]
        return call

    def to_tool_list(self, spec_functions: Any = None, func_to_metadata_mapping: Any = None) -> list[FunctionTool]:
        """``FunctionTool``s with both sync and async functions and the registry's argument schema."""
        tools = []
        for task, runner in self._runners.items():
            spec = TASKS[task]
            if spec_functions and spec.tool_name not in [f if isinstance(f, str) else f[0] for f in spec_functions]:
                continue
            tools.append(FunctionTool.from_defaults(
                fn=getattr(self, spec.tool_name),
                async_fn=getattr(self, f"a{spec.tool_name}"),
                name=spec.tool_name,
                description=tool_description(spec),
                fn_schema=spec.tool_args,
            ))
        return tools
