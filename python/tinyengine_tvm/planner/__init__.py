"""Static memory planning: where each activation lives in the one arena."""
from .cost_model import CostModel, align, kernel_scratch
from .lifetime_planner import ArenaPlan, BufferPlacement, plan_arena

__all__ = ["ArenaPlan", "BufferPlacement", "CostModel", "align", "kernel_scratch", "plan_arena"]
