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
from ._concurrency import chunks
from .chat_params import grammar_to_wire, provider_model, response_format_to_wire, tool_choice_to_wire, tools_to_wire
from .config import ClientConfig, Layout
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

    def _execute_batches(self, calls: list[Call]) -> Any:  # pragma: no cover - abstract
        """Every call's result, in order, the calls sent concurrently (at most
        ``max_concurrency`` at once); the first failure is raised. Sync: the list; async: an
        awaitable of it."""
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

    def _make_call(
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
    ) -> Call:
        return Call(
            spec=get_task(task),
            model=None if model is None else v.require_model_id(model),
            inputs=inputs,
            parameters=parameters or {},
            options=_options(use_cache, wait_for_model),
            stream=stream,
            extra=extra or {},
        )

    def _call(self, task: Task, model: str | None, inputs: Any, parameters: dict[str, Any] | None = None, *,
              use_cache: bool | None, wait_for_model: bool | None, stream: bool = False,
              extra: dict[str, Any] | None = None) -> Any:
        call = self._make_call(task, model, inputs, parameters, use_cache=use_cache, wait_for_model=wait_for_model,
                               stream=stream, extra=extra)
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
        text: str | Sequence[str] | tuple[str, str] | Sequence[tuple[str, str]],
        *,
        model: str | None = None,
        top_k: int | None = None,
        function_to_apply: Literal["sigmoid", "softmax", "none"] | None = None,
        use_cache: bool | None = None,
        wait_for_model: bool | None = None,
    ) -> Any:
        """Labels with scores, best first: ``list[ClassificationResult]``; for a list of texts,
        one such list per text, in order.

        A ``(text, text_pair)`` tuple (or a list of them) is classified as a pair, as NLI and
        cross-encoder models expect, through TEI's ``/predict`` (``layout="endpoint"``)."""
        pairs = _text_pairs(text)
        extra: dict[str, Any] = {}
        if pairs is not None:
            inputs: Any = pairs
            extra = {"pairs": True, "unwrap_single": isinstance(text, tuple)}
        else:
            inputs = v.require_texts(text, "text")
        params = self._params(Task.TEXT_CLASSIFICATION, top_k=top_k, function_to_apply=function_to_apply)
        return self._call(Task.TEXT_CLASSIFICATION, model, inputs, params, use_cache=use_cache,
                          wait_for_model=wait_for_model, extra=extra)

    def token_classification(
        self,
        text: str | Sequence[str],
        *,
        model: str | None = None,
        aggregation_strategy: Literal["none", "simple", "first", "average", "max"] | None = None,
        ignore_labels: Sequence[str] | None = None,
        stride: int | None = None,
        use_cache: bool | None = None,
        wait_for_model: bool | None = None,
    ) -> Any:
        """Entities found in ``text``: ``list[TokenClassificationResult]`` (for a list of texts,
        one such list per text, in order)."""
        text = v.require_texts(text, "text")
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
        text: str | Sequence[str],
        *,
        model: str | None = None,
        min_length: int | None = None,
        max_length: int | None = None,
        use_cache: bool | None = None,
        wait_for_model: bool | None = None,
    ) -> Any:
        """A ``SummarizationResult`` (a list of them, in order, for a list of texts)."""
        text = v.require_texts(text, "text")
        params = self._params(Task.SUMMARIZATION, min_length=min_length, max_length=max_length)
        if "min_length" in params and "max_length" in params and params["min_length"] > params["max_length"]:
            raise InvalidInputError("min_length", "must not exceed max_length")
        return self._call(Task.SUMMARIZATION, model, text, params, use_cache=use_cache, wait_for_model=wait_for_model)

    def translation(
        self,
        text: str | Sequence[str],
        *,
        model: str | None = None,
        src_lang: str | None = None,
        tgt_lang: str | None = None,
        max_length: int | None = None,
        use_cache: bool | None = None,
        wait_for_model: bool | None = None,
    ) -> Any:
        """A ``TranslationResult`` (a list of them, in order, for a list of texts)."""
        text = v.require_texts(text, "text")
        params = self._params(Task.TRANSLATION, src_lang=src_lang, tgt_lang=tgt_lang, max_length=max_length)
        return self._call(Task.TRANSLATION, model, text, params, use_cache=use_cache, wait_for_model=wait_for_model)

    def fill_mask(
        self,
        text: str | Sequence[str],
        *,
        model: str | None = None,
        top_k: int | None = None,
        targets: Sequence[str] | None = None,
        use_cache: bool | None = None,
        wait_for_model: bool | None = None,
    ) -> Any:
        """Candidates for the masked token: ``list[FillMaskResult]`` (one such list per text for a
        list of texts)."""
        text = v.require_texts(text, "text")
        params = self._params(Task.FILL_MASK, top_k=top_k, targets=list(targets) if targets else None)
        return self._call(Task.FILL_MASK, model, text, params, use_cache=use_cache, wait_for_model=wait_for_model)

    def text2text_generation(
        self,
        text: str | Sequence[str],
        *,
        model: str | None = None,
        max_new_tokens: int | None = None,
        max_length: int | None = None,
        use_cache: bool | None = None,
        wait_for_model: bool | None = None,
    ) -> Any:
        """A ``GeneratedText`` (a list of them, in order, for a list of texts)."""
        text = v.require_texts(text, "text")
        params = self._params(Task.TEXT2TEXT_GENERATION, max_new_tokens=max_new_tokens, max_length=max_length)
        return self._call(Task.TEXT2TEXT_GENERATION, model, text, params, use_cache=use_cache, wait_for_model=wait_for_model)

    def feature_extraction(
        self,
        text: str | Sequence[str],
        *,
        model: str | None = None,
        pooling: Pooling = "mean",
        normalize: bool | None = None,
        truncate: bool | None = None,
        truncation_direction: Literal["left", "right", "Left", "Right"] | None = None,
        prompt_name: str | None = None,
        dimensions: int | None = None,
        encoding_format: Literal["float", "base64"] | None = None,
        batch_size: int | None = None,
        use_cache: bool | None = None,
        wait_for_model: bool | None = None,
    ) -> Any:
        """Embeddings: ``list[float]`` for one text, ``list[list[float]]`` (input order) for a list.

        ``batch_size``: send a long list as requests of at most that many texts, concurrently
        (at most the client's ``max_concurrency`` at once, on its pooled connections); the
        vectors come back in input order, all of them or an error (the first failed batch's,
        after the core's retries). Without it, one request carries the whole list.

        Servers answer pooled vectors or token-level ones depending on the model (every shape
        is listed in :func:`hfbridge.shapes.normalize_embeddings`). Token-level answers are pooled
        here as ``pooling`` says (``mean`` over tokens, ``cls`` = first token, ``max`` per
        dimension); ``pooling="none"`` returns the token vectors instead. ``normalize=True``
        asks the server for unit vectors and makes sure of it here; ``False`` asks TEI for raw
        ones. TEI's ``truncate``, ``truncation_direction``, ``prompt_name`` and ``dimensions``
        (Matryoshka: the first N dimensions) are sent as given. On an OpenAI-compatible base
        (``layout="openai"``: TEI's, vLLM's or the router's ``/v1``) the request goes to
        ``{base}/embeddings``; ``encoding_format="base64"`` makes its answer smaller and is
        decoded here."""
        inputs = v.require_texts(text, "text")
        if pooling not in ("mean", "cls", "max", "none"):
            raise InvalidInputError("pooling", f"must be 'mean', 'cls', 'max' or 'none', got {pooling!r}")
        if normalize is not None and not isinstance(normalize, bool):
            raise InvalidInputError("normalize", f"must be True, False or None, got {normalize!r}")
        if encoding_format not in (None, "float", "base64"):
            raise InvalidInputError("encoding_format", f"must be 'float' or 'base64', got {encoding_format!r}")
        if self._config.layout is Layout.OPENAI:
            tei_only = {"truncate": truncate, "truncation_direction": truncation_direction, "prompt_name": prompt_name}
            given = [name for name, value in tei_only.items() if value is not None]
            if given or pooling == "none":
                name = given[0] if given else "pooling"
                raise InvalidInputError(name, "is not part of the OpenAI embeddings API; use layout='endpoint' for TEI's own /embed")
            params = self._params(Task.FEATURE_EXTRACTION, dimensions=dimensions)
        else:
            if encoding_format is not None:
                raise InvalidInputError("encoding_format", "only applies to an OpenAI-compatible base (layout='openai')")
            params = self._params(Task.FEATURE_EXTRACTION, normalize=normalize, truncate=truncate,
                                  truncation_direction=truncation_direction, prompt_name=prompt_name, dimensions=dimensions)
        extra = {"pooling": pooling, "normalize": bool(normalize), "encoding_format": encoding_format}
        if batch_size is not None:
            if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
                raise InvalidInputError("batch_size", f"must be a positive integer, got {batch_size!r}")
            if isinstance(inputs, list) and len(inputs) > batch_size:
                calls = [self._make_call(Task.FEATURE_EXTRACTION, model, batch, params, use_cache=use_cache,
                                         wait_for_model=wait_for_model, extra=extra)
                         for batch in chunks(inputs, batch_size)]
                return self._execute_batches(calls)
        return self._call(Task.FEATURE_EXTRACTION, model, inputs, params, use_cache=use_cache,
                          wait_for_model=wait_for_model, extra=extra)

    def rerank(
        self,
        query: str,
        texts: Sequence[str],
        *,
        model: str | None = None,
        top_n: int | None = None,
        return_text: bool = False,
        truncate: bool | None = None,
        raw_scores: bool | None = None,
        truncation_direction: Literal["left", "right", "Left", "Right"] | None = None,
        use_cache: bool | None = None,
        wait_for_model: bool | None = None,
    ) -> Any:
        """``texts`` ranked by relevance to ``query``, best first: ``list[RerankResult]`` (each
        with the ``index`` it had in ``texts`` and its ``score``; ``text`` too with
        ``return_text=True``), at most ``top_n`` of them.

        Goes to TEI's ``/rerank`` (an endpoint, or ``hfbridge serve``), to the Cohere-style
        ``{base}/rerank`` of OpenAI-compatible servers, or on the hosted API to a cross-encoder
        model that scores each (query, text) pair."""
        v.require_text(query, "query")
        if isinstance(texts, str) or not isinstance(texts, Sequence):
            raise InvalidInputError("texts", "must be a list of strings")
        if not texts:
            raise InvalidInputError("texts", "must contain at least one text to rank")
        items = [v.require_text(t, f"texts[{i}]") for i, t in enumerate(texts)]
        params = self._params(Task.TEXT_RANKING, top_n=top_n, return_text=return_text or None, truncate=truncate,
                              raw_scores=raw_scores, truncation_direction=truncation_direction)
        return self._call(Task.TEXT_RANKING, model, {"query": query, "texts": items}, params,
                          use_cache=use_cache, wait_for_model=wait_for_model)

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

    # ---- the hosted API's tasks beyond the spec --------------------------------------------------
    def _image_question(self, task: Task, image: Any, question: str, model: str | None, params: dict[str, Any],
                        use_cache: bool | None, wait_for_model: bool | None) -> Any:
        inputs = {"image": to_binary_input(image, "image", kind="image"), "question": v.require_text(question, "question")}
        return self._call(task, model, inputs, params, use_cache=use_cache, wait_for_model=wait_for_model)

    def document_question_answering(
        self,
        image: Any,
        question: str,
        *,
        model: str | None = None,
        top_k: int | None = None,
        max_answer_len: int | None = None,
        handle_impossible_answer: bool | None = None,
        doc_stride: int | None = None,
        max_question_len: int | None = None,
        max_seq_len: int | None = None,
        lang: str | None = None,
        word_boxes: Sequence[Any] | None = None,
        use_cache: bool | None = None,
        wait_for_model: bool | None = None,
    ) -> Any:
        """Answers read from a document image: ``list[DocumentQuestionAnsweringResult]``, best
        first. ``word_boxes`` (words, or ``[x0, y0, x1, y1]`` boxes normalised to 0-1000) skip
        the server's OCR for extractive readers."""
        params = self._params(
            Task.DOCUMENT_QUESTION_ANSWERING, top_k=top_k, max_answer_len=max_answer_len,
            handle_impossible_answer=handle_impossible_answer, doc_stride=doc_stride,
            max_question_len=max_question_len, max_seq_len=max_seq_len, lang=lang,
            word_boxes=list(word_boxes) if word_boxes is not None else None,
        )
        return self._image_question(Task.DOCUMENT_QUESTION_ANSWERING, image, question, model, params, use_cache, wait_for_model)

    def visual_question_answering(
        self,
        image: Any,
        question: str,
        *,
        model: str | None = None,
        top_k: int | None = None,
        use_cache: bool | None = None,
        wait_for_model: bool | None = None,
    ) -> Any:
        """Answers with scores, best first: ``list[VisualQuestionAnsweringResult]``."""
        params = self._params(Task.VISUAL_QUESTION_ANSWERING, top_k=top_k)
        return self._image_question(Task.VISUAL_QUESTION_ANSWERING, image, question, model, params, use_cache, wait_for_model)

    def zero_shot_image_classification(
        self,
        image: Any,
        candidate_labels: Sequence[str],
        *,
        model: str | None = None,
        hypothesis_template: str | None = None,
        use_cache: bool | None = None,
        wait_for_model: bool | None = None,
    ) -> Any:
        """The labels you chose, scored for ``image``, best first: ``list[ClassificationResult]``.
        At least two labels: with one, a softmax over labels scores it 1.0 whatever it shows."""
        labels = v.require_labels(candidate_labels, "candidate_labels")
        if len(labels) < 2:
            raise InvalidInputError("candidate_labels", "give at least two labels to choose between")
        params = self._params(Task.ZERO_SHOT_IMAGE_CLASSIFICATION, candidate_labels=labels,
                              hypothesis_template=hypothesis_template)
        return self._binary_call(Task.ZERO_SHOT_IMAGE_CLASSIFICATION, image, "image", model, params, use_cache, wait_for_model)

    def audio_to_audio(
        self,
        audio: Any,
        *,
        model: str | None = None,
        use_cache: bool | None = None,
        wait_for_model: bool | None = None,
    ) -> Any:
        """The model's output clips (separated sources, an enhanced or re-encoded clip):
        ``list[AudioToAudioResult]``; ``result.audio()`` gives a clip's bytes."""
        return self._binary_call(Task.AUDIO_TO_AUDIO, audio, "audio", model, {}, use_cache, wait_for_model)

    def image_to_image(
        self,
        image: Any,
        prompt: str | None = None,
        *,
        model: str | None = None,
        negative_prompt: str | None = None,
        num_inference_steps: int | None = None,
        guidance_scale: float | None = None,
        strength: float | None = None,
        target_size: Mapping[str, int] | None = None,
        seed: int | None = None,
        use_cache: bool | None = None,
        wait_for_model: bool | None = None,
    ) -> Any:
        """The transformed image's bytes (a :class:`~hfbridge.media.BinaryOutput`).
        ``target_size`` is ``{"width": w, "height": h}``."""
        if prompt is not None:
            v.require_text(prompt, "prompt")
        params = self._params(
            Task.IMAGE_TO_IMAGE, prompt=prompt, negative_prompt=negative_prompt, num_inference_steps=num_inference_steps,
            guidance_scale=guidance_scale, strength=strength, seed=seed,
            target_size=dict(target_size) if target_size is not None else None,
        )
        return self._binary_call(Task.IMAGE_TO_IMAGE, image, "image", model, params, use_cache, wait_for_model)

    def _tabular(self, task: Task, table: Mapping[str, Sequence[Any]], model: str | None,
                 use_cache: bool | None, wait_for_model: bool | None) -> Any:
        checked = v.require_table(table, "table")
        return self._call(task, model, {"data": checked}, use_cache=use_cache, wait_for_model=wait_for_model,
                          extra={"count": len(next(iter(checked.values())))})

    def tabular_classification(
        self,
        table: Mapping[str, Sequence[Any]],
        *,
        model: str | None = None,
        use_cache: bool | None = None,
        wait_for_model: bool | None = None,
    ) -> Any:
        """One predicted label per row, in row order: ``list[str]``. ``table`` maps feature
        columns to equal-length lists of values."""
        return self._tabular(Task.TABULAR_CLASSIFICATION, table, model, use_cache, wait_for_model)

    def tabular_regression(
        self,
        table: Mapping[str, Sequence[Any]],
        *,
        model: str | None = None,
        use_cache: bool | None = None,
        wait_for_model: bool | None = None,
    ) -> Any:
        """One predicted value per row, in row order: ``list[float]``."""
        return self._tabular(Task.TABULAR_REGRESSION, table, model, use_cache, wait_for_model)

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


def _text_pairs(value: Any) -> list[tuple[str, str]] | None:
    """``(text, text_pair)`` or a list of such tuples, checked; None for plain texts."""
    def pair(item: Any, field: str) -> tuple[str, str] | None:
        if isinstance(item, tuple):
            if len(item) != 2:
                raise InvalidInputError(field, f"a text pair is a (text, text_pair) tuple of two strings, got {len(item)} items")
            return (v.require_text(item[0], f"{field}[0]"), v.require_text(item[1], f"{field}[1]"))
        return None

    if isinstance(value, tuple):
        return [pair(value, "text")]  # type: ignore[list-item]
    if isinstance(value, list) and value and isinstance(value[0], tuple):
        pairs = [pair(item, f"text[{i}]") for i, item in enumerate(value)]
        if any(p is None for p in pairs):
            raise InvalidInputError("text", "mixes text pairs and plain texts; give one kind")
        return pairs  # type: ignore[return-value]
    return None
