"""Settings for every test folder: hypothesis runs the same examples on every run (a property test that passes
once passes in CI too, and a mutation run's verdicts do not depend on luck), without a time limit per example
(CI machines are shared) and without writing an example database into the checkout."""

from hypothesis import settings

settings.register_profile("dcopilot", derandomize=True, deadline=None, database=None, print_blob=True)
settings.load_profile("dcopilot")
