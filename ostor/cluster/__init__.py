"""Cluster mode: configuration in etcd, per-host agents."""
