"""ChatHFInference through LangChain's own standard suites, unmodified: ``ChatModelUnitTests``
and ``ChatModelIntegrationTests`` against ``hfbridge serve`` (SmolLM2-135M, cassettes recorded
from the embedded server). What the local model cannot do is declared through the suite's
own properties, each with its reason."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_tests.integration_tests import ChatModelIntegrationTests
from langchain_tests.unit_tests import ChatModelUnitTests

from hfbridge.langchain import ChatHFInference

from .conftest import BASE_URL, LLM_MODEL

pytestmark = pytest.mark.hf_cassette

TOKEN = "hf_from_the_environment_000000000000"


class _Settings:
    @property
    def chat_model_class(self) -> type[ChatHFInference]:
        return ChatHFInference

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"base_url": BASE_URL, "model": LLM_MODEL}

    @property
    def supports_image_inputs(self) -> bool:
        # hfbridge serve's chat models (SmolLM2, a tiny GPT-2) read text only and refuse image
        # parts with a 400 naming the field; the client sends them (see test_chat_model.py)
        return False

    @property
    def supports_json_mode(self) -> bool:
        return True  # response_format json_object, enforced by constrained decoding

    @property
    def model_override_value(self) -> str:
        return "hfbridge/tiny-text-generation"  # the server's other chat model (MEANINGLESS outputs)


class TestChatHFInferenceUnit(_Settings, ChatModelUnitTests):
    @property
    def init_from_env_params(self) -> tuple[dict[str, str], dict[str, Any], dict[str, Any]]:
        return ({"HF_TOKEN": TOKEN}, {"base_url": BASE_URL, "model": LLM_MODEL}, {"token": TOKEN, "base_url": BASE_URL})


class TestChatHFInferenceIntegration(_Settings, ChatModelIntegrationTests):
    pass
