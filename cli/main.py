"""The `tagger` command: train, evaluate, export, predict, serve.

Training-side subcommands import torch lazily, so `tagger evaluate` and
`tagger predict` on an export folder run in a serving install without torch.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from cli.shadow import add_shadow_command
from model.config import add_override_flags
from tagger.artifact import METADATA_FILE, ArtifactError
from tagger.evaluation import evaluate
from tagger.readers import FORMATS, DataFormatError, Sentence, read_tagged
from tagger.schemes import is_span_tagset

Tagging = Callable[[Sequence[Sequence[str]]], list[list[str]]]


@dataclass(frozen=True)
class Loaded:
    tag: Tagging  # sentences -> tags (IOB2 for span tags)
    data: dict[str, Any]  # the data section of the model's training config
    tags: tuple[str, ...]  # every tag `tag` can return


def _load_model(paths: Sequence[str]) -> Loaded:
    """A tagging function (sentences -> tags, IOB2 for span tags), the data config and the tags it returns.

    Of an export folder, a checkpoint, or several checkpoints pooled as one ensemble (as `tagger export` would).
    """
    path = paths[0]
    if len(paths) > 1 and any((Path(p) / METADATA_FILE).is_file() for p in paths):
        raise SystemExit("tagger: several models are pooled as an ensemble of checkpoints, not of export folders")
    if (Path(path) / METADATA_FILE).is_file():
        from tagger.runtime import load_runtime

        runtime = load_runtime(path)

        def tag_export(sentences: Sequence[Sequence[str]]) -> list[list[str]]:
            return [d.tags for d in runtime.tag_sentences(sentences)]

        return Loaded(tag_export, runtime.metadata.config.get("data", {}), runtime.decoder.output_tags)
    for given in paths:
        _check_checkpoint_path(given)
    try:
        import torch  # noqa: F401  (checkpoints need the training side)
    except ModuleNotFoundError:
        raise SystemExit(
            f"tagger: {path} is a training checkpoint, which needs the training install (pip install -e '.[train]'); "
            "export folders run without it"
        ) from None
    from model.checkpoint import decoder_of
    from model.ensemble import load_models
    from model.predict import predict_scores

    loaded = load_models(paths)
    model, config, vocab = loaded.model, loaded.config, loaded.vocab
    decoder = decoder_of(model.crf, config, vocab)

    def tag_checkpoint(sentences: Sequence[Sequence[str]]) -> list[list[str]]:
        scores = predict_scores(model, vocab, [Sentence(tuple(s)) for s in sentences])
        return [decoder.decode(s).tags for s in scores]

    return Loaded(tag_checkpoint, config.to_dict()["data"], decoder.output_tags)


MODEL_PATH = (
    "a model path is an export folder (with metadata.json, like exports/en-upos) or a training checkpoint "
    "(a .pt file, or a run folder with best.pt; needs pip install -e '.[train]')"
)


def _check_checkpoint_path(path: str) -> None:
    """Refuse, in one line, a path that is neither an export folder nor a checkpoint."""
    given = Path(path)
    if not given.exists():
        raise SystemExit(f"tagger: {path}: no such file or folder; {MODEL_PATH}")
    if given.is_dir() and not (given / "best.pt").is_file():
        raise SystemExit(f"tagger: {path} is a folder with neither metadata.json nor best.pt; {MODEL_PATH}")
    if given.is_file() and given.suffix != ".pt":
        raise SystemExit(f"tagger: {path} is not a model; {MODEL_PATH}")


def _read(path: str, args: argparse.Namespace, data: dict[str, Any]) -> list[Sentence]:
    """Read a data file; the format is sniffed unless given, columns default to the model's training data."""

    def pick(name: str, default: Any) -> Any:
        value = getattr(args, name)
        return value if value is not None else data.get(name, default)

    return read_tagged(
        path,
        args.format or "auto",
        tag_field=pick("tag_field", "upos"),
        token_column=pick("token_column", 0),
        tag_column=pick("tag_column", -1),
        scheme=pick("scheme", "auto"),
    )


