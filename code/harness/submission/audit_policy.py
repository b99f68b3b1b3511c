"""Which runs an audit test is verified against, and how often TEST04 is tried (pure logic; audit.py runs it).

- TEST01 compares the responses logged during the audit run with those of an AccuracyOnly run. That run must come
  from the same engine and config as the performance reference (the run fingerprint, runs.py): the newest AccuracyOnly
  run whose fingerprint equals the performance run's, not simply the newest AccuracyOnly run (an INT8 accuracy run
  made after an FP32 performance run would otherwise be compared, and fail).
- TEST04 (the same sample issued over and over must not be faster than the performance run by more than 10%) is
  sensitive to noise; NVIDIA's harness runs it up to three times and keeps the first pass. So does this one: every
  try is logged, a failed try's folder is kept beside the final one as <TEST04>.try<N>, and the final
  verification.json lists every try under "attempts". Only a failed performance comparison is tried again: a run
  from another engine or config, an audit.config that was not applied, or a run that did not finish fail at once.
"""
from __future__ import annotations

from typing import Any, Callable, Optional

from harness.submission.runs import Run
from harness.artifacts.fingerprints import fingerprint_differences

RETRIED_TESTS = {"TEST04": 3}


def accuracy_reference(runs: list[Run], system: str, scenario: str, perf: Run) -> tuple[Optional[Run], str]:
    """(the newest AccuracyOnly run with perf's fingerprint, or None and why there is none)."""
    candidates = [r for r in runs if r.system == system and r.scenario == scenario and r.kind == "accuracy"]
    same = [r for r in candidates if not fingerprint_differences(perf.fingerprint, r.fingerprint)]
    if same:
        return same[-1], ""
    if not candidates:
        return None, "no AccuracyOnly run"
    newest = candidates[-1]
    diffs = fingerprint_differences(perf.fingerprint, newest.fingerprint)
    return None, (f"no AccuracyOnly run from the same engine and config as the performance run {perf.label} "
                  f"({len(candidates)} other(s); the newest, {newest.label}, differs in: {'; '.join(diffs)})")


def retryable(result: Optional[dict[str, Any]]) -> bool:
    """A failed try that another try may pass: only the performance comparison failed, on a finished run."""
    if not result or result.get("passed"):
        return False
    if result.get("fingerprint_differences"):
        return False
    reasons = result.get("reasons") or []
    return bool(reasons) and all(r.startswith("performance:") and "not applied" not in r and "differ" not in r
                                 for r in reasons)


def run_with_retries(test: str, attempt: Callable[[int], Optional[dict]], keep_failed: Callable[[int], str],
                     say: Callable[[str], None] = print, tries: Optional[int] = None) -> Optional[dict]:
    """attempt(n) runs try n and returns its verification (None: it did not finish); keep_failed(n) moves a failed
    try's folder aside and returns where. The last try's result, with "attempts" listing every try."""
    tries = tries or RETRIED_TESTS.get(test, 1)
    history: list[dict[str, Any]] = []
    result: Optional[dict] = None
    for n in range(1, tries + 1):
        result = attempt(n)
        passed = bool(result and result.get("passed"))
        reasons = (result or {}).get("reasons") or ([] if result else ["the run did not finish"])
        entry: dict[str, Any] = {"attempt": n, "passed": passed, "reasons": reasons}
        if tries > 1:
            say(f"{test} try {n} of {tries}: {'TEST PASS' if passed else 'TEST FAIL: ' + '; '.join(reasons)}")
        if passed or n == tries or not retryable(result):
            history.append(entry)
            break
        entry["kept_in"] = keep_failed(n)
        history.append(entry)
        say(f"{test}: trying again (up to {tries} tries, as NVIDIA's harness does); this try is kept in "
            f"{entry['kept_in']}")
    if result is not None and tries > 1:
        result["attempts"] = history
    return result
