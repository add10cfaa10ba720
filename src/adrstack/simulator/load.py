"""A building's electrical load: a daily profile (office, home or EV charging), noise, and demand
response that ramps in over the event's ramp-up period.

Pure logic (time is always passed in), so it can be tested without clocks or networks.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Callable

# Share of the load a building sheds at each SIMPLE signal level (OpenADR 2.0b: 0 normal .. 3 special).
SIMPLE_SHED = {0: 0.0, 1: 0.10, 2: 0.25, 3: 0.40}
# Other signals (LOAD_DISPATCH, ...) only tell us "reduce"; a fixed share is good enough for a demo.
OTHER_SHED = 0.20
NIGHT_SHARE = 0.45  # night-time load as a share of the daytime peak (HVAC setback, servers, lights)


def daily_shape(hour: float) -> float:
    """1.0 at the early-afternoon peak, NIGHT_SHARE from 20:00 to 06:00, smooth in between."""
    hour %= 24.0
    if 6.0 <= hour <= 20.0:
        occupancy = 0.5 - 0.5 * math.cos(2 * math.pi * (hour - 6.0) / 14.0)
    else:
        occupancy = 0.0
    return NIGHT_SHARE + (1.0 - NIGHT_SHARE) * occupancy


def home_shape(hour: float) -> float:
    """A household: a morning bump, a low day, the evening peak at 19:00 (cooking, heating, TV)."""
    hour %= 24.0
    morning = math.exp(-((hour - 7.5) / 1.2) ** 2) * 0.55
    evening = math.exp(-((hour - 19.0) / 2.0) ** 2)
    return 0.25 + 0.75 * max(morning, evening)


def ev_shape(hour: float) -> float:
    """A depot of EV chargers: cars plug in after work and charge into the night, little by day."""
    hour %= 24.0
    since_plug_in = (hour - 17.5) % 24.0  # 0 at 17:30
    charging = math.exp(-((since_plug_in - 3.0) / 2.5) ** 2)
    return 0.1 + 0.9 * charging


@dataclass(frozen=True)
class Profile:
    shape: Callable[[float], float]
    peak_kw: tuple[float, float]  # the range a building's peak is drawn from


PROFILES = {
    "office": Profile(daily_shape, (40.0, 250.0)),
    "home": Profile(home_shape, (3.0, 12.0)),
    "ev": Profile(ev_shape, (20.0, 150.0)),
}


def opts_out(index: int, rate: float) -> bool:
    """Whether VEN ``index`` (from 1) opts out: round(N * rate) of VENs 1..N do, spread evenly, the
    same ones in every run so that a demo (and its test) knows who says no."""
    return math.floor(index * rate + 0.5) > math.floor((index - 1) * rate + 0.5)


@dataclass(frozen=True)
class Segment:
    start: datetime
    end: datetime
    shed: float  # 0..1
    # OpenADR's ramp-up precedes the start: the load is let down linearly over it.
    ramp_up: timedelta = timedelta(0)

    def covers(self, at: datetime) -> bool:
        return self.start - self.ramp_up <= at < self.end

    def shed_at(self, at: datetime) -> float:
        if not self.covers(at):
            return 0.0
        if at >= self.start:
            return self.shed
        return self.shed * (1.0 - (self.start - at) / self.ramp_up)


def shed_for(signal_name: str, payload: float) -> float:
    if str(signal_name).upper() == "SIMPLE":
        return SIMPLE_SHED.get(int(round(payload)), SIMPLE_SHED[3] if payload > 3 else 0.0)
    return OTHER_SHED if payload else 0.0


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo else at.replace(tzinfo=timezone.utc)


def segments_from_event(event: dict) -> list[Segment]:
    """The shed segments of an event as openleadr's client parses it (see ``OpenADRClient.on_event``).

    Intervals carry their own ``dtstart`` when openleadr could compute it; otherwise they follow
    each other from the active period's start.
    """
    period = event.get("active_period") or {}
    cursor = _aware(period.get("dtstart") or datetime.now(timezone.utc))
    ramp_up = period.get("ramp_up") or timedelta(0)
    segments: list[Segment] = []
    for signal in event.get("event_signals") or []:
        at = cursor
        for interval in signal.get("intervals") or []:
            start = _aware(interval.get("dtstart") or at)
            duration = interval.get("duration") or timedelta(0)
            end = start + duration
            shed = shed_for(signal.get("signal_name", ""), float(interval.get("signal_payload") or 0.0))
            if shed > 0 and duration > timedelta(0):
                # Only the event's first shed ramps in; later intervals follow on.
                segments.append(Segment(start, end, shed, ramp_up if not segments else timedelta(0)))
            at = end
    return segments


@dataclass
class BuildingLoad:
    """One building: a peak in its profile's range, chosen reproducibly from its index."""

    index: int
    profile: str = "office"
    peak_kw: float = 0.0
    noise: float = 0.03  # relative standard deviation
    tz_offset_hours: float = 0.0  # buildings are in local time; the sampler passes UTC
    rng: random.Random = field(default_factory=random.Random, repr=False)
    _events: dict[str, list[Segment]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if not self.peak_kw:
            self.peak_kw = random.Random(f"building-{self.index}").uniform(*PROFILES[self.profile].peak_kw)

    def baseline_kw(self, at: datetime) -> float:
        local = _aware(at).astimezone(timezone.utc) + timedelta(hours=self.tz_offset_hours)
        hour = local.hour + local.minute / 60 + local.second / 3600
        return self.peak_kw * PROFILES[self.profile].shape(hour)

    def shed(self, at: datetime) -> float:
        at = _aware(at)
        return max((s.shed_at(at) for segs in self._events.values() for s in segs), default=0.0)

    def expected_kw(self, at: datetime) -> float:
        return self.baseline_kw(at) * (1.0 - self.shed(at))

    def sample_kw(self, at: datetime) -> float:
        jitter = max(-3 * self.noise, min(3 * self.noise, self.rng.gauss(0.0, self.noise)))
        return self.expected_kw(at) * (1.0 + jitter)

    def sample_watts(self, at: datetime) -> float:
        return round(self.sample_kw(at) * 1000.0, 1)

    def respond_to(self, event_id: str, segments: list[Segment]) -> None:
        self._events[event_id] = segments

    def forget(self, event_id: str) -> None:
        self._events.pop(event_id, None)

    def forget_finished(self, now: datetime) -> None:
        now = _aware(now)
        for event_id in [e for e, segs in self._events.items() if all(s.end <= now for s in segs)]:
            del self._events[event_id]
