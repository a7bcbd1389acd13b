"""Patch-based inference, one idea per module (the pass is transform/patch_inference.py).

==============  ===========================================================
``geometry``    windows, kernel families, output -> input window mapping, grids
``stages``      which runs of steps can run patch by patch; a patch's windows
``plan``        a stage cut into a grid: windows, extra MACs, cache bytes, estimates
``emit``        the patched stage's kernel calls and the rewritten function
``search``      choosing stages and grids (per round, or all for a target arena)
==============  ===========================================================
"""
