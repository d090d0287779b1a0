"""Shared test configuration: hypothesis profiles.

``ci`` is the default (and what CI runs): no deadline, because gradient checks of composed ops on
a busy machine take a variable few milliseconds and a timing failure says nothing about
correctness; no example database, because CI starts from a clean checkout anyway; and
derandomized, so a run of the same code draws the same examples and passes or fails the same
way (two runs of the differential tests once met new float32 corner cases on a random draw:
a gate must not depend on the draw). ``dev`` and ``thorough`` draw afresh each run, to explore.
``dev`` keeps the local example database, so a failure found once is replayed first next time.
``thorough`` is for an occasional long run; the property tests multiply their example counts by
``EXAMPLES_SCALE`` under it (see ``tests/op_properties.py``).

Choose with ``HYPOTHESIS_PROFILE=dev python -m pytest`` (or ``--hypothesis-profile=dev``).
"""
import os

from hypothesis import HealthCheck, settings

settings.register_profile("ci", deadline=None, database=None, print_blob=True,
                          derandomize=True, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("thorough", parent=settings.get_profile("ci"), derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
