"""Side by side under one load: the service with different settings, or another checkout of it, in one run.

    python benchmarks/compare.py --env '{"TAGGER_ACCESS_LOG": "true"}' --env '{"TAGGER_ACCESS_LOG": "false"}'
    python benchmarks/compare.py --tree /path/to/older/checkout:tagger.cli --tree .:cli

Each variant is a `tagger serve` on 127.0.0.1 under wrk at `--concurrency`
with single-sentence EWT dev requests, as `load.py` sends them: a 2 s warm-up,
then `--repeat` runs of `--seconds`, all variants' servers up and their runs
interleaved (so that the machine's drift over the run falls on each alike).
Prints requests/s and the server's and inference processes' CPU microseconds
per request of every run, and their medians, so a cost is read from one run of
one machine (machines of this kind move by 10-20% from run to run).
`--tree DIR:MODULE` serves DIR's code and models with `python -m MODULE serve`
(`tagger.cli` before the command moved to `cli`).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

from load import DEV, ROOT, WRK_SCRIPT, free_port, start_server, stop_server, wrk

from tagger.readers import read_corpus


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", action="append", default=[], help="a JSON object of TAGGER_* settings (repeat)")
    parser.add_argument("--tree", action="append", default=[], help="DIR:MODULE, a checkout to serve (repeat)")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    variants: list[tuple[str, Path, str, dict[str, str]]] = []
    for tree in args.tree:
        folder, _, module = tree.partition(":")
        variants.append((tree, Path(folder).resolve(), module or "cli", {}))
    for env in args.env:
        variants.append((env, ROOT, "cli", json.loads(env)))
    if not variants:
        raise SystemExit("compare.py: give at least one --env or --tree")
    sentences = [s.tokens for s in read_corpus(DEV["en-upos"])]
    with tempfile.TemporaryDirectory() as tmp:
        bodies = Path(tmp) / "bodies.jsonl"
        bodies.write_text("".join(json.dumps({"sentences": [list(s)]}) + "\n" for s in sentences))
        script = Path(tmp) / "requests.lua"
        script.write_text(WRK_SCRIPT % {"bodies": bodies}, encoding="utf-8")
        # every variant's server up at once (an idle one costs nothing), and their runs interleaved, so that the
        # machine's drift over the run (a neighbour, the CPU's clock) falls on every variant alike
        servers = []
        try:
            for _, tree, module, env in variants:
                port = free_port()
                servers.append((start_server(tree / "exports", port, env, tree=tree, module=module), port))
            for _, port in servers:
                wrk(f"http://127.0.0.1:{port}/v1/tag", script, args.concurrency, 2)
            runs: list[list[dict]] = [[] for _ in variants]
            for _ in range(args.repeat):
                for (process, port), results in zip(servers, runs, strict=True):
                    url = f"http://127.0.0.1:{port}/v1/tag"
                    results.append(wrk(url, script, args.concurrency, args.seconds, process.pid))
        finally:
            for process, _ in servers:
                stop_server(process)
        for (name, *_), results in zip(variants, runs, strict=True):
            rates = [round(r["requests"] / r["seconds"]) for r in results]
            server = [round(r.get("server_us_per_request", 0)) for r in results]
            inference = [round(r.get("inference_us_per_request", 0)) for r in results]
            print(
                f"{name}: requests/s {rates} (median {statistics.median(rates):.0f}); CPU us per request: "
                f"server {server} (median {statistics.median(server):.0f}), "
                f"inference {inference} (median {statistics.median(inference):.0f})"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
