"""The plan model under its earlier name: the frozen types (runner.plan.types) and their builder
(runner.plan.build)."""

from runner.plan.build import MAX_MATRIX_CASES, build_plan
from runner.plan.check import ACTIONS, parse_size
from runner.plan.types import Case, Include, Plan, Retry, Step, Target

__all__ = ["ACTIONS", "MAX_MATRIX_CASES", "Case", "Include", "Plan", "Retry", "Step", "Target", "build_plan",
           "parse_size"]
