"""The HTTP toolkit every afflux service shares: one error shape, /healthz, /metrics,
the admin token, and the start-up of a service process."""
