"""PyTorch's CPU random numbers, drawn the way PyTorch draws them.

PyTorch's CPU generator is the 32-bit Mersenne Twister seeded with ``init_genrand`` (NumPy's
legacy ``RandomState`` seeds it the same way), from a fresh random seed when the program sets
none. PyTorch turns its 32-bit words into floats in a fixed way, so a program draws the same
numbers here as in PyTorch, ``nn.Linear``'s initial weights included:

* a uniform float32 keeps 24 bits of one word, a float64 53 bits of two (the first word high);
* normal samples come from Box-Muller: a tensor of 16 elements or more is first filled with
  uniforms, then transformed 16 at a time (the last 16 again from fresh uniforms when the size
  is not a multiple of 16); a smaller one draws each sample from two float64 uniforms, keeping
  the pair's second sample for the next draw.
"""
import numpy as np


class TorchGenerator:
    def __init__(self, seed=None):
        self.seed(np.random.SeedSequence().entropy if seed is None else seed)

    def seed(self, seed):
        self._words = np.random.RandomState(seed & 0xFFFFFFFF)._bit_generator  # init_genrand
        self._next_normal = None

    def _uniform_bits(self, count, double):
        words = self._words.random_raw(count * (2 if double else 1))
        if double:
            bits = ((words[0::2] << np.uint64(32)) | words[1::2]) & np.uint64((1 << 53) - 1)
            return bits * 2.0 ** -53
        return (words & np.uint64((1 << 24) - 1)) * 2.0 ** -24

    def uniform(self, shape, double, low=0.0, high=1.0):
        """Floats in [low, high): float64 values holding what PyTorch stores for the dtype."""
        kind = np.float64 if double else np.float32
        low, span = kind(low), kind(kind(high) - kind(low))  # PyTorch computes these in the dtype
        values = self._uniform_bits(int(np.prod(shape, dtype=np.int64)), double)
        return (values * np.float64(span) + np.float64(low)).astype(kind).reshape(shape)

    def normal(self, shape, double, mean=0.0, std=1.0):
        count = int(np.prod(shape, dtype=np.int64))
        kind = np.float64 if double else np.float32
        if count < 16:
            samples = [self._one_normal() for _ in range(count)]
            return (np.array(samples, dtype=np.float64) * std + mean).astype(kind).reshape(shape)
        data = self._uniform_bits(count, double).astype(kind)
        whole = count - count % 16
        data[:whole] = _box_muller_16(data[:whole].reshape(-1, 16)).reshape(-1)
        if count % 16:
            fresh = self._uniform_bits(16, double).astype(kind)
            data[count - 16:] = _box_muller_16(fresh.reshape(1, 16)).reshape(-1)
        return (data * kind(std) + kind(mean)).reshape(shape)

    def _one_normal(self):
        if self._next_normal is not None:
            sample, self._next_normal = self._next_normal, None
            return sample
        u1, u2 = self._uniform_bits(2, True)
        radius = np.sqrt(-2.0 * np.log1p(-u2))
        theta = 2.0 * np.pi * u1
        self._next_normal = radius * np.sin(theta)
        return radius * np.cos(theta)


def _box_muller_16(uniforms):
    """Rows of 16 uniforms to rows of 16 normals: columns 0-7 give the radii, 8-15 the angles.

    Each step is rounded to the dtype, as PyTorch's vectorised code rounds it; its float32
    ``log``, ``cos`` and ``sin`` are within an ulp or so of the correctly rounded ones used here.
    """
    kind = uniforms.dtype.type

    def rounded(values):
        return values.astype(kind)

    radius = rounded(np.sqrt(rounded(-2 * rounded(np.log((1 - uniforms[:, :8]).astype(np.float64))))))
    theta = kind(2 * np.pi) * uniforms[:, 8:]
    angle = theta.astype(np.float64)
    return np.concatenate([radius * rounded(np.cos(angle)), radius * rounded(np.sin(angle))], axis=1)