def cmd_train(args: argparse.Namespace) -> int:
    from model.config import Config, apply_overrides
    from model.train import train

    if args.config:
        config = Config.load(args.config)
    elif args.resume:
        config = Config.load(Path(args.resume).parent / "config.json")
    else:
        config = Config()
    config = apply_overrides(config, args)
    for split in ("train", "dev"):
        if not getattr(config.data, split):
            raise SystemExit(f"tagger train: no {split} data: set data.{split} in the config or --data.{split} PATH")
    out = Path(args.out or f"runs/{config.name}")
    best = train(config, out, resume=Path(args.resume) if args.resume else None)
    print(f"best checkpoint: {best}")
    return 0


def cmd_distill(args: argparse.Namespace) -> int:
    from model.config import Config, apply_overrides
    from model.train import train

    teachers = [Path(t) for t in args.teachers]
    first = teachers[0] if teachers[0].is_dir() else teachers[0].parent
    config = apply_overrides(Config.load(args.config or first / "config.json"), args)
    out = Path(args.out or f"runs/{config.name}-distilled")
    best = train(config, out, resume=Path(args.resume) if args.resume else None, teachers=teachers)
    print(f"best checkpoint: {best}")
    return 0


def _check_tag_sets(data: str, model: str, gold: Counter[str], tags: Sequence[str]) -> None:
    """Refuse gold data whose tags the model does not share; warn about gold tags it cannot produce."""
    shared = (set(gold) & set(tags)) - {"O"}
    if not shared:
        raise SystemExit(
            f"tagger evaluate: {data} and {model} share no tag: the data has {_shown(gold)}, the model tags "
            f"{_shown(tags)}; is it the right model for this data?"
        )
    missing = {tag: n for tag, n in gold.items() if tag not in tags}
    if missing:
        tokens = sum(missing.values())
        print(
            f"tagger evaluate: warning: {tokens} gold tokens carry tags {model} cannot produce: {_shown(missing)}",
            file=sys.stderr,
        )


def _shown(tags: Iterable[str], at_most: int = 8) -> str:
    ordered = sorted(set(tags))
    return ", ".join(ordered[:at_most]) + (f" and {len(ordered) - at_most} more" if len(ordered) > at_most else "")


def cmd_evaluate(args: argparse.Namespace) -> int:
    loaded = _load_model(args.model)
    sentences = _read(args.data, args, loaded.data)
    if any(not s.tags for s in sentences):
        raise SystemExit(f"tagger evaluate: {args.data} has sentences without gold tags")
    gold = Counter(t for s in sentences for t in s.tags)
    _check_tag_sets(args.data, " ".join(args.model), gold, loaded.tags)
    started = time.perf_counter()
    predicted = loaded.tag([s.tokens for s in sentences])
    seconds = time.perf_counter() - started
    report = evaluate([list(s.tags) for s in sentences], predicted)
    words_per_second = report.tokens / seconds if seconds > 0 else 0.0
    if args.json:
        print(
            json.dumps({**report.to_dict(), "seconds": round(seconds, 3), "words_per_second": round(words_per_second)})
        )
    else:
        print(report.format())
        print(f"\n{report.tokens} words in {seconds:.2f} s: {words_per_second:,.0f} words/s")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from model.export import export

    parity = export(args.checkpoint, args.out, name=args.name, weights=args.weights)
    print(
        f"exported to {args.out}: ONNX Runtime matches PyTorch on {parity.sentences} dev sentences "
        f"({parity.tag_mismatches} tag mismatches, max score difference {parity.max_abs_diff:.1e})"
    )
    return 0


def cmd_profile(args: argparse.Namespace) -> int:
    from model.profile import profile_export

    profile = profile_export(args.folder, args.dev, args.format)
    print(
        f"{args.folder}/profile.json: {profile.tokens} tokens of {profile.source['data']}, unknown words "
        f"{profile.unknown_rate:.2%}, chosen tag at or under {profile.low_confidence_threshold} "
        f"{profile.low_confidence_share:.2%}; its sha256 is recorded in metadata.json"
    )
    return 0


