"""The C ABI of ``src/include/tinyengine_kernels.h``, as read from the header.

* :data:`STRUCTS`: every parameter struct, its fields in order with C types;
* :data:`FUNCTIONS`: every C function, its parameters with C types and the
  ``@op``/``@macs``/``@size`` tags of its doc comment;
* :data:`SOURCES`: which file under ``src/kernels/`` defines each function.

Every kernel takes one parameter struct and then tensors (then scratch).
"""
from __future__ import annotations

from typing import Dict, List

from .header import CDecl, CFunction, defining_sources, parse_header

STRUCTS: Dict[str, List[CDecl]]
FUNCTIONS: Dict[str, CFunction]
STRUCTS, FUNCTIONS = parse_header()
SOURCES: Dict[str, str] = defining_sources()

__all__ = ["CDecl", "CFunction", "FUNCTIONS", "SOURCES", "STRUCTS"]
