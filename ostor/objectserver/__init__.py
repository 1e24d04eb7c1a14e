"""Object servers: object data in 12 power-of-two block pools, GC and defragmentation.

Public entry points: :class:`~ostor.objectserver.server.ObjectServer` (pool
files on disk) and its in-memory twin
:class:`~ostor.objectserver.memory.MemoryObjectServer`; results and
configuration live in :mod:`ostor.objectserver.types`.
"""
