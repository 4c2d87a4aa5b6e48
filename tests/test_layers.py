"""The house has floors: nothing imports upward, and only the command line imports click.

The declared order, top to bottom (a module may import its own floor and any
floor below it; every ``import`` counts, also inside functions and under
``TYPE_CHECKING``, because a lazy import is still a dependency):

0. ``cli``      the command line (``reconciler.cli.*``): the only importer of click
1. ``tools``    ``demo``: the offline tour (runs the emulator in-process)
2. ``app``      ``daemon``, ``watch``, ``once``, ``status``, ``progress``: what commands drive
3. ``service``  ``service`` and its owners (``handles``, ``calendarset``, ``attempt``,
                ``passes``, ``report``): accounts, the calendar set, one attempt, one pass
4. ``engine``   ``engine``, ``discovery``: one calendar's listing
5. ``io``       ``store``, ``google``: the database and the Calendar API
6. ``leaf``     ``config``, ``clock``, ``eventfields``, ``logsetup``, ``process``, ``suggest``,
                ``outcome``, ``planner``, ``dburl``, ``schedule``, ``recurrence``: small modules
                with one job
7. ``core``     ``reconcile``, ``errors`` and the package root

The emulator (``reconciler.emulator``) is a separate tool: it imports nothing
of the reconciler, and only ``reconciler.cli.emulator`` and the tour
(``reconciler.demo``) import it. ``__main__`` modules are entry points and may
reach up to the command line (``python -m reconciler.emulator``).

A module that matches no declared prefix fails the test: declare its floor.

Two rules keep the store's edge where it is (issue 17):

* the Peewee models are private to ``reconciler/store/``: no module outside it
  imports ``reconciler.store.models`` (callers get store functions and records);
* a dialect branch (``isinstance`` on a Peewee database class, or comparing a
  backend name such as ``== "mysql"``) stands only in ``reconciler/store/dialects/``
  (migrations included: they ask the dialect). ``reconciler.dburl`` parses the URL
  scheme table and is the one exception.
"""

from __future__ import annotations

import ast
import re
import textwrap
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "reconciler"

LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("cli", ("reconciler.cli",)),
    ("tools", ("reconciler.demo",)),
    ("app", ("reconciler.daemon", "reconciler.watch", "reconciler.once", "reconciler.status",
             "reconciler.progress")),
    ("service", ("reconciler.service", "reconciler.handles", "reconciler.calendarset",
                 "reconciler.attempt", "reconciler.passes", "reconciler.report")),
    # The planner is pure (no I/O) but speaks the store's write records, so it sits with the engine.
    ("engine", ("reconciler.engine", "reconciler.discovery", "reconciler.planner")),
    ("io", ("reconciler.store", "reconciler.google")),
    ("leaf", ("reconciler.config", "reconciler.clock", "reconciler.eventfields",
              "reconciler.logsetup", "reconciler.process", "reconciler.suggest",
              "reconciler.outcome", "reconciler.dburl", "reconciler.intervals",
              # the adaptive schedule's decisions: pure functions, no I/O
              "reconciler.schedule",
              # Google's recurrence fields -> occurrences (python-dateutil): pure
              "reconciler.recurrence")),
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


STORE = "reconciler.store"
MODELS = "reconciler.store.models"
DIALECTS = "reconciler.store.dialects"
DIALECT_NAMES = frozenset({"sqlite", "sqlite3", "mysql", "mariadb", "postgres", "postgresql"})
DIALECT_BRANCH_ALLOWED = (DIALECTS, "reconciler.dburl")
_DATABASE_CLASS = re.compile(r"(Sqlite|MySQL|Postgresql|Postgres|Cockroach|MariaDB)\w*Database$")


def model_imports(name: str, deps: set[str]) -> list[str]:
    """``name`` importing the store's models from outside the store."""
    if _matches(name, STORE):
        return []
    return [f"{name} imports {d}: the models are private to {STORE} (use a store function)"
            for d in sorted(deps) if _matches(d, MODELS)]


def _terminal(node: ast.expr) -> str:
    if isinstance(node, ast.Attribute):
        return node.attr
    return node.id if isinstance(node, ast.Name) else ""


def _names_dialect(node: ast.expr) -> bool:
    if isinstance(node, ast.Constant):
        return isinstance(node.value, str) and node.value.lower() in DIALECT_NAMES
    if isinstance(node, ast.Tuple | ast.List | ast.Set):
        return any(_names_dialect(element) for element in node.elts)
    return False


