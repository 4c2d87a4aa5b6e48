"""The house has floors: nothing imports upward, and only the command line imports click.

The declared order, top to bottom (a module may import its own floor and any
floor below it; every ``import`` counts, also inside functions and under
``TYPE_CHECKING``, because a lazy import is still a dependency):

0. ``cli``      the command line (``reconciler.cli.*``): the only importer of click
1. ``tools``    ``demo``: the offline tour (runs the emulator in-process)
2. ``app``      ``daemon``, ``watch``, ``oneshot``, ``status``, ``progress``: what commands drive
3. ``service``  ``service``: accounts, credentials, one pass over many calendars
4. ``engine``   ``engine``, ``discovery``: one calendar's listing
5. ``io``       ``store``, ``google``: the database and the Calendar API
6. ``leaf``     ``config``, ``clock``, ``eventfields``, ``logsetup``, ``process``, ``suggest``,
                ``outcome``, ``planner``, ``dburl``, ``recurrence``: small modules with one job
7. ``core``     ``reconcile``, ``errors`` and the package root

The emulator (``reconciler.emulator``) is a separate tool: it imports nothing
of the reconciler, and only ``reconciler.cli.emulator`` and the tour
(``reconciler.demo``) import it. ``__main__`` modules are entry points and may
reach up to the command line (``python -m reconciler.emulator``).

A module that matches no declared prefix fails the test: declare its floor.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "reconciler"

LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("cli", ("reconciler.cli",)),
    ("tools", ("reconciler.demo",)),
    ("app", ("reconciler.daemon", "reconciler.watch", "reconciler.oneshot", "reconciler.status",
             "reconciler.progress")),
    ("service", ("reconciler.service",)),
    # The planner is pure (no I/O) but speaks the store's write records, so it sits with the engine.
    ("engine", ("reconciler.engine", "reconciler.discovery", "reconciler.planner")),
    ("io", ("reconciler.store", "reconciler.google")),
    ("leaf", ("reconciler.config", "reconciler.clock", "reconciler.eventfields",
              "reconciler.logsetup", "reconciler.process", "reconciler.suggest",
              "reconciler.outcome", "reconciler.dburl", "reconciler.recurrence")),
    ("core", ("reconciler.reconcile", "reconciler.errors", "reconciler")),
]
EMULATOR = "reconciler.emulator"
EMULATOR_IMPORTERS = ("reconciler.cli.emulator", "reconciler.demo")


def _matches(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def floor(module: str) -> int | None:
    """The index of the module's floor (most specific prefix wins), or None."""
    best: tuple[int, int] | None = None
    for index, (_name, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if _matches(module, prefix) and (best is None or len(prefix) > best[1]):
                best = (index, len(prefix))
    return None if best is None else best[0]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path: Path) -> set[str]:
    """Every module ``path`` imports (absolute names; relative imports resolved)."""
    module = module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.add(target)
            # ``from reconciler import status`` imports the submodule when it is one.
            for alias in node.names:
                if (PACKAGE.parent / Path(*f"{target}.{alias.name}".split("."))).with_suffix(
                        ".py").exists():
                    found.add(f"{target}.{alias.name}")
    return found


def modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "migrations" not in p.parts)


def violations() -> list[str]:
    problems = []
    for path in modules():
        name = module_name(path)
        deps = imports(path)
        if any(_matches(d, "click") for d in deps) and not _matches(name, "reconciler.cli"):
            problems.append(f"{name} imports click (only reconciler.cli.* may)")
        if _matches(name, EMULATOR):
            if path.name == "__main__.py":
                continue
            outside = sorted(d for d in deps if _matches(d, "reconciler") and not _matches(d, EMULATOR))
            problems += [f"{name} (the emulator, a separate tool) imports {d}" for d in outside]
            continue
        own = floor(name)
        if own is None:
            problems.append(f"{name} is on no declared floor (add it to LAYERS in this test)")
            continue
        for dep in sorted(deps):
            if not _matches(dep, "reconciler"):
                continue
            if _matches(dep, EMULATOR):
                if not any(_matches(name, allowed) for allowed in EMULATOR_IMPORTERS):
                    problems.append(f"{name} imports the emulator {dep} "
                                    f"(only {', '.join(EMULATOR_IMPORTERS)} may)")
                continue
            target = floor(dep)
            if target is not None and target < own and path.name != "__main__.py":
                problems.append(f"{name} ({LAYERS[own][0]}) imports {dep} ({LAYERS[target][0]}): "
                                "upward")
    return problems


def test_nothing_imports_upward_and_only_the_cli_imports_click() -> None:
    assert violations() == []


def test_the_checker_sees_what_it_must() -> None:
    """The walker finds lazy and relative imports, and the floors are ordered as declared."""
    cli_once = PACKAGE / "cli" / "once.py"
    assert "reconciler.oneshot" in imports(cli_once)  # imported inside the command function
    assert "click" in imports(cli_once)
    assert "reconciler.emulator.emulator" in imports(PACKAGE / "emulator" / "persist.py")  # relative
    assert floor("reconciler.cli.read") == 0 and floor("reconciler.errors") == len(LAYERS) - 1
    assert floor("reconciler.store.db") > floor("reconciler.engine") > floor("reconciler.service")
    assert floor("reconciler") == len(LAYERS) - 1 and floor("reconciler.daemon.quota") == 2
    assert floor("reconciler.recurrence.google") == floor("reconciler.dburl")
    assert floor("somewhere.else") is None
