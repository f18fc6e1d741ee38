"""The I/O edge that every service shares: Kafka, lag, campaign following, HTTP serving.

Dependency direction: ``afflux.shared.io`` may import the contracts
(``afflux.shared.events``, ``topics``, ``wire``, ``settings``) and the pure core
(``afflux.shared.core``); neither of those ever imports from here
(``tests/unit/shared/test_core_is_pure.py`` checks it).
"""
