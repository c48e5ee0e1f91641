"""runstate: an in-memory engine for Prefect's run layer."""
from .clock import Clock, ManualClock, SystemClock
from .engine import Engine
from .errors import *  # noqa: F401,F403
from .records import *  # noqa: F401,F403
from .states import *  # noqa: F401,F403
