//! Copies between layouts and dtypes: `to(dtype)`, `contiguous`, `clone`, `copy_`.

use crate::dispatch;
use crate::dtype::{DType, Element};
use crate::error::{shape_err, Result};
use crate::kernels::map::{map1, Arg};
use crate::kernels::stream;
use crate::kernels::strided::{self, SendPtr};
use crate::parallel;
use crate::tensor::{Tensor, View};

/// Writes `src` (broadcast to `dst`'s shape, cast to its dtype) into `dst`'s memory.
pub fn copy_into(dst: &View, src: &View) -> Result<()> {
    if dst.layout.has_internal_overlap() {
        return shape_err(
            "unsupported operation: more than one element of the written-to tensor refers to a single memory location. Please clone() the tensor before performing the operation.",
        );
    }
    let src_layout = src.layout.broadcast_to(&dst.layout.shape)?;
    // Reading and writing the same memory in one pass could read already-written values.
    let src = if std::sync::Arc::ptr_eq(&src.storage, &dst.storage) && src.layout != dst.layout {
        let c = materialize(src, src.dtype);
        let l = c.layout.broadcast_to(&dst.layout.shape)?;
        View { layout: l, ..c }
    } else {
        View { layout: src_layout, ..src.clone() }
    };
    convert(&src, dst);
    dst.storage.bump_version();
    Ok(())
}

/// PyTorch's refusal to write `out` while reading `input` when the two cover partly the same
/// memory (for dense views; others are left to the caller's copy-first handling, as PyTorch
/// gives up on them too).
pub fn check_no_partial_overlap(out: &View, input: &View) -> Result<()> {
    if !std::sync::Arc::ptr_eq(&out.storage, &input.storage) || out.layout.numel() == 0 || input.layout.numel() == 0 {
        return Ok(());
    }
    let (lo, li) = (&out.layout, &input.layout);
    if !lo.is_dense() || !li.is_dense() {
        return Ok(());
    }
    let bytes = |l: &crate::layout::Layout, dt: DType| (l.offset * dt.size(), (l.offset + l.numel()) * dt.size());
    let ((ob, oe), (ib, ie)) = (bytes(lo, out.dtype), bytes(li, input.dtype));
    let full = ob == ib && oe == ie && lo.strides == li.strides;
    if ob < ie && ib < oe && !full {
        return shape_err(
            "unsupported operation: some elements of the input tensor and the written-to tensor refer to a single memory location. Please clone() the tensor before performing the operation.",
        );
    }
    Ok(())
}

/// `dst = src` elementwise (same shape), casting when the dtypes differ. Same-dtype copies move
/// bits (no round trip through a wider type), dense ones as parallel block copies.
fn convert(src: &View, dst: &View) {
    let shape = &dst.layout.shape;
    if src.dtype == dst.dtype {
        if src.layout.is_contiguous() && dst.layout.is_contiguous() {
            let n = dst.layout.numel();
            dispatch!(src.dtype, T => {
                let (s, d) = (SendPtr(src.ptr::<T>()), SendPtr(dst.ptr::<T>()));
                let chunks = parallel::chunks_for(n, 4 * parallel::GRAIN);
                let streamed = stream::wanted(n * size_of::<T>()) && s.0 != d.0;
                parallel::for_chunks(chunks, |c| {
                    let (lo, hi) = (c * n / chunks, (c + 1) * n / chunks);
                    // SAFETY: both views are dense with n elements; distinct storages (or the
                    // same layout, where the copy changes nothing) as copy_into ensured.
                    unsafe {
                        if streamed {
                            stream::copy(s.at(lo as isize), d.at(lo as isize), hi - lo);
                        } else {
                            std::ptr::copy(s.at(lo as isize), d.at(lo as isize), hi - lo);
                        }
                    }
                });
            });
            return;
        }
        dispatch!(src.dtype, T => {
            if !strided::copy_rows::<T>(shape, (dst.ptr::<T>(), &dst.layout.strides), (src.ptr::<T>(), &src.layout.strides)) {
                map1::<T, T>(shape, Arg::new(dst.ptr::<T>(), &dst.layout.strides), Arg::new(src.ptr::<T>(), &src.layout.strides), |x| x);
            }
        });
        return;
    }
    dispatch!(src.dtype, S => dispatch!(dst.dtype, D => {
        map1::<S, D>(shape, Arg::new(dst.ptr::<D>(), &dst.layout.strides),
            Arg::new(src.ptr::<S>(), &src.layout.strides), |x| x.cast::<D>())
    }));
}

/// A fresh contiguous copy of `src` as `dtype`.
pub fn materialize(src: &View, dtype: DType) -> View {
    let out = Tensor::uninit(&src.layout.shape, dtype).view();
    convert(src, &out);
    out
}

/// `t.to(dtype)`: the same tensor when the dtype already matches, as in PyTorch.
pub fn to_dtype(t: &Tensor, dtype: DType) -> Tensor {
    if t.dtype() == dtype {
        return t.clone();
    }
    Tensor::from_view(materialize(&t.view(), dtype))
}

/// A copy of `t` as `dtype` laid out as PyTorch's `preserve_format` lays it out (`clone()`,
/// `to(dtype)`): `layout::preserved_strides`.
pub fn copy_like(t: &Tensor, dtype: DType) -> Tensor {
    copy_strided(t, dtype, crate::layout::preserved_strides(&t.layout()))
}

/// A copy of `t` as `dtype` with dense `strides` for its shape (`None`: row-major).
pub fn copy_strided(t: &Tensor, dtype: DType, strides: Option<crate::layout::Strides>) -> Tensor {
    let v = t.view();
    let mut out = Tensor::uninit(&v.layout.shape, dtype).view();
    if let Some(st) = strides {
        out.layout.strides = st;
    }
    convert(&v, &out);
    Tensor::from_view(out)
}

/// A fresh contiguous copy (`contiguous()`, and wherever the engine needs row-major data).
pub fn clone(t: &Tensor) -> Tensor {
    let v = t.view();
    Tensor::from_view(materialize(&v, v.dtype))
}

impl Tensor {
    /// The tensor itself when already contiguous, else a contiguous copy.
    pub fn contiguous(&self) -> Tensor {
        if self.is_contiguous() {
            return self.clone();
        }
        clone(self)
    }
    /// `copy_`: broadcast + cast `src` into this tensor's memory.
    pub fn copy_from(&self, src: &Tensor) -> Result<()> {
        copy_into(&self.view(), &src.view())
    }
    /// Contiguous values as `T` in row-major order, borrowing when no copy is needed.
    pub fn contiguous_as<T: Element>(&self) -> Tensor {
        to_dtype(self, T::DTYPE).contiguous()
    }
}
