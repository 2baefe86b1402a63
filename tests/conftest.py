"""Settings for every test folder: hypothesis runs the same examples on every run (a property test that passes
once passes in CI too, and a mutation run's verdicts do not depend on luck), without a time limit per example
(CI machines are shared) and without writing an example database into the checkout."""

from hypothesis import Phase, settings

settings.register_profile("dcopilot", derandomize=True, deadline=None, database=None, print_blob=True)
# scripts/mutation.py runs a module's tests once per mutant, under `--hypothesis-profile=mutation`: the same
# examples, but a failing one is not shrunk (that the test fails is all a verdict needs). A test that asks for more
# than the default count of examples asks for it only outside this profile (test_context.py's property).
settings.register_profile(
    "mutation", settings.get_profile("dcopilot"), phases=[Phase.explicit, Phase.reuse, Phase.generate]
)
settings.load_profile("dcopilot")
