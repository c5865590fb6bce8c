"""The embeddings backend: the real all-MiniLM-L6-v2 checked against the sentence-transformers
library itself, and a tiny random BERT for the plain-transformers path."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
import torch
from pydantic import TypeAdapter

from hfbridge.server.backends import BackendInputError, LoadContext
from hfbridge.server.backends._common import TINY_MARKER
from hfbridge.server.backends.embeddings import EmbeddingBackend, Recipe, build_tiny, bundled_minilm, load
from hfbridge.tasks import Task

FE, SIM = Task.FEATURE_EXTRACTION, Task.SENTENCE_SIMILARITY
LONG = "The quick brown fox jumps over the lazy dog. " * 28  # ~300 tokens, over MiniLM's 256
TEXTS = ["Hello world", LONG, "  leading and trailing spaces  ", "x", "Embeddings map sentences to vectors."] * 7

Vectors = TypeAdapter(list[list[float]])
Matrices = TypeAdapter(list[list[list[float]]])
Scores = TypeAdapter(list[float])


def _tiny_folder(model_cache: Path) -> Path:
    folder = model_cache / "tiny" / FE.value
    if not (folder / TINY_MARKER).is_file():
        build_tiny(folder)
    return folder


@pytest.fixture(scope="module")
def minilm(model_cache: Path) -> EmbeddingBackend:
    return load(bundled_minilm(), LoadContext("sentence-transformers/all-MiniLM-L6-v2", model_cache))


@pytest.fixture(scope="module")
def tiny(model_cache: Path) -> EmbeddingBackend:
    return load(_tiny_folder(model_cache), LoadContext("tiny/feature-extraction", model_cache))


def _embed(backend: EmbeddingBackend, inputs, **parameters) -> torch.Tensor:
    out = backend.predict(FE, inputs, parameters)
    Vectors.validate_python(out)
    return torch.tensor(out)


def _norms(vectors: torch.Tensor) -> torch.Tensor:
    return vectors.norm(dim=-1)


class TestMiniLM:
    def test_recipe_is_read_from_the_sentence_transformers_files(self, minilm: EmbeddingBackend) -> None:
        assert minilm.recipe == Recipe(pooling=("mean",), normalize=True, max_seq_length=256, lowercase=False)
        assert minilm.max_length == 256 and not minilm.meaningless

    def test_vectors_equal_sentence_transformers(self, minilm: EmbeddingBackend) -> None:
        from sentence_transformers import SentenceTransformer

        reference = SentenceTransformer(str(bundled_minilm()), device="cpu").encode(TEXTS, convert_to_tensor=True)
        ours = _embed(minilm, TEXTS)  # 35 texts: two internal batches
        assert ours.shape == (35, 384)
        assert torch.allclose(ours, reference.cpu(), atol=1e-5)

    def test_a_single_string_is_a_list_of_one_vector(self, minilm: EmbeddingBackend) -> None:
        single = _embed(minilm, "Hello world")
        assert single.shape == (1, 384)
        assert torch.allclose(single[0], _embed(minilm, TEXTS[:2])[0], atol=1e-6)
        assert minilm.predict(FE, [], {}) == []

    def test_normalize(self, minilm: EmbeddingBackend) -> None:
        default = _embed(minilm, TEXTS[:5])
        raw = _embed(minilm, TEXTS[:5], normalize=False)
        assert torch.allclose(_norms(default), torch.ones(5), atol=1e-5)
        assert not torch.allclose(_norms(raw), torch.ones(5), atol=1e-2)
        assert torch.allclose(torch.nn.functional.normalize(raw, dim=-1), default, atol=1e-6)

    def test_pooling_none_gives_real_tokens_only(self, minilm: EmbeddingBackend) -> None:
        texts = ["Hello world", "A somewhat longer sentence than the first one.", LONG]
        out = minilm.predict(FE, texts, {"pooling": "none"})
        Matrices.validate_python(out)
        lengths = [len(m) for m in out]
        assert lengths == [min(len(minilm.tokenizer(t).input_ids), 256) for t in texts]
        assert lengths[0] < lengths[1] < lengths[2] == 256
        raw = _embed(minilm, texts, normalize=False)
        for matrix, vector in zip(out, raw):
            assert torch.allclose(torch.tensor(matrix).mean(dim=0), vector, atol=1e-5)
        unit = minilm.predict(FE, texts[:1], {"pooling": "none", "normalize": True})[0]
        assert torch.allclose(_norms(torch.tensor(unit)), torch.ones(lengths[0]), atol=1e-5)

    def test_pooling_cls_and_mean(self, minilm: EmbeddingBackend) -> None:
        tokens = minilm.predict(FE, ["Hello world"], {"pooling": "none"})[0]
        cls = _embed(minilm, "Hello world", pooling="cls", normalize=False)[0]
        assert torch.allclose(cls, torch.tensor(tokens[0]), atol=1e-6)
        assert torch.allclose(_embed(minilm, TEXTS[:3], pooling="mean"), _embed(minilm, TEXTS[:3]), atol=1e-6)

    def test_truncate(self, minilm: EmbeddingBackend) -> None:
        with pytest.raises(BackendInputError) as err:
            minilm.predict(FE, ["short", LONG], {"truncate": False})
        assert err.value.field == "inputs" and "text 1" in err.value.message
        assert _embed(minilm, ["short"], truncate=False).shape == (1, 384)
        # truncation keeps the first 256 tokens: the long text embeds like its own prefix
        prefix = minilm.tokenizer.decode(minilm.tokenizer(LONG).input_ids[1:255])
        assert torch.allclose(_embed(minilm, LONG), _embed(minilm, prefix), atol=1e-4)

    def test_sentence_similarity(self, minilm: EmbeddingBackend) -> None:
        sentences = ["That is a happy dog", "That is a very happy person", "Today is a sunny day", "That is a happy person"]
        scores = minilm.predict(SIM, {"source_sentence": "That is a happy person", "sentences": sentences}, {})
        Scores.validate_python(scores)
        assert len(scores) == 4 and math.isclose(scores[3], 1.0, abs_tol=1e-5)
        assert scores[1] > scores[0] > scores[2]
        vectors = _embed(minilm, ["That is a happy person", *sentences])
        assert torch.allclose(torch.tensor(scores), vectors[1:] @ vectors[0], atol=1e-5)


class TestTinyEncoder:
    def test_build_is_deterministic_and_marked(self, tmp_path: Path, model_cache: Path) -> None:
        build_tiny(tmp_path / "a")
        build_tiny(tmp_path / "b")
        assert (tmp_path / "a" / "model.safetensors").read_bytes() == (tmp_path / "b" / "model.safetensors").read_bytes()
        backend = load(tmp_path / "a", LoadContext("t", model_cache))
        assert backend.meaningless and backend.tasks == {FE, SIM}

    def test_plain_encoder_means_without_normalising(self, tiny: EmbeddingBackend) -> None:
        assert tiny.recipe == Recipe() and tiny.max_length == 128
        vectors = _embed(tiny, ["hello world", "the cat sat on the mat"])
        assert vectors.shape == (2, 32)
        assert not torch.allclose(_norms(vectors), torch.ones(2), atol=1e-2)
        assert torch.allclose(_norms(_embed(tiny, ["hello world"], normalize=True)), torch.ones(1), atol=1e-5)
        tokens = torch.tensor(tiny.predict(FE, ["hello world"], {"pooling": "none"})[0])
        assert torch.allclose(tokens.mean(dim=0), vectors[0], atol=1e-5)
        with pytest.raises(BackendInputError) as err:
            tiny.predict(FE, "word " * 200, {"truncate": False})
        assert err.value.field == "inputs"
        Scores.validate_python(tiny.predict(SIM, {"source_sentence": "a", "sentences": ["b", "c"]}, {}))

    def test_pooling_config_with_several_modes(self, tiny: EmbeddingBackend, model_cache: Path, tmp_path: Path) -> None:
        """A sentence-transformers folder pooling with cls and max concatenates both, in that order."""
        folder = tmp_path / "st"
        shutil.copytree(_tiny_folder(model_cache), folder)
        (folder / "modules.json").write_text(json.dumps([
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        ]))
        (folder / "1_Pooling").mkdir()
        (folder / "1_Pooling" / "config.json").write_text(json.dumps({"pooling_mode": ["cls", "max"]}))
        backend = load(folder, LoadContext("st", model_cache))
        assert backend.recipe.pooling == ("cls", "max") and not backend.recipe.normalize
        vector = _embed(backend, "hello world")[0]
        tokens = torch.tensor(tiny.predict(FE, ["hello world"], {"pooling": "none"})[0])
        assert torch.allclose(vector, torch.cat([tokens[0], tokens.max(dim=0).values]), atol=1e-5)

    def test_unsupported_sentence_transformers_modules_are_refused(self, tmp_path: Path) -> None:
        (tmp_path / "modules.json").write_text(json.dumps([
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "2_Dense", "type": "sentence_transformers.models.Dense"},
        ]))
        with pytest.raises(ValueError, match="Dense"):
            Recipe.read(tmp_path)
