"""harness/submission/truncate.py: cutting a staged accuracy log, recording its hash and keeping the full copy."""
import hashlib
import os

import pytest

from harness.core.errors import HarnessError
from harness.submission import rules, truncate
from harness.submission.integrity import backup_path


def test_truncate_bytes_keeps_head_and_tail():
    keep, sep = rules.TRUNCATE_KEEP_BYTES, rules.TRUNCATE_SEPARATOR.encode()
    small = b"x" * (2 * keep + len(sep))
    assert truncate.truncate_bytes(small) == small
    data = bytes(range(256)) * 100
    cut = truncate.truncate_bytes(data)
    assert cut == data[:keep] + sep + data[-keep:]
    assert len(cut) <= rules.MAX_ACCURACY_LOG_BYTES


def _folder(tmp_path, log: bytes, txt="accuracy=76.000%, good=38, total=50\n"):
    results = tmp_path / "results_dir"
    folder = results / "closed" / "Org" / "results" / "T4x1" / "resnet50" / "Offline" / "accuracy"
    folder.mkdir(parents=True)
    (folder / "mlperf_log_accuracy.json").write_bytes(log)
    (folder / "accuracy.txt").write_text(txt)
    return str(results), str(folder)


def test_truncate_folder_cuts_records_the_hash_and_backs_up(tmp_path):
    log = b"[\n" + b'{"seq_id": 1, "qsl_idx": 2, "data": "00"},\n' * 1000 + b"]\n"
    results, folder = _folder(tmp_path, log)
    digest = hashlib.sha256(log).hexdigest()
    what, got = truncate.truncate_folder(results, folder)
    assert got == digest
    backup = backup_path(results, os.path.join(os.path.relpath(folder, results), "mlperf_log_accuracy.json"))
    assert what == f"truncated {len(log)} -> {len(truncate.truncate_bytes(log))} bytes, full log in {backup}"
    assert open(backup, "rb").read() == log
    assert open(os.path.join(folder, "mlperf_log_accuracy.json"), "rb").read() == truncate.truncate_bytes(log)
    assert open(os.path.join(folder, "accuracy.txt")).read().endswith(f"hash={digest}\n")
    assert truncate.truncate_folder(results, folder) == ("already truncated", digest)      # a second run


def test_a_small_log_stays_whole_with_its_hash(tmp_path):
    results, folder = _folder(tmp_path, b"[]\n")
    what, digest = truncate.truncate_folder(results, folder)
    assert what == "hash recorded; 3 bytes fit in the first and last 4 KiB, so the log stays whole"
    assert digest == hashlib.sha256(b"[]\n").hexdigest()
    assert open(os.path.join(folder, "accuracy.txt")).read().count("hash=") == 1


def test_a_hash_that_does_not_match_the_large_log_is_refused(tmp_path):
    results, folder = _folder(tmp_path, b"x" * 20000, txt="accuracy=76.000%\nhash=" + "0" * 64 + "\n")
    with pytest.raises(HarnessError, match=r"accuracy/accuracy\.txt records hash 0{64} but the log's is [0-9a-f]{64}; "
                                           r"stage the runs again \(make update_results\)\.$"):
        truncate.truncate_folder(results, folder)


def test_missing_files_name_what_to_do(tmp_path):
    results, folder = _folder(tmp_path, b"[]")
    os.remove(os.path.join(folder, "accuracy.txt"))
    with pytest.raises(HarnessError, match=r"Offline/accuracy/accuracy\.txt is missing; stage the runs again"):
        truncate.truncate_folder(results, folder)
    os.remove(os.path.join(folder, "mlperf_log_accuracy.json"))
    with pytest.raises(HarnessError, match=r"Offline/accuracy/mlperf_log_accuracy\.json is missing; stage the runs"):
        truncate.truncate_folder(results, folder)


def test_accuracy_folders_include_test01_where_staged(tmp_path):
    results = str(tmp_path)
    record = {"round": "v6.1", "systems": {"closed/Org/T4x1": {"scenarios": {"Offline": {}, "Server": {}}}}}
    base = os.path.join(results, "closed", "Org", "results", "T4x1", "resnet50")
    os.makedirs(os.path.join(base, "Server", "TEST01", "accuracy"))
    assert truncate.accuracy_folders(results, record) == [
        ("closed/Org/T4x1", os.path.join(base, "Offline", "accuracy")),
        ("closed/Org/T4x1", os.path.join(base, "Server", "accuracy")),
        ("closed/Org/T4x1", os.path.join(base, "Server", "TEST01", "accuracy"))]
