"""The `--plan` report as text or JSON (generator.cost.plan_report computes it)."""

import heapq
import json
import sys

from .cost import ASSUMPTIONS, JOB_LIMIT_HOURS, JOB_TARGET_HOURS, MAX_MATRIX_SHARDS

CONCURRENT_JOBS = 20  # GitHub-hosted runners a free account runs at once


def wall_hours(shard_hours, slots=CONCURRENT_JOBS):
    """Wall time of running shards of these durations on `slots` runners, each taking the next shard."""
    finish = [0.0] * min(slots, max(1, len(shard_hours)))
    for hours in shard_hours:
        heapq.heappush(finish, heapq.heappop(finish) + hours)
    return max(finish)


def print_plan(report, as_json=False, out=sys.stdout):
    """Print `report` (generator.cost.plan_report) on `out`: one JSON object, or a table."""
    if "shard_runner_hours" in report:
        report = dict(report, wall_hours_at_20_jobs=round(wall_hours(report["shard_runner_hours"]), 3))
    if as_json:
        print(json.dumps(report), file=out)
        return
    lines = [f"{'layer':<14} {'units':>6} {'hours here':>11}"]
    lines += [f"{layer:<14} {entry['units']:>6} {entry['cpu_hours']:>11.2f}" for layer, entry in report["layers"].items()]
    machine = report["assumptions"]["calibration_machine"]
    lines += [
        f"{'total':<14} {report['units']:>6} {report['cpu_hours']:>11.2f}   on this machine kind ({machine})",
        f"{'':<21} {report['runner_hours']:>11.2f}   on GitHub-hosted 4-vCPU runners (assumed "
        f"{ASSUMPTIONS['runner_speedup']:g}x this machine)",
        f"{'':<21} {report['gpu_hours']:>11.2f}   on one GPU (assumed {ASSUMPTIONS['gpu_flops_per_second'] / 1e12:g} "
        "TFLOP/s sustained)",
    ]
    smallest = report["min_shards_under_6h"]
    lines.append(
        f"smallest shard count keeping every shard under {JOB_TARGET_HOURS:g} h on a runner (the {JOB_LIMIT_HOURS:g} h "
        f"job limit with a margin): {smallest}" if smallest else
        f"no shard count up to {MAX_MATRIX_SHARDS} keeps every shard under {JOB_TARGET_HOURS:g} h on a runner"
    )
    if "shards" in report:
        hours = report["shard_runner_hours"]
        lines.append(
            f"{report['shards']} shards: costliest {max(hours):.2f} h, mean {sum(hours) / len(hours):.2f} h on a runner "
            f"(max/mean {report['max_over_mean']}); wall time at {CONCURRENT_JOBS} concurrent jobs "
            f"{report['wall_hours_at_20_jobs']:.2f} h"
        )
        if len(hours) <= 16:
            lines += [f"  shard {index:>3}: {value:6.2f} h" for index, value in enumerate(hours)]
    print("\n".join(lines), file=out)
