"""``python -m reconciler.emulator``: the same as ``reconciler emulator``."""

from .cli import emulator_command

if __name__ == "__main__":
    emulator_command(prog_name="python -m reconciler.emulator")
