"""What a bounded run leaves in reports/: the online figures from the log alone (as the
site's operators would compute them), the release records, and the site's own ledger,
with a summary: availability as the site saw it, releases and conversion day by day."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import orjson

from movierec.online.figures import online_report
from movierec.registry.versions import Registry
from movierec.store.events import atomic_write

CONVERSION = "conversion@30m"


def write_reports(root: Path) -> dict[str, Any]:
    reports = root / "reports"
    reports.mkdir(exist_ok=True)
    models = root / "models"
    summary: dict[str, Any] = {"reports": {}}
    try:
        online = online_report(root / "store", models, final=True)  # a fresh state: all of it
    except ValueError as error:  # nothing ingested: say so rather than report zeros
        summary["warnings"] = [f"no online figures: {error}"]
        return summary
    _write(reports / "online.json", online, summary)
    overall = online["overall"]
    summary["availability"] = overall["availability"]
    summary["requests"] = overall["requests"]
    summary[CONVERSION] = overall[CONVERSION]
    summary["by_day"] = by_day(online["hours"])
    summary["warnings"] = online["warnings"]
    if (models / "registry.json").is_file():
        registry = Registry(models)
        records = [record.to_json() for record in registry.releases()]
        _write(
            reports / "releases.json",
            {"production": registry.production(), "records": records},
            summary,
        )
        summary["production"] = registry.production()
        summary["releases"] = [
            {k: r[k] for k in ("time", "decision", "decided_by", "from", "to")} for r in records
        ]
    ledger = root / "site" / "ledger.json"
    if ledger.is_file():
        site = orjson.loads(ledger.read_bytes())
        summary["site"] = {
            "lines": site.get("lines"),
            "by_status": site.get("recommendation_calls", {}).get("by_status"),
            "online_by_day": site.get("online", {}).get("by_day"),
        }
        summary["reports"]["ledger"] = str(ledger)
    return summary


def by_day(hours: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The hourly figures summed per day (UTC): requests, availability, conversion."""
    days: dict[str, list[float]] = defaultdict(lambda: [0, 0.0, 0, 0])
    for hour in hours:
        day = days[str(hour["hour"])[:10]]
        day[0] += hour["requests"]
        day[1] += (hour["availability"] or 0.0) * hour["requests"]
        day[2] += hour["judged"]
        day[3] += hour["followed"]
    return [
        {
            "day": day,
            "requests": int(r),
            "availability": round(ok / r, 4) if r else None,
            CONVERSION: round(followed / judged, 4) if judged else None,
        }
        for day, (r, ok, judged, followed) in sorted(days.items())
    ]


def _write(path: Path, report: dict[str, Any], summary: dict[str, Any]) -> None:
    atomic_write(path, orjson.dumps(report, option=orjson.OPT_INDENT_2))
    summary["reports"][path.stem] = str(path)
