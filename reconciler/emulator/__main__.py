"""``python -m reconciler.emulator``: the same as ``reconciler emulator``.

An entry point, not part of the emulator package's code: it reaches up to the
command line (``reconciler.cli``), as every ``__main__`` may.
"""

import sys

from reconciler.cli import main

if __name__ == "__main__":  # through the CLI's one error mapping: a bad seed file is one line
    main(["emulator", *sys.argv[1:]])
