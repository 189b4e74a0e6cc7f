#!/usr/bin/env python3
"""The house's import rules, checked on the source (imports inside functions included).

    python .ci/check_layers.py        prints each broken rule; exit status 1 when there is one

Layers, top to bottom (a module may import its own layer and the ones below it):

    entry     webapp (create_app), webapp.cli, jobs.* — builds the app, the flask commands, what workers run
    edge      webapp.web.*, webapp.api.*             — pages, the JSON API
    domain    webapp.domain.*                        — every rule and state change
    base      webapp.storage.*, webapp.plumbing.*    — database, models, queue, dev stack
    config    webapp.config                          — settings from the environment

Also: no import circle among modules (a package's __init__ counts as a module);
webapp never imports jobs or sandbox; jobs never imports sandbox; the web and the
API never import each other, except the API using webapp.web.errors, .extensions and
.access (one error format, one limiter and CSRF, one notion of roles).
"""
from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("webapp", "jobs")
LAYERS = (  # (prefix, layer rank): the longest matching prefix wins
    ("webapp.config", 0),
    ("webapp.storage", 1), ("webapp.plumbing", 1),
    ("webapp.domain", 2),
    ("webapp.web", 3), ("webapp.api", 3),
    ("webapp.cli", 4), ("webapp", 4), ("jobs", 4),
)
NAMES = {0: "config", 1: "base", 2: "domain", 3: "edge", 4: "entry"}
FORBIDDEN = {"webapp": ("jobs", "sandbox"), "jobs": ("sandbox",)}
# What the API may use of the web layer (one error format, one limiter and CSRF, one notion of
# roles); the web never imports the API.
SHARED_WEB = {"webapp.web.errors", "webapp.web.extensions", "webapp.web.access"}


def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if "migrations" in parts:
                continue  # frozen copies, loaded by the migration runner only
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def imports(path: Path, name: str, known: dict[str, Path]) -> set[str]:
    """Every module `path` imports, anywhere in it, resolved to the modules we know."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            for alias in node.names:
                full = f"{base}.{alias.name}"
                targets.add(full if full in known else base)
    resolved = set()
    for target in targets:
        while target and target not in known and "." in target:
            target = target.rpartition(".")[0]
        if target in known or target.split(".")[0] in ("sandbox",):
            resolved.add(target)
    resolved.discard(name)
    return resolved


def layer(name: str) -> int | None:
    best = None
    for prefix, rank in LAYERS:
        if name == prefix or name.startswith(prefix + "."):
            if best is None or len(prefix) > len(best[0]):
                best = (prefix, rank)
    return best[1] if best else None


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index, low, on_stack, stack, result, counter = {}, {}, set(), [], [], [0]
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in graph:
                    continue
                if child not in index:
                    index[child] = low[child] = counter[0]
                    counter[0] += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        result.append(sorted(component))
    return result


def graph_of_source() -> dict[str, set[str]]:
    known = modules()
    return {name: imports(path, name, known) for name, path in known.items()}


def problems(graph: dict[str, set[str]]) -> list[str]:
    found = []
    for name, targets in sorted(graph.items()):
        top = name.split(".")[0]
        for target in sorted(targets):
            if target.split(".")[0] in FORBIDDEN.get(top, ()):
                found.append(f"{name} imports {target}: {top} never imports {target.split('.')[0]}")
                continue
            if name.startswith("webapp.api") and target.startswith("webapp.web") and target not in SHARED_WEB:
                found.append(f"{name} imports {target}: the API uses only {', '.join(sorted(SHARED_WEB))} of the web")
            if name.startswith("webapp.web") and target.startswith("webapp.api"):
                found.append(f"{name} imports {target}: the web never imports the API")
            mine, theirs = layer(name), layer(target)
            if mine is None or theirs is None:
                continue
            if theirs > mine:
                found.append(f"{name} ({NAMES[mine]}) imports {target} ({NAMES[theirs]}): imports point down")
    for component in cycles(graph):
        found.append("import circle: " + " -> ".join(component))
    return found


def main() -> int:
    found = problems(graph_of_source())
    for problem in found:
        print(problem)
    if not found:
        print(f"imports point down, no circles ({len(modules())} modules)")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
