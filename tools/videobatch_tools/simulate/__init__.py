"""``videobatch simulate``: days of uploads through the real handlers on the local stack, faults injected,
invariants checked after every step (see ``runner`` and ``invariants``)."""
