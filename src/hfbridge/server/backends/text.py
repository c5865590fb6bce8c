"""Encoder backends for the text tasks: classification, entities, extractive and table QA,
fill-mask and zero-shot classification.

Every backend calls the model classes directly instead of transformers' pipelines: transformers 5
dropped the question-answering pipeline, its table-question-answering pipeline needs pandas, and
the remaining pipelines changed their outputs between versions, while hfbridge must answer in the
Inference API's shapes on transformers 4.44+ and 5.x alike. The post-processing follows the
pipelines' rules (same softmax, same entity aggregation, same span scoring) so that a real
checkpoint answers here as it does on the hosted API.

Classification, entities, fill-mask and zero-shot are one forward pass each: they answer as a
:class:`~.Plan` (``plan`` tokenizes and checks, ``finish`` post-processes one request's rows), so
the server batches them across requests; ``predict`` runs the same plan alone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from transformers import (
    AutoConfig,
    AutoModelForMaskedLM,
    AutoModelForQuestionAnswering,
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
    AutoTokenizer,
    BertConfig,
    BertForMaskedLM,
    BertForQuestionAnswering,
    BertForSequenceClassification,
    BertForTokenClassification,
)

from ...tasks import Task
from . import Backend, BackendInputError, LoadContext, Plan
from ._batch import pad_rows, row, run_plan, split_outputs
from ._common import (
    MEANINGLESS,
    TINY_MAX_POSITIONS,
    default_function_to_apply,
    input_limit,
    is_tiny,
    label_config,
    location_loader,
    write_tiny_marker,
)
from ._tokenizers import train_wordpiece

__all__ = [
    "LOADERS",
    "TINY_BUILDERS",
    "TextClassificationBackend",
    "TokenClassificationBackend",
    "ExtractiveQABackend",
    "FillMaskBackend",
    "ZeroShotBackend",
]

_SEED = 0


# --------------------------------------------------------------------------------------------
# Score functions over numpy logits
# --------------------------------------------------------------------------------------------
def _softmax(x: np.ndarray) -> np.ndarray:
    shifted = np.exp(x - x.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


class _EncoderBackend(Backend):
    """Loads a tokenizer and an encoder model with a task head; subclasses run one task."""

    #: tasks that map answers back to characters need a fast (Rust) tokenizer's offsets
    needs_offsets = False

    def __init__(self, location: Any, model_class: Any) -> None:
        self.tokenizer = AutoTokenizer.from_pretrained(str(location))
        if self.needs_offsets and not self.tokenizer.is_fast:
            raise ValueError(
                f"{location}: this task maps tokens back to characters, which needs a fast "
                "tokenizer (tokenizer.json); the checkpoint only has a slow one"
            )
        self.model = model_class.from_pretrained(str(location)).eval()
        self.max_length = input_limit(self.tokenizer, self.model.config)
        self.meaningless = is_tiny(location)
        self.id2label = {int(i): str(label) for i, label in self.model.config.id2label.items()}

    def _logits(self, encoding: Any) -> np.ndarray:
        with torch.inference_mode():
            return self.model(**encoding).logits.float().numpy()

    def predict(self, task: Task, inputs: Any, parameters: dict[str, Any]) -> Any:
        return run_plan(self, self.plan(task, inputs, parameters))

    def forward(self, rows: list[Any]) -> list[np.ndarray]:
        """Each row's logits: one vector per text (sequence heads) or one per real token
        (token heads)."""
        side = self.tokenizer.padding_side
        with torch.inference_mode():
            logits = self.model(**pad_rows(rows, self.tokenizer.pad_token_id or 0, side)).logits.float()
        return [piece.numpy() for piece in split_outputs(logits, rows, side)]

    def _plan(self, rows: list[dict[str, list[int]]], finish: Callable[[list[np.ndarray]], Any]) -> Plan:
        return Plan(rows, [len(r["input_ids"]) for r in rows], finish)


# --------------------------------------------------------------------------------------------
# text-classification
# --------------------------------------------------------------------------------------------
class TextClassificationBackend(_EncoderBackend):
    """Labels with scores for a whole text, nested one level as the API answers: ``[[...]]``."""

    tasks = frozenset({Task.TEXT_CLASSIFICATION})
    batched_tasks = tasks

    def __init__(self, location: Any) -> None:
        super().__init__(location, AutoModelForSequenceClassification)
        self.default_function = default_function_to_apply(self.model.config)

    def plan(self, task: Task, inputs: Any, parameters: dict[str, Any]) -> Plan:
        function = parameters.get("function_to_apply") or self.default_function
        top_k = parameters.get("top_k")

        def finish(outputs: list[np.ndarray]) -> Any:
            scores = {"softmax": _softmax, "sigmoid": _sigmoid, "none": lambda x: x}[function](outputs[0])
            ranked = sorted(
                ({"label": self.id2label[i], "score": float(score)} for i, score in enumerate(scores)),
                key=lambda item: item["score"],
                reverse=True,
            )
            return [ranked[:top_k] if top_k else ranked]

        return self._plan([row(self.tokenizer(inputs, truncation=True, max_length=self.max_length))], finish)


# --------------------------------------------------------------------------------------------
# token-classification
# --------------------------------------------------------------------------------------------
def _split_tag(label: str) -> tuple[str, str]:
    """``B-PER`` -> (``B``, ``PER``); a label without a prefix continues its entity (``I``)."""
    if label.startswith(("B-", "I-")):
        return label[0], label[2:]
    return "I", label


class TokenClassificationBackend(_EncoderBackend):
    """Named entities with character offsets into the original text.

    Texts longer than the model's window are read in overlapping windows (``stride`` tokens of
    overlap) and entities found twice in an overlap are kept once, as transformers does.
    """

    tasks = frozenset({Task.TOKEN_CLASSIFICATION})
    batched_tasks = tasks
    needs_offsets = True

    def __init__(self, location: Any) -> None:
        super().__init__(location, AutoModelForTokenClassification)
        # WordPiece marks word continuations ("##"), so sub-words are known exactly; for other
        # tokenizers a token glued to the previous character is taken as a continuation.
        model = self.tokenizer.backend_tokenizer.model
        self.marks_subwords = bool(getattr(model, "continuing_subword_prefix", None))

    def plan(self, task: Task, inputs: Any, parameters: dict[str, Any]) -> Plan:
        """One row per window of the text."""
        strategy = parameters.get("aggregation_strategy") or "simple"
        ignore = parameters.get("ignore_labels")
        ignore = {"O"} if ignore is None else set(ignore)
        stride = parameters.get("stride") or 0
        window = self.max_length - self.tokenizer.num_special_tokens_to_add()
        if stride >= window:
            raise BackendInputError(
                "parameters.stride", f"must be less than {window}, the number of text tokens one window of this model holds"
            )
        encoding = self.tokenizer(
            inputs, truncation=True, max_length=self.max_length, stride=stride,
            return_overflowing_tokens=True, return_offsets_mapping=True, return_special_tokens_mask=True,
        )
        offsets, special = encoding["offset_mapping"], encoding["special_tokens_mask"]
        rows = [row(encoding, i) for i in range(len(encoding["input_ids"]))]

        def finish(outputs: list[np.ndarray]) -> list[dict]:
            entities = []
            for window_index, logits in enumerate(outputs):
                ids = rows[window_index]["input_ids"]
                tokens = self._tokens(inputs, ids, _softmax(logits), offsets[window_index], special[window_index])
                for entity in self._aggregate(inputs, tokens, strategy):
                    if entity.get("entity", entity.get("entity_group")) not in ignore:
                        entities.append(entity)
            return _drop_overlaps(entities) if len(outputs) > 1 else entities

        return self._plan(rows, finish)

    def _tokens(self, text: str, ids: list[int], probs: np.ndarray, offsets: list, special: list) -> list[dict]:
        tokens = []
        for index, (token_id, (start, end), is_special) in enumerate(zip(ids, offsets, special)):
            if is_special:  # [CLS], [SEP] and padding
                continue
            word = self.tokenizer.convert_ids_to_tokens(token_id)
            source = text[start:end]
            if token_id == self.tokenizer.unk_token_id:
                word, is_subword = source, False
            elif self.marks_subwords:
                is_subword = len(word) != len(source)
            else:
                is_subword = start > 0 and " " not in text[start - 1 : start + 1]
            tokens.append(
                {"word": word, "probs": probs[index], "start": start, "end": end, "index": index, "is_subword": is_subword}
            )
        return tokens

    def _aggregate(self, text: str, tokens: list[dict], strategy: str) -> list[dict]:
        if strategy in ("none", "simple"):
            labelled = [self._label(token, token["probs"]) for token in tokens]
        else:
            labelled = [self._label_word(group, strategy) for group in _words(tokens)]
        if strategy == "none":
            return labelled
        return [self._group(text, run) for run in _entity_runs(labelled)]

    def _label(self, token: dict, probs: np.ndarray) -> dict:
        best = int(probs.argmax())
        return {
            "entity": self.id2label[best], "score": float(probs[best]), "index": token["index"],
            "word": token["word"], "start": token["start"], "end": token["end"],
        }

    def _label_word(self, group: list[dict], strategy: str) -> dict:
        """One label for a whole word, from its first token, its most confident token, or
        the average of its tokens' distributions."""
        if strategy == "first":
            probs = group[0]["probs"]
        elif strategy == "max":
            probs = max(group, key=lambda token: token["probs"].max())["probs"]
        else:  # average
            probs = np.mean([token["probs"] for token in group], axis=0)
        labelled = self._label(group[0], probs)
        labelled["end"] = group[-1]["end"]
        return labelled

    def _group(self, text: str, run: list[dict]) -> dict:
        start, end = run[0]["start"], run[-1]["end"]
        return {
            "entity_group": _split_tag(run[0]["entity"])[1],
            "score": float(np.mean([item["score"] for item in run])),
            "word": text[start:end],
            "start": start,
            "end": end,
        }


