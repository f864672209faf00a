"""``recap plugins``: what is loaded, from where, with versions."""

from __future__ import annotations

import json
from typing import Annotated

import tyro

from recap.plugins import get_registry


def plugins(json_output: Annotated[bool, tyro.conf.arg(name="json")] = False) -> int:
    """List loaded plugins: name, kind, distribution, version; and plugins that failed to load.

    Args:
        json_output: print JSON for machines instead of a table.
    """
    reg = get_registry()
    rows = [
        {
            "name": e.name,
            "kind": e.kind,
            "plugin": e.plugin,
            "distribution": e.distribution,
            "version": e.version,
        }
        for e in sorted(reg.all_entries(), key=lambda e: (e.kind, e.name))
    ]
    failures = [{"plugin": f.plugin, "distribution": f.distribution, "error": f.error} for f in reg.failures]
    if json_output:
        print(json.dumps({"entries": rows, "plugins": sorted(reg.plugins), "failures": failures}, indent=2))
        return 0
    cols = ("name", "kind", "distribution", "version")
    widths = {c: max([len(c)] + [len(str(r[c])) for r in rows]) for c in cols}
    print("  ".join(c.upper().ljust(widths[c]) for c in cols))
    for r in rows:
        print("  ".join(str(r[c]).ljust(widths[c]) for c in cols))
    for f in failures:
        print(f"FAILED  {f['plugin']} ({f['distribution']}): {f['error']}")
    return 0
