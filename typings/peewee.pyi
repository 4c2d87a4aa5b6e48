# Peewee is used untyped on purpose: its models turn fields into attributes and
# its queries yield tuples or dicts, which its bundled stubs do not describe.
from typing import Any

def __getattr__(name: str) -> Any: ...
