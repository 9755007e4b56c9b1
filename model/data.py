"""The data a config names, read through the core's readers: training corpora, dev and test splits.

Span tags come back in IOB2, what models output and are scored in; training
re-writes them to the model's own scheme (BIOES by default).
"""

from __future__ import annotations

from collections.abc import Sequence

from model.config import Corpus, DataConfig
from tagger.readers import Sentence, read_tagged
from tagger.schemes import is_span_tagset


def read_split(data: DataConfig, path: str) -> list[Sentence]:
    """A dev or test file, read with the data section's format and columns."""
    return read_tagged(
        path,
        data.format,
        tag_field=data.tag_field,
        token_column=data.token_column,
        tag_column=data.tag_column,
        scheme=data.scheme,
    )


def read_training(data: DataConfig) -> list[list[Sentence]]:
    """Every training corpus; several must share one tag set."""
    corpora = data.train_corpora()
    if not corpora:
        raise ValueError('no training data: set data.train to a file or a list of {"path": ..., "weight": ...}')
    read = [
        read_tagged(
            c.path,
            c.format,
            tag_field=c.tag_field,
            token_column=c.token_column,
            tag_column=c.tag_column,
            scheme=c.scheme,
        )
        for c in corpora
    ]
    _check_same_tag_set(corpora, read)
    return read


def _labels(sentences: Sequence[Sentence]) -> set[str]:
    """Entity types of a span tag set (B-PER, I-PER -> PER), else the tags themselves."""
    tags = {t for s in sentences for t in s.tags}
    return {t[2:] for t in tags if t != "O"} if is_span_tagset(tags) else tags


def _check_same_tag_set(corpora: Sequence[Corpus], read: Sequence[Sequence[Sentence]]) -> None:
    """Several training files must tag the same things: the same entity types, or the same plain tags."""
    first = _labels(read[0])
    for corpus, sentences in zip(corpora[1:], read[1:], strict=True):
        other = _labels(sentences)
        if other != first:
            raise ValueError(
                f"training files must share one tag set: {corpora[0].path} has {sorted(first)}, "
                f"{corpus.path} has {sorted(other)}"
            )
