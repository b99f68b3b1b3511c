"""truncate_results: cut the staged accuracy logs as the submission rules require, recording their hash.

For every accuracy/ folder of the staged tree (the accuracy run of each scenario and TEST01's):
- the sha256 of the full mlperf_log_accuracy.json is appended to the accuracy.txt beside it as `hash=<hex>`;
- a copy of the full log goes to <results_dir>.records/accuracy_log_backup/<same path>, outside the submission
  root (keep it: MLCommons may ask);
- the log is cut to its first 4 KiB and last 4 KiB joined by "\\n\\n...\\n\\n" (at most 10 KiB, the checker's limit).
Already truncated logs (hash present, small file) are left alone, so it can run twice. staging_record.json is
updated with the new file hashes and each full log's hash, so check_submission can tell truncation from tampering.
"""
from __future__ import annotations

import os
import shutil

from harness.config.command import Command
from harness.core.errors import HarnessError
from harness.core.storage import file_digest, read_json
from harness.submission import rules
from harness.submission.logs import read_accuracy_txt, write_json
from harness.submission.integrity import backup_path, record_path as staging_record_path
from harness.submission.stage import default_results_dir


def accuracy_folders(results_dir: str, record: dict) -> list[tuple[str, str]]:
    """(record key, accuracy folder) for every staged accuracy/ folder."""
    r = rules.get_round(record.get("round"))
    out = []
    for key, entry in sorted(record.get("systems", {}).items()):
        division, submitter, system = key.split("/")
        base = os.path.join(results_dir, division, submitter)
        for scenario in entry.get("scenarios", {}):
            out.append((key, os.path.join(base, rules.scenario_dir(r, system, scenario), "accuracy")))
            test01 = os.path.join(base, rules.compliance_dir(r, system, scenario), "TEST01", "accuracy")
            if os.path.isdir(test01):
                out.append((key, test01))
    return out


def truncate_bytes(data: bytes) -> bytes:
    keep, sep = rules.TRUNCATE_KEEP_BYTES, rules.TRUNCATE_SEPARATOR.encode()
    if len(data) <= 2 * keep + len(sep):
        return data
    return data[:keep] + sep + data[-keep:]


def truncate_folder(results_dir: str, folder: str) -> tuple[str, str]:
    """Returns (what happened, full-log sha256)."""
    log, txt = os.path.join(folder, "mlperf_log_accuracy.json"), os.path.join(folder, "accuracy.txt")
    rel = os.path.relpath(folder, results_dir)
    if not os.path.exists(log):
        raise HarnessError(f"{rel}/mlperf_log_accuracy.json is missing; stage the runs again (make update_results).")
    if not os.path.exists(txt):
        raise HarnessError(f"{rel}/accuracy.txt is missing; stage the runs again (make update_results).")
    _, recorded = read_accuracy_txt(txt)
    size = os.path.getsize(log)
    if recorded and size <= rules.MAX_ACCURACY_LOG_BYTES:
        return "already truncated", recorded
    digest = file_digest(log, "sha256")
    if recorded and recorded != digest:
        raise HarnessError(f"{rel}/accuracy.txt records hash {recorded} but the log's is {digest}; stage the runs "
                           "again (make update_results).")
    backup = backup_path(results_dir, os.path.join(rel, "mlperf_log_accuracy.json"))
    os.makedirs(os.path.dirname(backup), exist_ok=True)
    shutil.copyfile(log, backup)
    if not recorded:
        with open(txt, "a") as f:
            f.write(f"hash={digest}\n")
    with open(log, "rb") as f:
        data = f.read()
    cut = truncate_bytes(data)
    if len(cut) == len(data):
        return f"hash recorded; {size} bytes fit in the first and last 4 KiB, so the log stays whole", digest
    with open(log, "wb") as f:
        f.write(cut)
    return f"truncated {size} -> {len(cut)} bytes, full log in {backup}", digest


def truncate_results(args: Command, argv: list[str]) -> int:
    results_dir = default_results_dir(args)
    record_path = staging_record_path(results_dir)
    record = read_json(record_path, missing=None, expect=dict)
    if not record:
        raise HarnessError(f"No staged tree at {results_dir} ({record_path} is missing); run `make update_results` "
                           "first.")
    for key, folder in accuracy_folders(results_dir, record):
        what, digest = truncate_folder(results_dir, folder)
        entry = record["systems"][key]
        for name in ("mlperf_log_accuracy.json", "accuracy.txt"):
            rel = os.path.relpath(os.path.join(folder, name), results_dir)
            entry["files"][rel] = file_digest(os.path.join(folder, name), "sha256")
        entry.setdefault("full_accuracy_logs", {})[
            os.path.relpath(os.path.join(folder, "mlperf_log_accuracy.json"), results_dir)] = digest
        print(f"{os.path.relpath(folder, results_dir)}: {what}; hash={digest}")
    write_json(record_path, record)
    return 0
