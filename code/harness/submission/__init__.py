"""Submission and audit: compliance tests, results staging, log truncation, summaries, submission checks.

    make run_harness ...            performance and accuracy runs        -> build/logs/<timestamp>/...
    make run_audit_harness ...      TEST01 / TEST04 (TEST05 for v4.1)    -> build/logs/<timestamp>/.../<TEST0X>/
    make update_results             newest valid runs -> the round's layout under build/submission/
    make truncate_results           accuracy logs cut to 4 KiB + 4 KiB, sha256 recorded in accuracy.txt
    make summarize_results          results_summary.csv + a Markdown table
    make check_submission           the project's own check, then the official checker when a checkout exists

Modules: `rules` (what each round requires; the only place rule values live), `logs` (reading LoadGen logs),
`runs` (finding and vetting runs), `audit`, `system_desc`, `stage`, `truncate`, `summarize`, `check`.
None of them copies code from mlcommons/inference: they implement the rules that its documents state.
"""
