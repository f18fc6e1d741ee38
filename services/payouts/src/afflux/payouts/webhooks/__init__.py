"""Webhooks out: signed HTTP deliveries of conversions, reversals and payouts to the
endpoints merchants and creators register (docs/webhooks.md).

``signing`` and ``policy`` are pure (no I/O, no clock); ``registry`` and ``queue`` keep
endpoints and scheduled deliveries in Redis; ``sender`` reads the topics in its own
consumer group and delivers; ``routes`` is the admin API.
"""
