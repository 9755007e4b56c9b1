"""Corrections written as the files `tagger train` and `tagger finetune` read, a sentence at a time.

- "conllu": CoNLL-U, as the service answers in it (`tagger.conllu`): plain tags (UPOS) in the UPOS
  column; span tags as `NER=<tag>` in MISC with UPOS left `_`; `SpaceAfter=No` where the offsets say two
  tokens touch. `read_conllu` trains from the UPOS column, so span-tag corrections are trained from
  "iob2" (`tagger finetune` reads either).
- "iob2": `token<TAB>tag` lines, a blank line after each sentence (WNUT-17's and WikiANN's layout,
  `read_columns`), span tags in IOB2.
Each sentence opens with `# correction_id = N` (and `# conflict = yes` when another correction of the
same tokens disagrees), comment lines both readers skip.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from service.corrections.records import StoredCorrection
from tagger.schemes import is_span_tagset

Format = Literal["conllu", "iob2"]
FORMATS: tuple[Format, ...] = ("conllu", "iob2")
MEDIA_TYPES = {"conllu": "text/x-conllu; charset=utf-8", "iob2": "text/plain; charset=utf-8"}


def span_tags(tags: Iterable[str]) -> bool:
    """Whether a model's tags are span tags (B-PER, O), written to MISC in CoNLL-U."""
    return is_span_tagset(tags)


def sentence(stored: StoredCorrection, fmt: Format, spans: bool) -> str:
    """One correction as a block of lines ending in a blank line."""
    correction = stored.correction
    lines = [f"# correction_id = {stored.id}"]
    if stored.conflict:
        lines.append("# conflict = yes")
    if fmt == "iob2":
        lines += [f"{token}\t{tag}" for token, tag in zip(correction.tokens, correction.tags, strict=True)]
        return "\n".join(lines) + "\n\n"
    if fmt != "conllu":
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    text = correction.text if correction.text is not None else " ".join(correction.tokens)
    lines.append(f"# text = {' '.join(text.split())}")
    offsets = correction.offsets
    for i, (token, tag) in enumerate(zip(correction.tokens, correction.tags, strict=True)):
        misc = [f"NER={tag}"] if spans else []
        if offsets is not None and i + 1 < len(offsets) and offsets[i][1] == offsets[i + 1][0]:
            misc.append("SpaceAfter=No")
        upos = "_" if spans else tag
        lines.append("\t".join([str(i + 1), token, "_", upos, "_", "_", "_", "_", "_", "|".join(misc) or "_"]))
    return "\n".join(lines) + "\n\n"
