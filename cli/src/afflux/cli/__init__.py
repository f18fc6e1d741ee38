"""The afflux command."""
