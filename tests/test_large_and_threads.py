# Large inputs take the engine's parallel paths (chunked loops, split reductions combined in
# order, GIL released); results must match NumPy and must not depend on the thread count.
import numpy as np
import pytest

import rustgrad as rg
from _helpers import torch_or_none


def test_full_reductions_match_numpy(threads):
    rng = np.random.default_rng(0)
    a = rng.standard_normal(3_000_003).astype(np.float32)
    t = rg.from_numpy(a)
    np.testing.assert_allclose(t.sum().item(), a.astype(np.float64).sum(), rtol=1e-6, atol=1e-3)
    np.testing.assert_allclose(t.mean().item(), a.astype(np.float64).mean(), rtol=1e-5, atol=1e-7)
    assert t.argmax().item() == int(np.argmax(a))
    assert t.argmin().item() == int(np.argmin(a))
    assert t.max().item() == a.max() and t.min().item() == a.min()


def test_argmax_first_of_ties_and_nan_across_chunks(threads):
    a = np.zeros(1_000_000, dtype=np.float32)
    a[[400_000, 900_000]] = 5.0
    assert rg.from_numpy(a).argmax().item() == 400_000
    a[700_000] = np.nan
    assert rg.from_numpy(a).argmax().item() == 700_000
    assert np.isnan(rg.from_numpy(a).max().item())


def test_few_rows_long_reductions(threads):
    a = np.random.default_rng(1).integers(-100, 100, size=(3, 400_000))
    t = rg.from_numpy(a)
    np.testing.assert_array_equal(t.sum(1).numpy(), a.sum(1))
    np.testing.assert_array_equal(t.argmax(1).numpy(), a.argmax(1))
    np.testing.assert_array_equal(t.T.sum(0).numpy(), a.sum(1))


# Reductions over leading dims with kept dims after them fold whole rows into a row of
# accumulators (column blocks of 1024; row ranges split across threads when the blocks are
# few): shapes that give one block, several blocks with a ragged last one, and split rows.
@pytest.mark.parametrize("shape, dims", [((4096, 1030), 0), ((3, 5000, 40), 1), ((2, 70_001), 0),
                                         ((6, 7, 300), (0, 1)), ((50_000, 3), 0)])
def test_column_reductions_match_numpy(threads, shape, dims):
    rng = np.random.default_rng(2)
    for dt in (np.float32, np.float64):
        a = rng.standard_normal(shape).astype(dt)
        t, ref = rg.from_numpy(a), a.astype(np.float64)
        np.testing.assert_allclose(t.sum(dims).numpy(), ref.sum(dims), rtol=1e-5, atol=1e-4)
        np.testing.assert_allclose(t.mean(dims).numpy(), ref.mean(dims), rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(t.amax(dims).numpy(), a.max(dims))
        np.testing.assert_array_equal(t.amin(dims).numpy(), a.min(dims))
        np.testing.assert_allclose(t.norm(dim=dims).numpy(), np.sqrt((ref * ref).sum(dims)), rtol=1e-5)
        np.testing.assert_allclose(t.norm(p=1, dim=dims).numpy(), np.abs(ref).sum(dims), rtol=1e-5)
        # A NaN wins its column only.
        b = a.copy()
        b.reshape(-1)[b.size // 2] = np.nan
        np.testing.assert_array_equal(rg.from_numpy(b).amax(dims).numpy(), b.max(dims))
        np.testing.assert_array_equal(rg.from_numpy(b).amin(dims).numpy(), b.min(dims))


def test_amax_amin_along_rows_with_nan_and_inf(threads):
    # Rows of 1000: 31 full blocks of 32 lanes and a tail of 8. A NaN in a block, in the tail,
    # and rows of -inf / +inf only.
    a = np.random.default_rng(3).standard_normal((64, 1000)).astype(np.float32)
    a[1, 500] = a[2, 997] = np.nan
    a[3] = -np.inf
    a[4] = np.inf
    t = rg.from_numpy(a)
    np.testing.assert_array_equal(t.amax(1).numpy(), a.max(1))
    np.testing.assert_array_equal(t.amin(1).numpy(), a.min(1))
    np.testing.assert_array_equal(t.amax().numpy(), a.max())
    np.testing.assert_array_equal(t[5:].amin().numpy(), a[5:].min())
    np.testing.assert_allclose(t[5:].norm().item(), np.sqrt((a[5:].astype(np.float64) ** 2).sum()), rtol=1e-6)


@pytest.mark.parametrize("shape, dims", [((64, 1000), 1), ((3, 5, 999), 2), ((1000, 70), 0), ((200_001,), 0)])
def test_products_match_numpy(threads, shape, dims):
    # Rows multiply into 32 lanes (31 full blocks and a tail of 8 for rows of 1000); columns
    # fold row by row; transposed inputs walk strided runs. A zero, an inf and a NaN each rule
    # their own row only.
    rng = np.random.default_rng(5)
    for dt in (np.float32, np.float64):
        a = rng.uniform(0.99, 1.01, shape).astype(dt)
        t, ref = rg.from_numpy(a), a.astype(np.float64)
        np.testing.assert_allclose(t.prod(dims).numpy(), ref.prod(dims), rtol=1e-5)
        np.testing.assert_allclose(t.T.prod().item(), ref.prod(), rtol=1e-5)
        if len(shape) == 2:
            np.testing.assert_allclose(t.T.prod(1 - dims).numpy(), ref.prod(dims), rtol=1e-5)
            b = a.copy()
            b[0, 3], b[1, -1], b[2, 40] = 0.0, np.inf, np.nan
            with np.errstate(invalid="ignore", over="ignore"):
                want = b.astype(np.float64).prod(dims)
            np.testing.assert_allclose(rg.from_numpy(b).prod(dims).numpy(), want, rtol=1e-5)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64, np.uint8])
