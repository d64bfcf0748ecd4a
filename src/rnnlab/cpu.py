"""One code path per numerical library, so every x86-64 CPU with AVX2 computes the same bytes.

numpy, OpenBLAS, MKL and ATen (PyTorch's kernels) each choose their code by the CPU they load
on: AVX-512 or AVX2 loops, an Intel or an AMD kernel. Each choice rounds in its own order, so
the same params gave other last bits on another machine: text 004's stop epoch moved by one,
statsmodels' references in their 8th-13th digit. ``pin()`` chooses one path for each, through
the environment variable the library reads when it loads. So it must run before any of them is
imported: ``rnnlab/__init__`` calls it, and every entry point (stage, ``rnnlab`` command, test,
benchmark) imports ``rnnlab`` before numpy or torch. A stage refuses to run when that did not
happen (``require_pinned``). What each pin governs, how it was measured and what it costs:
docs/reproducibility.md.

* ATen: AVX2, the widest path every such CPU has (AVX-512's Sleef loops round otherwise).
* MKL (PyTorch's matrix products): ``COMPATIBLE``, its SSE2 path. Its AVX2 branch is not
  enough: MKL grants it to Intel CPUs only, so an Intel and an AMD CPU still multiply in
  different orders (measured under qemu: a Haswell's and an EPYC's products differ with
  ``MKL_CBWR=AVX2``, agree with ``COMPATIBLE``, and agree with this AVX-512 machine's).
* numpy: its dispatch targets above AVX2 off (numpy 2.4's float64 exp, log, pow, arctan and
  expm1 have AVX-512 loops of their own).
* OpenBLAS (numpy's and scipy's, so statsmodels'): Haswell's kernels and one thread. An
  AVX-512 Intel CPU otherwise takes SkylakeX's, which moved every AR, ARIMA and exponential
  smoothing reference; a threaded dot product would sum in per-thread parts.
* oneDNN: AVX2. Only an unpacked ``nn.LSTM`` reaches it, which no stage runs (the ball's torch
  engine packs its batches); its LSTM still differs between CPUs at one ISA (it blocks by cache
  size), so nothing here may come to depend on it (``tests/test_cpu.py``).

numba's kernels need no pin: compiled without fast-math, LLVM keeps every floating-point
operation as written, whatever CPU it targets; their transcendental functions are glibc's.

``RNNLAB_CPU=native`` leaves every library to choose, ``RNNLAB_CPU=native:MKL_CBWR`` one of them
(to measure what each pin governs and costs: ``benchmarks/bench_pins.py``); outputs then depend
on the CPU.
"""

from __future__ import annotations

import ctypes
import os
import sys
from pathlib import Path

PINS = {
    "ATEN_CPU_CAPABILITY": "avx2",
    "MKL_CBWR": "COMPATIBLE",
    "ONEDNN_MAX_CPU_ISA": "AVX2",
    "NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL AVX512_SPR",  # numpy 2.4's dispatch targets above X86_V3 (AVX2)
    "OPENBLAS_CORETYPE": "Haswell",
    "OPENBLAS_NUM_THREADS": "1",
}
NATIVE = "native"  # RNNLAB_CPU=native: no pin; native:MKL_CBWR,...: those left to the library (to measure them)
# The libraries the pins govern: each reads its variable once, when it loads.
GOVERNED = ("numpy", "torch", "scipy")
_LATE: list[str] = []  # governed libraries that were loaded before pin() ran


def unpinned() -> set[str]:
    """The pins ``RNNLAB_CPU`` leaves to the libraries: all of them (``native``), those it lists
    (``native:MKL_CBWR,OPENBLAS_CORETYPE``), or none (unset)."""
    value = os.environ.get("RNNLAB_CPU", "").strip()
    if value.lower() == NATIVE:
        return set(PINS)
    if value.lower().startswith(NATIVE + ":"):
        return {key.strip() for key in value[len(NATIVE) + 1 :].split(",") if key.strip()}
    return set()


def native() -> bool:
    return bool(unpinned())


def pin() -> None:
    """Set every pin in this process's environment (inherited by its children), and note which
    governed library was loaded already, too early to obey it."""
    pins = {key: value for key, value in PINS.items() if key not in unpinned()}
    for key in unpinned() & set(PINS):  # left to the library: not even as a pinned parent process set it
        if os.environ.get(key) == PINS[key]:
            del os.environ[key]
    already = all(os.environ.get(key) == value for key, value in pins.items())  # set by a parent process
    _LATE[:] = [] if already else [name for name in GOVERNED if name in sys.modules]
    os.environ.update(pins)


