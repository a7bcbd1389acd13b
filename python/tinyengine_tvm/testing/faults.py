"""Fault injection between the host and a device (tests): bytes dropped,
bits flipped and garbage inserted, reproducibly.

    t = FaultyTransport(dev.host_transport(), to_device=FaultSpec(flip=1e-3), seed=1)
    client = DeviceClient(t)
    with QemuSerial(elf, wrap=lambda t: FaultyTransport(t, from_device=spec)) as q: ...
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Dict, Optional, Tuple

from ..runtime.transport import Transport


@dataclass
class FaultSpec:
    """Damage done to one direction of a link, as per-byte probabilities: a
    byte dropped, a bit flipped, a burst of random bytes inserted before it."""

    drop: float = 0.0
    flip: float = 0.0
    garbage: float = 0.0
    garbage_len: Tuple[int, int] = (1, 32)

    def apply(self, data: bytes, rng: random.Random, counts: Dict[str, int]) -> bytes:
        """``data`` damaged as specified; ``counts`` tallies the damage."""
        if not (self.drop or self.flip or self.garbage):
            return data
        out = bytearray()
        for b in data:
            if self.garbage and rng.random() < self.garbage:
                n = rng.randint(*self.garbage_len)
                out += bytes(rng.getrandbits(8) for _ in range(n))
                counts["garbage"] += n
            if self.drop and rng.random() < self.drop:
                counts["dropped"] += 1
                continue
            if self.flip and rng.random() < self.flip:
                b ^= 1 << rng.randrange(8)
                counts["flipped"] += 1
            out.append(b)
        return bytes(out)


class FaultyTransport(Transport):
    """Fault injection between the host and the device (tests): drops, bit
    flips and garbage in either direction (``to_device``, ``from_device``),
    reproducible from ``seed``; ``mute_after`` stops delivering the device's
    bytes after that many (a board that stops answering)."""

    def __init__(self, inner: Transport, *, to_device: Optional[FaultSpec] = None,
                 from_device: Optional[FaultSpec] = None, seed: int = 0, mute_after: Optional[int] = None):
        self.inner = inner
        self.to_device = to_device or FaultSpec()
        self.from_device = from_device or FaultSpec()
        self.rng = random.Random(seed)
        self.mute_after = mute_after
        self.received = 0
        self.counts = {"dropped": 0, "flipped": 0, "garbage": 0}
        self.name = f"faulty({inner.name})"

    def read(self, timeout: float) -> bytes:
        data = self.inner.read(timeout)
        if self.mute_after is not None:
            keep = max(0, self.mute_after - self.received)
            self.received += len(data)
            data = data[:keep]
        return self.from_device.apply(data, self.rng, self.counts)

    def write(self, data: bytes) -> None:
        self.inner.write(self.to_device.apply(data, self.rng, self.counts))

    def close(self) -> None:
        self.inner.close()

    def gone_reason(self) -> str:
        return self.inner.gone_reason()
