"""Hypothesis settings of the fuzz targets (``pytest -m fuzz``).

CI runs each target with its small default example count (well under 60 s per target on 2
cores); ``make fuzz`` sets ``NEUMAT_FUZZ_EXAMPLES`` (default there: 100,000) for a long run of
every target. No example database: every run draws fresh cases from its seed.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

FUZZ_EXAMPLES = int(os.environ.get("NEUMAT_FUZZ_EXAMPLES", "0"))
"""Examples per fuzz test when set (> 0); 0: each test's own CI default."""


def fuzz_settings(ci_examples: int, deadline_ms: int = 2000) -> settings:
    """Settings of one fuzz test: ``ci_examples`` examples in CI, :data:`FUZZ_EXAMPLES` under
    ``make fuzz``; ``deadline_ms`` per example (a hang is a failure)."""
    return settings(max_examples=FUZZ_EXAMPLES or ci_examples, deadline=deadline_ms, database=None,
                    suppress_health_check=list(HealthCheck))
