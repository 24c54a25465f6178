"""The pigeonhole platform on Kubernetes, as Pulumi code: cluster, platform components, stack wiring."""
