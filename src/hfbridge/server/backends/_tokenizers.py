"""Tokenizers trained locally, in a second, for the tiny random-weight models.

Nothing is downloaded: a small built-in English corpus is enough to give a WordPiece (BERT-style)
or byte-level BPE (GPT-2/BART-style) vocabulary that covers any input text, so tiny models run
the same tokenisation code paths as real ones.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["CORPUS", "train_wordpiece", "train_bpe"]

CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "Hugging Face hosts models for text, vision and audio tasks.",
    "My name is Sarah Jessica Parker but you can call me Jessica.",
    "Paris is the capital of France, and Berlin is the capital of Germany.",
    "Machine learning is so easy; deep learning is so straightforward.",
    "I like you. I love this movie! This film was terrible and boring.",
    "The weather today is sunny with a light breeze from the west.",
    "A new model offers an explanation for how the Galilean satellites formed.",
    "How many stars does the transformers repository have? It has 36542 stars.",
    "Translate English to French: Hello world, how are you?",
    "Summarize: the sky is blue, the tree is green, and the grass is wet after rain.",
    "Question: what is the answer to the universe? Context: the answer is forty two.",
    "An astronaut riding a horse on the moon, in the style of an old painting.",
    "A man said to the universe: sir, I exist. The universe replied nothing at all.",
    "Scientists discovered a new species of frog in the rainforest of Brazil.",
    "The stock market rose by three percent on Monday after the announcement.",
    "Please call me at 555 0100 or send an email before Friday afternoon.",
    "Retrieval augmented generation combines a vector index with a language model.",
    "Embeddings map sentences to vectors so that similar meanings lie close together.",
    "LangChain and LlamaIndex build chains, agents and pipelines around models.",
    "Apple, Google, Microsoft and Amazon are large technology companies.",
    "She walked to the station, bought a ticket and waited for the train.",
    "Numbers like 0 1 2 3 4 5 6 7 8 9 10 100 1000 and symbols like % $ & # @ ! ? appear too.",
    "Cats, dogs, birds and fish are common pets in many homes around the world.",
    "The cat sat on the mat; the dog slept near the door; the bird sang outside.",
    "Object detection finds a person, an umbrella, a car and a bicycle in the photo.",
    "Speech recognition turns audio into text; text to speech turns text into audio.",
]


def _corpus(extra: list[str] | None = None) -> list[str]:
    # Repeat with case variants so frequent words become whole tokens.
    base = CORPUS + (extra or [])
    return base + [line.lower() for line in base] + [line.upper() for line in base]


def train_wordpiece(target: Path | None = None, *, vocab_size: int = 1200, lowercase: bool = True, extra_corpus: list[str] | None = None) -> Any:
    """A BERT-style fast tokenizer ([CLS] a [SEP] b [SEP], [MASK]); saved to ``target`` if given."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import BertTokenizerFast

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=lowercase)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.train_from_iterator(_corpus(extra_corpus), trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=specials))
    cls_id, sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    tok.decoder = decoders.WordPiece()
    fast = BertTokenizerFast(
        tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
        sep_token="[SEP]", mask_token="[MASK]", do_lower_case=lowercase,
    )
    if target is not None:
        fast.save_pretrained(str(target))
    return fast


def train_bpe(target: Path | None = None, *, vocab_size: int = 1200, extra_corpus: list[str] | None = None, bos_eos: bool = True) -> Any:
    """A byte-level BPE fast tokenizer (GPT-2/BART style, ``<s> </s> <pad> <unk> <mask>``)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(
        _corpus(extra_corpus),
        trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()),
    )
    if bos_eos:
        bos, eos = tok.token_to_id("<s>"), tok.token_to_id("</s>")
        tok.post_processor = processors.TemplateProcessing(
            single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>", special_tokens=[("<s>", bos), ("</s>", eos)]
        )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>", unk_token="<unk>", mask_token="<mask>",
    )
    if target is not None:
        fast.save_pretrained(str(target))
    return fast
