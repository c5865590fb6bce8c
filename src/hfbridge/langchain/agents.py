"""A LangChain agent middleware for small models: call a tool first, then answer.

Needs the ``langchain`` package (``create_agent``), which the ``langchain`` extra does not
install: ``pip install langchain``.

Measured on SmolLM2-135M behind ``hfbridge serve``: left to ``tool_choice="auto"``, a model this
small answers a request that needs a tool in text (it writes code, or guesses), and after a tool
has answered it calls the same tool again until the agent's recursion limit. Bigger models and
the hosted API choose well on their own and need none of this.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable

from langchain.agents.middleware import AgentMiddleware
from langchain_core.messages import HumanMessage, ToolMessage

__all__ = ["ToolThenAnswer"]


class ToolThenAnswer(AgentMiddleware):
    """Forces a tool call on the model turn that follows the user's message (``tool_choice``
    ``"any"``) and forbids one on the turn that follows tool results (``"none"``), so the agent
    calls its tool once and then answers with the result.

    ```python
    from langchain.agents import create_agent
    from hfbridge.langchain import ChatHFInference, HFInferenceToolkit
    from hfbridge.langchain.agents import ToolThenAnswer

    model = ChatHFInference(base_url="http://127.0.0.1:8000", model="HuggingFaceTB/SmolLM2-135M-Instruct", temperature=0)
    tools = HFInferenceToolkit(base_url="http://127.0.0.1:8000", tasks=["sentence-similarity"]).get_tools()
    agent = create_agent(model, tools, middleware=[ToolThenAnswer()])
    ```
    """

    @staticmethod
    def _choose(request: Any) -> Any:
        last = request.messages[-1] if request.messages else None
        if isinstance(last, HumanMessage) and request.tools:
            return request.override(tool_choice="any")
        if isinstance(last, ToolMessage):
            return request.override(tool_choice="none")
        return request

    def wrap_model_call(self, request: Any, handler: Callable[[Any], Any]) -> Any:
        return handler(self._choose(request))

    async def awrap_model_call(self, request: Any, handler: Callable[[Any], Awaitable[Any]]) -> Any:
        return await handler(self._choose(request))
