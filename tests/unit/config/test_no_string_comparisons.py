"""Scenarios and test modes are values (harness/config/scenarios.py: Scenario, TestMode): code asks them, it does not
compare their names. This scans code/harness with ast and fails on `x == "Server"`, `mode != "AccuracyOnly"`,
`name in ("SingleStream", "MultiStream")` and the like anywhere outside config/scenarios.py. (A name as data, such as
a tuple of scenarios a division requires, or a substring search of a log line, is no comparison and passes.)"""
import ast
import json
import os

from harness.config.scenarios import TEST_MODES, TestMode, run_kind

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
HARNESS = os.path.join(ROOT, "code", "harness")
NAMES = {"Offline", "Server", "SingleStream", "MultiStream",
         "PerformanceOnly", "AccuracyOnly", "SubmissionRun", "FindPeakPerformance"}
ALLOWED = {os.path.join("config", "scenarios.py")}


def _is_name(node) -> bool:
    return isinstance(node, ast.Constant) and node.value in NAMES


def comparisons(source: str) -> list[tuple[int, str]]:
    """(line, text) of each comparison of a value with a scenario or test-mode name in `source`."""
    out = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Compare):
            continue
        operands = [node.left] + list(node.comparators)
        for op, left, right in zip(node.ops, operands, operands[1:]):
            if isinstance(op, (ast.Eq, ast.NotEq, ast.Is, ast.IsNot)) and (_is_name(left) or _is_name(right)):
                out.append((node.lineno, ast.unparse(node)))
            elif isinstance(op, (ast.In, ast.NotIn)) and isinstance(right, (ast.Tuple, ast.List, ast.Set)) \
                    and any(_is_name(e) for e in right.elts):
                out.append((node.lineno, ast.unparse(node)))
    return out


def test_the_checker_finds_what_it_should():
    found = comparisons('a == "Server"\nif "Offline" != b: pass\nc in ("SingleStream", "x")\n'
                        'd not in ["AccuracyOnly"]\ne in {"SubmissionRun"}\n')
    assert [line for line, _ in found] == [1, 2, 3, 4, 5]
    assert comparisons('x = ("Server", "Offline")\n"FindPeakPerformance" in line\nf(s == sc.name)\n'
                       'y = {"Server": 1}.get(k)\nz == "ServerX"\n') == []


def test_no_scenario_or_test_mode_name_comparisons_in_the_harness():
    problems = []
    for dirpath, _, files in os.walk(HARNESS):
        for name in sorted(files):
            if not name.endswith(".py"):
                continue
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, HARNESS)
            if rel in ALLOWED:
                continue
            with open(path) as f:
                problems += [f"code/harness/{rel}:{line}: {text}" for line, text in comparisons(f.read())]
    assert not problems, ("compare Scenario / TestMode values (harness/config/scenarios.py), not names:\n"
                          + "\n".join(problems))


def test_test_modes_are_their_strings():
    assert TestMode.ACCURACY == "AccuracyOnly" and f"{TestMode.PERFORMANCE}" == "PerformanceOnly"
    assert json.dumps(TestMode.SUBMISSION) == '"SubmissionRun"' and TEST_MODES[0] == "PerformanceOnly"
    assert TestMode.of("nope") is None and TestMode.of("FindPeakPerformance") is TestMode.FIND_PEAK
    assert [run_kind(m) for m in TEST_MODES + (None,)] == ["performance", "accuracy", "submission", "unknown",
                                                          "unknown"]
    assert TestMode.SUBMISSION.measures_accuracy and not TestMode.PERFORMANCE.measures_accuracy

