"""Byte-level BPE tokenizers trained here (the ``tokenizers`` library, nothing downloaded), saved
as Hugging Face GPT-2 folders, and the prompts the sheet must tokenize as they do."""
from __future__ import annotations

import itertools
import random
import sys
from pathlib import Path

SMALL_VOCAB = 1_000
GPT2_VOCAB = 50_257   # 256 bytes + 50,000 merges + <|endoftext|>
CORPUS_BYTES = 4 * 2 ** 20


def corpus(limit: int = CORPUS_BYTES) -> list[str]:
    """A few MB of text from installed files: the Python standard library's sources and docs,
    plus generated lines with the prompts' kinds of characters (é, 中文, emoji, digits)."""
    lines, size = [], 0
    for path in sorted(Path(sys.base_prefix, "lib").glob("python3*/**/*.py")):
        text = path.read_text(encoding="utf-8", errors="ignore")
        lines.append(text)
        size += len(text.encode("utf-8"))
        if size > limit:
            break
    rng = random.Random(0)
    lines += _made_up_words(rng, limit // 2)
    words = ["café", "naïve", "中文", "字符", "😀", "🎉", "Mississippi", "lessly", "don't",
             "we'll", "it's", "I'm", "they've", "you're", "he'd", "2024", "3.14", "!!!", "...",
             "résumé", "Ünïcödé", "東京", "日本語"]
    for _ in range(20_000):
        lines.append(" ".join(rng.choice(words) for _ in range(rng.randint(1, 12))))
    return lines


def _made_up_words(rng: random.Random, size: int) -> list[str]:
    # Zipf-distributed made-up words (consonant-vowel syllables, some capitalised): enough
    # distinct frequent words for 50,000 merges, which source code alone does not give
    onsets, vowels = "b c d f g h j k l m n p r s t v w z br ch cl dr fl gr pl sh st th tr".split(), \
        "a e i o u ai ea ou y".split()
    lexicon = ["".join(rng.choice(onsets) + rng.choice(vowels) for _ in range(rng.randint(1, 4)))
               for _ in range(60_000)]
    cumulative = list(itertools.accumulate(1 / (k + 1) for k in range(len(lexicon))))
    out, total = [], 0
    while total < size:
        line = " ".join(rng.choices(lexicon, cum_weights=cumulative, k=16))
        line = line.capitalize() + rng.choice([".", ",", "!", "?", ";"])
        out.append(line)
        total += len(line)
    return out


def train(folder: Path, vocab_size: int, text: list[str]) -> Path:
    """A ByteLevelBPETokenizer of ``vocab_size`` ids saved as vocab.json + merges.txt."""
    from tokenizers import ByteLevelBPETokenizer
    tok = ByteLevelBPETokenizer()
    tok.train_from_iterator(text, vocab_size=vocab_size, min_frequency=2,
                            special_tokens=["<|endoftext|>"], show_progress=False)
    folder.mkdir(parents=True, exist_ok=True)
    tok.save_model(str(folder))
    return folder


def gpt2_folder(folder: Path, vocab_size: int, text: list[str], n_embd: int = 16) -> Path:
    """A tiny random GPT-2 (transformers, from a config) with the tokenizer beside it."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel
    train(folder, vocab_size, text)
    torch.manual_seed(0)
    config = GPT2Config(vocab_size=vocab_size, n_positions=64, n_embd=n_embd, n_layer=1,
                        n_head=2)
    GPT2LMHeadModel(config).save_pretrained(folder)
    return folder


def prompts(count: int = 220, seed: int = 0) -> list[str]:
    """Prompts of at most 64 UTF-8 bytes: fixed hard cases, then random mixes of spaces,
    newlines, digits, contractions, punctuation runs, é, 中文 and emoji."""
    fixed = ["Mississippilessly", " Mississippilessly", "Hello world", "Hello  world",
             "Hello   world  ", "a\nb", "a \n b", "\n\n", "   ", " ", "x", "it's", "don't stop",
             "we'll've", "'s", "''s", "!'s", "'S", " 's", "I'M", "can't'nt", "12345 678",
             "3.14159", "¡¡!!??", "...---...", "café", "naïve résumé", "中文", "中文 字符",
             "😀", "a😀b", "😀😀 🎉", "tab\there", "cr\r\nlf", "\t\t x", "x\u00a0y", "x\u3000y",
             "Ⅻ ٣ ½", "e\u0301", "#!/usr/bin/env python", "def f(x):\n    return x",
             "=1+1", "@home", "   leading", "trailing   ", "'ll 'd 've 're 'm 't", "x  'll"]
    rng = random.Random(seed)
    pieces = ["the", " the", "The", "cat", " sat", "Mississippi", "lessly", "'s", "'t", "'re",
              "'ve", "'m", "'ll", "'d", " ", "  ", "\n", "\t", "0", "42", "2024", "3.5", "!",
              "?!", "...", "--", "(", ")", "é", "café", "中", "文", "😀", "🎉", "👍🏽", "\u00a0",
              "Ω", "ß", "naïve", "import", " os", "def", "_", "x1", "'", "\"", "#"]
    out = list(fixed)
    while len(out) < count:
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 14)))
        while len(text.encode("utf-8")) > 64:
            text = text[:-1]
        if text and text not in out:
            out.append(text)
    return out
