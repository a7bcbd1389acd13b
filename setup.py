"""Packaging hook: ship the C/C++ sources inside the wheel.

Generated projects copy kernels from src/, firmware builds use firmware/, and
`tvmc micro create-project` copies zephyr_app/.  An editable install finds
them in the checkout; a regular install needs them inside the package, so
build_py copies them to tinyengine_tvm/_kernels, _firmware and _zephyr_app
(the locations the runtime looks at first).
"""
import os
import shutil

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))
SHIPPED = {"src": "_kernels", "firmware": "_firmware", "zephyr_app": "_zephyr_app"}


class BuildPyWithSources(build_py):
    """build_py that also copies the C/C++ source trees into the package."""

    def run(self):
        super().run()
        if self.editable_mode:
            return
        for src, dst in SHIPPED.items():
            target = os.path.join(self.build_lib, "tinyengine_tvm", dst)
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(os.path.join(HERE, src), target,
                            ignore=shutil.ignore_patterns("__pycache__", "*.o", "build"))


setup(cmdclass={"build_py": BuildPyWithSources})
