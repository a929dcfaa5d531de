# Samplers: the order in which a DataLoader visits a map-style dataset's indices (sequential,
# shuffled, weighted, a subset) and BatchSampler, which groups them into batches of indices.
import itertools
from typing import Generic, TypeVar

import rustgrad

__all__ = ["BatchSampler", "RandomSampler", "Sampler", "SequentialSampler",
           "SubsetRandomSampler", "WeightedRandomSampler"]

T_co = TypeVar("T_co", covariant=True)

# Elements of the (samples x categories) comparison matrices WeightedRandomSampler builds per
# step: bounds its memory while keeping each step one vectorized op.
_COMPARE_BLOCK = 1 << 20


class Sampler(Generic[T_co]):
    """Base class of samplers: subclasses provide __iter__ (indices or batches of indices)
    and may provide __len__."""

    def __iter__(self):
        raise NotImplementedError


class SequentialSampler(Sampler[int]):
    """Samples elements 0, 1, ..., len(data_source) - 1."""

    def __init__(self, data_source):
        self.data_source = data_source

    def __iter__(self):
        return iter(range(len(self.data_source)))

    def __len__(self):
        return len(self.data_source)


def _fresh_generator():
    # A generator seeded from the global RNG, so `manual_seed` makes shuffles reproducible.
    seed = int(rustgrad.empty((), dtype=rustgrad.int64).random_().item())
    generator = rustgrad.Generator()
    generator.manual_seed(seed)
    return generator


