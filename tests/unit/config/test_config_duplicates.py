"""A flag given twice, a key given twice in one JSON object, and config files that cannot be read are errors
naming them (issue 19); argparse and json.load would keep the last without a word."""
import json

import pytest

from conftest import run_main
from harness.actions import parse_args
from harness.config import files, runconfig
from harness.core.errors import HarnessError


@pytest.mark.parametrize("argv, needle", [
    (["--batch_size=1", "--batch_size=2"], "--batch_size is given 2 times (--batch_size=1, --batch_size=2)"),
    (["--scenarios=Offline", "--scenarios=Server"], "a comma list runs several"),
    (["--fast", "--fast=false"], "--fast is given 2 times"),
    (["--workers", "1", "--workers=2"], "--workers is given 2 times"),
])
def test_a_flag_given_twice_is_an_error_naming_both(argv, needle):
    with pytest.raises(HarnessError) as e:
        parse_args(["--action=run", *argv])
    assert needle in str(e.value)


def _config(tmp_path, text):
    (tmp_path / "Offline").mkdir(exist_ok=True)
    path = tmp_path / "Offline" / "config.json"
    path.write_bytes(text) if isinstance(text, bytes) else path.write_text(text)
    return str(tmp_path), str(path)


@pytest.mark.parametrize("text, needle", [
    ('{"default": {"batch_size": 8, "batch_size": 9}}', "block 'default', key 'batch_size' is given twice"),
    ('{"default": {"batch_size": 8}, "CPU": {}, "CPU": {"workers": 2}}', "block 'CPU' is given twice"),
    ('{"default": {"config_ver": {"a": {"workers": 1, "workers": 2}}}}',
     "block 'default.config_ver.a', key 'workers' is given twice"),
])
def test_a_key_given_twice_in_one_object_is_an_error(tmp_path, text, needle):
    folder, path = _config(tmp_path, text)
    with pytest.raises(HarnessError) as e:
        files.load_config_file(path)
    assert needle in str(e.value) and path in str(e.value)


def test_unreadable_config_files_name_the_file_and_what_to_do(tmp_path):
    folder, path = _config(tmp_path, b'{"default": {"comment": "caf\xe9"}}')
    with pytest.raises(HarnessError, match="is not UTF-8 text .byte 0xe9.*save it as UTF-8"):
        files.load_config_file(path)
    (tmp_path / "d" / "Offline" / "config.json").mkdir(parents=True)
    with pytest.raises(HarnessError, match="config.json is a folder; expected a JSON file"):
        files.resolve("Offline", "CPU", config_dir=str(tmp_path / "d"))
    (tmp_path / "plain").write_text("x")
    with pytest.raises(HarnessError, match="--config_dir=.*plain: a file, not a folder"):
        files.resolve("Offline", "CPU", config_dir=str(tmp_path / "plain"))


def test_comment_is_a_note_not_a_block(tmp_path):
    folder, path = _config(tmp_path, '{"default": {}, "comment": {"batch_size": 1}}')
    with pytest.raises(HarnessError, match="top-level `comment` is reserved for a note .a string., got an object"):
        files.load_config_file(path)
    with pytest.raises(HarnessError, match="reserves the name 'comment'"):
        runconfig.build(parse_args(["--action=run"]), "Offline", "comment")


def test_a_quoted_number_is_reported_as_a_string(tmp_path):
    folder, path = _config(tmp_path, json.dumps({"default": {"batch_size": "8"}}))
    with pytest.raises(HarnessError) as e:
        files.load_config_file(path)
    assert "key 'batch_size'=\"8\": a string (in quotes); expected an integer >= 1" in str(e.value)
    assert "without quotes" in str(e.value)


def test_main_exits_2_on_a_repeated_flag_and_an_unreadable_config(tmp_path):
    r = run_main("--action=generate_conf_files", "--scenarios=Offline", "--scenarios=Server")
    assert r.returncode == 2 and "ERROR: --scenarios is given 2 times" in r.stderr, r.stderr
    folder, _ = _config(tmp_path, b'\xff{')
    r = run_main("--action=generate_conf_files", f"--config_dir={folder}")
    assert r.returncode == 2 and "is not UTF-8 text" in r.stderr and "Traceback" not in r.stderr, r.stderr
