"""The attribution unit tests share ``recording_runtime``."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))  # recording_runtime
