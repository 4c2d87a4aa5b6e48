"""``python -m reconciler.cli``: the same as the ``reconciler`` script (tests use it)."""

from reconciler.cli import main

if __name__ == "__main__":
    main()
