"""PNG charts of a report, drawn with matplotlib when it is installed (the optional
extra ``runstate[charts]``); without it `draw_charts` draws nothing and says so."""
from __future__ import annotations

import os
from typing import Any

__all__ = ["draw_charts", "charts_available", "CHART_FILES"]

# Every file draw_charts may write (a report folder's earlier ones are removed by name
# before a new report goes in: report.clear_report_folder).
STATES_PNG, THROUGHPUT_PNG, LATENCY_PNG, RULES_PNG = CHART_FILES = (
    "states_over_time.png", "throughput.png", "latency.png", "rules.png")


def charts_available() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def draw_charts(report: dict[str, Any], directory: str) -> list[str]:
    """Write states_over_time.png, throughput.png, latency.png and rules.png into
    `directory`; returns their paths ([] without matplotlib)."""
    if not charts_available():
        return []
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []

    def save(fig: Any, name: str) -> None:
        path = os.path.join(directory, name)
        fig.tight_layout()
        fig.savefig(path, dpi=100)
        plt.close(fig)
        paths.append(path)

    series = report["state_counts_over_time"]
    columns, rows = series["columns"], series["rows"]
    final = ("COMPLETED", "FAILED", "CRASHED", "CANCELLED")
    colors = {"SCHEDULED": "tab:blue", "PENDING": "tab:orange", "RUNNING": "tab:green", "PAUSED": "tab:purple",
              "CANCELLING": "tab:red"}
    if rows:
        # Finished runs only accumulate (see throughput.png); plot the states runs wait or work in.
        hours = [r[0] / 3600.0 for r in rows]
        # (reports written before workers were sampled have no such series)
        down = report.get("workers", {}).get("down_over_time") or []
        panels = 3 if any(down) else 2
        fig, axes = plt.subplots(panels, 1, figsize=(10, 7 + 2 * (panels - 2)), sharex=True,
                                 gridspec_kw={"height_ratios": [3, 3, 1.5][:panels]})
        if panels == 3:
            axes[2].plot(hours, down, drawstyle="steps-post", color="tab:red")
            axes[2].fill_between(hours, down, step="post", color="tab:red", alpha=0.3)
            axes[2].set_ylabel("workers down")
            axes[2].set_ylim(bottom=0)
            axes[2].yaxis.get_major_locator().set_params(integer=True)
            axes[2].grid(alpha=0.3)
        for ax, prefix in zip(axes, ("flow_", "task_")):
            for j, name in enumerate(columns):
                state = name[len(prefix):]
                if name.startswith(prefix) and state not in final and any(r[j] for r in rows):
                    ax.plot(hours, [r[j] for r in rows], label=state.lower(), drawstyle="steps-post",
                            color=colors.get(state))
            ax.set_ylabel(f"{prefix[:-1]} runs")
            ax.yaxis.get_major_locator().set_params(integer=True)
            ax.legend(loc="upper left", fontsize="small", ncol=3)
            ax.grid(alpha=0.3)
        axes[-1].set_xlabel("simulated hours")
        axes[0].set_title("Unfinished runs per state over time (sampled)")
        save(fig, STATES_PNG)

    per_hour = report["throughput"]["finished_per_hour"]
    fig, ax = plt.subplots(figsize=(10, 3.5))
    ax.bar(range(len(per_hour)), per_hour, color="tab:blue")
    ax.set_xlabel("simulated hour")
    ax.set_ylabel("flow runs finished")
    ax.set_title("Throughput")
    save(fig, THROUGHPUT_PNG)

    keys = ("lateness_seconds", "queue_wait_seconds", "flow_run_time_seconds", "task_run_time_seconds")
    labels = ("p50", "p90", "p95", "p99", "max")
    fig, ax = plt.subplots(figsize=(10, 4))
    width = 0.18
    for k, key in enumerate(keys):
        stats = report[key]
        if not stats.get("count"):
            continue
        ax.bar([i + k * width for i in range(len(labels))], [stats[x] for x in labels], width,
               label=key.replace("_seconds", "").replace("_", " "))
    ax.set_xticks([i + 1.5 * width for i in range(len(labels))], labels)
    ax.set_yscale("symlog")
    ax.set_ylabel("seconds")
    ax.set_title("Lateness, queue wait and run times (percentiles)")
    ax.legend(fontsize="small")
    save(fig, LATENCY_PNG)

    # Orchestration rules (not transforms, which only count calls): share of each outcome.
    rules = {k: v for k, v in report["rules"].items() if v["kind"] == "rule" and v["calls"]}
    if rules:
        names = sorted(rules, reverse=True)  # barh draws upward: the first name on top
        fig, ax = plt.subplots(figsize=(10, 0.35 * len(names) + 1.5))
        left = [0.0] * len(names)
        for outcome, color in (("accept", "tab:green"), ("reject", "tab:orange"), ("wait", "tab:blue"),
                               ("abort", "tab:red")):
            values = [100.0 * rules[n][outcome] / max(1, rules[n]["calls"]) for n in names]
            ax.barh(names, values, left=left, color=color, label=outcome)
            left = [a + b for a, b in zip(left, values)]
        for y, n in enumerate(names):
            ax.text(101, y, f"{rules[n]['calls']:,} calls", va="center", fontsize="small")
        ax.set_xlim(0, 125)
        ax.set_xlabel("% of before-hook calls")
        ax.set_title("Orchestration rule outcomes", pad=24)
        # Under the title, not over the bars: the call counts fill the right-hand margin.
        ax.legend(fontsize="small", loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=4, frameon=False)
        save(fig, RULES_PNG)
    return paths
