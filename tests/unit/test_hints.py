"""Errors that say what to do: the advice in each message (a table), the missing-token warning,
tool names accepted where task ids are, and messages never cut mid-word."""

from __future__ import annotations

import re
import warnings
from typing import Any, Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hfbridge import AuthenticationError, InferenceClient, InvalidInputError, ModelNotFoundError
from hfbridge import errors as e
from hfbridge import hints
from hfbridge.adapters import tool_tasks
from hfbridge.config import ClientConfig
from hfbridge.protocol import NEW_BASE_URL_HINT, decode_error_message, error_from_response
from hfbridge.tasks import TASKS, Task, find_task
from tests.scripted_server import Reply, ScriptedServer

ROUTER = "https://router.huggingface.co/hf-inference"
TOKEN = "hf_hintstesttoken0123456789abcdef"
SETTINGS = "https://huggingface.co/settings/tokens"


@pytest.fixture(autouse=True)
def fresh_warning_state() -> Iterator[None]:
    """The missing-token warning is once per process; each test here starts before it."""
    hints._warned.clear()
    yield
    hints._warned.clear()


def config(base_url: str | tuple[str, str], token: Any = False) -> ClientConfig:
    """``base_url``, or (``base_url``, ``layout``)."""
    base_url, layout = base_url if isinstance(base_url, tuple) else (base_url, None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", hints.MissingTokenWarning)
        return ClientConfig.resolve(base_url=base_url, token=token, layout=layout)


# (base_url, token, status, body, error class, must appear, must not appear)
TABLE = [
    pytest.param(ROUTER, False, 401, b'{"error": "Invalid credentials in Authorization header"}', e.AuthenticationError,
                 ["Invalid credentials in Authorization header.", "needs a token", "HF_TOKEN", "token=", SETTINGS], ["refused"],
                 id="hosted-401-without-token"),
    pytest.param(ROUTER, TOKEN, 401, b'{"error": "Invalid username or password."}', e.AuthenticationError,
                 ["Invalid username or password. The hosted", "refused this token", "HF_TOKEN", "token=", SETTINGS], [TOKEN],
                 id="hosted-401-with-a-token"),
    pytest.param("https://abc123.us-east-1.aws.endpoints.huggingface.cloud", False, 401, b"", e.AuthenticationError,
                 ["HTTP 401 with no error message.", "This server wants a token", "HF_TOKEN"], [SETTINGS],
                 id="endpoint-401-without-token"),
    pytest.param("http://127.0.0.1:8000", False, 401, b'{"error": "Authorization header is required"}', e.AuthenticationError,
                 ["This server wants a token: pass token="], [SETTINGS], id="local-401-without-token"),
    pytest.param("http://127.0.0.1:8000", TOKEN, 401, b'{"error": "bad token"}', e.AuthenticationError,
                 ["bad token"], ["wants a token", SETTINGS], id="local-401-with-a-token-no-advice"),
    pytest.param("https://tgi.example.com/v1", False, 404, b'{"error": "Not Found"}', e.ModelNotFoundError,
                 ["Not Found.", "ends in /v1", "layout='openai'", "https://router.huggingface.co/v1", ROUTER], [],
                 id="v1-base-404-suggests-openai-layout"),
    pytest.param("http://127.0.0.1:8080/v1/", False, 404, b'{"detail": "Not Found"}', e.ModelNotFoundError,
                 ["layout='openai'"], [], id="local-tgi-v1-404"),
    pytest.param(("https://router.huggingface.co/v1", "hosted"), False, 404, b'{"error": "Not Found"}', e.ModelNotFoundError,
                 ["layout='openai'"], [], id="router-v1-forced-hosted-404"),
    pytest.param("https://router.huggingface.co/v1", TOKEN, 404, b'{"error": "Model org/m does not exist"}', e.ModelNotFoundError,
                 ["Model org/m does not exist"], ["layout="], id="router-v1-in-the-openai-layout-blames-the-model"),
    pytest.param(ROUTER, TOKEN, 404, b'{"error": "Model nobody/nothing does not exist"}', e.ModelNotFoundError,
                 ["Model nobody/nothing does not exist"], ["/v1", "layout"], id="plain-404-blames-the-model"),
    pytest.param("https://api-inference.huggingface.co", False, 404, b'{"error": "no longer supported"}', e.EndpointGoneError,
                 [ROUTER], ["/v1"], id="legacy-host-404-names-the-new-host"),
    pytest.param("http://127.0.0.1:8000", False, 502, ("<html><body>" + "Bad gateway upstream " * 60 + "</body></html>").encode(),
                 e.ServerError, ["Bad gateway upstream", "…"], [], id="long-html-body-shortened"),
]


@pytest.mark.parametrize(("base_url", "token", "status", "body", "cls", "present", "absent"), TABLE)
def test_error_messages_say_what_to_do(base_url: Any, token: Any, status: int, body: bytes, cls: type,
                                       present: list[str], absent: list[str]) -> None:
    error = error_from_response(config(base_url, token), status, {}, body, model="org/m")
    assert type(error) is cls
    text = str(error)
    for piece in present:
        assert piece in text, (piece, text)
    for piece in absent:
        assert piece not in text, (piece, text)
    _assert_ends_with_a_whole_word(text, body)


def _assert_ends_with_a_whole_word(text: str, body: bytes) -> None:
    """The message's last word is a word of the server's message or of a hint, not a fragment."""
    words = set(re.findall(r"\w+", decode_error_message({}, body)[0]))
    for hint in (hints.HOSTED_NEEDS_TOKEN, hints.HOSTED_REFUSED_TOKEN, hints.SERVER_NEEDS_TOKEN, hints.OPENAI_LAYOUT,
                 NEW_BASE_URL_HINT, "HTTP 401 with no error message"):
        words.update(re.findall(r"\w+", hint))
    assert re.findall(r"\w+", text)[-1] in words, text


def test_a_long_plain_text_body_is_cut_at_a_word_boundary() -> None:
    body = ("word " * 200).encode()
    message, _ = decode_error_message({}, body)
    assert len(message) <= 500 and message.endswith("word…")


@given(st.text(alphabet=st.sampled_from("ab ,.\n"), min_size=0, max_size=300), st.integers(min_value=2, max_value=120))
def test_shorten_never_cuts_a_word(text: str, limit: int) -> None:
    flat = " ".join(text.split())
    short = hints.shorten(text, limit)
    assert len(short) <= limit
    if not short.endswith("…"):
        assert short == flat
        return
    kept = short[:-1]
    assert flat.startswith(kept)
    words = flat.split(" ")
    if len(words[0]) < limit - 1:  # a cut is possible between words: it happened there
        assert flat[len(kept)] in " ,;:", (flat, short)


def test_a_hint_joins_its_message_as_a_new_sentence() -> None:
    assert hints.append_hint("Not Found", "Do this.") == "Not Found. Do this."
    assert hints.append_hint("Not found!", "Do this.") == "Not found! Do this."
    assert hints.append_hint("", "Do this.") == "Do this."
    assert hints.append_hint("Same", None) == "Same"


# ---- over HTTP: the same advice reaches the user from a real server -----------------------------

@pytest.mark.parametrize("kind", ["sync", "async"])
def test_a_v1_base_answered_404_suggests_the_openai_layout(kind: str) -> None:
    from tests.client.conftest import Runner

    with ScriptedServer() as server:
        server.on("/v1/models/org/m/fill-mask", Reply(404, {"detail": "Not Found"}))
        runner = Runner(kind, f"{server.url}/v1", token=False, max_retries=0)
        try:
            with pytest.raises(ModelNotFoundError, match="layout='openai'") as caught:
                runner.fill_mask("Paris is the [MASK].", model="org/m")
        finally:
            runner.close()
    assert "https://router.huggingface.co/v1" in str(caught.value)


def test_a_server_that_wants_a_token_says_so() -> None:
    with ScriptedServer() as server:
        server.on("/models/org/m/fill-mask", Reply(401, {"error": "Authorization header is required"}))
        with InferenceClient(server.url, token=False, max_retries=0) as client:
            with pytest.raises(AuthenticationError, match="This server wants a token: pass token="):
                client.fill_mask("Paris is the [MASK].", model="org/m")


# ---- the missing-token warning ------------------------------------------------------------------

def test_a_hosted_client_without_a_token_warns_once_per_process() -> None:
    with pytest.warns(hints.MissingTokenWarning) as caught:
        InferenceClient(ROUTER).close()
    assert len(caught) == 1
    message = str(caught[0].message)
    for piece in ("hosted Inference API", "401", "HF_TOKEN", "token=", SETTINGS, "token=False"):
        assert piece in message, (piece, message)
    assert caught[0].filename == __file__  # points at the caller, not at hfbridge's insides
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        InferenceClient(ROUTER).close()  # the second one is quiet


@pytest.mark.parametrize(
    ("base_url", "token"),
    [(ROUTER, TOKEN), (ROUTER, False), ("http://127.0.0.1:8000", None), ("https://example.com/inference", None)],
    ids=["with-a-token", "token-False-opts-out", "local-server", "other-host"],
)
def test_no_warning_when_a_token_is_given_refused_or_not_needed(base_url: str, token: Any) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        InferenceClient(base_url, token=token).close()


def test_hosted_toolkits_with_a_token_do_not_warn() -> None:
    from hfbridge.langchain import HFInferenceToolkit
    from hfbridge.llama_index import HFInferenceToolSpec

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        HFInferenceToolkit(base_url=ROUTER, token=TOKEN, models={"fill-mask": "m/m"}, tasks=["fill-mask"]).get_tools()
        HFInferenceToolSpec(ROUTER, TOKEN, models={"fill-mask": "m/m"}, tasks=["fill-mask"]).to_tool_list()


@pytest.mark.parametrize("adapter", ["langchain.HFInferenceEmbeddings", "langchain.HFInferenceLLM", "llama_index.HFInferenceLLM",
                                     "llama_index.HFInferenceEmbedding"])
def test_the_warning_points_at_the_adapter_user(adapter: str) -> None:
    import importlib

    package, name = adapter.split(".")
    cls = getattr(importlib.import_module(f"hfbridge.{package}"), name)
    with pytest.warns(hints.MissingTokenWarning) as caught:
        cls()
    assert len(caught) == 1 and caught[0].filename == __file__


# ---- tool names where task ids are expected ---------------------------------------------------

@pytest.mark.parametrize("task", list(Task), ids=lambda t: t.value)
def test_find_task_takes_the_id_the_tool_name_and_the_enum(task: Task) -> None:
    assert find_task(task.value) is find_task(TASKS[task].tool_name) is find_task(task) is task


def test_an_unknown_task_lists_both_spellings() -> None:
    with pytest.raises(InvalidInputError) as caught:
        tool_tasks(["text-clasification"])
    assert caught.value.field == "tasks"
    assert "text-classification (text_classification)" in str(caught.value)


def test_langchain_toolkit_takes_tool_names() -> None:
    from hfbridge.langchain import HFInferenceToolkit

    kit = HFInferenceToolkit(base_url="http://127.0.0.1:9", tasks=["text_classification", "fill-mask"],
                             models={"fill_mask": "bert-base-uncased"})
    tools = {tool.name: tool for tool in kit.get_tools()}
    assert sorted(tools) == ["fill_mask", "text_classification"]
    assert tools["fill_mask"].model == "bert-base-uncased"


def test_llama_index_tool_spec_takes_tool_names() -> None:
    from hfbridge.llama_index import HFInferenceToolSpec

    spec = HFInferenceToolSpec("http://127.0.0.1:9", tasks=["zero_shot_classification", "summarization"],
                               models={"zero_shot_classification": "facebook/bart-large-mnli"})
    assert sorted(t.metadata.name for t in spec.to_tool_list()) == ["summarization", "zero_shot_classification"]
    assert spec._runners[Task.ZERO_SHOT_CLASSIFICATION].model == "facebook/bart-large-mnli"
