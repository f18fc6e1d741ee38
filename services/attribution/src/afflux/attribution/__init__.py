"""afflux attribution service."""