def test_flip_long_rows(threads, dtype):
    # Flipping the inner dim reads each run backwards (vector loads and lane reversals).
    a = (np.arange(300 * 1001) % 251).astype(dtype).reshape(300, 1001)
    t = rg.from_numpy(a)
    np.testing.assert_array_equal(t.flip(1).numpy(), a[:, ::-1])
    np.testing.assert_array_equal(t.flip((0, 1)).numpy(), a[::-1, ::-1])
    np.testing.assert_array_equal(t[:, 1:18].flip(1).numpy(), a[:, 1:18][:, ::-1])
    np.testing.assert_array_equal(t[:, :1].flip(1).numpy(), a[:, :1])


@pytest.mark.parametrize("shape, dim", [((1024, 300), 0), ((4, 10, 33, 17), 1), ((3, 700, 5), 1)])
def test_softmax_along_leading_dims(threads, shape, dim):
    # Column blocks of 256 folded row by row; a NaN poisons its column only, +inf gives NaN
    # (as PyTorch), -inf gives 0.
    a = np.random.default_rng(4).standard_normal(shape).astype(np.float32) * 4
    flat = a.reshape(-1)
    flat[[7, 3 * flat.size // 5, flat.size - 2]] = [np.nan, np.inf, -np.inf]
    x = rg.from_numpy(a)
    ref = a.astype(np.float64)
    m = ref.max(dim, keepdims=True)
    with np.errstate(invalid="ignore"):
        e = np.exp(ref - m)
        want = e / e.sum(dim, keepdims=True)
        want_log = ref - m - np.log(e.sum(dim, keepdims=True))
    np.testing.assert_allclose(x.softmax(dim).numpy(), want, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(x.log_softmax(dim).numpy(), want_log, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("d", [1, 3, 10, 31, 32, 64, 255, 256, 1000])
def test_softmax_along_the_last_dim(threads, d):
    # Rows under 256 values go a block of rows at a time (flat exp and log loops; lanes from 32
    # values), longer ones one row at a time. A NaN poisons its row, +inf gives NaN, -inf 0.
    a = np.random.default_rng(5).standard_normal((1030, d)).astype(np.float32) * 4
    a[3, d // 2], a[600, 0], a[1029, d - 1] = np.nan, np.inf, -np.inf
    x = rg.from_numpy(a)
    ref = a.astype(np.float64)
    m = ref.max(1, keepdims=True)
    with np.errstate(invalid="ignore"):
        e = np.exp(ref - m)
        want = e / e.sum(1, keepdims=True)
        want_log = ref - m - np.log(e.sum(1, keepdims=True))
    np.testing.assert_allclose(x.softmax(1).numpy(), want, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(x.log_softmax(1).numpy(), want_log, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(x[5:9].log_softmax(-1).numpy(), want_log[5:9], rtol=1e-5, atol=1e-5)


def test_large_broadcast_elementwise_noncontiguous(threads):
    rng = np.random.default_rng(2)
    a = rng.standard_normal((700, 900)).astype(np.float32)
    b = rng.standard_normal(700).astype(np.float32)
    ta, tb = rg.from_numpy(a), rg.from_numpy(b)
    np.testing.assert_array_equal((ta.T * tb).numpy(), a.T * b)
    np.testing.assert_array_equal((ta[::2, 1::3] - 1.5).numpy(), a[::2, 1::3] - 1.5)
    c = ta.clone()
    c[:, 10:20] += 1
    ref = a.copy()
    ref[:, 10:20] += 1
    np.testing.assert_array_equal(c.numpy(), ref)


# (300, 257, 190): rows split between the threads over one packed panel; (300, 520, 700):
# each thread packs its own column strips (more columns than rows), over two k blocks.
@pytest.mark.parametrize("m, k, n", [(300, 257, 190), (300, 520, 700)])
@pytest.mark.parametrize("b_transposed", [True, False])
def test_large_matmul(threads, m, k, n, b_transposed):
    rng = np.random.default_rng(3)
    a = rng.standard_normal((m, k)).astype(np.float32)
    b = rng.standard_normal((k, n)).astype(np.float32)
    tb = rg.from_numpy(b).T.contiguous().T if b_transposed else rg.from_numpy(b)
    got = (rg.from_numpy(a) @ tb).numpy()
    np.testing.assert_allclose(got, a.astype(np.float64) @ b, rtol=1e-4, atol=1e-4)


def test_random_streams_do_not_depend_on_thread_count():
    draws = []
    for n in (1, 2):
        rg.set_num_threads(n)
        rg.manual_seed(123)
        draws.append((rg.rand(200_000).numpy(), rg.randn(100_001, dtype=rg.float64).numpy()))
    rg.set_num_threads(2)
    np.testing.assert_array_equal(draws[0][0], draws[1][0])
    np.testing.assert_array_equal(draws[0][1], draws[1][1])


def test_set_num_threads_roundtrip_and_validation():
    before = rg.get_num_threads()
    rg.set_num_threads(1)
    assert rg.get_num_threads() == 1
    rg.set_num_threads(before)
    with pytest.raises(ValueError):
        rg.set_num_threads(0)


def test_engine_panic_becomes_runtime_error():
    with pytest.raises(RuntimeError, match="deliberate test panic"):
        rg._C._panic_in_engine_for_test()
    # The interpreter and the engine stay usable afterwards.
    assert (rg.ones(3) + 1).tolist() == [2.0, 2.0, 2.0]


def test_large_sum_parity_with_torch():
    torch = torch_or_none()
    if torch is None:
        pytest.skip("torch not importable")
    a = np.random.default_rng(4).standard_normal((64, 50_000)).astype(np.float32)
    np.testing.assert_allclose(rg.from_numpy(a).sum(0).numpy(), torch.from_numpy(a).sum(0).numpy(), rtol=1e-4, atol=1e-4)


def _child_work(q):
    import rustgrad as rg2
    rg2.set_num_threads(2)
    q.put(float((rg2.ones(1 << 20) * 2).sum().item()))


def test_forked_child_gets_fresh_engine_threads():
    # The parent's pool threads do not exist after fork(); the child must neither wait on them
    # (dropping the inherited pool) nor hand them work.
    import multiprocessing as mp
    (rg.ones(1 << 20) + 1).sum()  # start the parent's threads
    ctx = mp.get_context("fork")
    for _ in range(5):
        q = ctx.Queue()
        p = ctx.Process(target=_child_work, args=(q,))
        p.start()
        p.join(60)
        alive = p.is_alive()
        if alive:
            p.kill()
        assert not alive, "forked child hung on the engine's thread pool"
        assert q.get(timeout=5) == 2.0 * (1 << 20)
