"""One LangChain tool per task, generated from the task registry, and a toolkit of them.

Each tool's ``args_schema`` is the registry's argument model for its task (binary inputs as a
file path or URL) and its description says what the agent gets back. Generated media are written
to files: the content is the path, the artifact the bytes.

A file argument is read only inside ``allowed_dirs`` (default: the working directory) and a URL
fetched only if public (``allow_private_urls=True`` lifts that); a refused argument is a
``ToolException`` the tool returns to the agent as an error message (``handle_tool_error``).
"""

from __future__ import annotations

from typing import Any, ClassVar

from langchain_core.callbacks import AsyncCallbackManagerForToolRun, CallbackManagerForToolRun
from langchain_core.tools import BaseTool, BaseToolkit, ToolException
from pydantic import ConfigDict, Field, PrivateAttr, model_validator

from ..adapters import ClientPair, ToolRunner, tool_description, tool_tasks
from ..async_client import AsyncInferenceClient
from ..client import InferenceClient
from ..tasks import TASKS, Task, TaskSpec, find_task
from ..tool_inputs import ToolInputPolicy, ToolInputRefused
from ._fields import ConnectionFields

_ALLOWED_DIRS = "Folders whose files the tool may read; default: the working directory. [] allows none."
_ALLOW_PRIVATE = "Also fetch loopback, private and link-local URLs (off: only public ones)."

__all__ = ["HFInferenceTool", "HFInferenceToolkit", "TOOL_CLASSES", "tool_class"]


class HFInferenceTool(ConnectionFields, BaseTool):
    """Base of the per-task tools; use a subclass from :data:`TOOL_CLASSES` or the toolkit."""

    model_config = ConfigDict(arbitrary_types_allowed=True, populate_by_name=True)

    task_spec: ClassVar[TaskSpec]
    model: str | None = Field(default=None, description="Model id; None on a spec-layout server: its default model.")
    output_dir: str | None = Field(default=None, description="Where generated images/audio are written.")
    allowed_dirs: list[str] | None = Field(default=None, description=_ALLOWED_DIRS)
    allow_private_urls: bool = Field(default=False, description=_ALLOW_PRIVATE)
    response_format: str = "content_and_artifact"
    handle_tool_error: Any = True  # a refused argument goes back to the agent as the tool's answer

    _runner: ToolRunner | None = PrivateAttr(default=None)
    _policy: ToolInputPolicy | None = PrivateAttr(default=None)

    def model_post_init(self, context: Any) -> None:
        super().model_post_init(context)
        self._policy = ToolInputPolicy.make(self.allowed_dirs, self.allow_private_urls)  # the cwd of now

    @classmethod
    def from_clients(cls, clients: ClientPair, **fields: Any) -> "HFInferenceTool":
        """A tool sharing an existing client pair (what the toolkit does; the toolkit closes it)."""
        tool = cls(**fields)
        tool._clients.close()  # the pair made at construction: never used
        tool._clients = clients
        tool._owns_clients = False
        tool._runner = None
        tool.runner  # validates model vs layout now, not at the first call
        return tool

    @property
    def runner(self) -> ToolRunner:
        if self._runner is None:
            self._runner = ToolRunner(self.clients, self.task_spec, self.model, self.output_dir, self._policy)
        return self._runner

    def _run(self, run_manager: CallbackManagerForToolRun | None = None, **kwargs: Any) -> Any:
        try:
            return self.runner.run(kwargs)
        except ToolInputRefused as exc:
            raise ToolException(str(exc)) from None

    async def _arun(self, run_manager: AsyncCallbackManagerForToolRun | None = None, **kwargs: Any) -> Any:
        try:
            return await self.runner.arun(kwargs)
        except ToolInputRefused as exc:
            raise ToolException(str(exc)) from None


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
            "args_schema": spec.tool_schema,
        },
    )


#: every task's tool class, ``conversational`` excepted (27 tools)
TOOL_CLASSES: dict[Task, type[HFInferenceTool]] = {task: tool_class(task) for task in tool_tasks(None)}
for _cls in TOOL_CLASSES.values():
    globals()[_cls.__name__] = _cls


class HFInferenceToolkit(ConnectionFields, BaseToolkit):
    """The tools for ``tasks`` (default: all 27), sharing one client pair.

    ``models`` maps a task to its model id; a task without one calls ``POST /pipeline/{task}``
    in the spec layout (the server picks its model). In the hosted layout every task needs a
    model, and construction fails naming the ones missing. ``allowed_dirs`` and
    ``allow_private_urls`` are passed to every tool; ``close()`` (or ``with``) closes the
    clients the tools share, unless they were given as ``client`` / ``async_client``."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    models: dict[str, str] = Field(default_factory=dict)
    tasks: list[str] | None = None
    output_dir: str | None = None
    allowed_dirs: list[str] | None = Field(default=None, description=_ALLOWED_DIRS)
    allow_private_urls: bool = Field(default=False, description=_ALLOW_PRIVATE)
    client: InferenceClient | None = Field(default=None, exclude=True)
    async_client: AsyncInferenceClient | None = Field(default=None, exclude=True)

    _tools: list[HFInferenceTool] = PrivateAttr(default_factory=list)

    @model_validator(mode="after")
    def _make_tools(self) -> "HFInferenceToolkit":
        clients = self.clients
        models = {find_task(k, "models").value: v for k, v in self.models.items()}
        dirs = [str(d) for d in ToolInputPolicy.make(self.allowed_dirs).allowed_dirs]  # one cwd for all
        self._tools = [
            TOOL_CLASSES[task].from_clients(clients, model=models.get(task.value), output_dir=self.output_dir,
                                            allowed_dirs=dirs, allow_private_urls=self.allow_private_urls,
                                            base_url=clients.base_url, layout=clients.layout.value, token=self.token)
            for task in tool_tasks(self.tasks)
            if task in TOOL_CLASSES
        ]
        return self

    def get_tools(self) -> list[BaseTool]:
        return list(self._tools)
