"""Builds the Python package attn (the C extension attn._attn over libattn):

    python3 -m venv --system-site-packages venv   # sees Debian's numpy and torch
    venv/bin/pip install ./python

against the in-tree library when it has been built (../build/libattn.a, or the build folder
named by ATTN_BUILD_DIR), otherwise against the installed one (pkg-config attn). No network
is needed (there is no pyproject.toml, so pip builds with the setuptools and numpy already
installed; add --no-build-isolation should a pip insist on isolation).
"""
import os
import re
import subprocess

import numpy
from setuptools import Extension, setup

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
BUILD = os.environ.get("ATTN_BUILD_DIR", os.path.join(ROOT, "build"))


def pkg_config(*args):
    return subprocess.run(["pkg-config", *args], check=True, capture_output=True, text=True).stdout.split()


def library_flags():
    """(include dirs, extra objects, link flags)."""
    static = os.path.join(BUILD, "libattn.a")
    if os.path.exists(static) and os.path.exists(os.path.join(ROOT, "include", "attn", "attn.h")):
        requires = []
        pc = os.path.join(BUILD, "attn.pc")
        if os.path.exists(pc):
            m = re.search(r"^Requires\.private:(.*)$", open(pc).read(), re.M)
            requires = m.group(1).split() if m else []
        libs = pkg_config("--libs", *requires) if requires else []
        return [os.path.join(ROOT, "include")], [static], libs + ["-lpthread", "-lm"]
    try:
        cflags, libs = pkg_config("--cflags", "attn"), pkg_config("--libs", "attn")
    except (OSError, subprocess.CalledProcessError):
        raise SystemExit("attn: no built library in %s and no installed one (pkg-config attn); "
                         "build it first: cmake -S . -B build && cmake --build build" % BUILD)
    return [f[2:] for f in cflags if f.startswith("-I")], [], libs


includes, objects, libs = library_flags()
setup(
    name="attn",
    version="0.1.0",
    description="The attention mechanism in C, from Python: numpy in and out, and attn.torch for PyTorch",
    packages=["attn"],
    package_data={"attn": ["*.pyi", "py.typed"]},
    ext_modules=[Extension("attn._attn", ["attnmodule.c"], include_dirs=includes + [numpy.get_include()],
                           extra_objects=objects, extra_link_args=libs,
                           define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")])],
    python_requires=">=3.8",
    install_requires=["numpy"],
)
