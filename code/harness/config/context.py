"""A command's context: which system this is, its validated RunConfigs, and the model and data paths of one."""
from __future__ import annotations


from typing import Optional

from harness.config.command import Command
from harness.config import files as configs
from harness.config import runconfig
from harness.config.runconfig import RunConfig
from harness.config.systems import detect_system_id
from harness.core.names import check_safe_name
from resnet50.models import get_model
from resnet50.preprocessing import default_preprocessed_dir


def system_id(args: Command) -> str:
    """--system_name (checked: it becomes folder and file names) or the detected id (sanitised where detected)."""
    if args.system_name is not None:
        return check_safe_name(args.system_name, "--system_name",
                               "folder and file names under build/, measurements/ and the results tree")
    return detect_system_id(args.backend)


def run_configs(args: Command, system: Optional[str] = None,
                scenarios: Optional[list[str]] = None) -> list[RunConfig]:
    """Every (config_ver, scenario) the command asks for, each a validated RunConfig, grouped by config_ver in the
    order given. All are built before anything runs, so a bad value anywhere stops the command before it writes."""
    system = system or system_id(args)
    scenarios = list(scenarios or args.scenarios)
    vers = {s: configs.config_vers(s, system, args.config_ver, getattr(args, "config_dir", None)) for s in scenarios}
    order = list(dict.fromkeys(v for s in scenarios for v in vers[s]))
    return [runconfig.build(args, s, system, v) for v in order for s in scenarios if v in vers[s]]


def run_config(args: Command, scenario: str, system: Optional[str] = None,
               config_ver: Optional[str] = None) -> RunConfig:
    """One scenario's RunConfig (the first config_ver of --config_ver unless one is named)."""
    system = system or system_id(args)
    ver = config_ver or configs.config_vers(scenario, system, args.config_ver, getattr(args, "config_dir", None))[0]
    return runconfig.build(args, scenario, system, ver)


def model_spec(rc: RunConfig):
    return get_model(rc.model)


def model_path(rc: RunConfig, spec) -> str:
    return rc.paths.model_path or spec.default_path


def preprocessed_dir(rc: RunConfig) -> str:
    return rc.paths.preprocessed_data_dir or default_preprocessed_dir()