def _add_profile_command(sub: Any) -> None:
    pf = sub.add_parser(
        "profile", help="add or refresh an export folder's reference profile for drift (profile.json) from a dev file"
    )
    pf.add_argument("folder", help="export folder, e.g. exports/en-ner")
    pf.add_argument("--dev", help="the file to profile (default: the dev file named in the folder's metadata)")
    pf.add_argument("--format", choices=FORMATS, help="its format (default: the model's training data format)")
    pf.set_defaults(func=cmd_profile)


def cmd_corrections(args: argparse.Namespace) -> int:
    import os

    from service.corrections.errors import StoreUnavailable
    from service.corrections.store import CorrectionStore

    database = args.db or os.environ.get("TAGGER_CORRECTIONS_DB")
    if not database:
        print("tagger corrections: name the database with --db or TAGGER_CORRECTIONS_DB", file=sys.stderr)
        return 2
    store = CorrectionStore(database)
    out = Path(args.output) if args.output else None
    partial = out.with_name(out.name + ".partial") if out else None
    written = 0
    try:
        with partial.open("w", encoding="utf-8") if partial else _stdout() as stream:
            for chunk in store.export(args.model, args.format, args.conflicts):
                stream.write(chunk)
                written += 1
    except StoreUnavailable as err:
        if partial is not None:
            partial.unlink(missing_ok=True)
        print(f"tagger corrections: {err}", file=sys.stderr)
        return 1
    finally:
        store.close()
    if out is not None and partial is not None:
        partial.replace(out)  # the whole export or nothing: a training run never reads half a file
    where = f" to {out}" if out else ""
    print(f"{written} corrections of {args.model} as {args.format}{where}", file=sys.stderr)
    return 0


def _stdout() -> Any:
    import contextlib

    return contextlib.nullcontext(sys.stdout)


def _add_corrections_command(sub: Any) -> None:
    co = sub.add_parser(
        "corrections",
        help="export a model's corrections from the corrections database as training data (for tagger train or "
        "tagger finetune)",
    )
    co.add_argument("model", help="the served model's name, e.g. en-ner")
    co.add_argument(
        "--db", help="the database: a file path (SQLite) or postgresql:// URL (default: $TAGGER_CORRECTIONS_DB)"
    )
    co.add_argument(
        "--format",
        choices=["iob2", "conllu"],
        default="iob2",
        help="iob2: token<TAB>tag, a blank line after each sentence (default; trains either tag kind); conllu: "
        "CoNLL-U (UPOS, or NER= in MISC for span tags)",
    )
    co.add_argument(
        "--conflicts",
        choices=["latest", "all", "skip"],
        default="latest",
        help="corrections of the same tokens that disagree: the newest (default), all of them, or none",
    )
    co.add_argument("--output", "-o", help="output file (default: stdout)")
    co.set_defaults(func=cmd_corrections)


def cmd_predict(args: argparse.Namespace) -> int:
    from cli import output

    loaded = _load_model([args.model])
    if args.input_kind == "text":
        items = output.tokenized(output.read_text(args.input, args.paragraphs))
        with_tokens = [item for item in items if item.tokens]  # a blank text has nothing to tag
        tags = iter(loaded.tag([item.tokens for item in with_tokens]))
        items = [replace(item, tags=tuple(next(tags))) if item.tokens else item for item in items]
    else:
        sentences = _read(_stdin_to_file(args.input), args, loaded.data)
        items = output.from_sentences(sentences, loaded.tag([s.tokens for s in sentences]))
    spans = is_span_tagset(loaded.tags)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as out:
            output.write(items, out, args.output_format, spans)
    else:
        output.write(items, sys.stdout, args.output_format, spans)
    return 0


def _stdin_to_file(path: str) -> str:
    """A path to read: the path itself, or for `-` a temporary file holding standard input."""
    if path != "-":
        return path
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False, encoding="utf-8") as copy:
        copy.write(sys.stdin.read())
    return copy.name


