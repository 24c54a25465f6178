"""Monitoring: drift jobs over logged traffic (see the monitoring issue)."""
