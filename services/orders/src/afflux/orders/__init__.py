"""afflux orders service."""
