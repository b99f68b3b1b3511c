"""The harness's layers (code/harness/__init__.py): imports only downward, no cycles, no function-level imports of
the project's own modules. The checker reads the code as text (ast), so a test failure names the file and line."""
import ast
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CODE = os.path.join(ROOT, "code")

# Bottom to top. Folders on one row are one layer and may not import each other; a module may import its own folder.
LAYERS = (
    ("harness.core",),
    ("harness.graph",),
    ("harness.backends", "resnet50"),
    ("harness.config",),
    ("harness.artifacts",),
    ("harness.loadgen",),
    ("harness.report",),
    ("harness.submission",),
    ("harness.tune",),
    ("harness.actions",),
    ("main",),
)
# Where a function-level import of a project module is the point: a backend's package loads its libraries only when
# its BACKEND is asked for (reading its options must not import torch or tensorrt).
LAZY_OK = {f"harness.backends.{name}": {"harness.backends.{name}.backend".format(name=name)}
           for name in ("null", "onnxruntime", "torch", "tensorrt")}


def modules(code_dir: str = CODE) -> dict[str, str]:
    out = {}
    for folder in ("harness", "resnet50"):
        for dp, _, files in os.walk(os.path.join(code_dir, folder)):
            for f in files:
                if f.endswith(".py"):
                    path = os.path.join(dp, f)
                    name = os.path.relpath(path, code_dir)[:-3].replace(os.sep, ".")
                    out[name[:-9] if name.endswith(".__init__") else name] = path
    out["main"] = os.path.join(code_dir, "main.py")
    return out


def _targets(node, current: str, known: dict[str, str]) -> list[str]:
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
    else:
        base = node.module or ""
        if node.level:
            parts = current.split(".")
            is_pkg = known.get(current, "").endswith("__init__.py")
            parts = parts[:len(parts) - node.level + (1 if is_pkg else 0)]
            base = ".".join(parts + ([node.module] if node.module else []))
        names = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
    out = []
    for name in names:
        while name and name not in known and "." in name:
            name = name.rsplit(".", 1)[0]
        if name in known and name != current:
            out.append(name)
    return out


def import_graph(known: dict[str, str]) -> tuple[dict[str, dict[str, int]], list[tuple[str, str, int]]]:
    """Module-level edges {module: {imported: line}} and function-level imports [(module, imported, line)]."""
    edges: dict[str, dict[str, int]] = {m: {} for m in known}
    in_functions = []
    for name, path in known.items():
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read(), path)

        def visit(node, in_function):
            for child in ast.iter_child_nodes(node):
                if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                    visit(child, True)
                elif isinstance(child, (ast.Import, ast.ImportFrom)):
                    for target in _targets(child, name, known):
                        if in_function:
                            in_functions.append((name, target, child.lineno))
                        else:
                            edges[name].setdefault(target, child.lineno)
                else:
                    visit(child, in_function)
        visit(tree, False)
    return edges, in_functions


def layer_of(module: str) -> tuple[int, str]:
    for rank, folders in enumerate(LAYERS):
        for folder in folders:
            if module == folder or module.startswith(folder + "."):
                return rank, folder
    if module == "harness":
        return 0, "harness"
    raise KeyError(module)


def cycles(edges: dict[str, dict[str, int]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]
    sys.setrecursionlimit(max(10000, sys.getrecursionlimit()))

    def strong(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, {}):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))
    for v in list(edges):
        if v not in index:
            strong(v)
    return out