def _words(tokens: list[dict]) -> list[list[dict]]:
    """Tokens grouped into words: a word is a token followed by its continuations."""
    words: list[list[dict]] = []
    for token in tokens:
        if words and token["is_subword"]:
            words[-1].append(token)
        else:
            words.append([token])
    return words


def _entity_runs(labelled: list[dict]) -> list[list[dict]]:
    """Adjacent items of one entity type; a ``B-`` label always starts a new entity."""
    runs: list[list[dict]] = []
    for item in labelled:
        bi, tag = _split_tag(item["entity"])
        if runs and bi != "B" and tag == _split_tag(runs[-1][-1]["entity"])[1]:
            runs[-1].append(item)
        else:
            runs.append([item])
    return runs


def _drop_overlaps(entities: list[dict]) -> list[dict]:
    """Of entities overlapping across windows, keep the longer (then the more confident) one."""
    kept: list[dict] = []
    for entity in sorted(entities, key=lambda item: item["start"]):
        if kept and kept[-1]["start"] <= entity["start"] < kept[-1]["end"]:
            previous = kept[-1]
            longer = (entity["end"] - entity["start"], entity["score"]) > (previous["end"] - previous["start"], previous["score"])
            if longer:
                kept[-1] = entity
        else:
            kept.append(entity)
    return kept


