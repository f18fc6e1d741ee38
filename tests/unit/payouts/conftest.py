"""The payouts unit tests share their journal harness (journal_arrivals) as a module."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
