"""Static memory planning: where each activation lives in the one arena."""
from .lifetime_planner import ArenaPlan, BufferPlacement, align, plan_arena

__all__ = ["ArenaPlan", "BufferPlacement", "align", "plan_arena"]