def dialect_branches(path: Path, name: str) -> list[str]:
    """``isinstance`` on a Peewee database class, or a comparison with a backend name,
    in ``path`` (module ``name``) when it stands outside the dialect modules."""
    if any(_matches(name, allowed) for allowed in DIALECT_BRANCH_ALLOWED):
        return []
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                and node.func.id in ("isinstance", "issubclass") and len(node.args) == 2):
            kinds = node.args[1].elts if isinstance(node.args[1], ast.Tuple) else [node.args[1]]
            hits = [_terminal(k) for k in kinds if _DATABASE_CLASS.search(_terminal(k))]
            found += [f"{name}:{node.lineno} isinstance on {hit} (ask the dialect)"
                      for hit in hits]
        elif (isinstance(node, ast.Compare)
              and any(isinstance(op, ast.Eq | ast.NotEq | ast.In | ast.NotIn) for op in node.ops)
              and any(_names_dialect(operand) for operand in [node.left, *node.comparators])):
            found.append(f"{name}:{node.lineno} compares a backend name (ask the dialect)")
    return found


def store_edge_violations(paths: list[Path] | None = None) -> list[str]:
    """Both store-edge rules over ``paths`` (default: every module, migrations included)."""
    problems = []
    for path in paths if paths is not None else sorted(PACKAGE.rglob("*.py")):
        name = module_name(path)
        if _matches(name, EMULATOR):
            continue
        problems += model_imports(name, imports(path))
        problems += dialect_branches(path, name)
    return problems


def test_models_stay_in_the_store_and_dialect_branches_in_the_dialects() -> None:
    assert store_edge_violations() == []


def test_the_store_edge_rules_catch_planted_violations(tmp_path: Path) -> None:
    """Each rule fails on a module that breaks it (planted under the package's name)."""
    planted = {
        "status_models.py": "from reconciler.store.models import Calendar\n",
        "status_module.py": "def f():\n    from reconciler.store import models\n",
        "branch_isinstance.py": ("import peewee\n\ndef f(db):\n"
                                 "    return isinstance(db, peewee.MySQLDatabase)\n"),
        "branch_tuple.py": ("from peewee import SqliteDatabase, PostgresqlDatabase\n\n"
                            "def f(db):\n"
                            "    return isinstance(db, (SqliteDatabase, PostgresqlDatabase))\n"),
        "branch_name.py": "def f(kind):\n    return kind == \"mysql\"\n",
        "branch_in.py": "def f(backend):\n    return backend in (\"sqlite\", \"postgresql\")\n",
    }
    paths = []
    for file, text in planted.items():
        path = PACKAGE / "planted_by_test" / file  # a module name outside the store
        real = tmp_path / file
        real.write_text(text, encoding="utf-8")
        paths.append((path, real))
    for path, real in paths:
        name = module_name(path)
        found = (model_imports(name, _imports_of(real, name))
                 + dialect_branches(real, name))
        assert found, f"{real.name} was not caught"
    # The same text inside the store (models) or the dialects (branches) is allowed.
    inside = tmp_path / "inside.py"
    inside.write_text(planted["branch_name.py"] + planted["status_models.py"], encoding="utf-8")
    assert dialect_branches(inside, "reconciler.store.dialects.example") == []
    assert model_imports("reconciler.store.example", _imports_of(inside, "x")) == []
    clean = tmp_path / "clean.py"
    clean.write_text("def f(kind):\n    return kind == \"opening\"\n", encoding="utf-8")
    assert dialect_branches(clean, "reconciler.watch.clean") == []


