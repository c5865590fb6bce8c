"""``HFInferenceToolSpec``: one LlamaIndex function tool per task, from the task registry.

A file argument is read only inside ``allowed_dirs`` (default: the working directory) and a URL
fetched only if public (``allow_private_urls=True`` lifts that); a refused argument comes back
as the tool's output with ``is_error=True``, which agents show the model like any tool error.
"""

from __future__ import annotations

import inspect
import os
from typing import Any, Callable, Iterable, Mapping

from llama_index.core.tools import FunctionTool, ToolOutput
from llama_index.core.tools.tool_spec.base import BaseToolSpec

from ..adapters import ClientPair, Closable, ToolRunner, tool_description, tool_tasks
from ..async_client import AsyncInferenceClient
from ..client import InferenceClient
from ..tasks import TASKS, Task, find_task
from ..tool_inputs import ToolInputPolicy, ToolInputRefused

__all__ = ["HFInferenceToolSpec", "ToolText"]


class ToolText(str):
    """A tool's text for the agent, carrying the typed result (or media bytes) as ``artifact``;
    ``refused`` holds the error when an argument was refused (then the text is its message)."""

    artifact: Any
    refused: ToolInputRefused | None

    def __new__(cls, content: str, artifact: Any, refused: ToolInputRefused | None = None) -> "ToolText":
        obj = super().__new__(cls, content)
        obj.artifact = artifact
        obj.refused = refused
        return obj


def _refusals_as_errors(tool_name: str) -> tuple[Callable[[Any], Any], Callable[[Any], Any]]:
    """FunctionTool's callbacks (sync, async): a refused argument becomes an error output."""

    def callback(output: Any) -> ToolOutput | None:
        if isinstance(output, ToolText) and output.refused is not None:
            return ToolOutput(content=str(output), tool_name=tool_name, raw_input={}, raw_output=output,
                              is_error=True, exception=output.refused)
        return None

    async def async_callback(output: Any) -> ToolOutput | None:
        return callback(output)

    return callback, async_callback


def _signature(runner: ToolRunner) -> inspect.Signature:
    params = []
    for name, info in runner.spec.tool_args.model_fields.items():
        default = inspect.Parameter.empty if info.is_required() else info.default
        params.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=info.annotation))
    return inspect.Signature(params, return_annotation=str)


class HFInferenceToolSpec(Closable, BaseToolSpec):
    """Tools for ``tasks`` (default: every task but conversational, 27).

    ``models`` maps a task to its model id; without one, the spec layout's ``/pipeline/{task}``
    picks the server's model, and the hosted layout fails at construction naming the task.
    Every function exists sync and async (``spec.text_classification(text=...)`` and
    ``await spec.atext_classification(text=...)``); arguments are validated against the task's
    argument model before anything is sent. ``close()`` / ``aclose()`` (or ``with`` /
    ``async with``) close the clients the tools share, unless they were given."""

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
        allowed_dirs: Iterable[str | os.PathLike[str]] | None = None,
        allow_private_urls: bool = False,
        deadline: float | None = None,
        client: InferenceClient | None = None,
        async_client: AsyncInferenceClient | None = None,
    ) -> None:
        self.clients = ClientPair(base_url=base_url, token=token, layout=layout, timeout=timeout, deadline=deadline,
                                  max_retries=max_retries, client=client, async_client=async_client)
        chosen = {find_task(k, "models"): v for k, v in (models or {}).items()}
        policy = ToolInputPolicy.make(allowed_dirs, allow_private_urls)
        self._runners = {task: ToolRunner(self.clients, TASKS[task], chosen.get(task), output_dir, policy) for task in tool_tasks(tasks)}
        self.spec_functions = []
        for task, runner in self._runners.items():
            name = TASKS[task].tool_name
            setattr(self, name, self._sync_fn(runner))
            setattr(self, f"a{name}", self._async_fn(runner))
            self.spec_functions.append((name, f"a{name}"))

    @staticmethod
    def _sync_fn(runner: ToolRunner) -> Callable[..., ToolText]:
        def call(**kwargs: Any) -> ToolText:
            try:
                return ToolText(*runner.run(kwargs))
            except ToolInputRefused as exc:
                return ToolText(str(exc), None, exc)

        call.__name__ = runner.spec.tool_name
        call.__doc__ = tool_description(runner.spec)
        call.__signature__ = _signature(runner)  # type: ignore[attr-defined]
        return call

    @staticmethod
    def _async_fn(runner: ToolRunner) -> Callable[..., Any]:
        async def call(**kwargs: Any) -> ToolText:
            try:
                return ToolText(*(await runner.arun(kwargs)))
            except ToolInputRefused as exc:
                return ToolText(str(exc), None, exc)

        call.__name__ = f"a{runner.spec.tool_name}"
        call.__doc__ = tool_description(runner.spec)
        call.__signature__ = _signature(runner)  # type: ignore[attr-defined]
        return call

    def to_tool_list(self, spec_functions: Any = None, func_to_metadata_mapping: Any = None) -> list[FunctionTool]:
        """``FunctionTool``s with both sync and async functions and the registry's argument schema."""
        tools = []
        for task, runner in self._runners.items():
            spec = TASKS[task]
            callback, async_callback = _refusals_as_errors(spec.tool_name)
            if spec_functions and spec.tool_name not in [f if isinstance(f, str) else f[0] for f in spec_functions]:
                continue
            tools.append(FunctionTool.from_defaults(
                fn=getattr(self, spec.tool_name),
                async_fn=getattr(self, f"a{spec.tool_name}"),
                name=spec.tool_name,
                description=tool_description(spec),
                fn_schema=spec.tool_schema,
                callback=callback,
                async_callback=async_callback,
            ))
        return tools
