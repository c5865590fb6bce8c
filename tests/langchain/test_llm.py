"""HFInferenceLLM: invoke, batch, stream and their async twins, stop sequences, callbacks."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.callbacks import AsyncCallbackHandler, BaseCallbackHandler

from hfbridge import InvalidInputError, ModelNotFoundError
from hfbridge.langchain import HFInferenceLLM

from .conftest import BASE_URL, LLM_MODEL

pytestmark = pytest.mark.hf_cassette


def make_llm(**fields: Any) -> HFInferenceLLM:
    fields.setdefault("max_new_tokens", 12)
    return HFInferenceLLM(base_url=BASE_URL, model=LLM_MODEL, **fields)


class TokenCollector(BaseCallbackHandler):
    def __init__(self) -> None:
        self.tokens: list[str] = []

    def on_llm_new_token(self, token: str, **kwargs: Any) -> None:
        self.tokens.append(token)


class AsyncTokenCollector(AsyncCallbackHandler):
    def __init__(self) -> None:
        self.tokens: list[str] = []

    async def on_llm_new_token(self, token: str, **kwargs: Any) -> None:
        self.tokens.append(token)


PROMPT = "The capital of France is"


def test_invoke_returns_only_the_continuation() -> None:
    text = make_llm().invoke(PROMPT)
    assert isinstance(text, str) and text.strip()
    assert not text.startswith(PROMPT)  # return_full_text=False, as chains expect


def test_generation_info_has_finish_reason_and_token_counts() -> None:
    result = make_llm().generate([PROMPT])
    info = result.generations[0][0].generation_info
    assert info["finish_reason"] in ("length", "eos_token", "stop_sequence")
    assert 0 < info["generated_tokens"] <= 12


def test_batch_keeps_prompt_order() -> None:
    llm = make_llm(max_new_tokens=6)
    prompts = ["One, two,", "The sky is", "def add(a, b):"]
    outputs = llm.batch(prompts)
    assert len(outputs) == 3
    assert outputs == [llm.invoke(p) for p in prompts]  # greedy: each prompt's own answer


async def test_ainvoke_and_abatch_match_the_sync_answers() -> None:
    llm = make_llm(max_new_tokens=6)
    prompts = ["One, two,", "The sky is"]
    assert await llm.ainvoke(prompts[0]) == llm.invoke(prompts[0])
    assert await llm.abatch(prompts) == llm.batch(prompts)


def test_stream_yields_tokens_that_add_up_to_the_answer() -> None:
    llm = make_llm()
    collector = TokenCollector()
    chunks = list(llm.stream(PROMPT, config={"callbacks": [collector]}))
    assert len(chunks) > 1
    assert "".join(chunks) == llm.invoke(PROMPT)
    assert collector.tokens == [c for c in chunks if c]


async def test_astream_and_async_callbacks() -> None:
    llm = make_llm()
    collector = AsyncTokenCollector()
    chunks = [c async for c in llm.astream(PROMPT, config={"callbacks": [collector]})]
    assert len(chunks) > 1 and "".join(chunks) == await llm.ainvoke(PROMPT)
    assert collector.tokens == [c for c in chunks if c]


def test_streaming_field_sends_tokens_to_callbacks_on_invoke() -> None:
    collector = TokenCollector()
    text = make_llm(streaming=True).invoke(PROMPT, config={"callbacks": [collector]})
    assert collector.tokens and "".join(collector.tokens) == text


def test_stop_sequences_are_honoured_in_invoke_and_stream() -> None:
    llm = make_llm(max_new_tokens=20)
    prompt = "Count from one to ten: one, two, three,"
    free = llm.invoke(prompt)
    assert "," in free  # without a stop the model keeps counting with commas
    stopped = llm.invoke(prompt, stop=[","])
    assert "," not in stopped and free.startswith(stopped)
    streamed = "".join(llm.stream(prompt, stop=[","]))
    assert streamed == stopped


def test_stop_from_the_field_and_the_call_combine() -> None:
    llm = make_llm(max_new_tokens=20, stop=["five"])
    text = llm.invoke("Count from one to ten: one, two, three,", stop=[";"])
    assert "five" not in text and ";" not in text


def test_typed_errors_reach_the_caller() -> None:
    llm = HFInferenceLLM(base_url=BASE_URL, model="nobody/no-such-model", max_new_tokens=4)
    with pytest.raises(ModelNotFoundError):
        llm.invoke("hello")


@pytest.mark.parametrize("prompt", ["", "   "])
def test_empty_prompt_is_refused_before_sending(prompt: str) -> None:
    llm = HFInferenceLLM(base_url="http://127.0.0.1:9", model=LLM_MODEL, max_retries=0)
    with pytest.raises(InvalidInputError) as info:
        llm.invoke(prompt)
    assert info.value.field == "prompt"


def test_identifying_and_tracing_params() -> None:
    llm = make_llm(temperature=0.5)
    assert llm._llm_type == "hfbridge-inference"
    assert llm._identifying_params["model"] == LLM_MODEL
    params = llm._get_ls_params(stop=["\n"])
    assert params["ls_provider"] == "huggingface" and params["ls_model_name"] == LLM_MODEL
    assert params["ls_temperature"] == 0.5 and params["ls_max_tokens"] == 12 and params["ls_stop"] == ["\n"]
