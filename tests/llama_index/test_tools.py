"""HFInferenceToolSpec: every tool called the way an agent calls it, sync and async."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from hfbridge import InvalidInputError, Task
from hfbridge.llama_index import HFInferenceToolSpec, ToolText

from .conftest import BASE_URL

pytestmark = pytest.mark.hf_cassette

ASSETS = Path(__file__).resolve().parents[1] / "assets"
from ..langchain.test_tools import EXAMPLES, HOSTED_EXAMPLES  # noqa: E402 - the same agent arguments for both frameworks


def test_one_tool_per_task_with_sync_and_async_functions() -> None:
    tools = HFInferenceToolSpec(BASE_URL).to_tool_list()
    assert len(tools) == 28
    assert {t.metadata.name for t in tools} == {t.value.replace("-", "_") for t in Task if t is not Task.CONVERSATIONAL}
    for tool in tools:
        assert tool.fn is not None and tool.async_fn is not None
        assert tool.metadata.description and tool.metadata.fn_schema is not None


def test_every_tool_called_like_an_agent(tmp_path: Path) -> None:
    tools = {t.metadata.name: t for t in HFInferenceToolSpec(BASE_URL, output_dir=tmp_path, allowed_dirs=[ASSETS]).to_tool_list()}
    for task, args in EXAMPLES.items():
        output = tools[task.value.replace("-", "_")].call(**args)
        assert output.content and not output.is_error, (task, output)
        assert isinstance(output.raw_output, ToolText) and output.raw_output.artifact is not None
    assert any(p.suffix == ".png" for p in tmp_path.iterdir())


async def test_every_tool_called_like_an_agent_async(tmp_path: Path) -> None:
    tools = {t.metadata.name: t for t in HFInferenceToolSpec(BASE_URL, output_dir=tmp_path, allowed_dirs=[ASSETS]).to_tool_list()}
    for task, args in EXAMPLES.items():
        output = await tools[task.value.replace("-", "_")].acall(**args)
        assert output.content and not output.is_error, (task, output)


async def test_hosted_only_tools_called_like_an_agent_sync_and_async(tmp_path: Path) -> None:
    tools = {t.metadata.name: t for t in HFInferenceToolSpec(BASE_URL, output_dir=tmp_path, allowed_dirs=[ASSETS]).to_tool_list()}
    for task, args in HOSTED_EXAMPLES.items():
        tool = tools[task.value.replace("-", "_")]
        output = tool.call(**args)
        assert output.content and not output.is_error, (task, output)
        again = await tool.acall(**args)
        written = task in (Task.IMAGE_TO_IMAGE, Task.AUDIO_TO_AUDIO)  # media go to a new file each call
        assert again.content == output.content or written
    assert any(p.suffix == ".png" for p in tmp_path.iterdir())


def test_direct_functions() -> None:
    spec = HFInferenceToolSpec(BASE_URL, tasks=["sentence-similarity"])
    text = spec.sentence_similarity(source_sentence="A cat sleeps.", sentences=["A kitten naps.", "Taxes rose."])
    scores = text.artifact
    assert scores[0] > scores[1] and str(scores[0])[:4] in text


def test_wrong_argument_gives_a_clear_error() -> None:
    tool = HFInferenceToolSpec("http://127.0.0.1:9", max_retries=0, tasks=["zero-shot-classification"]).to_tool_list()[0]
    with pytest.raises(ValidationError) as info:
        tool.fn(text="x", candidate_labels=[])
    assert "candidate_labels" in str(info.value)
    with pytest.raises(ValidationError) as info:
        tool.fn(txt="x")
    assert "text" in str(info.value)


def test_hosted_layout_without_a_model_names_the_task() -> None:
    with pytest.raises(InvalidInputError) as info:
        HFInferenceToolSpec("https://router.huggingface.co/hf-inference", token="hf_x", tasks=["object-detection"])
    assert "object-detection" in str(info.value)
