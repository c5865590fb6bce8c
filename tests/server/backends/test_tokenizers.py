"""The locally trained tokenizers of the tiny models: the same vocabulary on every run (a tiny
model's weights are sized and seeded by it), and the BERT conventions the text backends rely on."""

from __future__ import annotations

from pathlib import Path

from hfbridge.server.backends._tokenizers import CORPUS, train_bpe, train_wordpiece


def test_wordpiece_is_identical_run_to_run(tmp_path: Path) -> None:
    first, second = train_wordpiece(tmp_path / "a"), train_wordpiece(tmp_path / "b")
    assert first.get_vocab() == second.get_vocab()
    assert (tmp_path / "a" / "vocab.txt").read_bytes() == (tmp_path / "b" / "vocab.txt").read_bytes()
    assert first.backend_tokenizer.to_str() == second.backend_tokenizer.to_str()


def test_bpe_is_identical_run_to_run() -> None:
    first, second = train_bpe(), train_bpe()
    assert first.get_vocab() == second.get_vocab()
    assert first.backend_tokenizer.to_str() == second.backend_tokenizer.to_str()


def test_wordpiece_is_bert_style_and_spells_any_word(tmp_path: Path) -> None:
    tokenizer = train_wordpiece(tmp_path)
    ids = tokenizer("Hello there", "Zyzzyva quux")["input_ids"]
    tokens = tokenizer.convert_ids_to_tokens(ids)
    assert tokens[0] == "[CLS]" and tokens.count("[SEP]") == 2 and tokens[-1] == "[SEP]"
    assert tokenizer.unk_token_id not in ids  # unseen words are spelt from pieces
    assert any(token.startswith("##") for token in tokens)
    assert tokenizer.mask_token == "[MASK]" and tokenizer.pad_token_id == 0
    assert tokenizer.decode(tokenizer(CORPUS[0])["input_ids"], skip_special_tokens=True) == CORPUS[0].lower()