def cmd_finetune(args: argparse.Namespace) -> int:
    from model.finetune import FinetuneOptions, finetune

    options = FinetuneOptions(
        held_out=args.held_out,
        epochs=args.epochs,
        lr=args.lr,
        corrections_weight=args.corrections_weight,
        original_weight=args.original_weight,
        max_drop=args.max_drop,
        seed=args.seed,
        threads=args.threads,
    )
    base = Path(args.model)
    name = args.name or (base.name if base.is_dir() else base.parent.name)
    run = Path(args.run or f"runs/{name}-finetuned")
    outcome = finetune(base, Path(args.corrections), run, Path(args.models) / name, options, args.weights)
    print(f"trained on {outcome.trained_on} corrections, held out {outcome.held_out}, in {outcome.seconds:.0f} s")
    for comparison in outcome.comparisons:
        print(comparison.line())
    if outcome.refused is not None:
        print(f"tagger finetune: refused, nothing written: {outcome.refused} (see {run}/finetune.json)")
        return 1
    print(f"new export: {outcome.export} (checkpoint {outcome.checkpoint})")
    return 0


def _add_finetune_command(sub: Any) -> None:
    ft = sub.add_parser(
        "finetune",
        help="fine-tune a model on corrections (as the store exports them); writes a new export unless the "
        "original test set falls by more than --max-drop",
    )
    ft.add_argument("model", help="the run folder (best.pt) or .pt file the served export came from")
    ft.add_argument("corrections", help="corrections as exported: CoNLL-U or IOB2 (token<TAB>tag)")
    ft.add_argument("--models", default="exports", help="models folder the new export goes into (default exports)")
    ft.add_argument("--name", help="the export's name, its folder in --models (default: the model folder's name)")
    ft.add_argument("--run", help="run folder for the fine-tuned checkpoint (default runs/NAME-finetuned)")
    ft.add_argument("--held-out", dest="held_out", type=float, default=0.2, help="share of corrections held out")
    ft.add_argument("--epochs", type=int, default=3, help="passes over the corrections (default 3)")
    ft.add_argument("--lr", type=float, default=5e-4, help="Adam's learning rate (default 5e-4)")
    ft.add_argument(
        "--corrections-weight", dest="corrections_weight", type=float, default=4.0, help="each correction N times"
    )
    ft.add_argument(
        "--original-weight",
        dest="original_weight",
        type=float,
        default=0.1,
        help="share of each original training corpus per epoch (default 0.1)",
    )
    ft.add_argument(
        "--max-drop",
        dest="max_drop",
        type=float,
        default=1.0,
        help="refuse if the original test score falls by more than this many points (default 1.0)",
    )
    ft.add_argument("--weights", choices=["float32", "float16", "int8"], default="float32", help="export weights")
    ft.add_argument("--seed", type=int, default=1)
    ft.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    ft.set_defaults(func=cmd_finetune)


def cmd_serve(args: argparse.Namespace) -> int:
    from service.server import serve
    from service.settings import Settings

    flags = {"models": args.models, "host": args.host, "port": args.port, "default_model": args.default_model}
    serve(Settings(**{k: v for k, v in flags.items() if v is not None}))
    return 0