# --------------------------------------------------------------------------------------------
# question-answering and table-question-answering
# --------------------------------------------------------------------------------------------
#: the window transformers reads contexts in, and how much consecutive windows overlap
_QA_WINDOW = 384
_QA_STRIDE = 128
#: longest table answer in tokens: cells are often longer than the 15 of plain QA
_TABLE_ANSWER_LEN = 30


class ExtractiveQABackend(_EncoderBackend):
    """Answers as spans of a context; tables are answered over their text, cell by cell.

    Spans are scored as transformers does: softmax of the start and end logits over the context
    tokens (and the [CLS] token, whose pair of probabilities is the no-answer score), then the
    best ``start <= end`` pairs no longer than ``max_answer_len`` tokens, widened to whole words.

    Table QA runs on the same extractive model rather than TAPAS: transformers' TAPAS tokenizer
    requires pandas, which hfbridge does not depend on. The table is written out as text, one
    row per line ("column: cell; column: cell."), answers may only start and end inside cells,
    and the answer is the cells it covers. Such a model cannot aggregate (sum, count, average),
    so ``aggregator`` is always ``"NONE"``.
    """

    tasks = frozenset({Task.QUESTION_ANSWERING, Task.TABLE_QUESTION_ANSWERING})
    needs_offsets = True

    def __init__(self, location: Any) -> None:
        config = AutoConfig.from_pretrained(str(location))
        if config.model_type == "tapas":
            raise ValueError(
                f"{location}: TAPAS checkpoints are not supported, as transformers' TAPAS tokenizer "
                "needs pandas; serve table-question-answering with an extractive question-answering "
                "model (for example deepset/roberta-base-squad2) instead"
            )
        super().__init__(location, AutoModelForQuestionAnswering)
        # Left-padding tokenizers (XLNet) put the question second.
        self.question_first = self.tokenizer.padding_side == "right"

    def predict(self, task: Task, inputs: Any, parameters: dict[str, Any]) -> Any:
        if task is Task.TABLE_QUESTION_ANSWERING:
            return self._answer_table(inputs["query"], inputs["table"])
        return self._answer(inputs["question"], inputs["context"], parameters)

    def _answer(self, question: str, context: str, parameters: dict[str, Any]) -> Any:
        if not question.strip():
            raise BackendInputError("inputs.question", "is empty")
        if not context.strip():
            raise BackendInputError("inputs.context", "is empty")
        top_k = parameters.get("top_k") or 1
        spans, no_answer = self._spans(question, context, top_k, parameters.get("max_answer_len") or 15)
        answers = [{"answer": context[start:end], "score": score, "start": start, "end": end} for score, start, end in spans]
        if parameters.get("handle_impossible_answer") or not answers:
            answers.append({"answer": "", "score": no_answer, "start": 0, "end": 0})
            answers.sort(key=lambda answer: answer["score"], reverse=True)
        return answers[0] if top_k == 1 else answers[:top_k]

    def _answer_table(self, query: str, table: dict[str, list[str]]) -> dict[str, Any]:
        if not query.strip():
            raise BackendInputError("inputs.query", "is empty")
        text, cells = _linearise(table)
        allowed = np.zeros(len(text) + 1, dtype=bool)
        for _, _, start, end in cells:
            allowed[start:end] = True
        spans, _ = self._spans(query, text, 1, _TABLE_ANSWER_LEN, allowed)
        if not spans:  # every cell is empty
            return {"answer": "", "coordinates": [], "cells": [], "aggregator": "NONE"}
        _, span_start, span_end = spans[0]
        covered = [cell for cell in cells if cell[2] < span_end and span_start < cell[3]]
        values = [text[start:end] for _, _, start, end in covered]
        return {
            "answer": ", ".join(values),
            "coordinates": [[row, column] for row, column, _, _ in covered],
            "cells": values,
            "aggregator": "NONE",
        }

    def _spans(
        self, question: str, context: str, top_k: int, max_answer_len: int, allowed: np.ndarray | None = None
    ) -> tuple[list[tuple[float, int, int]], float]:
        """The ``top_k`` best spans as ``(score, start_char, end_char)``, best first, and the
        no-answer score. ``allowed`` (one flag per character of ``context``) restricts where
        answer tokens may lie."""
        question_tokens = len(self.tokenizer(question, add_special_tokens=False)["input_ids"])
        window = min(_QA_WINDOW, self.max_length)
        room = window - question_tokens - self.tokenizer.num_special_tokens_to_add(pair=True)
        if room < 1:
            raise BackendInputError(
                "inputs.question",
                f"takes {question_tokens} tokens, which leaves no room for the context in this model's {window}",
            )
        pair = (question, context) if self.question_first else (context, question)
        encoding = self.tokenizer(
            *pair, truncation="only_second" if self.question_first else "only_first", max_length=window,
            stride=min(_QA_STRIDE, room // 2), padding=True, return_overflowing_tokens=True,
            return_offsets_mapping=True, return_tensors="pt",
        )
        offsets = encoding.pop("offset_mapping").tolist()
        encoding.pop("overflow_to_sample_mapping", None)
        with torch.inference_mode():
            output = self.model(**encoding)
        starts, ends = output.start_logits.float().numpy(), output.end_logits.float().numpy()
        context_index = 1 if self.question_first else 0
        best: dict[tuple[int, int], float] = {}
        no_answer = 1.0
        for window_index in range(len(starts)):
            sequence_ids = encoding.sequence_ids(window_index)
            in_context = np.array([
                sequence_id == context_index and end > start and (allowed is None or bool(allowed[start]))
                for sequence_id, (start, end) in zip(sequence_ids, offsets[window_index])
            ])
            ids = encoding["input_ids"][window_index].numpy()
            cls_positions = np.flatnonzero(ids == self.tokenizer.cls_token_id)
            cls = int(cls_positions[0]) if len(cls_positions) else 0
            visible = in_context.copy()
            visible[cls] = True
            p_start = _softmax(np.where(visible, starts[window_index], -10000.0))
            p_end = _softmax(np.where(visible, ends[window_index], -10000.0))
            no_answer = min(no_answer, float(p_start[cls] * p_end[cls]))
            grid = np.outer(np.where(in_context, p_start, 0.0), np.where(in_context, p_end, 0.0))
            grid = np.tril(np.triu(grid), max_answer_len - 1).ravel()
            # Several token spans can widen to the same words: read on until top_k distinct.
            found: set[tuple[int, int]] = set()
            for flat in np.argsort(-grid, kind="stable")[: np.count_nonzero(grid)]:
                if len(found) == top_k:
                    break
                start_token, end_token = divmod(int(flat), len(p_start))
                span = (
                    self._char(encoding, window_index, start_token, offsets, context_index, first=True),
                    self._char(encoding, window_index, end_token, offsets, context_index, first=False),
                )
                if span not in found:
                    found.add(span)
                    best[span] = max(best.get(span, 0.0), float(grid[flat]))
        ranked = sorted(((score, start, end) for (start, end), score in best.items()), reverse=True)
        return ranked[:top_k], no_answer

    @staticmethod
    def _char(encoding: Any, window: int, token: int, offsets: list, context_index: int, *, first: bool) -> int:
        """Where the word holding ``token`` starts (``first``) or ends, in the context."""
        word = encoding.token_to_word(window, token)
        if word is None:
            return offsets[window][token][0 if first else 1]
        span = encoding.word_to_chars(window, word, sequence_index=context_index)
        return span.start if first else span.end


def _linearise(table: dict[str, list[str]]) -> tuple[str, list[tuple[int, int, int, int]]]:
    """The table as text, one row per line, and each cell's ``(row, column, start, end)``."""
    columns = list(table)
    if not columns:
        raise BackendInputError("inputs.table", "has no columns")
    lengths = {len(cells) for cells in table.values()}
    if len(lengths) > 1:
        sizes = ", ".join(f"{name!r}: {len(cells)}" for name, cells in table.items())
        raise BackendInputError("inputs.table", f"columns must all have the same number of cells ({sizes})")
    if lengths == {0}:
        raise BackendInputError("inputs.table", "has no rows")
    text, cells = "", []
    for row in range(lengths.pop()):
        for column, name in enumerate(columns):
            text += f"{name}: "
            cells.append((row, column, len(text), len(text) + len(table[name][row])))
            text += table[name][row] + ("." if column == len(columns) - 1 else "; ")
        text += "\n"
    return text, cells


# --------------------------------------------------------------------------------------------
# fill-mask
# --------------------------------------------------------------------------------------------
class FillMaskBackend(_EncoderBackend):
    """The likeliest tokens for the (single) mask token of a text."""

    tasks = frozenset({Task.FILL_MASK})
    batched_tasks = tasks

    def __init__(self, location: Any) -> None:
        super().__init__(location, AutoModelForMaskedLM)
        if self.tokenizer.mask_token is None:
            raise ValueError(f"{location}: the tokenizer has no mask token, so it cannot fill masks")

    def forward(self, rows: list[Any]) -> list[np.ndarray]:
        """Each row's logits at its mask token only: the whole vocabulary at every position
        would be copied for nothing."""
        side = self.tokenizer.padding_side
        batch = pad_rows(rows, self.tokenizer.pad_token_id or 0, side)
        with torch.inference_mode():
            logits = self.model(**batch).logits
        masks = (batch["input_ids"] == self.tokenizer.mask_token_id).int().argmax(dim=1)
        return list(logits[torch.arange(len(rows)), masks].float().numpy())

    def plan(self, task: Task, inputs: Any, parameters: dict[str, Any]) -> Plan:
        mask = self.tokenizer.mask_token
        count = inputs.count(mask)
        if count != 1:
            problem = "must contain the mask token" if count == 0 else f"contains {count} mask tokens; use exactly one"
            raise BackendInputError("inputs", f"{problem} {mask}")
        encoding = row(self.tokenizer(inputs, truncation=True, max_length=self.max_length))
        ids = encoding["input_ids"]
        if self.tokenizer.mask_token_id not in ids:
            raise BackendInputError("inputs", f"the mask token {mask} lies beyond the {self.max_length} tokens this model reads")
        position = ids.index(self.tokenizer.mask_token_id)
        targets = self._targets(parameters["targets"]) if parameters.get("targets") else None

        def finish(outputs: list[np.ndarray]) -> list[dict[str, Any]]:
            probs = _softmax(outputs[0])
            candidates = np.arange(len(probs)) if targets is None else targets
            top_k = min(parameters.get("top_k") or 5, len(candidates))
            chosen = candidates[np.argsort(-probs[candidates], kind="stable")[:top_k]]
            results = []
            for token_id in chosen.tolist():
                filled = list(ids)
                filled[position] = token_id
                results.append({
                    "sequence": self.tokenizer.decode(filled, skip_special_tokens=True),
                    "score": float(probs[token_id]),
                    "token": int(token_id),
                    "token_str": self.tokenizer.decode([token_id]),
                })
            return results

        return self._plan([encoding], finish)

    def _targets(self, targets: list[str]) -> np.ndarray:
        """Vocabulary ids of the target words; a word the vocabulary lacks stands for its first
        token (as in transformers), e.g. an uncased model's "Paris" is "paris"."""
        vocab = self.tokenizer.get_vocab()
        ids = []
        for target in targets:
            if target in vocab:
                ids.append(vocab[target])
                continue
            pieces = self.tokenizer(target, add_special_tokens=False)["input_ids"]
            if not pieces:
                raise BackendInputError("parameters.targets", f"{target!r} gives no token in this model's vocabulary")
            ids.append(pieces[0])
        return np.array(sorted(set(ids)))


# --------------------------------------------------------------------------------------------
# zero-shot-classification
# --------------------------------------------------------------------------------------------
class ZeroShotBackend(_EncoderBackend):
    """Zero-shot classification with an NLI model: each label becomes the hypothesis
    "This example is {label}." and is scored by how strongly the text entails it."""

    tasks = frozenset({Task.ZERO_SHOT_CLASSIFICATION})
    batched_tasks = tasks

    def __init__(self, location: Any) -> None:
        super().__init__(location, AutoModelForSequenceClassification)
        by_name = {label.lower(): i for i, label in self.id2label.items()}
        self.entailment = next((i for name, i in by_name.items() if name.startswith("entail")), None)
        self.contradiction = next((i for name, i in by_name.items() if name.startswith("contradict")), None)
        if self.entailment is None or self.contradiction is None:
            raise ValueError(
                f"{location}: zero-shot classification needs an NLI model with 'entailment' and "
                f"'contradiction' labels; this one has {sorted(self.id2label.values())}"
            )

    def plan(self, task: Task, inputs: Any, parameters: dict[str, Any]) -> Plan:
        """One row per candidate label: the text and the label's hypothesis."""
        labels = parameters.get("candidate_labels")
        if not labels:
            raise BackendInputError("parameters.candidate_labels", "give at least one label")
        template = parameters.get("hypothesis_template") or "This example is {}."
        if "{}" not in template:
            raise BackendInputError("parameters.hypothesis_template", "must contain {} where the label goes")
        try:
            hypotheses = [template.format(label) for label in labels]
        except (IndexError, KeyError, ValueError) as exc:
            raise BackendInputError("parameters.hypothesis_template", f"is not a valid template: {exc}") from None
        encoding = self.tokenizer([inputs] * len(labels), hypotheses, truncation=True, max_length=self.max_length)
        multi = parameters.get("multi_label") or len(labels) == 1

        def finish(outputs: list[np.ndarray]) -> dict[str, Any]:
            logits = np.stack(outputs)
            # One label is always scored on its own, as transformers does.
            if multi:
                scores = _softmax(logits[:, [self.contradiction, self.entailment]])[:, 1]
            else:
                scores = _softmax(logits[:, self.entailment])
            order = np.argsort(-scores, kind="stable")
            return {
                "sequence": inputs,
                "labels": [labels[i] for i in order],
                "scores": [float(scores[i]) for i in order],
            }

        return self._plan([row(encoding, i) for i in range(len(labels))], finish)


# --------------------------------------------------------------------------------------------
# Tiny random-weight models
# --------------------------------------------------------------------------------------------
def _tiny_bert(model_class: Any, description: str, labels: list[str] | None = None) -> Callable[[Path], None]:
    """A builder for a 2-layer BERT with a task head and a locally trained WordPiece tokenizer."""

    def build(target: Path) -> None:
        target = Path(target)
        tokenizer = train_wordpiece(target)
        tokenizer.model_max_length = TINY_MAX_POSITIONS
        label_maps = label_config(labels) if labels else {}
        config = BertConfig(
            vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
            intermediate_size=64, max_position_embeddings=TINY_MAX_POSITIONS, pad_token_id=tokenizer.pad_token_id,
            **label_maps,
        )
        torch.manual_seed(_SEED)
        model_class(config).save_pretrained(str(target))
        tokenizer.save_pretrained(str(target))
        write_tiny_marker(target, description)

    return build


_NER_LABELS = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]

