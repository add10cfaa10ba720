"""Event performance: each VEN's baseline against its measured load during an event, and the shed.

The method (what settlement reads, so stated exactly):

- **Load** is a VEN's real power as its usage reports give it: the readings of the rIDs it
  registered in a TELEMETRY_USAGE or HISTORY_USAGE report with a real-power measurement
  (``RealPower`` / ``powerReal``), in kW (``W`` or ``J/s`` times the description's SI scale). A VEN
  reporting several such rIDs (several meters) loads the sum of their means.
- **Measured** is the mean load over the event's window as it ran: from its start to its end (or
  now while it runs, or its cancellation if it was cancelled while active).
- **Baseline** is the mean of the daily mean loads over the same UTC hours on the 10 most recent
  weekdays (Mon–Fri, UTC dates) before the event's start that are not event days for that VEN
  and have readings, looking back at most 30 days. An event day is a day on which another event
  targeting the VEN (now: its VEN ids, the current members of its groups, its resources' VENs)
  had been active during those hours; events cancelled before they started do not count.
- **Shed** is baseline minus measured (positive: the VEN shed load).
- The aggregate sums the VENs that have both a baseline and a measurement.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

from sqlalchemy import text

from adrstack.shared import rollups
from adrstack.shared.messages import EventTargets
from adrstack.shared.tables import DrEventRow

from .state import ApiState
from .targets import targeted_vens

BASELINE_DAYS = 10
LOOKBACK_DAYS = 30
POWER_MEASUREMENTS = ("RealPower", "powerReal")
POWER_UNITS = ("W", "J/s")
USAGE_REPORTS = ("TELEMETRY_USAGE", "HISTORY_USAGE")
SI = {"p": 1e-12, "n": 1e-9, "micro": 1e-6, "m": 1e-3, "c": 1e-2, "d": 1e-1, "k": 1e3, "M": 1e6, "G": 1e9,
      "T": 1e12, "none": 1.0, None: 1.0}
METHOD = ("mean real power (kW) over the event's window; baseline: mean of the daily means over the same "
          f"UTC hours on the {BASELINE_DAYS} most recent non-event weekdays with readings, within {LOOKBACK_DAYS} days")

# Mean reading per (VEN, rID, window) over the given windows, with the rID's unit and scale. The
# whole 15-minute buckets inside a window are read from the rollups (adrstack.shared.rollups) and
# only its unaligned edges, [lo, lo15) and [hi15, hi), from the readings: a baseline over 10 weekdays
# of a fleet reads ~1/90 of the rows at 10 s sampling. The mean is sum / count over both parts.
_MEANS = text(f"""
WITH w(idx, lo, hi, lo15, hi15) AS (
    SELECT * FROM unnest(CAST(:idx AS int[]), CAST(:lo AS timestamptz[]), CAST(:hi AS timestamptz[]),
                         CAST(:lo15 AS timestamptz[]), CAST(:hi15 AS timestamptz[]))),
parts AS (
    SELECT r.ven_id, r.report_specifier_id, r.r_id, w.idx, sum(r.value) AS total, count(*) AS n
    FROM w JOIN readings r ON (r.at >= w.lo AND r.at < w.lo15) OR (r.at >= w.hi15 AND r.at < w.hi)
    WHERE r.ven_id = ANY(CAST(:vens AS text[]))
    GROUP BY 1, 2, 3, 4
    UNION ALL
    SELECT q.ven_id, q.report_specifier_id, q.r_id, w.idx, sum(q.total), sum(q.n)
    FROM w JOIN {rollups.TABLE} q ON q.bucket >= w.lo15 AND q.bucket < w.hi15
    WHERE q.ven_id = ANY(CAST(:vens AS text[]))
    GROUP BY 1, 2, 3, 4)
SELECT p.ven_id, p.r_id, p.idx, sum(p.total) / sum(p.n) AS mean, d.unit, d.scale
FROM parts p
JOIN report_descriptions d
  ON d.ven_id = p.ven_id AND d.report_specifier_id = p.report_specifier_id AND d.r_id = p.r_id
WHERE d.report_name = ANY(CAST(:reports AS text[])) AND d.measurement = ANY(CAST(:measurements AS text[]))
  AND d.unit = ANY(CAST(:units AS text[]))
