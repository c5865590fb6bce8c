"""Every task's tool through LangChain's standard tool tests (unit and integration), generated
from the task registry like the tools themselves; and the toolkit."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import ToolCall, ToolMessage
from langchain_tests.integration_tests import ToolsIntegrationTests
from langchain_tests.unit_tests import ToolsUnitTests
from pydantic import ValidationError

from hfbridge import Task
from hfbridge.langchain import TOOL_CLASSES, HFInferenceToolkit

from .conftest import BASE_URL

pytestmark = pytest.mark.hf_cassette

ASSETS = Path(__file__).resolve().parents[1] / "assets"
IMAGE = str(ASSETS / "image.png")
#: the same photo at 64x64 and the speech's first 1.5 s (keep the hosted-only tools' cassettes small)
SMALL_IMAGE = str(ASSETS / "small.png")
SHORT_AUDIO = str(ASSETS / "short.flac")
AUDIO = str(ASSETS / "sample1.flac")

#: what an agent would pass each tool
EXAMPLES: dict[Task, dict[str, Any]] = {
    Task.TEXT_GENERATION: {"prompt": "The capital of France is", "max_new_tokens": 6},
    Task.TEXT_CLASSIFICATION: {"text": "I love this movie!"},
    Task.TOKEN_CLASSIFICATION: {"text": "My name is Sarah Jessica Parker and I live in Paris."},
    Task.QUESTION_ANSWERING: {"question": "Where do I live?", "context": "My name is Clara and I live in Berkeley."},
    Task.SUMMARIZATION: {"text": "The sky is blue, the tree is green, and the grass is wet after the rain."},
    Task.TRANSLATION: {"text": "Hello world"},
    Task.FILL_MASK: {"text": "Paris is the [MASK] of France."},
    Task.TEXT2TEXT_GENERATION: {"text": "Fix the grammar: he go to school."},
    Task.FEATURE_EXTRACTION: {"text": "Embeddings map sentences to vectors."},
    Task.SENTENCE_SIMILARITY: {"source_sentence": "Machine learning is easy.", "sentences": ["Deep learning is easy.", "Rockets are hard."]},
    Task.ZERO_SHOT_CLASSIFICATION: {"text": "The match ended in a draw.", "candidate_labels": ["sport", "politics", "cooking"]},
    Task.TABLE_QUESTION_ANSWERING: {"query": "How many stars does Transformers have?", "table": {"Repo": ["Transformers", "Datasets"], "Stars": ["36542", "4512"]}},
    Task.IMAGE_CLASSIFICATION: {"image": IMAGE},
    Task.OBJECT_DETECTION: {"image": IMAGE},
    Task.IMAGE_SEGMENTATION: {"image": IMAGE},
    Task.IMAGE_TO_TEXT: {"image": IMAGE},
    Task.TEXT_TO_IMAGE: {"prompt": "An astronaut riding a horse", "width": 64, "height": 64},
    Task.AUTOMATIC_SPEECH_RECOGNITION: {"audio": AUDIO},
    Task.AUDIO_CLASSIFICATION: {"audio": AUDIO},
    Task.TEXT_TO_SPEECH: {"text": "Hello world"},
}
#: the tasks beyond the spec (the hosted API's, and reranking); their tools come from the same registry
HOSTED_EXAMPLES: dict[Task, dict[str, Any]] = {
    Task.TEXT_RANKING: {"query": "Where is the Eiffel Tower?", "texts": ["Bananas are yellow.", "The Eiffel Tower is in Paris."], "top_n": 1},
    Task.DOCUMENT_QUESTION_ANSWERING: {"image": SMALL_IMAGE, "question": "What is the total amount?"},
    Task.VISUAL_QUESTION_ANSWERING: {"image": SMALL_IMAGE, "question": "Who is in the picture?"},
    Task.ZERO_SHOT_IMAGE_CLASSIFICATION: {"image": SMALL_IMAGE, "candidate_labels": ["woman", "cat", "tree"]},
    Task.AUDIO_TO_AUDIO: {"audio": SHORT_AUDIO},
    Task.IMAGE_TO_IMAGE: {"image": SMALL_IMAGE, "prompt": "turn the woman into a tiger"},
    Task.TABULAR_CLASSIFICATION: {"table": {"sepal_length": ["5.1"], "sepal_width": ["3.5"], "petal_length": ["1.4"], "petal_width": ["0.2"]}},
    Task.TABULAR_REGRESSION: {"table": {name: ["0.03"] for name in ("age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6")}},
}
ALL_EXAMPLES = {**EXAMPLES, **HOSTED_EXAMPLES}


def _standard_test_classes() -> dict[str, type]:
    classes: dict[str, type] = {}
    for task, tool_class in TOOL_CLASSES.items():
        members = {
            "tool_constructor": property(lambda self, c=tool_class: c),
            # the media examples live in tests/assets: the tools may read only folders they are given
            "tool_constructor_params": property(lambda self: {"base_url": BASE_URL, "allowed_dirs": [str(ASSETS)]}),
            "tool_invoke_params_example": property(lambda self, e=ALL_EXAMPLES[task]: dict(e)),
        }
        for suffix, base in (("Unit", ToolsUnitTests), ("Integration", ToolsIntegrationTests)):
            name = f"Test{tool_class.__name__}{suffix}"
            classes[name] = type(name, (base,), dict(members))
    return classes


globals().update(_standard_test_classes())


def test_there_is_a_tool_for_every_task_but_conversational() -> None:
    assert len(TOOL_CLASSES) == 28 and Task.CONVERSATIONAL not in TOOL_CLASSES
    assert set(ALL_EXAMPLES) == set(TOOL_CLASSES)


def test_toolkit_tools_called_the_way_an_agent_calls_them(tmp_path: Path) -> None:
    tools = {tool.name: tool for tool in HFInferenceToolkit(base_url=BASE_URL, output_dir=str(tmp_path), allowed_dirs=[str(ASSETS)]).get_tools()}
    assert len(tools) == 28
    answers: dict[str, ToolMessage] = {}
    for task, args in EXAMPLES.items():
        name = task.value.replace("-", "_")
        message = tools[name].invoke(ToolCall(name=name, args=args, id=f"call-{name}", type="tool_call"))
        assert isinstance(message, ToolMessage) and message.tool_call_id == f"call-{name}"
        assert isinstance(message.content, str) and message.content
        answers[name] = message
    image_path = answers["text_to_image"].content.rsplit(" to ", 1)[1]
    assert Path(image_path).parent == tmp_path and Path(image_path).read_bytes() == bytes(answers["text_to_image"].artifact)
    assert "universe" in answers["automatic_speech_recognition"].content  # real Whisper tiny.en
    assert len(answers["feature_extraction"].artifact) == 384  # real MiniLM


def test_toolkit_hosted_only_tools_called_the_way_an_agent_calls_them(tmp_path: Path) -> None:
    tools = {tool.name: tool for tool in HFInferenceToolkit(base_url=BASE_URL, output_dir=str(tmp_path), allowed_dirs=[str(ASSETS)]).get_tools()}
    answers: dict[str, ToolMessage] = {}
    for task, args in HOSTED_EXAMPLES.items():
        name = task.value.replace("-", "_")
        message = tools[name].invoke(ToolCall(name=name, args=args, id=f"call-{name}", type="tool_call"))
        assert isinstance(message, ToolMessage) and isinstance(message.content, str) and message.content
        answers[name] = message
    image_path = answers["image_to_image"].content.rsplit(" to ", 1)[1]
    assert Path(image_path).read_bytes() == bytes(answers["image_to_image"].artifact)
    assert answers["tabular_classification"].artifact == ["setosa"]  # real: trained on the iris flowers
    clips = json.loads(answers["audio_to_audio"].content)  # files, not base64 in the agent's context
    assert Path(clips[0]["path"]).read_bytes()[:4] == b"fLaC" and Path(clips[0]["path"]).parent == tmp_path
    assert [c.label for c in answers["zero_shot_image_classification"].artifact] != []


def test_toolkit_shares_one_client_pair() -> None:
    tools = HFInferenceToolkit(base_url=BASE_URL, tasks=["fill-mask", "summarization"]).get_tools()
    assert [t.name for t in tools] == ["fill_mask", "summarization"]
    assert tools[0].clients is tools[1].clients


def test_hosted_layout_needs_a_model_per_task_and_names_the_missing_one() -> None:
    with pytest.raises(ValueError) as info:  # pydantic's ValidationError wraps InvalidInputError
        HFInferenceToolkit(base_url="https://router.huggingface.co/hf-inference", token="hf_x",
                           models={"fill-mask": "bert-base-uncased"}, tasks=["fill-mask", "summarization"])
    assert "summarization" in str(info.value)


@pytest.mark.parametrize(
    ("args", "field"),
    [({}, "text"), ({"text": ""}, "text"), ({"text": "x", "candidate_labels": []}, "candidate_labels"), ({"txt": "x"}, "text")],
)
def test_missing_or_wrong_arguments_fail_clearly_before_sending(args: dict[str, Any], field: str) -> None:
    tool = TOOL_CLASSES[Task.ZERO_SHOT_CLASSIFICATION](base_url="http://127.0.0.1:9", max_retries=0)
    with pytest.raises(ValidationError) as info:
        tool.invoke(ToolCall(name=tool.name, args=args, id="1", type="tool_call"))
    assert field in str(info.value)
