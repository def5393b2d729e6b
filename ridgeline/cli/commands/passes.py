"""``ridgeline passes``: every pass and named pipeline, with its options and where it comes from."""

from __future__ import annotations

import argparse

from ..common import emit, plain_text, table


def register(sub) -> None:
    p = sub.add_parser("passes", help="list passes and pipelines: summary, options, origin (plugins included)")
    p.add_argument("--json", action="store_true", help="machine-readable output")


def run(args: argparse.Namespace) -> int:
    from ...passes import list_passes
    infos = list_passes()
    data = [{"name": i.name, "kind": i.kind, "summary": i.summary, "origin": i.origin,
             "options": [{"name": o.name, "type": o.type_text, "default": None if o.required else o.default,
                          "required": o.required} for o in i.options],
             **({"expands_to": i.expansion} if i.kind == "pipeline" else {}),
             **({"error": i.error} if i.error else {})} for i in infos]

    def render() -> None:
        rows = []
        for i in infos:
            if i.error:
                summary = f"[failed to load] {i.error}"
            elif i.kind == "pipeline":
                summary = f"{i.summary}: {i.expansion}"
            else:
                summary = i.summary
            opts = ", ".join(str(o) for o in i.options) or "-"
            rows.append((i.name if i.kind == "pass" else f"{i.name} (pipeline)", plain_text(summary), opts, i.origin))
        table("passes", ["name", "summary", "options", "origin"], rows, justify=["left"] * 4)
    emit(args, data, render)
    return 0
