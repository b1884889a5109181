"""evalrun: declarative behavioural experiments on language models.

    import evalrun
    run = evalrun.run("evals/gender.yaml", samples=3)   # see evalrun.api
"""

from .api import Run, check, plan, report, run

__version__ = "0.2.0"
__all__ = ["Run", "check", "plan", "report", "run"]
