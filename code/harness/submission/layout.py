"""What a staged tree may hold, and which runs may be staged where (update_results refuses, check_submission reports):

- plain files only: a symbolic link (a log replaced by a link to a file outside the tree, a link to /etc) is refused
  wherever it is, since the checker and the upload read through it;
- only the expected entries: <division>/ holds submitter folders, <division>/<submitter>/ holds systems/,
  results/, the code folder (src/, code/ before v6.0), DRY_RUN.txt and (v5.x) measurements/ and compliance/;
- the code folder as staged: its files are hashed at staging (staging_record.json "code") and checked;
- runs of the machine they are staged as: each run records the system id detected where it ran
  (summary.json "detected_system"); a GPU id on a machine detected as another, or runs of a CPU staged as a GPU
  system, are refused (CPU ids all share the `CPU` config block, so any CPU id may be staged as another);
- one owner per run: the same runs (the same performance mlperf_log_detail.txt) staged under two submitters or two
  systems of one tree are refused.
"""
from __future__ import annotations

import os
from typing import Optional

from harness.config.systems import is_cpu_system
from harness.core.storage import file_digest

SUBMITTER_ENTRIES = ("systems", "results", "DRY_RUN.txt")
V5_ENTRIES = ("measurements", "compliance")
PERF_LOG = os.path.join("performance", "run_1", "mlperf_log_detail.txt")


def same_machine(detected: Optional[str], staged: str) -> bool:
    """Whether runs detected as `detected` may be staged as `staged` (unknown when the run recorded nothing)."""
    if not detected or detected == staged:
        return True
    return is_cpu_system(detected) and is_cpu_system(staged)


def machine_problem(detected: Optional[str], staged: str, label: str) -> Optional[str]:
    if same_machine(detected, staged):
        return None
    return (f"{label} ran on a machine detected as {detected!r}, but would be staged as system {staged!r}; its "
            f"systems/{staged}.json would describe this machine. Stage it as --system_name={detected}, or run it "
            f"again on the {staged} machine")


def symlinks(results_dir: str) -> list[tuple[str, str]]:
    """(path, problem) for every symbolic link under the tree (links are not followed)."""
    out = []
    for root, dirs, files in os.walk(results_dir):
        for name in sorted(dirs + files):
            path = os.path.join(root, name)
            if os.path.islink(path):
                out.append((path, f"a symbolic link (to {os.readlink(path)}): a submission holds plain files only; "
                                  "replace it with the staged file (make update_results stages it again)"))
    return out


def stray_entries(results_dir: str, division: str, code_dir: str, v6: bool) -> list[tuple[str, str]]:
    """(path, problem) for what does not belong in <division>/ or <division>/<submitter>/."""
    out = []
    top = os.path.join(results_dir, division)
    allowed = SUBMITTER_ENTRIES + (code_dir,) + (() if v6 else V5_ENTRIES)
    for submitter in sorted(os.listdir(top)):
        base = os.path.join(top, submitter)
        if os.path.islink(base):
            continue                                      # reported by symlinks()
        if not os.path.isdir(base):
            out.append((base, f"a file in {division}/, which holds only <submitter>/ folders: remove it"))
            continue
        for name in sorted(os.listdir(base)):
            if name not in allowed:
                out.append((os.path.join(base, name), f"not part of a submission ({division}/<submitter>/ holds "
                                                      f"{', '.join(allowed)}): remove it"))
    return out


def code_problems(results_dir: str, base: str, code_dir: str, recorded: Optional[dict]) -> list[tuple[str, str]]:
    """The code folder against the sha256 of each file recorded at staging."""
    if recorded is None:
        return []
    folder = os.path.join(base, code_dir)
    found = hash_folder(results_dir, folder)
    out = []
    for rel, digest in recorded.items():
        if rel not in found:
            out.append((rel, "missing (it was staged with the harness's code)"))
        elif found[rel] != digest:
            out.append((rel, "changed since it was staged (sha256 differs from staging_record.json \"code\"); "
                             "stage again to ship the code that made the runs"))
    for rel in found:
        if rel not in recorded:
            out.append((rel, "not staged by this harness (added to the code folder afterwards)"))
    return out


def hash_folder(results_dir: str, folder: str) -> dict[str, str]:
    out = {}
    for root, _, files in os.walk(folder):
        for name in files:
            full = os.path.join(root, name)
            if not os.path.islink(full):
                out[os.path.relpath(full, results_dir)] = file_digest(full, "sha256")
    return dict(sorted(out.items()))


def perf_log_digests(entry: dict) -> dict[str, str]:
    """sha256 -> path of each performance mlperf_log_detail.txt of a staging-record entry."""
    return {d: rel for rel, d in (entry.get("files") or {}).items() if rel.endswith(PERF_LOG)}


def shared_runs(entries: dict) -> list[tuple[str, str]]:
    """(path, problem) for a performance log staged under two submitters or two systems of one tree."""
    owner: dict[str, tuple[str, str]] = {}
    out = []
    for key in sorted(entries):
        for digest, rel in perf_log_digests(entries[key]).items():
            if digest in owner and _owner(owner[digest][0]) != _owner(key):
                out.append((rel, f"the same run as {owner[digest][1]}: one run is staged under one submitter and "
                                 "one system only; remove one of them (make update_results into a new --results_dir)"))
            owner.setdefault(digest, (key, rel))
    return out


def _owner(key: str) -> tuple[str, ...]:
    """(submitter, system) of a `division/submitter/system` key: a division may hold the same runs as another."""
    return tuple(key.split("/")[1:])


def description_problem(system: str, desc: dict) -> Optional[str]:
    """A GPU system id whose description says the machine has no accelerator (detected where it was staged)."""
    if is_cpu_system(system) or str(desc.get("accelerators_per_node")) != "0":
        return None
    return (f"system {system!r} is not a CPU id, but its description says the machine has no accelerator "
            f"(accelerators_per_node 0; {desc.get('system_name')!r}): runs of a CPU staged under a GPU system's "
            "name. Stage them under the id they ran on (make update_results with that --system_name)")
