"""The one table, the JSON file and the PNG chart."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def _get(d: dict[str, Any], path: str) -> Any:
    for part in path.split("."):
        if not isinstance(d, dict) or part not in d:
            return None
        d = d[part]
    return d


def rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Table rows: figure, value, unit, latency, raw reference, ratio, target, verdict."""
    raw = results.get("raw", {})
    sc = results.get("scenarios", {})
    fastapi = _get(raw, "bare_fastapi.rate")
    inserts = _get(raw, "mongo_inserts.rate")
    bulk = _get(raw, "mongo_bulk_upserts.rate")
    out: list[dict[str, Any]] = []

    def add(
        name: str,
        path_root: dict[str, Any],
        path: str,
        unit: str,
        *,
        ref: float | None = None,
        ref_name: str = "",
        goal: float | None = None,
        lat: str | None = None,
        max_ms: dict[str, float] | None = None,
    ) -> None:
        node = _get(path_root, path)
        if node is None:
            return
        value = node.get("rate") if isinstance(node, dict) else node
        row: dict[str, Any] = {"figure": name, "value": value, "unit": unit}
        lat_node = _get(path_root, lat) if lat else node
        if isinstance(lat_node, dict) and "p99_ms" in lat_node:
            row.update({k: lat_node[k] for k in ("p50_ms", "p95_ms", "p99_ms")})
        if ref and value is not None:
            row["raw"] = ref_name
            row["ratio"] = round(value / ref, 3)
            if goal is not None:
                row["target"] = f">= {goal} x"
                row["verdict"] = "PASS" if row["ratio"] >= goal else "MISS"
        if max_ms:
            row["target"] = ", ".join(f"{k} <= {v:g} ms" for k, v in max_ms.items())
            row["verdict"] = (
                "PASS" if all(row.get(k, 1e9) <= v for k, v in max_ms.items()) else "MISS"
            )
        out.append(row)

    add("raw: bare FastAPI", raw, "bare_fastapi", "req/s")
    add("raw: Mongo insert_one", raw, "mongo_inserts", "inserts/s")
    add("raw: Mongo bulk upserts", raw, "mongo_bulk_upserts", "docs/s")
    add("raw: Kafka produce acks=all", raw, "kafka.produce", "msgs/s")
    add("raw: Kafka consume", raw, "kafka.consume", "msgs/s")
    add("raw: Redis GET", raw, "redis_get", "ops/s")
    limit = min(x for x in (inserts, fastapi) if x) if (inserts or fastapi) else None
    add(
        "(a) write commands",
        sc,
        "writes",
        "cmd/s",
        ref=limit,
        ref_name="min(inserts, FastAPI)",
        goal=0.6,
    )
    fr = _get(sc, "freshness")
    if fr:
        out.append(
            {
                "figure": "(b) freshness -> read model",
                "value": fr["read_model"]["p50_ms"],
                "unit": "ms p50",
                **{k: fr["read_model"][k] for k in ("p50_ms", "p95_ms", "p99_ms")},
                # A rate the bench could not keep is said: skipped ticks are no measurement.
                "raw": f"at {fr['rate_target']:g} cmd/s, {fr.get('errors', 0)} failed/skipped",
                "target": "p50 <= 20, p99 <= 100 ms",
                "verdict": "PASS"
                if fr["read_model"]["p50_ms"] <= 20
                and fr["read_model"]["p99_ms"] <= 100
                and not fr.get("errors")
                else "MISS",
            }
        )
        out.append(
            {
                "figure": "(b) freshness -> WebSocket",
                "value": fr["websocket"]["p50_ms"],
                "unit": "ms p50",
                **{k: fr["websocket"][k] for k in ("p50_ms", "p95_ms", "p99_ms")},
                "target": "p99 <= 150 ms",
                "verdict": "PASS"
                if fr["websocket"]["p99_ms"] <= 150 and fr["websocket_missing"] == 0
                else "MISS",
            }
        )
    for key in sorted(k for k in sc if k.startswith("replay_")):
        add(f"(c) replay, {sc[key]['processes']} projector(s)", sc, key, "events/s")
        row = out[-1]
        per = sc[key]["rate_per_process"]
        if bulk:
            row.update(
                raw="bulk upserts/process",
                ratio=round(per / bulk, 3),
                target=">= 0.7 x",
                verdict="PASS" if per / bulk >= 0.7 else "MISS",
            )
    add(
        "(d) GET by id, cache hit",
        sc,
        "reads.cache_hit",
        "req/s",
        ref=fastapi,
        ref_name="bare FastAPI",
        goal=0.7,
    )
    add(
        "(d) GET by id, cache miss",
        sc,
        "reads.cache_miss",
        "req/s",
        ref=fastapi,
        ref_name="bare FastAPI",
    )
    add(
        "(d) search, repeated queries",
        sc,
        "reads.search",
        "req/s",
        ref=fastapi,
        ref_name="bare FastAPI",
    )
    add(
        "(d) search, distinct queries",
        sc,
        "reads.search_distinct",
        "req/s",
        ref=fastapi,
        ref_name="bare FastAPI",
    )
    fo = _get(sc, "fanout")
    if fo:
        out.append(
            {
                "figure": f"(e) WS fan-out to {fo['clients']}",
                "value": fo["rate"],
                "unit": "frames/s",
                **{k: fo[k] for k in ("p50_ms", "p95_ms", "p99_ms")},
                "target": ">= 50000 frames/s",
                "verdict": "PASS" if fo["rate"] >= 50000 else "MISS",
            }
        )
    return out


