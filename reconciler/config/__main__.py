"""``python -m reconciler.config --schema``: print the config's JSON Schema.

The repository's ``config.schema.json`` is this output (a test keeps them
equal); regenerate it with
``python -m reconciler.config --schema > config.schema.json``.
"""

from __future__ import annotations

import argparse
import json
import sys

from reconciler.config.models import json_schema


def render_schema() -> str:
    """The schema as the committed file holds it (sorted keys, 2-space indent)."""
    return json.dumps(json_schema(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` and print what was asked for."""
    parser = argparse.ArgumentParser(prog="python -m reconciler.config",
                                     description="Config tools for calendar-reconciler.")
    parser.add_argument("--schema", action="store_true", help="print the JSON Schema")
    args = parser.parse_args(argv)
    if not args.schema:
        parser.print_help()
        return 2
    sys.stdout.write(render_schema())
    return 0


if __name__ == "__main__":
    sys.exit(main())