def require_pinned(what: str) -> None:
    """Refuse to make outputs with unpinned libraries: they would differ from another machine's."""
    from rnnlab.errors import RnnlabError

    if unknown := sorted(unpinned() - set(PINS)):
        raise RnnlabError(f"RNNLAB_CPU names {', '.join(unknown)}: not a pin; choose from {', '.join(PINS)}")
    if _LATE:
        raise RnnlabError(f"{what}: {', '.join(_LATE)} was imported before rnnlab pinned the CPU code paths "
                          "(rnnlab.cpu): import rnnlab first, or set RNNLAB_CPU=native to accept machine-dependent bytes")


# --- what each library reports it runs -------------------------------------------------------------

_MKL_BRANCHES = {0: "off", 1: "branch off", 2: "AUTO", 3: "COMPATIBLE", 4: "SSE2", 6: "SSSE3", 7: "SSE4_2",
                 8: "AVX", 9: "AVX2", 10: "AVX512_MIC", 11: "AVX512", 12: "AVX512_MIC_E1", 13: "AVX512_E1"}


_NUMPY_TARGETS = {"X86_V2": "SSE4.2", "X86_V3": "AVX2"}


def numpy_path() -> str:
    """The widest dispatch target numpy runs on this CPU, e.g. ``X86_V3`` (AVX2)."""
    from numpy._core import _multiarray_umath as umath

    enabled = [target for target in umath.__cpu_dispatch__ if umath.__cpu_features__.get(target)]
    if not enabled:
        return f"baseline {' '.join(umath.__cpu_baseline__)}"
    return f"{enabled[-1]} ({_NUMPY_TARGETS.get(enabled[-1], 'AVX-512')})"


def openblas_cores() -> dict[str, str]:
    """The core type each bundled OpenBLAS (numpy's, scipy's) chose, by library file."""
    import numpy

    cores = {}
    site = Path(numpy.__file__).resolve().parent.parent
    for library in sorted([*site.glob("numpy.libs/*openblas*"), *site.glob("scipy.libs/*openblas*")]):
        handle = ctypes.CDLL(str(library))
        for symbol in ("scipy_openblas_get_corename64_", "scipy_openblas_get_corename", "openblas_get_corename"):
            if hasattr(handle, symbol):
                function = getattr(handle, symbol)
                function.restype = ctypes.c_char_p
                cores[library.name] = function().decode()
                break
    return cores


def mkl_branch() -> str:
    """MKL's code branch (its conditional numerical reproducibility setting), as MKL reports it."""
    import torch

    library = ctypes.CDLL(str(Path(torch.__file__).parent / "lib" / "libtorch_cpu.so"))
    get = library.mkl_serv_cbwr_get
    get.restype, get.argtypes = ctypes.c_int, [ctypes.c_int]
    branch = get(1)  # MKL_CBWR_BRANCH
    return _MKL_BRANCHES.get(branch, str(branch))


def machine() -> str:
    """This CPU as /proc/cpuinfo names it: model, vendor, family, and its widest vector extension."""
    import platform

    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return platform.machine()
    info = dict(line.split(":", 1) for line in lines[:30] if ":" in line)
    info = {key.strip(): value.strip() for key, value in info.items()}
    flags = set(info.get("flags", "").split())
    vector = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "no AVX2"
    return (f"{info.get('model name', '?')} ({info.get('vendor_id', '?')}, family {info.get('cpu family', '?')}), "
            f"{vector}, {platform.machine()}")


def paths() -> dict[str, str]:
    """What every governed library runs here: ``rnnlab cpu`` prints it, tests check it."""
    import torch

    found = {"numpy dispatch": numpy_path(), "ATen (PyTorch) capability": torch.backends.cpu.get_cpu_capability(),
             "MKL branch": mkl_branch()}
    found |= {f"OpenBLAS core ({name.split('-')[0].removeprefix('lib')})": core for name, core in openblas_cores().items()}
    found["oneDNN maximum ISA"] = os.environ.get("ONEDNN_MAX_CPU_ISA", "the CPU's")
    return found
