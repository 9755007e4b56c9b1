"""The issue's user experiment, offline: WNUT-17 as "my domain", 500 of its sentences corrected, en-ner fine-tuned.

    flock /tmp/tagger-heavy.lock python benchmarks/finetune_wnut.py --base runs/en-ner-web [--n 500]

1. 500 WNUT-17 train sentences (a seeded sample), their types mapped as `ner_accuracy.py` maps them
   (person -> PER, location -> LOC, corporation/group -> ORG, the rest O), are tagged by the served export
   (exports/en-ner, ONNX Runtime) and their gold tags stored as corrections of that version in the real
   store (SQLite in a temporary folder), with the served tags: the store's live accuracy estimate.
   Not through HTTP: the service's routes are wired by the lead; this measures the store and the fine-tune.
2. The store exports them as IOB2; `model.finetune` (what `tagger finetune` runs) holds out 20%, trains on
   the rest mixed with the original corpora, and exports int8 as en-ner is shipped (unless refused).
3. Span F1 before (exports/en-ner) and after (the new export), through ONNX Runtime as served, on
   WNUT-17 test and UNER-EWT test; and the fine-tune's wall time.

en-ner's export holds no float weights, so `--base` is the run folder it was exported from, and
`--served` that run's export: the shipped exports/en-ner's own run folder is not kept, and a retrain with
configs/en-ner-web.json today stops elsewhere (best at epoch 8, not 14), so the measured pair is
    tagger train --config configs/en-ner-web.json --out runs/en-ner-web
    tagger export runs/en-ner-web --weights int8 --out /tmp/ft-base/en-ner
    python benchmarks/finetune_wnut.py --base runs/en-ner-web --served /tmp/ft-base/en-ner
Writes finetune-wnut.json to --out.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from pathlib import Path

from ner_accuracy import DATA, ROOT, TEST_SETS, gold, ours

from model.finetune import FinetuneOptions, finetune
from service.corrections.records import Correction
from service.corrections.store import CorrectionStore
from service.corrections.validation import TagRules
from tagger.runtime import load_runtime


def store_corrections(folder: Path, served: Path, n: int, seed: int) -> tuple[Path, dict[str, int]]:
    """n WNUT-17 train sentences stored as corrections of the served version, exported as IOB2."""
    sentences = gold(DATA / "wnut17" / "train.conll")
    chosen = sorted(random.Random(seed).sample(range(len(sentences)), n))
    runtime = load_runtime(served, intra_threads=1)
    version = runtime.metadata.files["model.onnx"][:12]
    predicted = [d.tags for d in runtime.tag_sentences([sentences[i].tokens for i in chosen])]
    rules = TagRules(tuple(runtime.decoder.output_tags), "IOB2", max_tokens=1000)
    items = [
        Correction("en-ner", sentences[i].tokens, sentences[i].tags, version=version, served_tags=tuple(tags))
        for i, tags in zip(chosen, predicted, strict=True)
    ]
    store = CorrectionStore(folder / "corrections.db")
    stored = store.add_corrections(items, rules)
    path = folder / "corrections.iob2"
    with path.open("w", encoding="utf-8") as out:
        out.writelines(store.export("en-ner", "iob2"))
    [counts] = store.counts()
    store.close()
    summary = {"posted": len(items), "stored": sum(s.created for s in stored), "tokens": counts.tokens_compared}
    return path, summary | {"tokens_changed": counts.tokens_changed}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", type=Path, default=ROOT / "runs" / "en-ner-web", help="en-ner's run folder")
    parser.add_argument("--served", type=Path, default=ROOT / "exports" / "en-ner", help="the served export")
    parser.add_argument("--n", type=int, default=500, help="WNUT-17 train sentences corrected")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--corrections-weight", type=float, default=4.0)
    parser.add_argument("--original-weight", type=float, default=0.1)
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()
    options = FinetuneOptions(
        epochs=args.epochs,
        lr=args.lr,
        corrections_weight=args.corrections_weight,
        original_weight=args.original_weight,
        seed=args.seed,
    )
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        corrections, stored = store_corrections(folder, args.served, args.n, args.seed)
        print(f"corrections: {stored}")
        started = time.perf_counter()
        outcome = finetune(args.base, corrections, folder / "run", folder / "models" / "en-ner", options, "int8")
        wall = time.perf_counter() - started
        for comparison in outcome.comparisons:
            print(comparison.line())
        results = {"corrections": stored, "options": vars(args) | {"base": str(args.base), "served": str(args.served)}}
        results |= {"finetune_seconds": outcome.seconds, "wall_seconds_with_export": wall, "refused": outcome.refused}
        results["held_out"] = {c.name: [c.before.to_dict()["f1"], c.after.to_dict()["f1"]] for c in outcome.comparisons}
        models = {"before": args.served} | ({"after": outcome.export} if outcome.export else {})
        for test_set in ("WNUT-17 test", "UNER-EWT test"):
            sentences = gold(TEST_SETS[test_set])
            for when, model in models.items():
                scored = ours(model, sentences)
                results.setdefault(test_set, {})[when] = scored
                print(f"{test_set:14} {when:6} span F1 {100 * scored['f1']:5.1f}  per type {scored['per_type']}")
    print(f"fine-tune {outcome.seconds:.0f} s (training and scoring), {wall:.0f} s with the export")
    args.out.mkdir(parents=True, exist_ok=True)
    for key in ("base", "served", "out"):
        results["options"][key] = str(results["options"][key])
    (args.out / "finetune-wnut.json").write_text(json.dumps(results, indent=1, default=str) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
