"""Typed training configuration: a JSON file, overridable field by field from flags.

Every field of every section becomes a flag named `--SECTION.FIELD`
(`--train.epochs 3`, `--model.glove false`), so the file and the command line
can never disagree about what exists. The resolved config is saved as JSON
beside every checkpoint and inside every export.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import io
import json
import textwrap
import tokenize
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args, get_origin, get_type_hints

FileFormat = Literal["auto", "conllu", "conll", "uner"]


@dataclass(frozen=True)
class Corpus:
    """One training file, read as its own format says, and how much of it each epoch draws."""

    path: str
    format: FileFormat = "auto"
    tag_field: Literal["upos", "xpos"] = "upos"
    token_column: int = 0
    tag_column: int = -1
    scheme: Literal["auto", "IOB1", "IOB2", "BIOES"] = "auto"
    weight: float = 1.0  # sentences per epoch as a multiple of the file's: 0.5 = a fresh random half, 2 = twice


@dataclass(frozen=True)
class DataConfig:
    # one training file, read with the fields below, or several, each its own `Corpus` (a JSON list of objects)
    train: str | tuple[Corpus, ...] = ""
    dev: str = ""  # the file that picks the best epoch (and is the export's self-check)
    test: str = ""  # scored once at the end, and recorded in the export
    format: FileFormat = "auto"  # of train (a single file), dev and test: auto, conllu, conll or uner
    tag_field: Literal["upos", "xpos"] = "upos"  # CoNLL-U column to tag
    token_column: int = 0  # column files: the token's column, from 0
    tag_column: int = -1  # column files: the tag's column, from 0 (negative: from the end)
    task: str = "upos"  # what the tags mean, recorded in the export
    scheme: Literal["auto", "IOB1", "IOB2", "BIOES"] = "auto"  # span tags in the files; auto = detect

    def train_corpora(self) -> tuple[Corpus, ...]:
        """The training files as corpora: a single `train` path is read with this section's own fields."""
        if isinstance(self.train, tuple):
            return self.train
        if not self.train:
            return ()
        own = {f.name: getattr(self, f.name) for f in dataclasses.fields(Corpus) if f.name not in ("path", "weight")}
        return (Corpus(path=self.train, **own),)


@dataclass(frozen=True)
class ModelConfig:
    glove: bool = True  # initialise word vectors from GloVe 6B 50d
    glove_top_k: int = 100_000  # most frequent GloVe words kept beyond the training words
    glove_int8: bool = False  # store the frozen vectors as int8 + a scale per row: 4x smaller exports
    glove_int4: bool = False  # ... as 4-bit codes, two per byte: 8x smaller (wins over glove_int8)
    glove_freeze: bool = False  # keep every GloVe vector fixed, training words too; train only words GloVe lacks
    word_dim: int = 50  # must be 50 with GloVe
    min_word_freq: int = 1  # training words kept in the vocabulary
    case_dim: int = 8  # casing feature (lower, upper, title, numeric, ...) embedding size
    char_dim: int = 30  # character embedding size
    char_filters: int = 64  # character CNN filters
    char_kernel: int = 3  # character CNN width
    max_word_chars: int = 30  # characters of a word the CNN reads (its first and last halves)
    hidden: int = 200  # LSTM units per direction
    layers: int = 2  # BiLSTM layers
    dropout: float = 0.5  # on the BiLSTM's input and output
    word_dropout: float = 0.25  # alpha in p(unk) = alpha / (alpha + count), per token
    crf: bool = False  # CRF output layer (learned transitions, sentence likelihood) instead of softmax
    tag_scheme: Literal["BIOES", "IOB2"] = "BIOES"  # span tag sets are trained and decoded in this scheme
    # name lists read as a feature, comma-separated, from `model.gazetteer_lists` (place, person_first,
    # person_last, org_form); empty = none, and the graph has no `gazetteer` input
    gazetteer: str = ""
    gazetteer_dim: int = 4  # embedding size of each list's match code

    def gazetteer_lists(self) -> tuple[str, ...]:
        """The configured name lists, in input order."""
        return tuple(n.strip() for n in self.gazetteer.split(",") if n.strip())


@dataclass(frozen=True)
class TrainConfig:
    seed: int = 1  # batching, dropout, augmentation: same seed, same weights
    epochs: int = 40  # at most
    batch_size: int = 32  # sentences per batch
    lr: float = 2e-3  # Adam's learning rate
    weight_decay: float = 0.0  # Adam's L2 penalty
    clip: float = 5.0  # gradient norm clip
    lr_decay: float = 0.5  # factor when the dev metric plateaus
    lr_patience: int = 2  # epochs without improvement before decaying
    patience: int = 6  # epochs without improvement before stopping
    threads: int = 2  # torch intra-op threads
    max_sentences: int = 0  # use only the first N training sentences (0 = all)
    mention_replace: float = 0.0  # span tags: chance per mention per epoch of swapping in another of its type
    average_last: int = 0  # also try the mean weights of the last N >= 2 epochs as the best model (0 = off)
    lowercase: float = 0.0  # chance per sentence per epoch of training on it in lower case (names in web text)
    uppercase: float = 0.0  # ... in upper case (headlines, shouting)
    # weight of the character language-model loss beside the tagging loss (`model.charlm`; 0 = off); training
    # only: the exported graph is the same
    char_lm: float = 0.0


