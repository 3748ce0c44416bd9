"""Build of the optional compiled extension ``shipper._speedups`` (everything else is in
pyproject.toml).

The extension is optional: when Cython or a C compiler is missing, or compiling fails, the
package still installs and runs on its pure-Python implementation (it says so once at start).
Set ``SHIPPER_REQUIRE_COMPILED=1`` at build time to make a failed build an error instead.
"""

from __future__ import annotations

import os
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

REQUIRED = os.environ.get("SHIPPER_REQUIRE_COMPILED") == "1"


class OptionalBuildExt(build_ext):
    """``build_ext`` that warns instead of failing, unless the build is required."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # compiler missing, headers missing...
            if REQUIRED:
                raise
            print(f"warning: shipper._speedups not built ({exc}); running on Python",
                  file=sys.stderr)

    def build_extension(self, ext: Extension) -> None:
        try:
            super().build_extension(ext)
        except Exception as exc:
            if REQUIRED:
                raise
            print(f"warning: {ext.name} not built ({exc}); running on Python", file=sys.stderr)


def extensions() -> list[Extension]:
    try:
        from Cython.Build import cythonize
    except ImportError:
        if REQUIRED:
            raise
        print("warning: Cython missing, shipper._speedups not built", file=sys.stderr)
        return []
    return cythonize(
        [Extension("shipper._speedups", ["shipper/_speedups.pyx"], optional=not REQUIRED)],
        compiler_directives={"language_level": "3"},
        quiet=True,
    )


setup(ext_modules=extensions(), cmdclass={"build_ext": OptionalBuildExt})
