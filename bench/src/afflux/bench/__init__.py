"""afflux benchmarks: each prints its figure beside a baseline measured in the same run.

One module per ``afflux bench NAME`` (clicks, orders, attribution, ledger, state, soak),
registered as ``afflux.benches`` entry points; the bare baselines (``*_bare``) and load
generators (``*_load``) run as their own processes; ``feed`` produces events straight to
the topics as afflux producers key and pack them.
"""