@dataclass(frozen=True)
class Config:
    name: str = "tagger"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config") -> Config:
        unknown = set(data) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"{source}: unknown sections {sorted(unknown)}")
        sections = {}
        for f in dataclasses.fields(cls):
            if f.name == "name":
                continue
            section_cls = get_type_hints(cls)[f.name]
            values = data.get(f.name, {})
            known = {g.name for g in dataclasses.fields(section_cls)}
            bad = set(values) - known
            if bad:
                raise ValueError(f"{source}: unknown fields {sorted(bad)} in [{f.name}]; known: {sorted(known)}")
            sections[f.name] = section_cls(**{k: _coerce(section_cls, k, v, source) for k, v in values.items()})
        return cls(name=str(data.get("name", "tagger")), **sections)

    @classmethod
    def load(cls, path: str | Path) -> Config:
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")), source=str(path))

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")


def _corpora(value: list[Any], where: str) -> tuple[Corpus, ...]:
    """A JSON list of training files (`{"path": ..., "weight": ...}` objects) as corpora."""
    if not value:
        raise ValueError(f"{where}: an empty list names no training file")
    known = {f.name for f in dataclasses.fields(Corpus)}
    corpora = []
    for i, item in enumerate(value):
        at = f"{where}[{i}]"
        if not isinstance(item, dict) or "path" not in item:
            raise ValueError(f'{at} must be an object with a "path" (and format, columns, weight), got {item!r}')
        bad = set(item) - known
        if bad:
            raise ValueError(f"{at}: unknown fields {sorted(bad)}; known: {sorted(known)}")
        corpus = Corpus(**{k: _coerce(Corpus, k, v, at) for k, v in item.items()})
        if not corpus.weight > 0:
            raise ValueError(f"{at}.weight must be above 0 (a share of the file per epoch), got {corpus.weight}")
        corpora.append(corpus)
    return tuple(corpora)


def _coerce(section_cls: type, name: str, value: Any, source: str) -> Any:
    """Convert a JSON or flag value to the field's declared type, or say why not."""
    hint = get_type_hints(section_cls)[name]
    where = f"{source}: {section_cls.__name__}.{name}"
    if section_cls is DataConfig and name == "train":
        if isinstance(value, (list, tuple)):
            return _corpora([dataclasses.asdict(v) if isinstance(v, Corpus) else v for v in value], where)
        if not isinstance(value, str):
            raise ValueError(f'{where} must be a path or a list of {{"path": ..., "weight": ...}}, got {value!r}')
        return value
    if get_origin(hint) is Literal:
        if value not in get_args(hint):
            raise ValueError(f"{where} must be one of {list(get_args(hint))}, got {value!r}")
        return value
    if hint is bool:
        if isinstance(value, str):
            if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(f"{where} must be true or false, got {value!r}")
            return value.lower() in ("true", "1", "yes")
        return bool(value)
    try:
        return hint(value)
    except (TypeError, ValueError):
        raise ValueError(f"{where} must be {hint.__name__}, got {value!r}") from None


def field_comments(cls: type) -> dict[str, str]:
    """Each field's comment in the class source: the one ending its line, or else the line(s) just above it.

    The comments beside the fields are their documentation; `tagger train --help` shows them.
    """
    comments: dict[str, str] = {}
    above: list[str] = []
    tokens = tokenize.generate_tokens(io.StringIO(textwrap.dedent(inspect.getsource(cls))).readline)
    line_start, name = True, ""
    for token in tokens:
        if token.type == tokenize.COMMENT:
            text = token.string.lstrip("#").strip()
            if name:
                comments[name] = text
            elif token.start[1] > 0:
                above.append(text)
        elif token.type == tokenize.NAME and line_start and token.start[1] > 0:
            name = token.string
            if above:
                comments[name] = " ".join(above)
        elif token.type in (tokenize.NEWLINE, tokenize.NL):
            if name or token.type == tokenize.NEWLINE:
                above = [] if name else above
            name = ""
        line_start = token.type in (tokenize.NEWLINE, tokenize.NL, tokenize.INDENT, tokenize.DEDENT)
    return comments


def add_override_flags(parser: argparse.ArgumentParser) -> None:
    """Add one `--section.field` flag per config field, with its comment and default as help."""
    group = parser.add_argument_group(
        "config overrides", "every field of the config file, as --SECTION.FIELD VALUE (the file's value otherwise)"
    )
    for section in ("data", "model", "train"):
        section_cls = get_type_hints(Config)[section]
        comments = field_comments(section_cls)
        for f in dataclasses.fields(section_cls):
            default = f.default if f.default is not dataclasses.MISSING else None
            text = comments.get(f.name, "")
            shown = f"{text}; " if text else ""
            group.add_argument(
                f"--{section}.{f.name}",
                dest=f"override__{section}__{f.name}",
                metavar="V",
                help=f"{shown}default {default!r}".replace("%", "%%"),
            )


def apply_overrides(config: Config, args: argparse.Namespace) -> Config:
    """Return the config with every flag given on the command line applied."""
    data = config.to_dict()
    for key, value in vars(args).items():
        if key.startswith("override__") and value is not None:
            _, section, name = key.split("__")
            data[section][name] = value
    return Config.from_dict(data, source="command line")