def violations(edges, in_functions, known=None) -> list[str]:
    """Every import against the layer order, every cycle, every function-level import of a project module."""
    problems = []
    for module, targets in sorted(edges.items()):
        try:
            rank, folder = layer_of(module)
        except KeyError:
            problems.append(f"{module}: in no layer; add its folder to LAYERS (tests/unit/test_layers.py) and to "
                            "code/harness/__init__.py")
            continue
        for target, line in sorted(targets.items()):
            try:
                t_rank, t_folder = layer_of(target)
            except KeyError:
                continue    # reported as a module of its own
            if t_folder == folder or target == "harness":
                continue
            if t_rank >= rank:
                where = (known or {}).get(module, module)
                problems.append(f"{where}:{line}: {module} imports {target}, which is "
                                f"{'in the same layer' if t_rank == rank else 'above it'} ({t_folder})")
    for component in cycles(edges):
        problems.append("import cycle: " + " -> ".join(component))
    for module, target, line in in_functions:
        if target not in LAZY_OK.get(module, ()):
            where = (known or {}).get(module, module)
            problems.append(f"{where}:{line}: {module} imports {target} inside a function; import it at the top "
                            "(a heavy third-party library may stay inside the function)")
    return problems


def test_the_harness_keeps_its_layers():
    known = modules()
    edges, in_functions = import_graph(known)
    problems = violations(edges, in_functions, known)
    assert not problems, "\n".join(problems)


def test_every_module_imports_on_its_own():
    """Each module imports in a fresh interpreter by itself: no module relies on another having been imported first
    (which a hidden cycle would)."""
    import subprocess
    names = sorted(m for m in modules() if m != "main" and ".backends." not in m)
    script = ("import importlib, sys; sys.path.insert(0, sys.argv[1]); bad = []\n"
              "for m in sys.argv[2:]:\n"
              "    try: importlib.import_module(m)\n"
              "    except Exception as e: bad.append(f'{m}: {type(e).__name__}: {e}')\n"
              "print('\\n'.join(bad)); sys.exit(1 if bad else 0)")
    # One interpreter per group of modules would hide order effects; one per module is slow. Importing them in
    # reverse layer order in one process makes every module import its dependencies itself.
    ordered = sorted(names, key=lambda m: -layer_of(m)[0])
    result = subprocess.run([sys.executable, "-c", script, CODE, *ordered], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("edges, expected", [
    # 8e071e8's first cycle, in today's folders: engines -> calibration -> the TensorRT plan -> engines
    ({"harness.artifacts.engines": {"harness.artifacts.calibration": 1},
      "harness.artifacts.calibration": {"harness.backends.tensorrt.plan": 1},
      "harness.backends.tensorrt.plan": {"harness.artifacts.engines": 1}},
     ["harness.backends.tensorrt.plan imports harness.artifacts.engines, which is above it", "import cycle"]),
    # the second: prepare -> run -> prepare, run -> submission.runs, loadgen_run -> tune, sut -> loadgen_run
    ({"harness.actions.generate_engines": {"harness.actions.run": 1},
      "harness.actions.run": {"harness.actions.generate_engines": 1, "harness.submission.runs": 1},
      "harness.loadgen.run": {"harness.tune.tuner": 1},
      "harness.tune.tuner": {"harness.loadgen.run": 1},
      "harness.report.page": {"harness.loadgen.run": 1},
      "harness.loadgen.scenario": {"harness.submission.runs": 1}},
     ["harness.loadgen.run imports harness.tune.tuner, which is above it",
      "harness.loadgen.scenario imports harness.submission.runs, which is above it", "import cycle"]),
    # siblings of one layer
    ({"harness.backends.tensorrt.backend": {"resnet50.models": 1}},
     ["harness.backends.tensorrt.backend imports resnet50.models, which is in the same layer"]),
])
def test_the_checker_fails_on_the_cycles_of_8e071e8(edges, expected):
    problems = "\n".join(violations(edges, []))
    for text in expected:
        assert text in problems, problems


def test_the_checker_refuses_function_level_imports_and_unknown_folders():
    problems = violations({"harness.gadgets.x": {}, "harness.config.files": {}},
                          [("harness.config.files", "harness.config.flags", 12)])
    assert any("in no layer" in p for p in problems)
    assert any("inside a function" in p for p in problems)
