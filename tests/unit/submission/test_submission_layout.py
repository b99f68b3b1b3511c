"""harness/submission/layout.py: which machine runs may be staged as, and what a description says about it."""
from harness.submission import layout


def test_same_machine():
    assert layout.same_machine("H200x1", "H200x1")
    assert layout.same_machine("CPU-Intel_Xeon-2c", "CPU")          # CPU ids share the CPU block
    assert layout.same_machine(None, "H200x8")                     # recorded nothing (an older harness)
    assert not layout.same_machine("CPU-Intel_Xeon-2c", "A100-SXM4-40GBx8")
    assert not layout.same_machine("H200x1", "H200x8")
    problem = layout.machine_problem("CPU-Intel_Xeon-2c", "H200x1", "Offline: the performance run X")
    assert problem.startswith("Offline: the performance run X ran on a machine detected as 'CPU-Intel_Xeon-2c', "
                              "but would be staged as system 'H200x1'")
    assert "--system_name=CPU-Intel_Xeon-2c" in problem


def test_a_gpu_name_with_a_cpu_only_description():
    desc = {"accelerators_per_node": "0", "system_name": "H200x1: 1x Xeon, 2 cores per processor, CPU only"}
    assert "not a CPU id, but its description says the machine has no accelerator" in \
        layout.description_problem("H200x1", desc)
    assert layout.description_problem("CPU", desc) is None
    assert layout.description_problem("H200x1", {"accelerators_per_node": 1}) is None


def test_shared_runs_between_submitters_not_divisions():
    perf = "results/CPU/resnet50/Offline/performance/run_1/mlperf_log_detail.txt"
    entries = {f"{d}/{s}/CPU": {"files": {f"{d}/{s}/{perf}": "abc"}}
               for d, s in (("closed", "A"), ("open", "A"))}
    assert layout.shared_runs(entries) == []
    entries["closed/B/CPU"] = {"files": {f"closed/B/{perf}": "abc"}}
    (found,) = layout.shared_runs(entries)
    assert found[0] == f"closed/B/{perf}" and found[1].startswith(f"the same run as closed/A/{perf}")
