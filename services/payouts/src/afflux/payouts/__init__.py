"""afflux payouts service."""
