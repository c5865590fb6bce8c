"""The task methods, written once for both clients.

Each method validates what the user gave, builds a :class:`~hfbridge.protocol.Call` and hands it
to ``self._execute`` (or ``self._stream``). The sync client's ``_execute`` returns the result; the
async client's returns an awaitable of it. Nothing here touches the network, so the two clients
cannot drift apart in what they send.
"""

from __future__ import annotations

import copy
from typing import Any, Literal, Mapping, Sequence

from . import schemas as s
from . import validation as v
from .chat_params import grammar_to_wire, provider_model, response_format_to_wire, tool_choice_to_wire, tools_to_wire
from .config import ClientConfig
from .errors import InvalidInputError
from .media import to_binary_input
from .protocol import Call
from .schemas import Options
from .tasks import Task, TaskSpec, get_task

__all__ = ["TaskMethods"]

Pooling = Literal["mean", "cls", "max", "none"]


class TaskMethods:
    """One method per task of the API; see :class:`hfbridge.InferenceClient` for the sync face."""

    _config: ClientConfig

    # ---- what the concrete clients provide -------------------------------------------------
    def _execute(self, call: Call) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def _stream(self, call: Call) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    # ---- shared plumbing ---------------------------------------------------------------------
    @property
    def config(self) -> ClientConfig:
        return self._config

    @property
    def base_url(self) -> str:
        return self._config.base_url

    def with_options(
        self,
        *,
        timeout: float | None = None,
        max_retries: int | None = None,
        deadline: float | None = None,
        headers: Mapping[str, str] | None = None,
    ):
        """A copy with other per-call settings that shares this client's connection pool."""
        clone = copy.copy(self)
        clone._config = self._config.with_options(
            timeout=timeout, max_retries=max_retries, deadline=deadline, headers=headers
        )
        clone._owns_transport = False
        return clone

    def _call(
        self,
        task: Task,
        model: str | None,
        inputs: Any,
        parameters: dict[str, Any] | None = None,
        *,
        use_cache: bool | None,
        wait_for_model: bool | None,
        stream: bool = False,
        extra: dict[str, Any] | None = None,
    ) -> Any:
        spec = get_task(task)
        call = Call(
            spec=spec,
            model=None if model is None else v.require_model_id(model),
            inputs=inputs,
            parameters=parameters or {},
            options=_options(use_cache, wait_for_model),
            stream=stream,
            extra=extra or {},
        )
        return self._stream(call) if stream else self._execute(call)

    def _params(self, spec_task: Task, **values: Any) -> dict[str, Any]:
        return v.parameters(get_task(spec_task).parameters_model, **values)

    # ---- text --------------------------------------------------------------------------------
    def text_generation(
        self,
        prompt: str,
        *,
        model: str | None = None,
        max_new_tokens: int | None = None,
        temperature: float | None = None,
        top_p: float | None = None,
        top_k: int | None = None,
        repetition_penalty: float | None = None,
        frequency_penalty: float | None = None,
        do_sample: bool | None = None,
        return_full_text: bool | None = None,
        stop: Sequence[str] | None = None,
        seed: int | None = None,
        details: bool | None = None,
        grammar: Any = None,
        truncate: int | None = None,
        typical_p: float | None = None,
        watermark: bool | None = None,
        best_of: int | None = None,
        decoder_input_details: bool | None = None,
        top_n_tokens: int | None = None,
        stream: bool = False,
        use_cache: bool | None = None,
        wait_for_model: bool | None = None,
    ) -> Any:
        """Continue ``prompt``. Returns a :class:`~hfbridge.schemas.TextGenerationResult`, or with
        ``stream=True`` an iterator of :class:`~hfbridge.schemas.TextGenerationStreamOutput`.

        ``stop`` is also applied here, to the generated text only (never to the prompt, whatever
        ``return_full_text`` says): the text returned never contains a stop sequence or what
        follows it, even when the server ignores ``stop`` or a sequence spans several tokens.

        TGI's parameters are typed: ``grammar`` (``{"type": "json", "value": schema}``,
        ``{"type": "regex", "value": pattern}`` or a pydantic model class), ``truncate`` (keep
        the last N prompt tokens), ``typical_p``, ``watermark``, ``best_of`` (needs sampling,
        not with streaming), ``decoder_input_details`` (prompt log-probabilities in
        ``details.prefill``) and ``top_n_tokens`` (alternatives per token in ``details.top_tokens``)."""
        v.require_text(prompt, "prompt")
        if isinstance(stop, str):
            stop = [stop]
        params = self._params(
            Task.TEXT_GENERATION,
            max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p, top_k=top_k,
            repetition_penalty=repetition_penalty, frequency_penalty=frequency_penalty, do_sample=do_sample,
            return_full_text=return_full_text, stop=list(stop) if stop else None, seed=seed,
            details=details, grammar=grammar_to_wire(grammar), truncate=truncate, typical_p=typical_p,
            watermark=watermark, best_of=best_of, decoder_input_details=decoder_input_details,
            top_n_tokens=top_n_tokens,
        )
        if params.get("best_of", 1) > 1:
            if stream:
                raise InvalidInputError("best_of", "cannot be combined with stream=True (servers return one sequence per stream)")
            if not params.get("do_sample") and not any(k in params for k in ("temperature", "top_p", "top_k", "typical_p")):
                raise InvalidInputError("best_of", "needs sampling (do_sample=True): greedy decoding gives the same sequence every time")
        return self._call(Task.TEXT_GENERATION, model, prompt, params, stream=stream,
                          use_cache=use_cache, wait_for_model=wait_for_model)

    def text_classification(
        self,
        text: str,
        *,
        model: str | None = None,
        top_k: int | None = None,
        function_to_apply: Literal["sigmoid", "softmax", "none"] | None = None,
        use_cache: bool | None = None,
        wait_for_model: bool | None = None,
    ) -> Any:
        """Labels with scores, best first: ``list[ClassificationResult]``."""
        v.require_text(text, "text")
        params = self._params(Task.TEXT_CLASSIFICATION, top_k=top_k, function_to_apply=function_to_apply)
        return self._call(Task.TEXT_CLASSIFICATION, model, text, params, use_cache=use_cache, wait_for_model=wait_for_model)

    def token_classification(
        self,
        text: str,
        *,
        model: str | None = None,
        aggregation_strategy: Literal["none", "simple", "first", "average", "max"] | None = None,
        ignore_labels: Sequence[str] | None = None,
        stride: int | None = None,
        use_cache: bool | None = None,
        wait_for_model: bool | None = None,
    ) -> Any:
        """Entities found in ``text``: ``list[TokenClassificationResult]``."""
        v.require_text(text, "text")
        params = self._params(
            Task.TOKEN_CLASSIFICATION, aggregation_strategy=aggregation_strategy,
            ignore_labels=list(ignore_labels) if ignore_labels is not None else None, stride=stride,
        )
        return self._call(Task.TOKEN_CLASSIFICATION, model, text, params, use_cache=use_cache, wait_for_model=wait_for_model)

    def question_answering(
        self,
        question: str,
        context: str,
        *,
        model: str | None = None,
        top_k: int | None = None,
        max_answer_len: int | None = None,
        handle_impossible_answer: bool | None = None,
        use_cache: bool | None = None,
        wait_for_model: bool | None = None,
    ) -> Any:
        """The answer span: a ``QuestionAnsweringResult``, or a list of them when ``top_k > 1``."""
        inputs = {"question": v.require_text(question, "question"), "context": v.require_text(context, "context")}
        params = self._params(Task.QUESTION_ANSWERING, top_k=top_k, max_answer_len=max_answer_len,
                              handle_impossible_answer=handle_impossible_answer)
        return self._call(Task.QUESTION_ANSWERING, model, inputs, params, use_cache=use_cache, wait_for_model=wait_for_model)

    def summarization(
        self,
        text: str,
        *,
        model: str | None = None,
        min_length: int | None = None,
        max_length: int | None = None,
        use_cache: bool | None = None,
        wait_for_model: bool | None = None,
    ) -> Any:
        """A ``SummarizationResult``."""
        v.require_text(text, "text")
        params = self._params(Task.SUMMARIZATION, min_length=min_length, max_length=max_length)
        if "min_length" in params and "max_length" in params and params["min_length"] > params["max_length"]:
            raise InvalidInputError("min_length", "must not exceed max_length")
        return self._call(Task.SUMMARIZATION, model, text, params, use_cache=use_cache, wait_for_model=wait_for_model)

    def translation(
        self,
        text: str,
        *,
        model: str | None = None,
        src_lang: str | None = None,
        tgt_lang: str | None = None,
        max_length: int | None = None,
        use_cache: bool | None = None,
        wait_for_model: bool | None = None,
    ) -> Any:
        """A ``TranslationResult``."""
        v.require_text(text, "text")
        params = self._params(Task.TRANSLATION, src_lang=src_lang, tgt_lang=tgt_lang, max_length=max_length)
        return self._call(Task.TRANSLATION, model, text, params, use_cache=use_cache, wait_for_model=wait_for_model)

    def fill_mask(
        self,
        text: str,
        *,
        model: str | None = None,
        top_k: int | None = None,
        targets: Sequence[str] | None = None,
        use_cache: bool | None = None,
        wait_for_model: bool | None = None,
    ) -> Any:
        """Candidates for the masked token: ``list[FillMaskResult]``."""
        v.require_text(text, "text")
        params = self._params(Task.FILL_MASK, top_k=top_k, targets=list(targets) if targets else None)
        return self._call(Task.FILL_MASK, model, text, params, use_cache=use_cache, wait_for_model=wait_for_model)

    def text2text_generation(
        self,
        text: str,
        *,
        model: str | None = None,
        max_new_tokens: int | None = None,
        max_length: int | None = None,
        use_cache: bool | None = None,
        wait_for_model: bool | None = None,
    ) -> Any:
        """A ``GeneratedText``."""
        v.require_text(text, "text")
        params = self._params(Task.TEXT2TEXT_GENERATION, max_new_tokens=max_new_tokens, max_length=max_length)
        return self._call(Task.TEXT2TEXT_GENERATION, model, text, params, use_cache=use_cache, wait_for_model=wait_for_model)

    def feature_extraction(
        self,
        text: str | Sequence[str],
        *,
        model: str | None = None,
        pooling: Pooling = "mean",
        normalize: bool = False,
        truncate: bool | None = None,
        use_cache: bool | None = None,
        wait_for_model: bool | None = None,
    ) -> Any:
        """Embeddings: ``list[float]`` for one text, ``list[list[float]]`` (input order) for a list.

        Servers answer pooled vectors or token-level ones depending on the model. Token-level
        answers are pooled here as ``pooling`` says (``mean`` over tokens, ``cls`` = first token,
        ``max`` per dimension); ``pooling="none"`` returns the token vectors instead.
        ``normalize=True`` scales every vector to unit length, here, whatever the server does."""
        inputs = v.require_texts(text, "text")
        if pooling not in ("mean", "cls", "max", "none"):
            raise InvalidInputError("pooling", f"must be 'mean', 'cls', 'max' or 'none', got {pooling!r}")
        if isinstance(inputs, list):
            inputs = list(inputs)
        params = self._params(Task.FEATURE_EXTRACTION, truncate=truncate)
        return self._call(Task.FEATURE_EXTRACTION, model, inputs, params, use_cache=use_cache,
                          wait_for_model=wait_for_model, extra={"pooling": pooling, "normalize": normalize})

    def sentence_similarity(
        self,
        source_sentence: str,
        sentences: Sequence[str],
        *,
        model: str | None = None,
        use_cache: bool | None = None,
        wait_for_model: bool | None = None,
    ) -> Any:
        """One similarity score per sentence, in order: ``list[float]``."""
        v.require_text(source_sentence, "source_sentence")
        if isinstance(sentences, str) or not isinstance(sentences, Sequence):
            raise InvalidInputError("sentences", "must be a list of strings")
        if not sentences:
            raise InvalidInputError("sentences", "must contain at least one sentence")
        items = [v.require_text(x, f"sentences[{i}]") for i, x in enumerate(sentences)]
        inputs = {"source_sentence": source_sentence, "sentences": items}
        return self._call(Task.SENTENCE_SIMILARITY, model, inputs, use_cache=use_cache,
                          wait_for_model=wait_for_model, extra={"count": len(items)})

    def zero_shot_classification(
        self,
        text: str,
        candidate_labels: Sequence[str],
        *,
        multi_label: bool = False,
        hypothesis_template: str | None = None,
        model: str | None = None,
        use_cache: bool | None = None,
        wait_for_model: bool | None = None,
    ) -> Any:
        """A ``ZeroShotClassificationResult``: labels sorted by score, best first."""
        v.require_text(text, "text")
        labels = v.require_labels(candidate_labels, "candidate_labels")
        if hypothesis_template is not None and "{}" not in hypothesis_template:
            raise InvalidInputError("hypothesis_template", "must contain '{}' where the label goes")
        params = self._params(Task.ZERO_SHOT_CLASSIFICATION, candidate_labels=labels,
                              multi_label=multi_label, hypothesis_template=hypothesis_template)
        return self._call(Task.ZERO_SHOT_CLASSIFICATION, model, text, params, use_cache=use_cache, wait_for_model=wait_for_model)

    def table_question_answering(
        self,
        query: str,
        table: Mapping[str, Sequence[str]],
        *,
        model: str | None = None,
        use_cache: bool | None = None,
        wait_for_model: bool | None = None,
    ) -> Any:
        """A ``TableQuestionAnsweringResult``. ``table`` maps column names to equal-length lists."""
        inputs = {"query": v.require_text(query, "query"), "table": v.require_table(table, "table")}
        return self._call(Task.TABLE_QUESTION_ANSWERING, model, inputs, use_cache=use_cache, wait_for_model=wait_for_model)

    def chat_completion(
        self,
        messages: Any,
        *,
        model: str | None = None,
        tools: Sequence[Any] | None = None,
        tool_choice: Any = None,
        response_format: Any = None,
        stream: bool = False,
        stream_options: Mapping[str, Any] | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
        top_p: float | None = None,
        stop: Sequence[str] | str | None = None,
        seed: int | None = None,
        frequency_penalty: float | None = None,
        presence_penalty: float | None = None,
        logprobs: bool | None = None,
        top_logprobs: int | None = None,
        provider: str | None = None,
        tool_prompt: str | None = None,
        parallel_tool_calls: bool | None = None,
        use_cache: bool | None = None,
        wait_for_model: bool | None = None,
    ) -> Any:
        """An OpenAI-compatible chat completion: a :class:`~hfbridge.schemas.ChatCompletion`, or
        with ``stream=True`` an iterator of :class:`~hfbridge.schemas.ChatCompletionChunk`
        (:func:`hfbridge.assemble_chat_stream` turns one back into a ``ChatCompletion``).

        ``messages``: dicts of any role (``system``, ``user`` with text or ``image_url`` parts,
        ``assistant`` with ``tool_calls``, ``tool`` with ``tool_call_id``), ``(role, content)``
        pairs, or one string (a user message). ``tools``: OpenAI tool dicts, bare function
        definitions or pydantic model classes; ``tool_choice``: ``"auto"``, ``"none"``,
        ``"required"`` or a tool's name. ``response_format``: ``{"type": "json_object"}``,
        ``{"type": "json_schema", "json_schema": {...}}`` or a pydantic model class.
        ``provider`` (router only, ``layout="openai"``): ``"fastest"``, ``"cheapest"`` or a
        provider name, appended to the model as the router expects (``org/name:provider``).

        Answers are normalised to the OpenAI shape whatever the server's dialect: tool-call ids
        are strings, ``arguments`` JSON strings, and ``finish_reason`` is ``"tool_calls"`` when
        the model called a tool."""
        checked = v.chat_messages(messages, "messages")
        if stream_options is not None and not stream:
            raise InvalidInputError("stream_options", "only applies with stream=True")
        if isinstance(stop, str):
            stop = [stop]
        params = v.parameters(
            s.ChatCompletionParameters, "",
            tools=tools_to_wire(tools), tool_choice=tool_choice_to_wire(tool_choice),
            response_format=response_format_to_wire(response_format),
            stream_options=dict(stream_options) if stream_options is not None else None,
            max_tokens=max_tokens, temperature=temperature, top_p=top_p,
            stop=list(stop) if stop else None, seed=seed, frequency_penalty=frequency_penalty,
            presence_penalty=presence_penalty, logprobs=logprobs, top_logprobs=top_logprobs,
            tool_prompt=tool_prompt, parallel_tool_calls=parallel_tool_calls,
        )
        model = None if model is None else v.require_model_id(model)
        return self._call(Task.CONVERSATIONAL, provider_model(model, provider), checked, params,
                          stream=stream, use_cache=use_cache, wait_for_model=wait_for_model)

    def conversational(self, messages: Any, **kwargs: Any) -> Any:
        """The spec's name for :meth:`chat_completion` (same arguments, same answers)."""
        return self.chat_completion(messages, **kwargs)

    # ---- vision and audio ---------------------------------------------------------------------
    def _binary_call(self, task: Task, value: Any, field: str, model: str | None, params: dict[str, Any],
                     use_cache: bool | None, wait_for_model: bool | None) -> Any:
        kind = "audio" if get_task(task).input_kind.value == "audio" else "image"
        inputs = to_binary_input(value, field, kind=kind)
        return self._call(task, model, inputs, params, use_cache=use_cache, wait_for_model=wait_for_model)

    def image_classification(
        self,
        image: Any,
        *,
        model: str | None = None,
        top_k: int | None = None,
        function_to_apply: Literal["sigmoid", "softmax", "none"] | None = None,
        use_cache: bool | None = None,
        wait_for_model: bool | None = None,
    ) -> Any:
        """Labels with scores for ``image`` (bytes, path, binary file, PIL image or URL)."""
        params = self._params(Task.IMAGE_CLASSIFICATION, top_k=top_k, function_to_apply=function_to_apply)
        return self._binary_call(Task.IMAGE_CLASSIFICATION, image, "image", model, params, use_cache, wait_for_model)

    def object_detection(
        self,
        image: Any,
        *,
        model: str | None = None,
        threshold: float | None = None,
        use_cache: bool | None = None,
        wait_for_model: bool | None = None,
    ) -> Any:
        """Objects with boxes: ``list[ObjectDetectionResult]``."""
        params = self._params(Task.OBJECT_DETECTION, threshold=threshold)
        return self._binary_call(Task.OBJECT_DETECTION, image, "image", model, params, use_cache, wait_for_model)

    def image_segmentation(
        self,
        image: Any,
        *,
        model: str | None = None,
        threshold: float | None = None,
        mask_threshold: float | None = None,
        subtask: Literal["semantic", "instance", "panoptic"] | None = None,
        use_cache: bool | None = None,
        wait_for_model: bool | None = None,
    ) -> Any:
        """Regions with base64 PNG masks: ``list[ImageSegmentationResult]``."""
        params = self._params(Task.IMAGE_SEGMENTATION, threshold=threshold, mask_threshold=mask_threshold, subtask=subtask)
        return self._binary_call(Task.IMAGE_SEGMENTATION, image, "image", model, params, use_cache, wait_for_model)

    def image_to_text(
        self,
        image: Any,
        *,
        model: str | None = None,
        max_new_tokens: int | None = None,
        use_cache: bool | None = None,
        wait_for_model: bool | None = None,
    ) -> Any:
        """A caption: ``GeneratedText``."""
        params = self._params(Task.IMAGE_TO_TEXT, max_new_tokens=max_new_tokens)
        return self._binary_call(Task.IMAGE_TO_TEXT, image, "image", model, params, use_cache, wait_for_model)

    def automatic_speech_recognition(
        self,
        audio: Any,
        *,
        model: str | None = None,
        use_cache: bool | None = None,
        wait_for_model: bool | None = None,
    ) -> Any:
        """The transcript: ``SpeechRecognitionResult``."""
        return self._binary_call(Task.AUTOMATIC_SPEECH_RECOGNITION, audio, "audio", model, {}, use_cache, wait_for_model)

    def audio_classification(
        self,
        audio: Any,
        *,
        model: str | None = None,
        top_k: int | None = None,
        function_to_apply: Literal["sigmoid", "softmax", "none"] | None = None,
        use_cache: bool | None = None,
        wait_for_model: bool | None = None,
    ) -> Any:
        """Labels with scores for an audio clip: ``list[ClassificationResult]``."""
        params = self._params(Task.AUDIO_CLASSIFICATION, top_k=top_k, function_to_apply=function_to_apply)
        return self._binary_call(Task.AUDIO_CLASSIFICATION, audio, "audio", model, params, use_cache, wait_for_model)

    def text_to_image(
        self,
        prompt: str,
        *,
        model: str | None = None,
        negative_prompt: str | None = None,
        height: int | None = None,
        width: int | None = None,
        num_inference_steps: int | None = None,
        guidance_scale: float | None = None,
        seed: int | None = None,
        use_cache: bool | None = None,
        wait_for_model: bool | None = None,
    ) -> Any:
        """Image bytes (a :class:`~hfbridge.media.BinaryOutput`; ``.to_pil()`` opens them)."""
        v.require_text(prompt, "prompt")
        params = self._params(Task.TEXT_TO_IMAGE, negative_prompt=negative_prompt, height=height, width=width,
                              num_inference_steps=num_inference_steps, guidance_scale=guidance_scale, seed=seed)
        return self._call(Task.TEXT_TO_IMAGE, model, prompt, params, use_cache=use_cache, wait_for_model=wait_for_model)

    def text_to_speech(
        self,
        text: str,
        *,
        model: str | None = None,
        use_cache: bool | None = None,
        wait_for_model: bool | None = None,
    ) -> Any:
        """Audio bytes (a :class:`~hfbridge.media.BinaryOutput`, e.g. ``audio/flac``)."""
        v.require_text(text, "text")
        return self._call(Task.TEXT_TO_SPEECH, model, text, use_cache=use_cache, wait_for_model=wait_for_model)

    # ---- generic routes -----------------------------------------------------------------------
    def run(
        self,
        model: str,
        inputs: Any,
        parameters: Mapping[str, Any] | None = None,
        options: Mapping[str, Any] | None = None,
        *,
        task: Task | str | None = None,
    ) -> Any:
        """``POST /models/{model}``: any task, parsed JSON back (bytes for binary answers).

        ``task`` forces a task other than the model's own where the layout has a route for it
        (the hosted ``/models/{model}/pipeline/{task}``)."""
        spec = get_task(task) if task is not None else _GENERIC
        return self._execute(_generic_call(spec, v.require_model_id(model), inputs, parameters, options,
                                           force_task=task is not None))

    def run_pipeline(
        self,
        task: Task | str,
        inputs: Any,
        parameters: Mapping[str, Any] | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> Any:
        """``POST /pipeline/{task}``: the server's recommended model for ``task``."""
        spec = get_task(task)
        return self._execute(_generic_call(spec, None, inputs, parameters, options))


# The generic route needs some TaskSpec; text-generation's is harmless since generic calls
# neither validate nor normalise by task.
_GENERIC: TaskSpec = get_task(Task.TEXT_GENERATION)


def _generic_call(spec: TaskSpec, model: str | None, inputs: Any, parameters: Mapping[str, Any] | None,
                  options: Mapping[str, Any] | None, *, force_task: bool = False) -> Call:
    if inputs is None or (isinstance(inputs, str) and not inputs.strip()):
        raise InvalidInputError("inputs", "must not be empty")
    if parameters is not None and not isinstance(parameters, Mapping):
        raise InvalidInputError("parameters", "must be a mapping")
    try:
        opts = Options.model_validate(dict(options or {}))
    except ValueError as exc:
        raise InvalidInputError("options", str(exc).splitlines()[0]) from None
    if isinstance(inputs, (bytes, bytearray, memoryview)):
        inputs = to_binary_input(inputs, "inputs", kind="binary")
    return Call(spec=spec, model=model, inputs=inputs, parameters=dict(parameters or {}), options=opts,
                generic=True, force_task=force_task)


def _options(use_cache: bool | None, wait_for_model: bool | None) -> Options:
    for name, value in (("use_cache", use_cache), ("wait_for_model", wait_for_model)):
        if value is not None and not isinstance(value, bool):
            raise InvalidInputError(name, f"must be True, False or None, got {value!r}")
    return Options(use_cache=use_cache, wait_for_model=wait_for_model)
