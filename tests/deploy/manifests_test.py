#!/usr/bin/python3
"""The deploy/ manifests checked offline (there is no cluster here): they parse, the fields
kvmrun's shard driver reads agree with each other, and kvmrun itself, given each engine's
variables as that engine sets them, splits a suite into shards that cover it exactly once.
    tests/deploy/manifests_test.py KVMRUN"""
import json
import os
import re
import subprocess
import sys
import tempfile

import yaml

kvmrun = sys.argv[1]
deploy = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "deploy")
failures = []


def check(ok, what):
    if not ok:
        failures.append(what)


def load(*path):
    with open(os.path.join(deploy, *path)) as f:
        return yaml.safe_load(f)


def option(command, name):
    return command[command.index(name) + 1] if name in command else None


# Kubernetes: an Indexed Job of shards, a merge Job, one results volume.
shards = load("kubernetes", "shards-job.yaml")
merge = load("kubernetes", "merge-job.yaml")
pvc = load("kubernetes", "results-pvc.yaml")
spec = shards["spec"]
pod = spec["template"]["spec"]
container = pod["containers"][0]
command = container["command"]
completions = spec["completions"]
check(shards["kind"] == "Job" and spec["completionMode"] == "Indexed", "shards: an Indexed Job")
check(command[:2] == ["kvmrun", "boot-test"], "shards: runs kvmrun boot-test")
check(option(command, "--shard") == "auto", "shards: --shard auto")
check(option(command, "--shard-count") == str(completions),
      "shards: --shard-count equals completions")
check(pod["restartPolicy"] == "Never", "shards: restartPolicy Never")
check("devices.kubevirt.io/kvm" in container["resources"]["limits"], "shards: asks for /dev/kvm")
mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
volumes = {v["name"]: v for v in pod["volumes"]}
results = option(command, "--results")
results_volume = next((n for n, p in mounts.items() if p == results), None)
check(results_volume is not None, "shards: --results is a mounted volume")
claim = volumes[results_volume]["persistentVolumeClaim"]["claimName"]
check(claim == pvc["metadata"]["name"], "shards: the results volume is the PVC")
check("ReadWriteMany" in pvc["spec"]["accessModes"], "pvc: ReadWriteMany (every shard writes)")
check(option(command, "--cases").startswith(mounts["suite"]), "shards: the suite is mounted")
merge_pod = merge["spec"]["template"]["spec"]
merge_command = merge_pod["containers"][0]["command"]
merge_mounts = {m["name"]: m["mountPath"] for m in merge_pod["containers"][0]["volumeMounts"]}
check(merge_command[:3] == ["kvmrun", "report", "merge"], "merge: runs kvmrun report merge")
check(merge_command[3] == merge_mounts["results"], "merge: reads the results mount")
check(merge_pod["volumes"][0]["persistentVolumeClaim"]["claimName"] == claim,
      "merge: the same PVC")

# GitHub Actions: a matrix of shard numbers 1..N, each passing I/N; a merge that always runs.
gha = load("github-actions", "kvmrun-boot-matrix.yml")
jobs = gha["jobs"]
matrix = jobs["shards"]["strategy"]["matrix"]["shard"]
runs = " ".join(step.get("run", "") for step in jobs["shards"]["steps"])
count = re.search(r"--shard \$\{\{ matrix.shard \}\}/(\d+)", runs)
check(count is not None and matrix == list(range(1, int(count.group(1)) + 1)),
      "github: the matrix is 1..N of --shard I/N")
check(jobs["shards"]["strategy"]["fail-fast"] is False, "github: fail-fast off")
check(jobs["merge"]["needs"] == "shards" and jobs["merge"]["if"] == "always()",
      "github: the merge needs the shards and always runs")
check("kvmrun report merge" in " ".join(s.get("run", "") for s in jobs["merge"]["steps"]),
      "github: the merge runs kvmrun report merge")

# GitLab: parallel: N with --shard auto; a merge that always runs and reports JUnit.
gitlab = load("gitlab", "kvmrun-boot-matrix.gitlab-ci.yml")
check(isinstance(gitlab["boot-shards"]["parallel"], int), "gitlab: parallel: N")
check("--shard auto" in " ".join(gitlab["boot-shards"]["script"]), "gitlab: --shard auto")
check(gitlab["boot-merge"]["when"] == "always", "gitlab: the merge always runs")
check(gitlab["boot-merge"]["artifacts"]["reports"]["junit"] == "all.xml", "gitlab: JUnit report")


# kvmrun given each engine's variables: the shards cover the suite exactly once.
def listed(env_vars, *args):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SLURM_", "JOB_COMPLETION", "CI_NODE"))}
    env.update(env_vars)
    out = subprocess.run([kvmrun, "boot-test", "--cases", suite, "--list", *args], env=env,
                         capture_output=True, text=True, check=True).stdout
    return out.splitlines()


with tempfile.TemporaryDirectory() as tmp:
    suite = os.path.join(tmp, "suite.json")
    with open(suite, "w") as f:
        json.dump({"matrix": {"os": ["linux", "windows-11", "freebsd"],
                              "append": ["a", "b", "c", "d"]},
                   "cases": [{"name": "k", "kernel": "/bin/true", "expect": "x"}]}, f)
    everything = sorted(listed({}))
    check(len(everything) == 12, "the suite has 12 cases")
    engines = {
        "kubernetes": [({"JOB_COMPLETION_INDEX": str(i)}, ["--shard", "auto", "--shard-count",
                                                           str(completions)])
                       for i in range(completions)],
        "gitlab": [({"CI_NODE_INDEX": str(i), "CI_NODE_TOTAL": str(gitlab["boot-shards"]["parallel"])},
                    ["--shard", "auto"]) for i in range(1, gitlab["boot-shards"]["parallel"] + 1)],
        "github": [({}, ["--shard", f"{i}/{len(matrix)}"]) for i in matrix],
        "slurm": [({"SLURM_ARRAY_TASK_ID": str(i), "SLURM_ARRAY_TASK_MIN": "0",
                    "SLURM_ARRAY_TASK_COUNT": "4"}, ["--shard", "auto"]) for i in range(4)],
    }
    for engine, tasks in engines.items():
        union = sorted(name for env, args in tasks for name in listed(env, *args))
        check(union == everything, f"{engine}: the shards cover the suite exactly once")

for failure in failures:
    print("FAIL:", failure)
print(f"{'ok' if not failures else 'FAILED'}: deploy manifests checked offline")
sys.exit(1 if failures else 0)
