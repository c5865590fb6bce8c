"""Tokenizers trained locally, in a second, for the tiny random-weight models.

Nothing is downloaded: a small built-in English corpus is enough to give a WordPiece (BERT-style)
or byte-level BPE (GPT-2/BART-style) vocabulary that covers any input text, so tiny models run
the same tokenisation code paths as real ones. Training is deterministic: the same vocabulary on
every run, so a tiny model's weights (whose embedding table is sized by it) are too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["CORPUS", "training_corpus", "train_wordpiece", "train_bpe"]

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


def training_corpus(extra: list[str] | None = None) -> list[str]:
    """:data:`CORPUS` (plus ``extra``) as written, lowercased and uppercased."""
    # Repeat with case variants so frequent words become whole tokens.
    base = CORPUS + (extra or [])
    return base + [line.lower() for line in base] + [line.upper() for line in base]


_BERT_SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def train_wordpiece(target: Path, vocab_size: int = 600) -> Any:
    """A BERT-style fast tokenizer (WordPiece, uncased; [CLS] a [SEP] b [SEP], [MASK]); its
    ``vocab.txt`` is written into ``target``, the folder the tokenizer is then saved in.

    tokenizers' own WordPiece trainer cannot be used: it breaks ties in hash order, so each run
    gives another vocabulary (even another size). The BPE trainer is deterministic, so the
    sub-words are learnt by BPE over BERT's own normalisation and word splitting, marking word
    starts with "▁", then spelt the WordPiece way (a piece inside a word gets "##"). Every
    character is kept both ways, so any word can be spelt. The small vocabulary splits the rarer
    words into pieces, as real vocabularies do with rare words.
    """
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers
    from transformers import BertTokenizerFast

    bpe = Tokenizer(models.BPE(unk_token="[UNK]"))
    bpe.normalizer = normalizers.BertNormalizer(lowercase=True)
    bpe.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.BertPreTokenizer(), pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")]
    )
    bpe.train_from_iterator(training_corpus(), trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=_BERT_SPECIALS))
    learnt = [token for token, _ in sorted(bpe.get_vocab().items(), key=lambda item: item[1])]
    characters = sorted({char for token in learnt if token not in _BERT_SPECIALS for char in token.lstrip("▁")})
    vocab = dict.fromkeys(_BERT_SPECIALS + characters + [f"##{char}" for char in characters])
    for token in learnt:
        if token not in _BERT_SPECIALS and token != "▁":
            vocab.setdefault(token[1:] if token.startswith("▁") else f"##{token}")
    target = Path(target)
    target.mkdir(parents=True, exist_ok=True)
    (target / "vocab.txt").write_text("".join(f"{token}\n" for token in vocab), encoding="utf-8")
    # The vocabulary file goes positionally: transformers 4 calls it vocab_file, 5 vocab.
    return BertTokenizerFast(str(target / "vocab.txt"), do_lower_case=True)


def train_bpe(target: Path | None = None, *, vocab_size: int = 1200, extra_corpus: list[str] | None = None, bos_eos: bool = True) -> Any:
    """A byte-level BPE fast tokenizer (GPT-2/BART style, ``<s> </s> <pad> <unk> <mask>``)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(
        training_corpus(extra_corpus),
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
