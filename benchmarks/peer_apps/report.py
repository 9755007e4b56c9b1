"""The peers benchmark's report: the targets, the Markdown tables and the chart."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from peer_apps.frameworks import title


def at(rows: list[dict[str, Any]], server: str, c: int) -> dict[str, Any]:
    return next(r for r in rows if r["mode"] == server and r["concurrency"] == c)


def targets(rows: list[dict[str, Any]], servers: list[str]) -> dict[str, Any]:
    """The issue's targets: c=64 words/s >= 3x the best peer's, and the lowest c=1 p50."""
    peers = [s for s in servers if s != "tagger"]
    if not peers:
        return {}
    fastest = max(peers, key=lambda s: at(rows, s, 64)["words_per_s"])
    quickest = min(peers, key=lambda s: at(rows, s, 1)["p50"])
    ratio = at(rows, "tagger", 64)["words_per_s"] / at(rows, fastest, 64)["words_per_s"]
    return {
        "best_peer_c64": fastest,
        "c64_words_per_s_ours_over_best_peer": ratio,
        "c64_target_3x_met": ratio >= 3,
        "lowest_peer_c1_p50": quickest,
        "c1_p50_ours_ms": at(rows, "tagger", 1)["p50"],
        "c1_p50_lowest_peer_ms": at(rows, quickest, 1)["p50"],
        "c1_lowest_p50_met": at(rows, "tagger", 1)["p50"] < at(rows, quickest, 1)["p50"],
    }


def markdown(report: dict[str, Any]) -> str:
    rows, lines = report["rows"], []
    lines += [
        "| server | version | knobs | c=64 words/s | c=1 p50 ms | c=64 p50 ms | c=64 p99 ms "
        "| c=64 CPU us/request (server side) | c=64 cores busy | errors |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for server in report["servers"]:
        one, top = at(rows, server, 1), at(rows, server, 64)
        knobs = ", ".join(f"{k}={v}" for k, v in report["knobs"][server].items()) or "defaults"
        cpu = f"{top['server_us_per_request'] + top['inference_us_per_request']:.0f}" if "cores_busy" in top else "-"
        busy = f"{top['cores_busy']:.2f}" if "cores_busy" in top else "-"
        version = report["versions"][server]["framework"]
        lines.append(
            f"| {title(server)} | {version} | {knobs} | {top['words_per_s']:.0f} | {one['p50']:.2f} | "
            f"{top['p50']:.2f} | {top['p99']:.2f} | {cpu} | {busy} | {one['errors'] + top['errors']} |"
        )
    goal = report["targets"]
    if goal:
        lines += [
            "",
            f"- c=64 words/s, ours / best peer ({title(goal['best_peer_c64'])}): "
            f"{goal['c64_words_per_s_ours_over_best_peer']:.2f} (target >= 3: "
            f"{'met' if goal['c64_target_3x_met'] else 'not met'})",
            f"- c=1 p50: ours {goal['c1_p50_ours_ms']:.2f} ms, lowest peer ({title(goal['lowest_peer_c1_p50'])}) "
            f"{goal['c1_p50_lowest_peer_ms']:.2f} ms (target: the lowest: "
            f"{'met' if goal['c1_lowest_p50_met'] else 'not met'})",
        ]
    before, after = (f"{a[0]:.1f}" for a in report["load_average_before_after"])
    lines += [
        "",
        f"{report['model']}, {report['words_per_request']:.1f} words a request; each cell the median of "
        f"{report['runs_per_cell']} runs of {report['seconds_per_run']:g} s; {report['cores']} cores shared with "
        f"other work (1-minute load average {before} before the run, {after} after); wall time "
        f"{report['wall_seconds'] / 60:.1f} min.",
    ]
    if not report["tuning"]:
        return "\n".join(lines) + "\n"
    lines += [
        "",
        f"Tuning (c=64, {report['tune_seconds']:g} s each):",
        "",
        "| server | knobs | words/s | p50 ms | p99 ms |",
    ]
    lines.append("|---|---|---|---|---|")
    for run in report["tuning"]:
        knobs = ", ".join(f"{k}={v}" for k, v in run["knobs"].items())
        if run["ok"]:
            lines.append(
                f"| {title(run['server'])} | {knobs} | {run['words_per_s']:.0f} | {run['p50']:.1f} | {run['p99']:.1f} |"
            )
        else:
            lines.append(f"| {title(run['server'])} | {knobs} | out: {run.get('failure') or 'errors'} | - | - |")
    return "\n".join(lines) + "\n"


def plot(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    servers, rows = report["servers"], report["rows"]
    names = [title(s).replace(" (ours)", "\n(ours)") for s in servers]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    speed = left.bar(names, [at(rows, s, 64)["words_per_s"] for s in servers], color="tab:blue")
    left.bar_label(speed, fmt="%.0f")
    left.set_ylabel("words/s, 64 connections (higher: better)")
    left.margins(y=0.1)
    wait = right.bar(names, [at(rows, s, 1)["p50"] for s in servers], color="tab:orange")
    right.bar_label(wait, fmt="%.2f")
    right.set_ylabel("p50 ms, 1 connection (lower: better)")
    right.margins(y=0.1)
    tuned = "best tuned knobs per peer" if report["tuned"] else "untuned"
    fig.suptitle(f"{report['model']}, single-sentence requests, {report['cores']} cores, {tuned}")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
