"""``python -m reconciler.emulator``: the same as ``reconciler emulator``.

An entry point, not part of the emulator package's code: it reaches up to the
command line (``reconciler.cli.emulator``), as every ``__main__`` may.
"""

from reconciler.cli.emulator import emulator

if __name__ == "__main__":
    emulator(prog_name="python -m reconciler.emulator")
