"""Writes readings.csv: hourly electricity use of 8 buildings over 40 days, with the outside
temperature, generated (seeded) so the example needs no download. Use follows a daily
cycle, a weekday/weekend level, heating below 12 C and cooling above 22 C, each building's
own size, and noise. Run from this folder:
    python make_data.py
"""

import math
import random
from datetime import datetime, timedelta, timezone
from pathlib import Path

rng = random.Random(7)
start = datetime(2026, 1, 1, tzinfo=timezone.utc)
buildings = [(f"b{i:02d}", rng.uniform(20, 120)) for i in range(8)]
rows = ["building_id,timestamp,temperature_c,occupancy,kwh"]
for day in range(40):
    season = 8 + 10 * math.sin(2 * math.pi * (day - 20) / 120)
    for hour in range(24):
        t = start + timedelta(days=day, hours=hour)
        temp = season + 5 * math.sin(2 * math.pi * (hour - 9) / 24) + rng.gauss(0, 1.5)
        weekend = t.weekday() >= 5
        for name, size in buildings:
            # A few readings are missing (meters drop out): the gaps the windows must handle.
            if rng.random() < 0.03:
                continue
            open_hours = 7 <= hour < 19 and not weekend
            occupancy = round(rng.uniform(0.5, 1.0) if open_hours else rng.uniform(0.0, 0.15), 3)
            load = size * (0.25 + 0.6 * occupancy)
            load += size * 0.04 * max(0.0, 12 - temp) + size * 0.05 * max(0.0, temp - 22)
            kwh = max(0.0, load * rng.uniform(0.9, 1.1))
            temp_s = "" if rng.random() < 0.02 else f"{temp:.1f}"
            rows.append(f"{name},{t.strftime('%Y-%m-%dT%H:%M:%SZ')},{temp_s},{occupancy},{kwh:.2f}")
Path(__file__).with_name("readings.csv").write_text("\n".join(rows) + "\n")
