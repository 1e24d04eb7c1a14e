"""The host-local guest API (seed 003, ``/dev/incus/sock``): one Unix socket per host.

Instances (containers, virtual machines' agents, plain processes) are
registered by the administrator with matchers on their peer credentials; each
then reads its own configuration, devices, events and the public images from
the socket, with no credentials of its own.

- :mod:`.model`: instances, matchers, configuration rules.
- :mod:`.store`: instances kept in the service bucket, indexed in memory; every
  change publishes its events.
- :mod:`.identity`: who is calling (SO_PEERCRED, /proc/PID/cgroup) and which
  instance that is.
- :mod:`.events`: per-instance event fan-out.
- :mod:`.images`: public images (content-addressed objects in the service bucket).
- :mod:`.app`: the HTTP endpoints; :mod:`.service`: the socket itself.
"""
