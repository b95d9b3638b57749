"""Hypothesis settings of the fuzz targets (``pytest -m fuzz``).

CI runs each target with its small default example count (well under 60 s per target on 2
cores); ``make fuzz`` sets ``NEUMAT_FUZZ_EXAMPLES`` (default there: 100,000) examples *per
target* (one parser: the bundle loader, the INM importer, the mesh loader, the training config,
the CLI options), split evenly over the target's tests. No example database: every run draws
fresh cases from its seed.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

FUZZ_EXAMPLES = int(os.environ.get("NEUMAT_FUZZ_EXAMPLES", "0"))
"""Examples per fuzz target when set (> 0); 0: each test's own CI default."""


def fuzz_settings(ci_examples: int, tests_in_target: int = 1, deadline_ms: int = 2000) -> settings:
    """Settings of one fuzz test: ``ci_examples`` examples in CI; under ``make fuzz`` its share
    of :data:`FUZZ_EXAMPLES`, the target's examples split over its ``tests_in_target`` tests
    (rounded up); ``deadline_ms`` per example (a hang is a failure)."""
    examples = -(-FUZZ_EXAMPLES // tests_in_target) if FUZZ_EXAMPLES else ci_examples
    return settings(max_examples=examples, deadline=deadline_ms, database=None,
                    suppress_health_check=list(HealthCheck))