def table(rs: list[dict[str, Any]]) -> str:
    head = [
        "figure",
        "value",
        "unit",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "ratio",
        "vs raw",
        "target",
        "",
    ]
    lines = []
    for r in rs:
        lines.append(
            [
                r["figure"],
                f"{r['value']:,.1f}" if isinstance(r["value"], float | int) else "-",
                r["unit"],
                *(f"{r[k]:.1f}" if k in r else "" for k in ("p50_ms", "p95_ms", "p99_ms")),
                f"{r['ratio']:.2f}" if "ratio" in r else "",
                r.get("raw", ""),
                r.get("target", ""),
                r.get("verdict", ""),
            ]
        )
    widths = [max(len(str(x)) for x in col) for col in zip(head, *lines, strict=True)]
    fmt = " | ".join(f"{{:{w}}}" for w in widths)
    sep = "-+-".join("-" * w for w in widths)
    return "\n".join([fmt.format(*head), sep, *(fmt.format(*line) for line in lines)])


def write(results: dict[str, Any], out_dir: Path) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    results["table"] = rows(results)
    json_path = out_dir / "bench.json"
    json_path.write_text(json.dumps(results, indent=2, default=str))
    png = out_dir / "bench.png"
    chart(results["table"], png)
    return json_path, png


def chart(rs: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    thr = [r for r in rs if r["unit"].endswith("/s")]
    lat = [r for r in rs if "p99_ms" in r]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(15, 6.5))
    ax1.barh([r["figure"] for r in thr], [r["value"] or 0 for r in thr], color="#4c72b0")
    ax1.set_xscale("log")
    ax1.set_xlabel("operations per second (log)")
    ax1.set_title("Throughput")
    ax1.invert_yaxis()
    names = [r["figure"] for r in lat]
    y = range(len(lat))
    for off, key, color in (
        (-0.27, "p50_ms", "#55a868"),
        (0, "p95_ms", "#dd8452"),
        (0.27, "p99_ms", "#c44e52"),
    ):
        ax2.barh(
            [i + off for i in y],
            [max(0.01, r[key]) for r in lat],
            height=0.27,
            label=key,
            color=color,
        )
    ax2.set_yticks(list(y), names)
    ax2.set_xscale("log")
    ax2.set_xlabel("milliseconds (log)")
    ax2.set_title("Latency percentiles")
    ax2.invert_yaxis()
    ax2.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
