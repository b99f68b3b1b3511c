"""Size rules for code/ (issue 18): no module over MAX_MODULE_LINES lines, no function or method over
MAX_FUNCTION_LINES lines (from its `def` line to its last line, decorators not counted). The checker reads the code
as text (ast), so a failure names the file, the function and its line."""
import ast
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CODE = os.path.join(ROOT, "code")

MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 60

# Known offenders, as (path relative to code/, function qualname or None for the module's own length): none. A
# module or function over the limit is split by responsibility, not listed here.
ALLOWED: set = set()


def python_files(code_dir: str = CODE) -> list[str]:
    out = []
    for dp, dirs, files in os.walk(code_dir):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        out += [os.path.join(dp, f) for f in sorted(files) if f.endswith(".py")]
    return out


def functions(tree: ast.AST) -> list[tuple[str, int, int]]:
    """(qualified name, first line, lines) of every function and method, nested ones included."""
    out = []

    def visit(node, prefix):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                name = prefix + child.name
                out.append((name, child.lineno, child.end_lineno - child.lineno + 1))
                visit(child, name + ".<locals>.")
            elif isinstance(child, ast.ClassDef):
                visit(child, prefix + child.name + ".")
            else:
                visit(child, prefix)
    visit(tree, "")
    return out


def offenders(code_dir: str = CODE) -> dict[tuple[str, object], str]:
    """{(path relative to code_dir, function or None): what is over the limit} for the whole tree."""
    found = {}
    for path in python_files(code_dir):
        rel = os.path.relpath(path, code_dir).replace(os.sep, "/")
        with open(path, encoding="utf-8") as f:
            text = f.read()
        lines = text.count("\n") + (0 if text.endswith("\n") or not text else 1)
        if lines > MAX_MODULE_LINES:
            found[(rel, None)] = f"code/{rel}: {lines} lines (at most {MAX_MODULE_LINES} per module)"
        for name, line, length in functions(ast.parse(text, path)):
            if length > MAX_FUNCTION_LINES:
                found[(rel, name)] = (f"code/{rel}:{line}: {name} is {length} lines (at most {MAX_FUNCTION_LINES} "
                                      "per function)")
    return found


def test_modules_and_functions_keep_their_size():
    problems = [why for key, why in sorted(offenders().items(), key=str) if key not in ALLOWED]
    assert not problems, "split these into named pieces:\n" + "\n".join(problems)


def test_the_allow_list_is_empty():
    assert not ALLOWED, "no exceptions to the size rules: split these instead: " + ", ".join(map(str, ALLOWED))


def test_the_checker_names_file_and_function(tmp_path):
    body = "".join(f"    x{i} = {i}\n" for i in range(MAX_FUNCTION_LINES))
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "long.py").write_text("class C:\n    def method(self):\n" + body.replace("    ", "        ")
                                              + "\n\ndef short():\n    return 1\n")
    (tmp_path / "big.py").write_text("x = 1\n" * (MAX_MODULE_LINES + 1))
    found = offenders(str(tmp_path))
    assert set(found) == {("pkg/long.py", "C.method"), ("big.py", None)}
    assert "code/pkg/long.py:2: C.method is 61 lines" in found[("pkg/long.py", "C.method")]
    assert "code/big.py: 501 lines" in found[("big.py", None)]


@pytest.mark.parametrize("source, name", [
    ("def outer():\n    def inner():\n" + "".join(f"        y{i} = {i}\n" for i in range(MAX_FUNCTION_LINES))
     + "    return inner\n", "outer.<locals>.inner"),
    ("async def fetch():\n" + "".join(f"    z{i} = {i}\n" for i in range(MAX_FUNCTION_LINES)), "fetch"),
])
def test_nested_and_async_functions_count(tmp_path, source, name):
    (tmp_path / "m.py").write_text(source)
    assert ("m.py", name) in offenders(str(tmp_path))