GROUP BY p.ven_id, p.r_id, p.idx, d.unit, d.scale
""")


def aligned(window: tuple[datetime, datetime]) -> tuple[datetime, datetime]:
    """The whole rollup buckets inside ``window``: [lo15, hi15), empty (both ``hi``) if none."""
    lo, hi = window
    step = rollups.SECONDS
    lo15 = datetime.fromtimestamp(-(-lo.timestamp() // step) * step, timezone.utc)
    hi15 = datetime.fromtimestamp(hi.timestamp() // step * step, timezone.utc)
    return (lo15, hi15) if lo15 < hi15 else (hi, hi)



@dataclass
class VenPerformance:
    ven_id: str
    baseline_kw: float | None
    measured_kw: float | None
    baseline_days: list[date]

    @property
    def shed_kw(self) -> float | None:
        if self.baseline_kw is None or self.measured_kw is None:
            return None
        return self.baseline_kw - self.measured_kw


@dataclass
class EventPerformance:
    event_id: str
    window_start: datetime | None
    window_end: datetime | None
    vens: list[VenPerformance]

    def total(self, name: str) -> float | None:
        counted = [v for v in self.vens if v.baseline_kw is not None and v.measured_kw is not None]
        return sum(getattr(v, name) for v in counted) if counted else None


def measured_window(row: DrEventRow, now: datetime) -> tuple[datetime, datetime] | None:
    """[start, end) of the event as it ran so far; None before it started or if cancelled before."""
    start = row.start_at
    if now <= start:
        return None
    end = row.end_at or now  # open-ended: so far
    if row.status == "cancelled":
        if row.modified_at <= start:
            return None
        end = min(end, row.modified_at)
    end = min(end, now)
    return (start, end) if end > start else None


def candidate_days(start: datetime) -> list[date]:
    """Weekdays before the event's UTC date, most recent first, within the look-back."""
    first = start.astimezone(timezone.utc).date()
    days = [first - timedelta(days=n) for n in range(1, LOOKBACK_DAYS + 1)]
    return [d for d in days if d.weekday() < 5]


def shifted(window: tuple[datetime, datetime], day: date) -> tuple[datetime, datetime]:
    """The same UTC hours as ``window`` on ``day`` (a window crossing midnight crosses it there too)."""
    start, end = window
    offset = start.astimezone(timezone.utc) - datetime.combine(start.astimezone(timezone.utc).date(),
                                                               datetime.min.time(), tzinfo=timezone.utc)
    lo = datetime.combine(day, datetime.min.time(), tzinfo=timezone.utc) + offset
    return lo, lo + (end - start)


async def _means(state: ApiState, vens: list[str], windows: list[tuple[datetime, datetime]]
                 ) -> dict[tuple[str, int], float]:
    """(VEN, window index) -> its load (kW): the sum over its power rIDs of each one's mean."""
    if not vens or not windows:
        return {}
    inner = [aligned(w) for w in windows]
    params = {"idx": list(range(len(windows))), "lo": [w[0] for w in windows], "hi": [w[1] for w in windows],
              "lo15": [a[0] for a in inner], "hi15": [a[1] for a in inner],
              "vens": vens, "reports": list(USAGE_REPORTS), "measurements": list(POWER_MEASUREMENTS),
              "units": list(POWER_UNITS)}
    out: dict[tuple[str, int], float] = defaultdict(float)
    async with state.store.engine.connect() as conn:
        for ven_id, _r_id, idx, mean, _unit, scale in await conn.execute(_MEANS, params):
            out[(ven_id, idx)] += float(mean) * SI.get(scale, 1.0) / 1000.0
    return dict(out)


async def _event_days(state: ApiState, row: DrEventRow, vens: set[str], days: list[date],
                      window: tuple[datetime, datetime]) -> dict[str, set[date]]:
    """VEN -> the candidate days on which another event targeting it was active in those hours."""
    out: dict[str, set[date]] = defaultdict(set)
    if not days:
        return out
    earliest = shifted(window, min(days))[0]
    others = await state.store.events_between(earliest, window[0], exclude=row.event_id)
    resolved: dict[str, set[str]] = {}  # a program's occurrences share their targets: resolve each once
    for other in others:
        ran = measured_window(other, window[0])
        if ran is None:
            continue
        key = json.dumps(other.targets or {}, sort_keys=True)
        if key not in resolved:
            resolved[key] = await targeted_vens(state, EventTargets.model_validate(other.targets or {}))
        named = resolved[key] & vens
        if not named:
            continue
        for day in days:
            lo, hi = shifted(window, day)
            if ran[0] < hi and lo < ran[1]:
                for ven_id in named:
                    out[ven_id].add(day)
    return out


async def event_performance(state: ApiState, row: DrEventRow, now: datetime) -> EventPerformance:
    vens = sorted(await targeted_vens(state, EventTargets.model_validate(row.targets or {})))
    window = measured_window(row, now)
    if window is None:
        return EventPerformance(row.event_id, None, None,
                                [VenPerformance(v, None, None, []) for v in vens])
    days = candidate_days(window[0])
    excluded = await _event_days(state, row, set(vens), days, window)
    windows = [window] + [shifted(window, d) for d in days]
    means = await _means(state, vens, windows)
    out = []
    for ven_id in vens:
        used = [d for i, d in enumerate(days, start=1)
                if d not in excluded.get(ven_id, ()) and (ven_id, i) in means][:BASELINE_DAYS]
        baseline = (sum(means[(ven_id, days.index(d) + 1)] for d in used) / len(used)) if used else None
        out.append(VenPerformance(ven_id, baseline, means.get((ven_id, 0)), used))
    return EventPerformance(row.event_id, window[0], window[1], out)
