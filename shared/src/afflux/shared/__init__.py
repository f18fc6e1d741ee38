"""afflux.shared: event contracts, settings, Kafka helpers and the pure domain core."""
