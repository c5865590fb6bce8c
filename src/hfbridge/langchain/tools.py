"""One LangChain tool per task, generated from the task registry, and a toolkit of them.

Each tool's ``args_schema`` is the registry's argument model for its task (binary inputs as a
file path or URL) and its description says what the agent gets back. Generated media are written
to files: the content is the path, the artifact the bytes.
"""

from __future__ import annotations

from typing import Any, ClassVar

from langchain_core.callbacks import AsyncCallbackManagerForToolRun, CallbackManagerForToolRun
from langchain_core.tools import BaseTool, BaseToolkit
from pydantic import ConfigDict, Field, PrivateAttr, model_validator

from ..adapters import ClientPair, ToolRunner, tool_description, tool_tasks
from ..async_client import AsyncInferenceClient
from ..client import InferenceClient
from ..tasks import TASKS, Task, TaskSpec, find_task
from ._fields import ConnectionFields

__all__ = ["HFInferenceTool", "HFInferenceToolkit", "TOOL_CLASSES", "tool_class"]


class HFInferenceTool(ConnectionFields, BaseTool):
    """Base of the per-task tools; use a subclass from :data:`TOOL_CLASSES` or the toolkit."""

    model_config = ConfigDict(arbitrary_types_allowed=True, populate_by_name=True)

    task_spec: ClassVar[TaskSpec]
    model: str | None = Field(default=None, description="Model id; None on a spec-layout server: its default model.")
    output_dir: str | None = Field(default=None, description="Where generated images/audio are written.")
    response_format: str = "content_and_artifact"

    _runner: ToolRunner | None = PrivateAttr(default=None)

    @classmethod
    def from_clients(cls, clients: ClientPair, **fields: Any) -> "HFInferenceTool":
        """A tool sharing an existing client pair (what the toolkit does)."""
        tool = cls(**fields)
        tool._clients = clients
        tool._runner = None
        tool.runner  # validates model vs layout now, not at the first call
        return tool

    @property
    def runner(self) -> ToolRunner:
        if self._runner is None:
            self._runner = ToolRunner(self.clients, self.task_spec, self.model, self.output_dir)
        return self._runner

    def _run(self, run_manager: CallbackManagerForToolRun | None = None, **kwargs: Any) -> Any:
        return self.runner.run(kwargs)

    async def _arun(self, run_manager: AsyncCallbackManagerForToolRun | None = None, **kwargs: Any) -> Any:
        return await self.runner.arun(kwargs)


def _camel(task: Task) -> str:
    return "".join(part.capitalize() for part in task.value.replace("2", "-2-").split("-")) + "Tool"


def tool_class(task: Task) -> type[HFInferenceTool]:
    """The tool class of ``task``, made from its registry entry."""
    spec = TASKS[task]
    return type(
        _camel(task),
        (HFInferenceTool,),
        {
            "__module__": __name__,
            "__doc__": f"LangChain tool for {task.value}: {spec.summary}",
            "task_spec": spec,
            "__annotations__": {"name": str, "description": str, "args_schema": type},
            "name": spec.tool_name,
            "description": tool_description(spec),
            "args_schema": spec.tool_args,
        },
    )


#: every task's tool class, ``conversational`` excepted (20 tools)
TOOL_CLASSES: dict[Task, type[HFInferenceTool]] = {task: tool_class(task) for task in tool_tasks(None)}
for _cls in TOOL_CLASSES.values():
    globals()[_cls.__name__] = _cls


class HFInferenceToolkit(BaseToolkit):
    """The tools for ``tasks`` (default: all 20), sharing one client pair.

    ``models`` maps a task to its model id; a task without one calls ``POST /pipeline/{task}``
    in the spec layout (the server picks its model). In the hosted layout every task needs a
    model, and construction fails naming the ones missing."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    base_url: str | None = None
    token: Any = None
    layout: str | None = None
    timeout: float | None = None
    max_retries: int | None = None
    models: dict[str, str] = Field(default_factory=dict)
    tasks: list[str] | None = None
    output_dir: str | None = None
    client: InferenceClient | None = None
    async_client: AsyncInferenceClient | None = None

    _tools: list[HFInferenceTool] = PrivateAttr(default_factory=list)

    @model_validator(mode="after")
    def _make_tools(self) -> "HFInferenceToolkit":
        token = self.token if self.token is not None else None
        if hasattr(token, "get_secret_value"):
            token = token.get_secret_value()
        clients = ClientPair(base_url=self.base_url, token=token, layout=self.layout, timeout=self.timeout,
                             max_retries=self.max_retries, client=self.client, async_client=self.async_client)
        models = {find_task(k, "models").value: v for k, v in self.models.items()}
        self._tools = [
            TOOL_CLASSES[task].from_clients(clients, model=models.get(task.value), output_dir=self.output_dir,
                                            base_url=clients.base_url, token=token, layout=clients.layout.value)
            for task in tool_tasks(self.tasks)
            if task in TOOL_CLASSES
        ]
        return self

    def get_tools(self) -> list[BaseTool]:
        return list(self._tools)