def _imports_of(path: Path, name: str) -> set[str]:
    """Absolute imports of a file outside the package (the planted modules)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def test_nothing_imports_upward_and_only_the_cli_imports_click() -> None:
    assert violations() == []


def test_the_checker_sees_what_it_must() -> None:
    """The walker finds lazy and relative imports, and the floors are ordered as declared."""
    cli_once = PACKAGE / "cli" / "once.py"
    assert "reconciler.once" in imports(cli_once)  # imported inside the command function
    assert "click" in imports(cli_once)
    assert "reconciler.emulator.emulator" in imports(PACKAGE / "emulator" / "persist.py")  # relative
    assert floor("reconciler.cli.read") == 0 and floor("reconciler.errors") == len(LAYERS) - 1
    assert floor("reconciler.store.db") > floor("reconciler.engine") > floor("reconciler.service")
    assert floor("reconciler") == len(LAYERS) - 1 and floor("reconciler.daemon.quota") == 2
    assert floor("reconciler.recurrence.google") == floor("reconciler.dburl")
    assert floor("somewhere.else") is None


# -- one set of counters ------------------------------------------------------------------

COUNTERS = ("created", "updated", "deleted")


def counter_declarations(paths: list[Path]) -> dict[str, list[str]]:
    """Counter name -> ``module.Class`` of every class declaring it as a counter: a class
    attribute annotated ``int`` or assigned an int (a read-only property is a view, not a
    declaration; ``updated: Any`` of a Google resource is a timestamp, not a counter). The
    emulator is a separate tool and is left out."""
    found: dict[str, list[str]] = {name: [] for name in COUNTERS}
    for path in paths:
        name = module_name(path) if path.is_relative_to(PACKAGE.parent) else path.stem
        if _matches(name, EMULATOR):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ClassDef):
                continue
            for item in node.body:
                targets: list[ast.expr] = []
                if isinstance(item, ast.AnnAssign) and _is_int(item.annotation):
                    targets = [item.target]
                elif isinstance(item, ast.Assign) and _is_int(item.value):
                    targets = list(item.targets)
                for target in targets:
                    if isinstance(target, ast.Name) and target.id in found:
                        found[target.id].append(f"{name}.{node.name}")
    return found


def _is_int(node: ast.expr) -> bool:
    """An ``int`` annotation (also as a string) or an int literal."""
    if isinstance(node, ast.Name):
        return node.id == "int"
    if isinstance(node, ast.Constant):
        return node.value == "int" or (isinstance(node.value, int)
                                       and not isinstance(node.value, bool))
    return False


def counter_violations(paths: list[Path]) -> list[str]:
    return [f"{counter} is declared by {len(classes)} classes: {', '.join(sorted(classes))} "
            "(carry reconciler.outcome.Counts instead)"
            for counter, classes in counter_declarations(paths).items() if len(classes) > 1]


def test_the_counters_are_declared_by_one_class() -> None:
    assert counter_violations(modules()) == []
    assert counter_declarations(modules())["created"] == ["reconciler.outcome.Counts"]


def test_the_counter_rule_catches_a_second_declaration(tmp_path: Path) -> None:
    planted = tmp_path / "summary.py"
    planted.write_text("from dataclasses import dataclass\n\n\n@dataclass\nclass Totals:\n"
                       "    created: int = 0\n    updated = 0\n\n    @property\n"
                       "    def deleted(self) -> int:\n        return 0\n")
    problems = counter_violations([*modules(), planted])
    assert any("created is declared by 2 classes" in p and "summary.Totals" in p for p in problems)
    assert any("updated is declared by 2 classes" in p for p in problems)
    assert not any(p.startswith("deleted") for p in problems)  # a property is a view


# -- a class over 250 lines is doing two jobs ---------------------------------------------------

MAX_CLASS_LINES = 250
# Known exceptions, each with the issue that removes it. Nothing else may be listed here.
LONG_CLASSES_ALLOWED: set[str] = set()


def long_classes(source: str, module: str) -> list[tuple[str, int]]:
    """``(qualified name, lines)`` of each class in ``source`` longer than the limit
    (decorators included; nested classes are named after their outer ones)."""
    found: list[tuple[str, int]] = []

    def walk(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.ClassDef):
                name = f"{prefix}.{child.name}"
                first = min([child.lineno, *(d.lineno for d in child.decorator_list)])
                lines = (child.end_lineno or child.lineno) - first + 1
                if lines > MAX_CLASS_LINES:
                    found.append((name, lines))
                walk(child, name)
            else:
                walk(child, prefix)

    walk(ast.parse(source), module)
    return found


def class_length_violations(sources: list[tuple[str, str]] | None = None) -> list[str]:
    """Every class in ``reconciler/`` (the emulator aside) over the limit, minus the allowed;
    ``sources`` (module name, text) replaces the package's modules."""
    if sources is None:
        sources = [(module_name(p), p.read_text(encoding="utf-8")) for p in modules()]
    problems = []
    for name, text in sources:
        if _matches(name, EMULATOR):
            continue
        for qualified, lines in long_classes(text, name):
            if qualified not in LONG_CLASSES_ALLOWED:
                problems.append(f"{qualified} is {lines} lines (at most {MAX_CLASS_LINES}: "
                                "split it into owners of one job each)")
    return problems


def test_no_class_is_longer_than_250_lines() -> None:
    assert class_length_violations() == []


def test_the_class_length_rule_catches_a_planted_violation() -> None:
    body = "\n".join(f"    def m{i}(self) -> int:\n        return {i}\n" for i in range(84))
    planted = f"import dataclasses\n\n\n@dataclasses.dataclass\nclass Planted:\n{body}"
    assert long_classes(planted, "reconciler.planted") == [("reconciler.planted.Planted", 253)]
    # Nested classes count on their own, named after their outer class.
    nested = f"def factory():\n    class Inner:\n{textwrap.indent(body, '    ')}\n"
    assert [n for n, _ in long_classes(nested, "m")] == ["m.Inner"]
    short = "class Short:\n    x = 1\n"
    assert long_classes(short, "m") == []
    # Through the checker: a planted module fails the rule, the emulator is exempt, and the
    # allow-list names classes exactly (a planted class beside an allowed one still fails).
    problems = class_length_violations([("reconciler.daemon.planted", planted),
                                        ("reconciler.emulator.planted", planted),
                                        ("reconciler.service", planted.replace("Planted",
                                                                               "ServiceX"))])
    assert problems == [
        "reconciler.daemon.planted.Planted is 253 lines (at most 250: split it into owners "
        "of one job each)",
        "reconciler.service.ServiceX is 253 lines (at most 250: split it into owners of one "
        "job each)"]
