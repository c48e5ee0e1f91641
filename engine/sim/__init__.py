"""A discrete-event simulator of a Prefect-style deployment on top of the engine's
public API: workloads (TOML/JSON), virtual time, workers, services, reports."""
from .defaults import DEFAULT_WORKLOAD_TOML, default_workload
from .errors import WorkloadError
from .settings import apply_settings
from .simulation import Simulation, SimulationResult
from .workload import Workload, load_workload, parse_workload

__all__ = [
    "DEFAULT_WORKLOAD_TOML", "default_workload", "WorkloadError", "Simulation", "SimulationResult",
    "Workload", "load_workload", "parse_workload", "apply_settings",
]
