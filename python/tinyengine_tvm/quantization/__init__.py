"""Quantization parameter derivation (bit-exact with TFLM Prepare)."""
