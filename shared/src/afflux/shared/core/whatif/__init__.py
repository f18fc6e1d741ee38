"""What-if replay: a campaign's recorded inputs re-run under other terms (docs/campaigns.md)."""
