"""The built-in workload `python -m engine simulate` runs without --workload.

Twelve simulated hours of three deployments (about 580 flow runs of 10 task runs each)
over two work pools: interval, cron and Poisson arrivals, fan-out, tag and
deployment concurrency limits, retries, caching, a few failures, pauses, crashes and
cancellations. Print it with `python -m engine simulate --print-workload`.
"""
from __future__ import annotations

from typing import Iterable

from .workload import Workload, parse_workload, _toml

__all__ = ["DEFAULT_WORKLOAD_TOML", "default_workload"]

DEFAULT_WORKLOAD_TOML = """\
name = "default"
description = "Twelve hours of three deployments over two work pools (built in)."

[simulation]
seed = 42
start = "2024-01-01T00:00:00Z"
until = "12h"
sample_interval = "10m"

[services.late_runs]
loop = "5s"
mark_late_after = "15s"

[policies]
flow = "CoreFlowPolicy"
task = "CoreTaskPolicy"

[[tag_limits]]
tag = "db"
limit = 6

[[tag_limits]]
tag = "gpu"
limit = 3

[[work_pools]]
name = "default-pool"
concurrency_limit = 12
queues = [
  { name = "high", priority = 1 },            # takes priority 1: the default queue moves to 2
  { name = "default", concurrency_limit = 8 },
]

[[work_pools]]
name = "gpu-pool"
concurrency_limit = 3

[[workers]]
pool = "default-pool"
count = 2
poll_interval = "10s"
prefetch = "10s"
startup = { dist = "uniform", min = "1s", max = "3s" }

[[workers]]
pool = "gpu-pool"
poll_interval = "15s"
startup = "5s"

# --- etl: a fan-out through a tag-limited database step ------------------------
[[flows]]
name = "etl"
retries = 1
retry_delay = "30s"
crash_probability = 0.01
cancel = { probability = 0.01, after = { dist = "exponential", mean = "2m" } }

[[flows.tasks]]
name = "extract"
duration = { dist = "lognormal", mean = "4s", std = "2s" }
retries = 2
retry_delay = ["2s", "10s"]
failure_probability = 0.02

[[flows.tasks]]
name = "transform"
count = 4
depends_on = ["extract"]
duration = { dist = "exponential", mean = "6s", max = "60s" }
tags = ["db"]

[[flows.tasks]]
name = "load"
depends_on = ["transform"]
duration = "5s"
tags = ["db"]
retries = 1
retry_delay = "5s"
failure_probability = 0.03

[[flows.tasks]]
name = "validate"
depends_on = ["load"]
duration = { dist = "uniform", min = "1s", max = "2s" }

[[flows.tasks]]
name = "summarize"
depends_on = ["validate"]
duration = "1s"
cache = { key = "etl-summary-{hour}", expiration = "30m" }

[[flows.tasks]]
name = "archive"
depends_on = ["validate"]
duration = "2s"

[[flows.tasks]]
name = "notify"
depends_on = ["summarize", "archive"]
duration = "0.5s"

# --- reports: cached renders, high-priority queue -----------------------------------
[[flows]]
name = "reports"

[[flows.tasks]]
name = "fetch"
duration = { dist = "exponential", mean = "2s" }

[[flows.tasks]]
name = "render"
count = 8
depends_on = ["fetch"]
duration = { dist = "normal", mean = "3s", std = "1s", min = "0.5s" }
cache = { key = "render-{index}-{choice}", expiration = "10m", choices = 20 }

[[flows.tasks]]
name = "publish"
depends_on = ["render"]
duration = "1s"
failure_probability = 0.01

# --- train: GPU-bound, a deployment concurrency limit, occasional human review pause ---
[[flows]]
name = "train"
retries = 1
retry_delay = "1m"
pause = { probability = 0.05, after = "evaluate", duration = { dist = "exponential", mean = "20m" }, timeout = "1h" }

[[flows.tasks]]
name = "prepare"
duration = "20s"
cache = { key = "features-{day}", expiration = "1d" }

[[flows.tasks]]
name = "train"
count = 3
depends_on = ["prepare"]
duration = { dist = "lognormal", mean = "3m", std = "1m" }
tags = ["gpu"]
failure_probability = 0.05
retries = 1
retry_delay = "30s"

[[flows.tasks]]
name = "evaluate"
count = 3
depends_on = ["train"]
duration = "15s"

[[flows.tasks]]
name = "select"
depends_on = ["evaluate"]
duration = "2s"

[[flows.tasks]]
name = "register"
depends_on = ["select"]
duration = "1s"

[[flows.tasks]]
name = "notify"
depends_on = ["register"]
duration = "0.5s"

# --- deployments ------------------------------------------------------------------------
[[deployments]]
name = "etl-every-5m"
flow = "etl"
pool = "default-pool"
queue = "default"
schedule = { interval = "5m" }
tags = ["etl"]
parameters = { source = "warehouse" }

[[deployments]]
name = "reports-every-2m"
flow = "reports"
pool = "default-pool"
queue = "high"
schedule = { cron = "*/2 * * * *" }

[[deployments]]
name = "train-on-demand"
flow = "train"
pool = "gpu-pool"
schedule = { poisson = "10m" }
concurrency_limit = 2
collision_strategy = "ENQUEUE"
"""


def default_workload(settings: Iterable[str] = ()) -> Workload:
    """The built-in workload, validated, with the ``PATH=VALUE`` `settings` applied."""
    return parse_workload(_toml.loads(DEFAULT_WORKLOAD_TOML), source="default", settings=settings)
