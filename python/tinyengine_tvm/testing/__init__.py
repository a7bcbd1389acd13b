"""Test and benchmark support: the TFLM reference and the shared public models."""
from .reference import assert_matches_tflm, litert_run, random_inputs, tflm_arena_head, tflm_run, tflm_tensors
from .shared_models import SHARED_MODELS, shared_models_dir, shipped_inputs

__all__ = ["assert_matches_tflm", "litert_run", "random_inputs", "tflm_arena_head", "tflm_run", "tflm_tensors", "SHARED_MODELS", "shared_models_dir", "shipped_inputs"]
