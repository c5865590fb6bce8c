"""Property-based run of the spec against the running server (schemathesis): whatever valid
request the spec allows, the server never answers 5xx, and every answer whose status the spec
documents conforms to the documented schema.

One known gap of the spec, not of the server: the generic routes' ``InferenceResponse`` allows
only an object, a string or a list of objects, so no list of vectors can conform to it. Answers
of feature-extraction and sentence-similarity on the generic routes are therefore checked
against their own task route's schema instead (``/models/{model_id}/feature-extraction`` ...).
"""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from hfbridge import Task
from hfbridge.server.registry import Registry

from .spec_schema import SPEC_FILE, response_schema

if not SPEC_FILE.is_file():  # pragma: no cover - the spec lives beside the repository
    pytest.skip(f"no spec at {SPEC_FILE}", allow_module_level=True)

@schemathesis.serializer("audio/flac", "audio/wav", "audio/mp3")
def _audio(ctx: Any, value: Any) -> bytes:
    """The spec's audio bodies are ``format: binary`` strings: send them as raw bytes."""
    return value if isinstance(value, bytes) else str(value).encode()


schema = schemathesis.openapi.from_path(SPEC_FILE)
VECTOR_TASKS = {"feature-extraction", "sentence-similarity"}
REGISTRY = Registry.default()
MODEL_IDS = sorted(entry.model_id for entry in REGISTRY)


#: generated values above these only make the run slow (a 4096x4096 image, 10^6 new tokens)
COST_CAPS = {"max_new_tokens": 8, "max_tokens": 8, "max_length": 16, "min_length": 8, "num_inference_steps": 2, "width": 64, "height": 64}


def _prepare(case: Any) -> None:
    """Random model ids only ever meet a 404 (tested elsewhere): point the model routes at the
    registry's models so generated bodies reach real inference, with costly sizes capped."""
    parameters = case.body.get("parameters") if isinstance(case.body, dict) else None
    if isinstance(parameters, dict):
        for name, cap in COST_CAPS.items():
            value = parameters.get(name)
            if isinstance(value, int) and not isinstance(value, bool) and value > cap:
                parameters[name] = cap
    if "model_id" not in (case.path_parameters or {}):
        return
    task = case.path.rsplit("/", 1)[1]
    if task != "{model_id}":
        entry = REGISTRY.default_for(Task(task))
        case.path_parameters["model_id"] = entry.model_id if entry else MODEL_IDS[0]
    else:
        seed = sum(map(ord, str(case.path_parameters["model_id"])))
        case.path_parameters["model_id"] = MODEL_IDS[seed % len(MODEL_IDS)]


def _vector_task(case: Any) -> str | None:
    if case.path == "/pipeline/{task}" and case.path_parameters.get("task") in VECTOR_TASKS:
        return case.path_parameters["task"]
    return None


@schema.parametrize()
@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_spec_holds_for_generated_requests(case: Any, live_server: Any) -> None:
    _prepare(case)
    response = case.call(base_url=live_server.url, timeout=120)
    vector_task = _vector_task(case)
    if vector_task and response.status_code == 200:
        case.validate_response(response, checks=[not_a_server_error])
        _, task_schema = response_schema(f"/models/{{model_id}}/{vector_task}")
        jsonschema.validate(response.json(), task_schema)
        return
    case.validate_response(response, checks=[not_a_server_error, response_schema_conformance])