def _data_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", choices=FORMATS, help="input format (default: auto)")
    parser.add_argument("--tag-field", dest="tag_field", choices=["upos", "xpos"], help="CoNLL-U tag column")
    parser.add_argument("--token-column", dest="token_column", type=int, help="column files: token column")
    parser.add_argument("--tag-column", dest="tag_column", type=int, help="column files: tag column")
    parser.add_argument(
        "--scheme", choices=["auto", "IOB1", "IOB2", "BIOES"], help="span tags in the file (default: detect)"
    )


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="tagger", description="BiLSTM sequence tagger: train, export, serve.")
    sub = root.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="train a model from CoNLL data")
    train.add_argument("--config", help="JSON config file (see configs/)")
    train.add_argument("--out", help="run folder (default: runs/NAME)")
    train.add_argument("--resume", help="continue from a last.pt checkpoint")
    add_override_flags(train)
    train.set_defaults(func=cmd_train)

    di = sub.add_parser("distill", help="train one student on the CRF distribution of teacher checkpoints")
    di.add_argument(
        "teachers", nargs="+", help="teacher checkpoints (run folders or .pt files; several: their ensemble)"
    )
    di.add_argument("--config", help="the student's config (default: the first teacher's config.json)")
    di.add_argument("--out", help="run folder (default: runs/NAME-distilled)")
    di.add_argument("--resume", help="continue from the student's last.pt (name the same teachers)")
    add_override_flags(di)
    di.set_defaults(func=cmd_distill)

    ev = sub.add_parser("evaluate", help="score a checkpoint or export folder on gold data")
    ev.add_argument(
        "model",
        nargs="+",
        help="checkpoint (.pt or run folder) or export folder; several checkpoints: their ensemble "
        "(options go before the models or after the data file)",
    )
    ev.add_argument("data", help="gold data file (CoNLL-U, column file or UNER IOB2)")
    ev.add_argument("--json", action="store_true", help="print one JSON object")
    _data_flags(ev)
    ev.set_defaults(func=cmd_evaluate)

    ex = sub.add_parser("export", help="export a checkpoint or an ensemble to ONNX, verified against PyTorch")
    ex.add_argument("checkpoint", nargs="+", help="best.pt or a run folder; several: one ensemble of them all")
    ex.add_argument(
        "--weights",
        choices=["float32", "float16", "int8"],
        default="float32",
        help="how large weights are stored: int8 (per row) is a quarter of float32, float16 half",
    )
    ex.add_argument("--out", required=True, help="export folder, e.g. exports/NAME")
    ex.add_argument("--name", help="model name (default: the folder name)")
    ex.set_defaults(func=cmd_export)
    _add_profile_command(sub)

    pr = sub.add_parser("predict", help="tag a file offline: tokens or raw text in, CoNLL, CoNLL-U or JSON lines out")
    pr.add_argument("model", help="checkpoint (.pt or run folder) or export folder")
    pr.add_argument("input", help="the file to tag; - for standard input")
    pr.add_argument(
        "--input",
        dest="input_kind",
        choices=["tokens", "text"],
        default="tokens",
        help="tokens: CoNLL-U, a column file, or one sentence of space-separated tokens per line (default); "
        "text: one raw text per line, tokenized as the service tokenizes",
    )
    pr.add_argument(
        "--paragraphs", action="store_true", help="with --input text: a text per blank-line-separated block"
    )
    pr.add_argument(
        "--output-format",
        choices=["conll", "conllu", "jsonl"],
        default="conll",
        help="conll: token<TAB>tag (default); conllu: CoNLL-U (the tag as UPOS, or NER= in MISC for span "
        "tags; SpaceAfter=No from text offsets); jsonl: a JSON object per input, with offsets and spans",
    )
    pr.add_argument("--output", help="output file (default: stdout)")
    _data_flags(pr)
    pr.set_defaults(func=cmd_predict)

    _add_corrections_command(sub)

    sv = sub.add_parser("serve", help="serve export folders over HTTP (settings also from TAGGER_* variables)")
    sv.add_argument("--models", help="folder of export folders (default: the shipped exports/)")
    sv.add_argument("--host", help="address to bind (default 127.0.0.1)")
    sv.add_argument("--port", type=int, help="port (default 8000)")
    sv.add_argument("--default-model", dest="default_model", help="model behind POST /v1/tag (default en-upos)")
    sv.set_defaults(func=cmd_serve)
    add_shadow_command(sub)
    _add_finetune_command(sub)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    root = parser()
    args, extra = root.parse_known_args(argv)
    if extra:  # said by the subcommand's parser, with its own usage, not the root's
        commands = next(a for a in root._actions if isinstance(a, argparse._SubParsersAction))
        commands.choices[args.command].error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        return int(args.func(args))
    except (DataFormatError, ArtifactError, FileNotFoundError, ValueError) as err:
        print(f"tagger {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
