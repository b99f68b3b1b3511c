"""harness/artifacts/fingerprints.py: how two runs' fingerprints differ."""
from harness.artifacts.fingerprints import FINGERPRINT_KEYS, fingerprint_differences

FP = {"system_id": "CPU", "model": "resnet50", "model_md5": "aa", "backend": "onnxruntime", "precision": "fp32",
      "batch_size": 8, "config_block": "CPU", "config_ver": "default", "engine": "e.onnx", "engine_md5": "bb",
      "dataset_map_md5": "cc", "dataset_samples": 50000}


def test_identical_fingerprints_have_no_differences():
    assert fingerprint_differences(FP, dict(FP)) == []


def test_each_difference_is_named_in_words_with_both_values():
    other = {**FP, "batch_size": 16, "precision": "int8"}
    assert fingerprint_differences(FP, other) == ["precision 'fp32' vs 'int8'", "batch size 8 vs 16"]
    assert fingerprint_differences(FP, {**FP, "engine_md5": "zz"}) == ["engine file contents 'bb' vs 'zz'"]


def test_a_missing_key_differs_from_a_set_one_and_other_keys_are_ignored():
    other = {k: v for k, v in FP.items() if k != "model_md5"}
    other["unrelated"] = 1
    assert fingerprint_differences(FP, other) == ["model file 'aa' vs None"]


def test_a_run_without_a_fingerprint():
    for a, b in ((None, FP), (FP, None), ({}, FP), (None, None)):
        assert fingerprint_differences(a, b) == ["a run has no fingerprint"]


def test_every_key_has_a_label():
    assert set(FINGERPRINT_KEYS) == set(FP)
    assert len(fingerprint_differences(FP, {k: "x" for k in FP})) == len(FP)
