"""Static memory planning: where each activation lives in the one arena."""
from .lifetime_planner import ArenaPlan, BufferPlacement, plan_arena

__all__ = ["ArenaPlan", "BufferPlacement", "plan_arena"]
