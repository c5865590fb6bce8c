"""Every task through the real transports (sync and async) against a real local HTTP server."""

from __future__ import annotations

import base64
import json
from typing import Any, Callable

import pytest

from hfbridge import BinaryOutput, InvalidInputError, Task
from hfbridge import schemas as s
from hfbridge.tasks import TASKS
from tests.scripted_server import Reply, ScriptedServer, sse

M = "org/model"
PNG = (__import__("pathlib").Path(__file__).parents[1] / "assets" / "image.png").read_bytes()
FLAC = (__import__("pathlib").Path(__file__).parents[1] / "assets" / "sample1.flac").read_bytes()

# task -> (route path, canned answer, call, check on the typed result)
Check = Callable[[Any], bool]
CASES: dict[Task, tuple[str, Reply, Callable[[Any], Any], Check]] = {
    Task.TEXT_GENERATION: (
        "text-generation", Reply(body=[{"generated_text": "Hello world"}]),
        lambda c: c.text_generation("Hello", model=M),
        lambda r: isinstance(r, s.TextGenerationResult) and r.generated_text == "Hello world",
    ),
    Task.TEXT_CLASSIFICATION: (
        "text-classification", Reply(body=[[{"label": "POSITIVE", "score": 0.99}, {"label": "NEGATIVE", "score": 0.01}]]),
        lambda c: c.text_classification("I like you", model=M),
        lambda r: [x.label for x in r] == ["POSITIVE", "NEGATIVE"],
    ),
    Task.TOKEN_CLASSIFICATION: (
        "", Reply(body=[{"entity_group": "PER", "score": 0.99, "word": "Sarah Jessica Parker", "start": 11, "end": 31}]),
        lambda c: c.token_classification("My name is Sarah Jessica Parker", model=M),
        lambda r: r[0].label == "PER" and r[0].start == 11,
    ),
    Task.QUESTION_ANSWERING: (
        "question-answering", Reply(body={"answer": "Clara", "score": 0.9, "start": 11, "end": 16}),
        lambda c: c.question_answering("What's my name?", "My name is Clara", model=M),
        lambda r: r.answer == "Clara",
    ),
    Task.SUMMARIZATION: (
        "summarization", Reply(body=[{"summary_text": "Blue sky."}]),
        lambda c: c.summarization("The sky is blue.", model=M),
        lambda r: r.summary_text == "Blue sky.",
    ),
    Task.TRANSLATION: (
        "translation", Reply(body=[{"translation_text": "Hallo Welt"}]),
        lambda c: c.translation("Hello world", model=M),
        lambda r: r.translation_text == "Hallo Welt",
    ),
    Task.FILL_MASK: (
        "fill-mask", Reply(body=[{"score": 0.8, "token": 2023, "token_str": "this", "sequence": "hi this is cool"}]),
        lambda c: c.fill_mask("hi [MASK] is cool", model=M),
        lambda r: r[0].token_str == "this",
    ),
    Task.TEXT2TEXT_GENERATION: (
        "", Reply(body=[{"generated_text": "fixed"}]),
        lambda c: c.text2text_generation("fix teh", model=M),
        lambda r: r.generated_text == "fixed",
    ),
    Task.FEATURE_EXTRACTION: (
        "feature-extraction", Reply(body=[[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]]),
        lambda c: c.feature_extraction(["a", "b"], model=M),
        lambda r: r == [[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]],
    ),
    Task.SENTENCE_SIMILARITY: (
        "sentence-similarity", Reply(body=[0.78, 0.46]),
        lambda c: c.sentence_similarity("ML is easy.", ["DL is easy.", "Rockets are hard."], model=M),
        lambda r: r == [0.78, 0.46],
    ),
    Task.ZERO_SHOT_CLASSIFICATION: (
        "zero-shot-classification", Reply(body={"sequence": "t", "labels": ["science", "sport"], "scores": [0.9, 0.1]}),
        lambda c: c.zero_shot_classification("t", ["sport", "science"], model=M),
        lambda r: r.labels == ["science", "sport"],
    ),
    Task.TABLE_QUESTION_ANSWERING: (
        "", Reply(body={"answer": "36542", "coordinates": [[0, 1]], "cells": ["36542"], "aggregator": "NONE"}),
        lambda c: c.table_question_answering("Stars?", {"Repo": ["Transformers"], "Stars": ["36542"]}, model=M),
        lambda r: r.cells == ["36542"],
    ),
    Task.CONVERSATIONAL: (
        "v1/chat/completions", Reply(body={"object": "chat.completion", "id": "", "created": 1, "model": M,
                        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Deep learning is..."}, "finish_reason": "stop"}],
                        "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}}),
        lambda c: c.conversational("What is deep learning?", model=M),
        lambda r: r.choices[0].message.content == "Deep learning is..." and r.usage.total_tokens == 8,
    ),
    Task.IMAGE_CLASSIFICATION: (
        "image-classification", Reply(body=[{"label": "sombrero", "score": 0.1}]),
        lambda c: c.image_classification(PNG, model=M),
        lambda r: r[0].label == "sombrero",
    ),
    Task.OBJECT_DETECTION: (
        "object-detection", Reply(body=[{"score": 0.95, "label": "person", "box": {"xmin": 59, "ymin": 39, "xmax": 420, "ymax": 510}}]),
        lambda c: c.object_detection(PNG, model=M),
        lambda r: r[0].box.xmax == 420,
    ),
    Task.IMAGE_SEGMENTATION: (
        "", Reply(body=[{"score": 0.9, "label": "LABEL_199", "mask": base64.b64encode(PNG[:64]).decode()}]),
        lambda c: c.image_segmentation(PNG, model=M),
        lambda r: r[0].label == "LABEL_199",
    ),
    Task.IMAGE_TO_TEXT: (
        "", Reply(body=[{"generated_text": "a woman in a hat"}]),
        lambda c: c.image_to_text(PNG, model=M),
        lambda r: r.generated_text == "a woman in a hat",
    ),
    Task.TEXT_TO_IMAGE: (
        "text-to-image", Reply(body=PNG, headers={"Content-Type": "image/png"}),
        lambda c: c.text_to_image("An astronaut riding a horse", model=M),
        lambda r: isinstance(r, BinaryOutput) and bytes(r) == PNG and r.content_type == "image/png" and r.to_pil().size == (512, 512),
    ),
    Task.AUTOMATIC_SPEECH_RECOGNITION: (
        "automatic-speech-recognition", Reply(body={"text": "a man said to the universe sir i exist"}),
        lambda c: c.automatic_speech_recognition(FLAC, model=M),
        lambda r: r.text.endswith("i exist"),
    ),
    Task.AUDIO_CLASSIFICATION: (
        "", Reply(body=[{"score": 0.99, "label": "male"}, {"score": 0.01, "label": "female"}]),
        lambda c: c.audio_classification(FLAC, model=M),
        lambda r: r[0].label == "male",
    ),
    Task.TEXT_TO_SPEECH: (
        "", Reply(body=FLAC, headers={"Content-Type": "audio/flac"}),
        lambda c: c.text_to_speech("Hello world", model=M),
        lambda r: isinstance(r, BinaryOutput) and r.content_type == "audio/flac" and r.extension == "flac",
    ),
}


def test_every_task_is_covered() -> None:
    assert set(CASES) == set(TASKS)


@pytest.mark.parametrize("task", list(CASES), ids=lambda t: t.value)
def test_task(task: Task, server: ScriptedServer, make_client: Any) -> None:
    route, reply, call, check = CASES[task]
    path = f"/models/{M}/{route}" if route else f"/models/{M}"
    server.on(path, reply)
    client = make_client(server.url)
    result = call(client)
    assert check(result), result
    sent = server.requests[-1]
    assert sent.path == path
    if TASKS[task].input_kind.is_binary and route:
        assert sent.body in (PNG, FLAC)  # raw bytes on the spec's binary task routes
        assert sent.headers["content-type"] in ("image/png", "audio/flac")
    elif TASKS[task].input_kind.is_binary:
        assert base64.b64decode(sent.json()["inputs"]) in (PNG, FLAC)


def test_streaming_text_generation(server: ScriptedServer, make_client: Any) -> None:
    def tok(i: int, text: str, final: str | None = None) -> dict:
        return {"index": i, "token": {"id": i, "text": text, "logprob": -0.1, "special": False}, "generated_text": final,
                "details": {"finish_reason": "length", "generated_tokens": 3} if final else None}

    server.on(f"/models/{M}/text-generation", Reply(chunks=sse(tok(0, "Deep"), tok(1, " learn"), tok(2, "ing", "Deep learning"))))
    outs = make_client(server.url).collect("text_generation", "What is", model=M)
    assert [o.token.text for o in outs] == ["Deep", " learn", "ing"]
    assert outs[-1].generated_text == "Deep learning" and outs[-1].details.generated_tokens == 3
    assert server.requests[-1].json()["stream"] is True


def test_streaming_chat_in_the_hosted_shape(server: ScriptedServer, make_client: Any) -> None:
    def chunk(text: str, finish: str | None = None) -> dict:
        return {"object": "chat.completion.chunk", "id": "", "created": 1, "model": M,
                "choices": [{"index": 0, "delta": {"role": "assistant", "content": text}, "logprobs": None, "finish_reason": finish}]}

    server.on(f"/models/{M}/v1/chat/completions", Reply(chunks=sse(chunk("Deep"), chunk(" learning"), chunk(" is", "length"), done=True, spaced=False)))
    client = make_client(server.url, layout="hosted")
    outs = client.collect("conversational", [{"role": "user", "content": "What is deep learning?"}], model=M, max_tokens=3)
    assert "".join(o.choices[0].delta.content for o in outs) == "Deep learning is"
    body = server.requests[-1].json()
    assert body["stream"] is True and body["model"] == M and body["max_tokens"] == 3


def test_bad_input_is_refused_before_anything_is_sent(server: ScriptedServer, make_client: Any) -> None:
    client = make_client(server.url)
    bad_calls = [
        (lambda: client.text_generation("", model=M), "prompt"),
        (lambda: client.text_classification("   ", model=M), "text"),
        (lambda: client.zero_shot_classification("t", [], model=M), "candidate_labels"),
        (lambda: client.sentence_similarity("a", [], model=M), "sentences"),
        (lambda: client.feature_extraction(["ok", ""], model=M), "text[1]"),
        (lambda: client.image_classification(12345, model=M), "image"),
        (lambda: client.image_classification("/no/such/file.png", model=M), "image"),
        (lambda: client.automatic_speech_recognition(b"", model=M), "audio"),
        (lambda: client.text_classification("x", model="../../etc/passwd"), "model"),
        (lambda: client.text_generation("x", model=M, top_p=7.0), "parameters.top_p"),
        (lambda: client.run_pipeline("no-such-task", "x"), "task"),
        (lambda: client.table_question_answering("q", {"a": ["1"], "b": ["1", "2"]}, model=M), "table"),
        (lambda: client.conversational([{"role": "robot", "content": "hi"}], model=M), "messages[0].role"),
    ]
    for call, field in bad_calls:
        with pytest.raises(InvalidInputError) as info:
            call()
        assert info.value.field == field, (field, info.value)
    assert server.requests == []


def test_generated_text_never_contains_the_stop_sequence(server: ScriptedServer, make_client: Any) -> None:
    server.on(f"/models/{M}/text-generation", Reply(body=[{"generated_text": "Answer: 42\nQuestion: next"}]))
    result = make_client(server.url).text_generation("Question: ?", model=M, stop=["\nQuestion:"])
    assert result.generated_text == "Answer: 42"
    assert json.loads(server.requests[-1].body)["parameters"]["stop"] == ["\nQuestion:"]
