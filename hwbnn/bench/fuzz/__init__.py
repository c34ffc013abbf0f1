"""Seeded fuzzing of hwbnn's input boundaries: model files, QONNX graphs, CLI arguments.

Every case is one ``hwbnn`` command on a mutated input, run by :func:`hwbnn.cli.main` in a
worker process under a watchdog. It ends in one of

* ``clean error``: exit code 2 and one line on stderr;
* ``accepted identical``: exit code 0, nothing on stderr and the same output as the unmutated
  input (stdout, and the bytes of the model file ``import`` writes);
* a failure: ``accepted different`` (for a CLI case: a bad value accepted), ``traceback``
  (an exception, a warning or any other stderr), ``hang`` (no answer within 30 s) or
  ``memory`` (the worker's peak resident memory passed 2 GiB).

The mutations are chosen so that a correct hwbnn answers with one of the first two: they
break the input (a flipped bit, a wrong dtype, NaN thresholds, a bit width of 1e30, a zip
bomb) or change nothing hwbnn reads (an unknown zip entry, Fortran order, key order).
``tests/test_fuzz.py`` runs a fixed seeded budget; the long run is::

    python -m hwbnn.bench.fuzz --files 2000 --qonnx 1000 --seed 0
"""

from .cases import FAILURES, HANG_SECONDS, MEMORY_BYTES, OUTCOMES, Case, Result
from .files import ModelFile, ZipEntry, bomb_entry, file_cases, npy_header, write_zip
from .graphs import brevitas_mlp, qonnx_cases
from .options import CLI_UNFUZZED, cli_cases, cli_unfuzzed, permissions_apply
from .runner import classify, counts_table, failures, outcome, run_cases

__all__ = [
    "CLI_UNFUZZED", "FAILURES", "HANG_SECONDS", "MEMORY_BYTES", "OUTCOMES", "Case",
    "ModelFile", "Result", "ZipEntry", "bomb_entry", "brevitas_mlp", "classify", "cli_cases",
    "cli_unfuzzed", "counts_table", "failures", "file_cases", "npy_header", "outcome",
    "permissions_apply", "qonnx_cases", "run_cases", "write_zip",
]