class RandomSampler(Sampler[int]):
    """Samples elements randomly: a shuffled order without replacement (repeated whole
    permutations when num_samples exceeds the dataset), or independent draws with it."""

    def __init__(self, data_source, replacement=False, num_samples=None, generator=None):
        self.data_source = data_source
        self.replacement = replacement
        self._num_samples = num_samples
        self.generator = generator
        if not isinstance(self.replacement, bool):
            raise TypeError("replacement should be a boolean value, but got "
                            f"replacement={self.replacement}")
        if not isinstance(self.num_samples, int) or self.num_samples <= 0:
            raise ValueError("num_samples should be a positive integer value, but got "
                             f"num_samples={self.num_samples}")

    @property
    def num_samples(self):
        # The dataset's size may change after construction: read it late.
        if self._num_samples is None:
            return len(self.data_source)
        return self._num_samples

    def __iter__(self):
        n = len(self.data_source)
        generator = self.generator if self.generator is not None else _fresh_generator()
        if self.replacement:
            # Drawn 32 at a time so a partly consumed iterator has not drawn everything.
            for _ in range(self.num_samples // 32):
                yield from rustgrad.randint(n, (32,), dtype=rustgrad.int64,
                                            generator=generator).tolist()
            yield from rustgrad.randint(n, (self.num_samples % 32,), dtype=rustgrad.int64,
                                        generator=generator).tolist()
        else:
            for _ in range(self.num_samples // n):
                yield from rustgrad.randperm(n, generator=generator).tolist()
            yield from rustgrad.randperm(n, generator=generator).tolist()[:self.num_samples % n]

    def __len__(self):
        return self.num_samples


class SubsetRandomSampler(Sampler[int]):
    """Samples the given indices in a random order, without replacement."""

    def __init__(self, indices, generator=None):
        self.indices = indices
        self.generator = generator

    def __iter__(self):
        for i in rustgrad.randperm(len(self.indices), generator=self.generator).tolist():
            yield self.indices[i]

    def __len__(self):
        return len(self.indices)


def _multinomial(weights, num_samples, replacement, generator):
    """torch.multinomial for one 1-D float64 row of weights, from existing tensor ops.

    With replacement: inverse CDF, each uniform draw's category is the number of CDF entries at
    or below it. Without: the exponential race (category i gets key w_i / E_i with E_i ~ Exp(1);
    the num_samples largest keys win, in key order), ranked by counting larger keys."""
    if not bool(rustgrad.isfinite(weights).all()) or bool((weights < 0).any()):
        raise RuntimeError("probability tensor contains either `inf`, `nan` or element < 0")
    if float(weights.sum()) <= 0:
        raise RuntimeError("invalid multinomial distribution (sum of probabilities <= 0)")
    n = weights.shape[0]
    if not replacement and num_samples > n:
        raise RuntimeError(
            "cannot sample n_sample > prob_dist.size(-1) samples without replacement")

    if replacement:
        cdf = weights.cumsum(0)
        cdf = cdf / cdf[-1]  # exactly 1.0 at the end, so every draw in [0, 1) lands inside
        u = rustgrad.rand(num_samples, dtype=rustgrad.float64, generator=generator)
        step = max(1, _COMPARE_BLOCK // n)
        parts = [(cdf.unsqueeze(0) <= u[i:i + step].unsqueeze(1)).sum(1)
                 for i in range(0, num_samples, step)]
        return rustgrad.cat(parts).clamp(max=n - 1)

    u = rustgrad.rand(n, dtype=rustgrad.float64, generator=generator)
    keys = weights / -u.log()  # -log(u) ~ Exp(1); u = 0 gives key 0, never NaN
    index = rustgrad.arange(n)
    step = max(1, _COMPARE_BLOCK // n)
    ranks = []
    for i in range(0, n, step):
        k, j = keys[i:i + step].unsqueeze(1), index[i:i + step].unsqueeze(1)
        # Larger keys rank first; equal keys by index, so ranks are a permutation of 0..n-1.
        ahead = (keys.unsqueeze(0) > k) | ((keys.unsqueeze(0) == k) & (index.unsqueeze(0) < j))
        ranks.append(ahead.sum(1))
    order = rustgrad.empty(n, dtype=rustgrad.int64).scatter_(0, rustgrad.cat(ranks), index)
    return order[:num_samples]


class WeightedRandomSampler(Sampler[int]):
    """Samples indices 0..len(weights)-1 with probabilities proportional to `weights`."""

    def __init__(self, weights, num_samples, replacement=True, generator=None):
        if (not isinstance(num_samples, int) or isinstance(num_samples, bool)
                or num_samples <= 0):
            raise ValueError("num_samples should be a positive integer value, but got "
                             f"num_samples={num_samples}")
        if not isinstance(replacement, bool):
            raise ValueError("replacement should be a boolean value, but got "
                             f"replacement={replacement}")
        weights_tensor = rustgrad.as_tensor(weights, dtype=rustgrad.double)
        if len(weights_tensor.shape) != 1:
            raise ValueError("weights should be a 1d sequence but given weights have shape "
                             f"{tuple(weights_tensor.shape)}")
        self.weights = weights_tensor
        self.num_samples = num_samples
        self.replacement = replacement
        self.generator = generator

    def __iter__(self):
        rand_tensor = _multinomial(self.weights, self.num_samples, self.replacement,
                                   self.generator)
        yield from iter(rand_tensor.tolist())

    def __len__(self):
        return self.num_samples


class BatchSampler(Sampler[list]):
    """Wraps a sampler (or any iterable of indices) to yield lists of batch_size indices."""

    def __init__(self, sampler, batch_size, drop_last):
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size <= 0:
            raise ValueError("batch_size should be a positive integer value, but got "
                             f"batch_size={batch_size}")
        if not isinstance(drop_last, bool):
            raise ValueError("drop_last should be a boolean value, but got "
                             f"drop_last={drop_last}")
        self.sampler = sampler
        self.batch_size = batch_size
        self.drop_last = drop_last

    def __iter__(self):
        sampler_iter = iter(self.sampler)
        if self.drop_last:
            # zip over one shared iterator yields full batches only.
            args = [sampler_iter] * self.batch_size
            for batch in zip(*args):
                yield [*batch]
        else:
            batch = [*itertools.islice(sampler_iter, self.batch_size)]
            while batch:
                yield batch
                batch = [*itertools.islice(sampler_iter, self.batch_size)]

    def __len__(self):
        if self.drop_last:
            return len(self.sampler) // self.batch_size
        return (len(self.sampler) + self.batch_size - 1) // self.batch_size
