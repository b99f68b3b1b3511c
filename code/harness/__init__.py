"""The harness (the v1.0 harness's `code/common`), in layers; a module imports only from its own layer or below.

    core/        errors, exit codes, paths (the whole build/ tree, the only module that spells it), storage (locks,
                 atomic writes, the one digest helper file_digest, the one JSON reader read_json), options (Flag,
                 the one bool parser parse_bool), env (every MLPERF_* variable), interrupt, process isolation
    graph/       sample formats, ONNX graph surgery, the calibration-cache format
    backends/    one folder per inference backend (beside the benchmark package `resnet50/`, same layer)
    config/      scenarios and test modes, the flag table, config files, systems, the RunConfig, a command's context
    artifacts/   engines, calibration, run fingerprints
    loadgen/     LoadGen itself, its settings and user.conf, the SUT and QSL, timing, progress, limits, the one
                 LoadGen-log reader (logs.py: detail, summary and accuracy logs, FindPeak), one scenario's run
    report/      the HTML report of run folders: read (run folders, summaries, tune logs), charts, page (HTML), and
                 tune_log (the one tune_log.jsonl record tune writes and the report reads)
    submission/  staging, truncation, summaries, checks and audits of a submission tree
    tune/        the search for a config's target: search (pure functions), overlay (grid, config overlay), probes
                 (the Tuner's child processes); the `tune` action itself is actions/tune.py
    actions/     one module per `--action` of code/main.py

tests/unit/test_layers.py walks the imports and holds this order. `code/` is deliberately not a Python package: a
package named `code` would shadow the standard library's `code` module, which pdb and the interactive console import.
`code/main.py` puts `code/` on sys.path, so the importable packages are `harness` and `resnet50`.
"""
