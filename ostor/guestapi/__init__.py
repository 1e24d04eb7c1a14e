"""The host-local guest API served on a Unix socket."""
