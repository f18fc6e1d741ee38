"""afflux clicks service."""