TINY_BUILDERS: dict[Task, Callable[[Path], None]] = {
    Task.TEXT_CLASSIFICATION: _tiny_bert(
        BertForSequenceClassification, f"tiny BERT for text-classification (NEGATIVE/POSITIVE); {MEANINGLESS}",
        ["NEGATIVE", "POSITIVE"],
    ),
    Task.TOKEN_CLASSIFICATION: _tiny_bert(
        BertForTokenClassification, f"tiny BERT for token-classification (CoNLL labels); {MEANINGLESS}", _NER_LABELS
    ),
    Task.QUESTION_ANSWERING: _tiny_bert(
        BertForQuestionAnswering, f"tiny BERT for extractive question-answering; {MEANINGLESS}"
    ),
    Task.FILL_MASK: _tiny_bert(BertForMaskedLM, f"tiny BERT for fill-mask; {MEANINGLESS}"),
    Task.ZERO_SHOT_CLASSIFICATION: _tiny_bert(
        BertForSequenceClassification, f"tiny BERT NLI model for zero-shot-classification; {MEANINGLESS}",
        ["contradiction", "neutral", "entailment"],
    ),
    Task.TABLE_QUESTION_ANSWERING: _tiny_bert(
        BertForQuestionAnswering,
        f"tiny BERT extractive QA model answering table-question-answering over the table's text; {MEANINGLESS}",
    ),
}


LOADERS: dict[Task, Callable[[Any, LoadContext], Backend]] = {
    Task.TEXT_CLASSIFICATION: location_loader(TextClassificationBackend),
    Task.TOKEN_CLASSIFICATION: location_loader(TokenClassificationBackend),
    Task.QUESTION_ANSWERING: location_loader(ExtractiveQABackend),
    Task.FILL_MASK: location_loader(FillMaskBackend),
    Task.ZERO_SHOT_CLASSIFICATION: location_loader(ZeroShotBackend),
    Task.TABLE_QUESTION_ANSWERING: location_loader(ExtractiveQABackend),
}
