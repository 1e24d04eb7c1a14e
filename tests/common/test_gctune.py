"""The collector settings a server process runs with (checked in a fresh interpreter)."""

import json
import subprocess
import sys

from ostor.common.gctune import OLDER_THRESHOLD, YOUNG_THRESHOLD

_PROBE = """
import gc, json
from ostor.common.gctune import tune_for_serving
kept = [[] for _ in range(5000)]          # what start-up built: frozen
cycle = []; cycle.append(cycle); del cycle  # garbage: collected, not frozen
before = gc.get_threshold()
tune_for_serving()
print(json.dumps({"before": before, "after": gc.get_threshold(), "frozen": gc.get_freeze_count(),
                  "young_tracked": len(gc.get_objects(0))}))
"""


def test_tune_for_serving_freezes_startup_and_raises_the_young_threshold():
    out = json.loads(subprocess.run([sys.executable, "-c", _PROBE], check=True, capture_output=True,
                                    text=True).stdout)
    assert out["before"][0] < YOUNG_THRESHOLD
    assert out["after"] == [YOUNG_THRESHOLD, OLDER_THRESHOLD, OLDER_THRESHOLD]
    assert out["frozen"] >= 5000
    assert out["young_tracked"] < 100
