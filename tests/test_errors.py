# Error cases of the tensor core in one table: the exception type PyTorch raises and key
# substrings of its message (sizes, dtypes, device names) that rustgrad's message must contain.
import operator

import numpy as np
import pytest
import rustgrad as rg
from _helpers import params


def setitem(t, key, value):
    t[key] = value


def t345():
    return rg.zeros(3, 4, 5)


# (id, callable, exception type(s), substrings of the message)
ERRORS = [
    # creation
    ("ragged_list", lambda: rg.tensor([[1, 2], [3]]), ValueError, ()),
    ("negative_dim", lambda: rg.zeros(2, -1), RuntimeError, ("negative",)),
    ("requires_grad_int", lambda: rg.tensor([1], requires_grad=True), RuntimeError,
     ("floating point",)),
    ("rand_like_int", lambda: rg.rand_like(rg.tensor([1])), RuntimeError, ("check_uniform_bounds",)),
    ("randn_like_int", lambda: rg.randn_like(rg.tensor([1])), RuntimeError, ("normal_kernel_cpu",)),
    ("uniform__bool", lambda: rg.zeros(2, dtype=rg.bool).uniform_(), RuntimeError, ("check_uniform_bounds",)),
    ("normal__int32", lambda: rg.zeros(2, dtype=rg.int32).normal_(), RuntimeError, ("normal_kernel_cpu",)),
    ("randint_empty_range", lambda: rg.randint(5, 5, (2,)), RuntimeError, ()),
    ("arange_wrong_sign", lambda: rg.arange(0, 5, -1), RuntimeError, ()),
    ("arange_zero_step", lambda: rg.arange(0, 5, 0), RuntimeError, ()),
    ("set_default_int", lambda: rg.set_default_dtype(rg.int64), TypeError, ()),
    # devices and attributes
    ("unknown_device", lambda: rg.device("tpu9"), RuntimeError, ("tpu9",)),
    ("unknown_device_factory", lambda: rg.zeros(2, device="tpu9"), RuntimeError, ("tpu9",)),
    ("unknown_device_to", lambda: rg.zeros(2).to("tpu9"), RuntimeError, ("tpu9",)),
    ("item_two_elements", lambda: rg.zeros(2).item(), RuntimeError, ("2 elements",)),
    ("item_empty", lambda: rg.zeros(0).item(), RuntimeError, ("0 elements",)),
    ("len_0d", lambda: len(rg.tensor(1.0)), TypeError, ("len() of a 0-d tensor",)),
    ("iter_0d", lambda: iter(rg.tensor(1.0)), TypeError, ("iteration over a 0-d tensor",)),
    ("size_dim_oob", lambda: rg.zeros(2, 3).size(2), IndexError, ("Dimension out of range",)),
    ("stride_dim_oob", lambda: rg.zeros(2, 3).stride(-3), IndexError,
     ("Dimension out of range",)),
    ("numpy_requires_grad", lambda: rg.zeros(2, requires_grad=True).numpy(), RuntimeError,
     ("detach",)),
    ("from_numpy_negative_stride", lambda: rg.from_numpy(np.arange(3.0)[::-1]), ValueError,
     ("negative",)),
    # views and shape ops
    ("view_non_contiguous", lambda: rg.zeros(3, 4).T.view(-1), RuntimeError, ("view",)),
    ("view_numel", lambda: rg.zeros(2, 3).view(5), RuntimeError, ("[5]", "6")),
    ("view_two_infer", lambda: rg.zeros(2, 3).view(-1, -1), RuntimeError,
     ("only one dimension can be inferred",)),
    ("reshape_numel", lambda: rg.zeros(2, 3).reshape(4, 2), RuntimeError, ("[4, 2]", "6")),
    ("expand_bad", lambda: rg.zeros(3, 2).expand(3, 4), RuntimeError, ("(4)", "(2)")),
    ("expand_fewer_dims", lambda: rg.zeros(3, 2).expand(2), RuntimeError, ()),
    ("squeeze_oob", lambda: rg.zeros(2).squeeze(1), IndexError, ("Dimension out of range",)),
    ("unsqueeze_oob", lambda: rg.zeros(2).unsqueeze(3), IndexError, ("Dimension out of range",)),
    ("transpose_oob", lambda: rg.zeros(2, 3).transpose(0, 2), IndexError,
     ("Dimension out of range",)),
    ("permute_repeated", lambda: rg.zeros(2, 3).permute(0, 0), RuntimeError, ("permute",)),
    ("permute_too_few", lambda: rg.zeros(2, 3).permute(0), RuntimeError, ()),
    ("flatten_bad_range", lambda: rg.zeros(2, 3, 4).flatten(2, 1), RuntimeError, ()),
    ("narrow_oob", lambda: rg.zeros(5).narrow(0, 3, 3), RuntimeError, ("(5)",)),
    ("cat_shape", lambda: rg.cat([rg.zeros(2, 3), rg.zeros(2, 2)]), RuntimeError,
     ("Sizes of tensors must match",)),
    ("cat_ndim", lambda: rg.cat([rg.zeros(2, 3), rg.zeros(3)]), RuntimeError, ()),
    ("cat_empty_list", lambda: rg.cat([]), ValueError, ("non-empty",)),
    ("cat_dim_oob", lambda: rg.cat([rg.zeros(2), rg.zeros(2)], 1), IndexError,
     ("Dimension out of range",)),
    ("stack_shape", lambda: rg.stack([rg.zeros(2), rg.zeros(3)]), RuntimeError,
     ("stack expects each tensor to be equal size",)),
    ("split_sizes", lambda: rg.zeros(5).split([2, 2]), RuntimeError, ("5", "[2, 2]")),
    # indexing
    ("index_oob", lambda: t345()[3], IndexError, ("index 3 is out of bounds", "size 3")),
    ("index_oob_negative", lambda: t345()[-4], IndexError, ("-4",)),
    ("index_oob_inner", lambda: t345()[0, 4], IndexError, ("index 4",)),
    ("index_list_oob", lambda: t345()[[0, 5]], IndexError, ("5",)),
    ("index_tensor_oob", lambda: t345()[:, rg.tensor([1, -5])], IndexError, ("-5",)),
    ("too_many_indices", lambda: t345()[0, 0, 0, 0], IndexError, ("too many indices",)),
    ("mask_shape", lambda: t345()[rg.tensor([True, False])], IndexError, ()),
    ("negative_step", lambda: t345()[::-1], ValueError, ("step must be greater than zero",)),
    ("float_index", lambda: t345()[1.5], IndexError, ()),
    ("setitem_shape", lambda: setitem(rg.zeros(3, 4), 0, rg.zeros(3)), RuntimeError, ()),
    ("setitem_oob", lambda: setitem(rg.zeros(3), 3, 1.0), IndexError, ()),
    # elementwise
    ("broadcast", lambda: rg.zeros(3, 7) + rg.zeros(5), RuntimeError, ("(7)", "(5)")),
    ("broadcast_inplace", lambda: rg.zeros(3, 1).add_(rg.zeros(3, 4)), RuntimeError,
     ("[3, 1]", "[3, 4]")),
    ("copy_shape", lambda: rg.zeros(3).copy_(rg.zeros(4)), RuntimeError, ()),
    ("int_floordiv_zero", lambda: rg.tensor([1, 2]) // 0, RuntimeError, ("ZeroDivisionError",)),
    ("int_mod_zero", lambda: rg.tensor([1, 2]) % rg.tensor([1, 0]), RuntimeError,
     ("ZeroDivisionError",)),
    ("int_iadd_float", lambda: operator.iadd(rg.tensor([1, 2]), 1.5), RuntimeError,
     ("Float", "Long")),
    ("int_div_", lambda: rg.tensor([1, 2]).div_(2), RuntimeError, ("Float", "Long")),
    ("int_imul_float_tensor", lambda: operator.imul(rg.tensor([1]), rg.tensor([1.0])),
     RuntimeError, ("Float", "Long")),
    ("float_and", lambda: rg.zeros(2) & rg.zeros(2), (TypeError, RuntimeError), ()),
    ("float_or_scalar", lambda: rg.zeros(2) | 1, (TypeError, RuntimeError), ()),
    ("float_invert", lambda: ~rg.zeros(2), (TypeError, RuntimeError), ()),
    ("bool_neg", lambda: -rg.tensor([True]), RuntimeError, ()),
    ("bool_sub", lambda: rg.tensor([True]) - rg.tensor([False]), RuntimeError, ()),
    ("int_negative_pow", lambda: rg.tensor([2]) ** -1, RuntimeError, ("negative",)),
    # reductions
    ("mean_int", lambda: rg.tensor([1, 2]).mean(), RuntimeError, ("Long",)),
    ("max_empty", lambda: rg.zeros(0).max(), RuntimeError, ("numel",)),
    ("argmax_empty", lambda: rg.zeros(0).argmax(), IndexError, ("numel",)),
    ("sum_dim_oob", lambda: rg.zeros(2, 3).sum(2), IndexError, ("Dimension out of range",)),
    ("max_dim_oob", lambda: rg.zeros(2, 3).max(-3), IndexError, ("Dimension out of range",)),
    # matmul
    ("matmul_shapes", lambda: rg.zeros(2, 3) @ rg.zeros(4, 5), RuntimeError, ("2x3", "4x5")),
    ("matmul_1d", lambda: rg.zeros(3) @ rg.zeros(4), RuntimeError, ("3", "4")),
    ("matmul_mat_vec", lambda: rg.zeros(2, 3) @ rg.zeros(4), RuntimeError, ("2x3", "4")),
    ("matmul_0d", lambda: rg.tensor(1.0) @ rg.zeros(2), RuntimeError, ("1D",)),
    ("matmul_batch", lambda: rg.zeros(2, 3, 4) @ rg.zeros(3, 4, 5), RuntimeError, ("(2)", "(3)")),
    ("matmul_dtype", lambda: rg.zeros(2, 3) @ rg.zeros(3, 2, dtype=rg.float64), RuntimeError, ()),
    ("mm_3d", lambda: rg.mm(rg.zeros(2, 2, 2), rg.zeros(2, 2)), RuntimeError, ()),
    ("mm_shapes", lambda: rg.mm(rg.zeros(2, 3), rg.zeros(2, 3)), RuntimeError, ("2x3",)),
]


@pytest.mark.parametrize("fn, exc, substrings", params(ERRORS))
def test_error(fn, exc, substrings):
    with pytest.raises(exc) as info:
        fn()
    for s in substrings:
        assert s in str(info.value), f"{s!r} not in {str(info.value)!r}"


@pytest.mark.parametrize("call", [lambda t: t.size(0), lambda t: t.size(-1), lambda t: t.stride(0)],
                         ids=["size0", "size-1", "stride0"])
def test_dim_queries_on_zero_dim_tensor_raise_index_error(call):
    with pytest.raises(IndexError, match="no dimensions"):
        call(rg.tensor(1.0))
