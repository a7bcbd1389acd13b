"""Every public model of ../shared/models is bit-exact with TensorFlow Lite Micro.

Each model runs on 5 random inputs (int8 over the full range, float in
[-1, 1)) plus the published test inputs; outputs must be equal arrays.
"""
import os

import pytest

import tinyengine_tvm as te
from tinyengine_tvm.testing import SHARED_MODELS, assert_matches_tflm, random_inputs, shipped_inputs

NUM_RANDOM = 5


@pytest.mark.parametrize("model", SHARED_MODELS)
def test_bit_exact_with_tflm(model, shared_dir, tflm):
    path = os.path.join(shared_dir, f"{model}.tflite")
    data = open(path, "rb").read()
    compiled = te.compile(path)
    in_desc = compiled.metadata["inputs"]
    cases = [random_inputs(in_desc, seed) for seed in range(NUM_RANDOM)]
    cases += [[x] for x in shipped_inputs(model, in_desc[0])]
    if model in ("kws_ref_model", "vww_96_int8", "person_detect", "ad01_int8", "pretrainedResnet_quant"):
        assert len(cases) > NUM_RANDOM, "the published test inputs were not found"
    assert_matches_tflm(compiled, data, cases)


@pytest.mark.parametrize("model", ["vww_96_int8", "pretrainedResnet_quant"])
def test_arena_no_larger_than_tflm_head(model, shared_dir, tflm):
    from tinyengine_tvm.testing import tflm_arena_head

    path = os.path.join(shared_dir, f"{model}.tflite")
    head = tflm_arena_head(open(path, "rb").read())
    arena = te.compile(path).metadata["memory"]["arena_bytes"]
    assert head is not None
    assert arena <= head
