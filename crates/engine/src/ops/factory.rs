//! Tensor factories: full/zeros/ones/empty, eye, arange, linspace.

use crate::dispatch;
use crate::dtype::{DType, Element, Scalar};
use crate::error::{runtime_err, Error, Result};
use crate::layout::{Layout, Strides};
use crate::storage::Storage;
use std::sync::Arc;
use crate::kernels::strided::SendPtr;
use crate::ops::cast::copy_into;
use crate::parallel;
use crate::tensor::{Tensor, View};

pub fn full(shape: &[usize], value: Scalar, dtype: DType) -> Result<Tensor> {
    if value.is_zero() {
        return Ok(Tensor::zeros(shape, dtype));
    }
    let t = Tensor::uninit(shape, dtype);
    fill(&t, value)?;
    Ok(t)
}

/// `empty_strided(size, stride)`: fresh storage just large enough for the layout, zeroed like
/// `empty` (uninitialised bytes would not be valid `bool`s).
pub fn empty_strided(shape: &[usize], strides: &[i64], dtype: DType) -> Result<Tensor> {
    if strides.len() != shape.len() {
        return Err(Error::Runtime(format!(
            "dimensionality of sizes ({}) must match dimensionality of strides ({})",
            shape.len(),
            strides.len()
        )));
    }
    if strides.iter().any(|&s| s < 0) {
        return Err(Error::Runtime(format!("Storage size calculation overflowed with sizes={shape:?} and strides={strides:?}")));
    }
    let layout = Layout { shape: shape.into(), strides: strides.iter().map(|&s| s as isize).collect(), offset: 0 };
    let bytes = layout.storage_extent() * dtype.size();
    Ok(Tensor::from_view(View { storage: Arc::new(Storage::zeroed(bytes)), layout, dtype }))
}

/// A zeroed tensor of `shape` with dense `strides` (`None`: row-major).
pub fn zeros_strided(shape: &[usize], strides: Option<Strides>, dtype: DType) -> Tensor {
    let mut v = Tensor::zeros(shape, dtype).view();
    if let Some(st) = strides {
        v.layout.strides = st;
    }
    Tensor::from_view(v)
}

/// `fill_`: writes one value everywhere in the tensor's view. An expanded view is fine here
/// (every alias gets the same value): its broadcast dims are written once.
pub fn fill(t: &Tensor, value: Scalar) -> Result<()> {
    let s = Tensor::scalar(value, t.dtype());
    let mut v = t.view();
    for (d, &st) in v.layout.shape.iter_mut().zip(&v.layout.strides) {
        if st == 0 {
            *d = (*d).min(1);
        }
    }
    copy_into(&v, &s.view())
}

pub fn eye(n: usize, m: usize, dtype: DType) -> Result<Tensor> {
    let t = Tensor::zeros(&[n, m], dtype);
    let v = t.view();
    dispatch!(dtype, T => {
        let p = v.ptr::<T>();
        for i in 0..n.min(m) {
            // SAFETY: (i, i) lies inside the n×m buffer.
            unsafe { *p.add(i * m + i) = T::one() };
        }
    });
    Ok(t)
}

/// Fills a fresh 1-D tensor with `f(i)` for each index, in parallel.
fn tabulate<T: Element>(n: usize, f: impl Fn(usize) -> T + Sync + Send) -> Tensor {
    let t = Tensor::uninit(&[n], T::DTYPE);
    let p = SendPtr(t.view().ptr::<T>());
    let chunks = parallel::chunks_for(n, parallel::GRAIN);
    let per = n.div_ceil(chunks.max(1));
    parallel::for_chunks(chunks, |c| {
        for i in c * per..((c + 1) * per).min(n) {
            // SAFETY: each index is written once, inside the buffer.
            unsafe { *p.at(i as isize) = f(i) };
        }
    });
    t
}

/// `arange(start, end, step)`: size ceil((end - start) / step), values start + i·step.
pub fn arange(start: Scalar, end: Scalar, step: Scalar, dtype: DType) -> Result<Tensor> {
    let (s, e, st) = (start.as_f64(), end.as_f64(), step.as_f64());
    if st == 0.0 {
        return runtime_err("step must be nonzero");
    }
    if !(s.is_finite() && e.is_finite()) {
        return runtime_err(format!("unsupported range: {s} -> {e}"));
    }
    if (st > 0.0 && e < s) || (st < 0.0 && e > s) {
        return runtime_err("upper bound and larger bound inconsistent with step sign");
    }
    let n = ((e - s) / st).ceil().max(0.0) as usize;
    if dtype.is_float() {
        Ok(dispatch!(dtype, T => tabulate::<T>(n, |i| T::from_scalar(Scalar::Float(s + i as f64 * st)))))
    } else {
        let (si, sti) = (start.as_i64(), step.as_i64());
        let int_args = !matches!(start, Scalar::Float(_)) && !matches!(step, Scalar::Float(_));
        Ok(dispatch!(dtype, T => tabulate::<T>(n, |i| if int_args {
            T::from_scalar(Scalar::Int(si.wrapping_add((i as i64).wrapping_mul(sti))))
        } else {
            T::from_scalar(Scalar::Float(s + i as f64 * st))
        })))
    }
}

/// `linspace`: symmetric evaluation from both ends, as PyTorch does, so the end point is exact.
pub fn linspace(start: f64, end: f64, steps: i64, dtype: DType) -> Result<Tensor> {
    if steps < 0 {
        return runtime_err("number of steps must be non-negative");
    }
    let n = steps as usize;
    if n == 1 {
        return full(&[1], Scalar::Float(start), dtype);
    }
    let half = n / 2;
    Ok(if dtype == DType::F32 {
        let (s, e) = (start as f32, end as f32);
        let step = (e - s) / (n as f32 - 1.0);
        tabulate::<f32>(n, |i| if i < half { s + step * i as f32 } else { e - step * (n - i - 1) as f32 })
    } else {
        let step = (end - start) / (n as f64 - 1.0);
        let vals = tabulate::<f64>(n, |i| if i < half { start + step * i as f64 } else { end - step * (n - i - 1) as f64 });
        crate::ops::cast::to_dtype(&vals, dtype)
    })
}
