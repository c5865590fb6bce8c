"""What a task's answer looks like on each kind of route, and how a batch of texts is answered.

* Batches: the hosted API and TEI take a list of texts where they take one text (text and token
  classification, fill-mask, summarization, translation, text2text) and answer one result per
  text, in order. A backend answers one text at a time; :func:`predict` runs it per text and
  lists the answers, naming the text (``inputs.3``) when one of them is refused. How many texts
  one request may hold is the server's ``max_inputs`` (:mod:`.limits`).
* Route shapes: the spec's routes (``/models/{id}/{task}``, ``/pipeline/{task}``) answer the
  spec's shapes, the hosted API's routes (``/models/{id}``, ``/models/{id}/pipeline/{task}``,
  ``/pipeline/{task}/{id}``) the hosted API's current ones. They differ in two places:
  zero-shot classification (the spec's ``{sequence, labels, scores}``, the hosted
  ``[{label, score}]``) and one text's text classification (the hosted ``[[{label, score}]]``;
  the spec's generic schema has no list of lists, so ``/pipeline/{task}`` answers the flat list).
"""

from __future__ import annotations

from enum import Enum
from typing import Any

from ..tasks import Task
from .backends import BackendInputError, Plan

__all__ = ["RouteKind", "BATCHED_TASKS", "predict", "plan", "route_shape"]

#: tasks whose ``inputs`` may be a list of texts
BATCHED_TASKS = frozenset({
    Task.TEXT_CLASSIFICATION, Task.TOKEN_CLASSIFICATION, Task.FILL_MASK, Task.SUMMARIZATION,
    Task.TRANSLATION, Task.TEXT2TEXT_GENERATION,
})
#: tasks whose one-text answer is a list of one result; in a batch each text gets the result
_SINGLE_IN_LIST = frozenset({Task.TEXT_CLASSIFICATION, Task.SUMMARIZATION, Task.TRANSLATION, Task.TEXT2TEXT_GENERATION})


class RouteKind(str, Enum):
    SPEC_TASK = "spec task route"  # /models/{id}/{task}
    SPEC_GENERIC = "spec generic route"  # /pipeline/{task}
    HOSTED = "hosted route"  # /models/{id}, /models/{id}/pipeline/{task}, /pipeline/{task}/{id}


def predict(backend: Any, task: Task, inputs: Any, parameters: dict[str, Any]) -> Any:
    """The backend's answer; a list of texts for a batched task is answered text by text."""
    if task not in BATCHED_TASKS or not isinstance(inputs, list):
        return backend.predict(task, inputs, parameters)
    answers = []
    for index, text in enumerate(inputs):
        try:
            answer = backend.predict(task, text, parameters)
        except BackendInputError as exc:
            field = f"inputs.{index}" if exc.field == "inputs" else exc.field
            raise BackendInputError(field, exc.message) from None
        answers.append(answer[0] if task in _SINGLE_IN_LIST else answer)
    return answers


def plan(backend: Any, task: Task, inputs: Any, parameters: dict[str, Any]) -> Plan:
    """:func:`predict` as a :class:`Plan` for the server's batcher (a backend's
    ``batched_tasks``): a list of texts is planned text by text and answered as :func:`predict`
    answers it, in one plan, so its texts share forward passes with other requests."""
    if task not in BATCHED_TASKS or not isinstance(inputs, list):
        return backend.plan(task, inputs, parameters)
    plans = []
    for index, text in enumerate(inputs):
        try:
            plans.append(backend.plan(task, text, parameters))
        except BackendInputError as exc:
            field = f"inputs.{index}" if exc.field == "inputs" else exc.field
            raise BackendInputError(field, exc.message) from None
    single = task in _SINGLE_IN_LIST
    return Plan.concat(plans, lambda answers: [answer[0] if single else answer for answer in answers])


def route_shape(task: Task, result: Any, inputs: Any, route: RouteKind) -> Any:
    """``result`` (the spec's task-route shape, as backends answer) in the shape of ``route``."""
    if task is Task.ZERO_SHOT_CLASSIFICATION and route is RouteKind.HOSTED and isinstance(result, dict):
        return [{"label": label, "score": score} for label, score in zip(result["labels"], result["scores"])]
    one_text = not isinstance(inputs, list)
    if task is Task.TEXT_CLASSIFICATION and route is RouteKind.SPEC_GENERIC and one_text and _nested_once(result):
        return result[0]
    return result


def _nested_once(result: Any) -> bool:
    return isinstance(result, list) and len(result) == 1 and isinstance(result[0], list)
