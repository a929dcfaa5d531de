//! View ops (no copy: new layouts over the same storage) and the few shape ops that must copy
//! (`cat`, `stack`, `flip`, `roll`, constant `pad`, non-viewable `reshape`).

use crate::dtype::{default_float, result_type, Element, Operand, Scalar};
use crate::error::{index_err, shape_err, Error, Result};
use crate::layout::{check_step, clamp_slice, fmt_shape, infer_size, wrap_dim, Dims, Layout};
use crate::ops::cast::{clone, copy_into, to_dtype};
use crate::kernels::runs::copy_run;
use crate::kernels::simd;
use crate::kernels::strided::{row_runs, SendPtr};
use crate::parallel;
use crate::tensor::Tensor;

/// `view`: fails if the layout cannot express the new shape without copying.
pub fn view(t: &Tensor, shape: &[i64]) -> Result<Tensor> {
    let l = t.layout();
    let target = infer_size(shape, l.numel())?;
    match l.view(&target) {
        Some(nl) => Ok(t.with_layout(nl)),
        None => shape_err(
            "view size is not compatible with input tensor's size and stride (at least one dimension spans across two contiguous subspaces). Use .reshape(...) instead.",
        ),
    }
}

/// `reshape`: a view when possible, else a contiguous copy.
pub fn reshape(t: &Tensor, shape: &[i64]) -> Result<Tensor> {
    let l = t.layout();
    let target = infer_size(shape, l.numel())?;
    match l.view(&target) {
        Some(nl) => Ok(t.with_layout(nl)),
        None => {
            let c = clone(t);
            Ok(c.with_layout(Layout::contiguous(&target)))
        }
    }
}

pub fn flatten(t: &Tensor, start: i64, end: i64) -> Result<Tensor> {
    let shape = t.shape();
    let nd = shape.len();
    if nd == 0 {
        return reshape(t, &[1]);
    }
    let (s, e) = (wrap_dim(start, nd)?, wrap_dim(end, nd)?);
    if s > e {
        return shape_err("flatten() has invalid args: start_dim cannot come after end_dim");
    }
    let mut new: Vec<i64> = shape[..s].iter().map(|&d| d as i64).collect();
    new.push(shape[s..=e].iter().product::<usize>() as i64);
    new.extend(shape[e + 1..].iter().map(|&d| d as i64));
    reshape(t, &new)
}

pub fn unflatten(t: &Tensor, dim: i64, sizes: &[i64]) -> Result<Tensor> {
    let shape = t.shape();
    let d = wrap_dim(dim, shape.len())?;
    let inner = infer_size(sizes, shape[d]).map_err(|_| {
        Error::Shape(format!(
            "unflatten: Provided sizes {} don't multiply up to the size of dim {dim} ({}) in the input tensor",
            crate::layout::fmt_i64(sizes),
            shape[d]
        ))
    })?;
    let mut new: Vec<i64> = shape[..d].iter().map(|&x| x as i64).collect();
    new.extend(inner.iter().map(|&x| x as i64));
    new.extend(shape[d + 1..].iter().map(|&x| x as i64));
    view(t, &new).or_else(|_| reshape(t, &new))
}

pub fn squeeze_all(t: &Tensor) -> Tensor {
    let l = t.layout();
    let all: Vec<usize> = (0..l.ndim()).collect();
    t.with_layout(l.squeeze(&all))
}

pub fn squeeze_dims(t: &Tensor, dims: &[i64]) -> Result<Tensor> {
    let l = t.layout();
    let ds = dims.iter().map(|&d| wrap_dim(d, l.ndim())).collect::<Result<Vec<_>>>()?;
    if l.ndim() == 0 {
        return Ok(t.clone().with_layout(l));
    }
    Ok(t.with_layout(l.squeeze(&ds)))
}

pub fn squeeze_dim(t: &Tensor, dim: i64) -> Result<Tensor> {
    squeeze_dims(t, &[dim])
}

pub fn unsqueeze(t: &Tensor, dim: i64) -> Result<Tensor> {
    let l = t.layout();
    let d = wrap_dim(dim, l.ndim() + 1)?;
    Ok(t.with_layout(l.unsqueeze(d)))
}

pub fn transpose(t: &Tensor, d0: i64, d1: i64) -> Result<Tensor> {
    let l = t.layout();
    if l.ndim() == 0 {
        wrap_dim(d0, 0)?;
        wrap_dim(d1, 0)?;
        return Ok(t.with_layout(l));
    }
    let (a, b) = (wrap_dim(d0, l.ndim())?, wrap_dim(d1, l.ndim())?);
    Ok(t.with_layout(l.transpose(a, b)))
}

/// `t()`: transpose for ≤ 2-D tensors.
pub fn t2d(t: &Tensor) -> Result<Tensor> {
    let nd = t.ndim();
    if nd > 2 {
        return shape_err(format!("t() expects a tensor with <= 2 dimensions, but self is {nd}D"));
    }
    if nd < 2 {
        return Ok(t.with_layout(t.layout()));
    }
    transpose(t, 0, 1)
}

pub fn permute(t: &Tensor, dims: &[i64]) -> Result<Tensor> {
    let l = t.layout();
    let ds = dims.iter().map(|&d| wrap_dim(d, l.ndim())).collect::<Result<Vec<_>>>()?;
    if l.ndim() == 0 && ds.is_empty() {
        return Ok(t.with_layout(l));
    }
    Ok(t.with_layout(l.permute(&ds)?))
}

/// `T`: all dims reversed.
pub fn reverse_dims(t: &Tensor) -> Result<Tensor> {
    let nd = t.ndim() as i64;
    let dims: Vec<i64> = (0..nd).rev().collect();
    permute(t, &dims)
}

pub fn movedim(t: &Tensor, src: &[i64], dst: &[i64]) -> Result<Tensor> {
    let nd = t.ndim();
    if src.len() != dst.len() {
        return shape_err(format!(
            "movedim: Invalid source or destination dims: source ({} dims) should contain the same number of dims as destination ({} dims)",
            crate::layout::fmt_i64(src),
            crate::layout::fmt_i64(dst)
        ));
    }
    let s = src.iter().map(|&d| wrap_dim(d, nd)).collect::<Result<Vec<_>>>()?;
    let d = dst.iter().map(|&d| wrap_dim(d, nd)).collect::<Result<Vec<_>>>()?;
    let mut order: Vec<Option<usize>> = vec![None; nd];
    for (&si, &di) in s.iter().zip(&d) {
        if order[di].is_some() {
            return shape_err("movedim: repeated dim in `destination`");
        }
        order[di] = Some(si);
    }
    let mut rest = (0..nd).filter(|x| !s.contains(x));
    let perm: Vec<i64> = order.into_iter().map(|o| o.or_else(|| rest.next()).unwrap_or(0) as i64).collect();
    let mut sorted = s.clone();
    sorted.sort();
    sorted.dedup();
    if sorted.len() != s.len() {
        return shape_err("movedim: repeated dim in `source`");
    }
    permute(t, &perm)
}

pub fn expand(t: &Tensor, sizes: &[i64]) -> Result<Tensor> {
    Ok(t.with_layout(t.layout().expand(sizes)?))
}

pub fn narrow(t: &Tensor, dim: i64, start: i64, length: i64) -> Result<Tensor> {
    let l = t.layout();
    if l.ndim() == 0 {
        return shape_err("narrow() cannot be applied to a 0-dim tensor.");
    }
    let d = wrap_dim(dim, l.ndim())?;
    let size = l.shape[d] as i64;
    if start < -size || start > size {
        return index_err(format!(
            "start out of range (expected to be in range of [{}, {size}], but got {start})",
            -size
        ));
    }
    let s = if start < 0 { start + size } else { start };
    if length < 0 || s + length > size {
        return shape_err(format!("start ({s}) + length ({length}) exceeds dimension size ({size})."));
    }
    Ok(t.with_layout(l.slice(d, s as usize, (s + length) as usize, 1)))
}

/// `t[index]` along `dim` (index may be negative).
pub fn select(t: &Tensor, dim: i64, index: i64) -> Result<Tensor> {
    let l = t.layout();
    if l.ndim() == 0 {
        return index_err("invalid index of a 0-dim tensor. Use `tensor.item()` in Python or `tensor.item<T>()` in C++ to convert a 0-dim tensor to a number");
    }
    let d = wrap_dim(dim, l.ndim())?;
    let size = l.shape[d] as i64;
    if index < -size || index >= size {
        return index_err(format!("index {index} is out of bounds for dimension {d} with size {size}"));
    }
    let i = if index < 0 { index + size } else { index };
    Ok(t.with_layout(l.select(d, i as usize)))
}

/// Python slice `start:stop:step` along `dim`.
pub fn slice(t: &Tensor, dim: usize, start: Option<i64>, stop: Option<i64>, step: i64) -> Result<Tensor> {
    let step = check_step(step)?;
    let l = t.layout();
    let (s, e) = clamp_slice(l.shape[dim], start, stop);
    Ok(t.with_layout(l.slice(dim, s, e, step)))
}

pub fn unbind(t: &Tensor, dim: i64) -> Result<Vec<Tensor>> {
    let nd = t.ndim();
    if nd == 0 {
        return index_err("Dimension specified as 0 but tensor has no dimensions");
    }
    let d = wrap_dim(dim, nd)?;
    (0..t.shape()[d] as i64).map(|i| select(t, d as i64, i)).collect()
}

/// `split` with sections of `size` (last one shorter).
pub fn split(t: &Tensor, size: i64, dim: i64) -> Result<Vec<Tensor>> {
    let nd = t.ndim();
    if nd == 0 {
        return shape_err("split expects at least a 1-dimensional tensor");
    }
    let d = wrap_dim(dim, nd)?;
    let n = t.shape()[d] as i64;
    if size < 0 || (size == 0 && n != 0) {
        return shape_err(format!("split_size can only be 0 if dimension size is 0, but got dimension size of {n}"));
    }
    if n == 0 {
        return Ok(vec![t.with_layout(t.layout())]);
    }
    let mut out = Vec::new();
    let mut s = 0;
    while s < n {
        out.push(narrow(t, d as i64, s, size.min(n - s))?);
        s += size;
    }
    Ok(out)
}

pub fn split_sizes(t: &Tensor, sizes: &[i64], dim: i64) -> Result<Vec<Tensor>> {
    let d = wrap_dim(dim, t.ndim())?;
    let n = t.shape()[d] as i64;
    if sizes.iter().any(|&s| s < 0) || sizes.iter().sum::<i64>() != n {
        return shape_err(format!(
            "split_with_sizes expects split_sizes to sum exactly to {n} (input tensor's size at dimension {d}), but got split_sizes={}",
            crate::layout::fmt_i64(sizes)
        ));
    }
    let mut s = 0;
    sizes
        .iter()
        .map(|&len| {
            let r = narrow(t, d as i64, s, len);
            s += len;
            r
        })
        .collect()
}

pub fn chunk(t: &Tensor, chunks: i64, dim: i64) -> Result<Vec<Tensor>> {
    if chunks <= 0 {
        return shape_err(format!("chunk expects `chunks` to be greater than 0, got: {chunks}"));
    }
    let d = wrap_dim(dim, t.ndim())?;
    let n = t.shape()[d] as i64;
    let size = (n + chunks - 1) / chunks;
    split(t, size.max(if n == 0 { 0 } else { 1 }), d as i64)
}

/// `cat`: inputs promote to a common dtype; legacy empty 1-D tensors are skipped.
pub fn cat(ts: &[Tensor], dim: i64) -> Result<Tensor> {
    if ts.is_empty() {
        return Err(Error::Value("torch.cat(): expected a non-empty list of Tensors".into()));
    }
    for (i, t) in ts.iter().enumerate() {
        if t.ndim() == 0 {
            return shape_err(format!("zero-dimensional tensor (at position {i}) cannot be concatenated"));
        }
    }
    let ops: Vec<Operand> = ts.iter().map(|t| Operand::Tensor(t.dtype())).collect();
    let dt = result_type(&ops, default_float());
    let parts: Vec<&Tensor> = ts.iter().filter(|t| !(t.ndim() == 1 && t.numel() == 0)).collect();
    let Some(first) = parts.first() else {
        return Ok(Tensor::zeros(&[0], dt));
    };
    let ref_shape = first.shape();
    let d = wrap_dim(dim, ref_shape.len())?;
    let mut total = 0;
    for (i, t) in parts.iter().enumerate() {
        let s = t.shape();
        if s.len() != ref_shape.len() {
            return shape_err(format!(
                "Tensors must have same number of dimensions: got {} and {}",
                ref_shape.len(),
                s.len()
            ));
        }
        for k in 0..s.len() {
            if k != d && s[k] != ref_shape[k] {
                return shape_err(format!(
                    "Sizes of tensors must match except in dimension {d}. Expected size {} but got size {} for tensor number {i} in the list.",
                    ref_shape[k], s[k]
                ));
            }
        }
        total += s[d];
    }
    let mut out_shape: Dims = ref_shape.clone();
    out_shape[d] = total;
    let out = Tensor::uninit(&out_shape, dt);
    let ol = out.layout();
    let mut at = 0;
    for t in parts {
        let len = t.shape()[d];
        let dst = out.with_layout(ol.slice(d, at, at + len, 1));
        copy_into(&dst.view(), &to_dtype(t, dt).view())?;
        at += len;
    }
    Ok(out)
}

pub fn stack(ts: &[Tensor], dim: i64) -> Result<Tensor> {
    let Some(first) = ts.first() else {
        return shape_err("stack expects a non-empty TensorList");
    };
    let s0 = first.shape();
    for (i, t) in ts.iter().enumerate() {
        if t.shape() != s0 {
            return shape_err(format!(
                "stack expects each tensor to be equal size, but got {} at entry 0 and {} at entry {i}",
                fmt_shape(&s0),
                fmt_shape(&t.shape())
            ));
        }
    }
    let d = wrap_dim(dim, s0.len() + 1)? as i64;
    let parts = ts.iter().map(|t| unsqueeze(t, d)).collect::<Result<Vec<_>>>()?;
    cat(&parts, d)
}

/// `flip`: a copy read through negative strides.
pub fn flip(t: &Tensor, dims: &[i64]) -> Result<Tensor> {
    let mut l = t.layout();
    let nd = l.ndim();
    let mut seen = vec![false; nd.max(1)];
    for &d in dims {
        let w = wrap_dim(d, nd)?;
        if seen[w] {
            return shape_err(format!("dim {w} appears multiple times in the list of dims"));
        }
        seen[w] = true;
        if nd == 0 || l.shape[w] == 0 {
            continue;
        }
        l.offset = (l.offset as isize + (l.shape[w] as isize - 1) * l.strides[w]) as usize;
        l.strides[w] = -l.strides[w];
    }
    Ok(clone(&t.with_layout(l)))
}

/// `roll(shifts, dims)`; without dims the tensor is rolled as if flattened.
pub fn roll(t: &Tensor, shifts: &[i64], dims: &[i64]) -> Result<Tensor> {
    if dims.is_empty() {
        if shifts.len() != 1 {
            return shape_err(format!("`shifts` required to be of size 1 when dims is empty, got {}", shifts.len()));
        }
        let shape: Vec<i64> = t.shape().iter().map(|&d| d as i64).collect();
        let flat = reshape(t, &[-1])?;
        return reshape(&roll(&flat, shifts, &[0])?, &shape);
    }
    if shifts.len() != dims.len() {
        return shape_err(format!(
            "shifts and dimensions must align. shifts: {}, dims:{}",
            shifts.len(),
            dims.len()
        ));
    }
    let mut cur = t.clone();
    for (&s, &d) in shifts.iter().zip(dims) {
        let w = wrap_dim(d, cur.ndim())?;
        let n = cur.shape()[w] as i64;
        if n == 0 {
            continue;
        }
        let k = s.rem_euclid(n);
        if k == 0 {
            cur = clone(&cur);
            continue;
        }
        let tail = narrow(&cur, w as i64, n - k, k)?;
        let head = narrow(&cur, w as i64, 0, n - k)?;
        cur = cat(&[tail, head], w as i64)?;
    }
    Ok(cur)
}

/// `F.pad` in constant mode: `src` (already cropped by negative pads) placed at `at[d]` in a
/// fresh tensor of `shape`, `value` elsewhere, the rows along the last dim split over the
/// threads. Each block of rows is filled and then gets its source rows while it is in L1
/// (filling the whole output first wrote it twice through memory, the fill on one thread).
pub fn pad_constant(src: &Tensor, shape: &[usize], at: &[usize], value: Scalar) -> Result<Tensor> {
    let dt = src.dtype();
    let sv = src.view();
    let sl = &sv.layout;
    let nd = shape.len();
    let numel = crate::layout::numel(shape);
    if sl.shape[..] == shape[..] {
        // Only crops (the backward of a pad): a plain copy, row by row (`cast::clone`).
        return Ok(crate::ops::cast::clone(src));
    }
    if nd < 2 || numel == 0 || sl.strides[nd - 1] != 1 && sl.shape[nd - 1] > 1 {
        let out = crate::ops::factory::full(shape, value, dt)?;
        let mut l = out.layout();
        for d in 0..nd {
            l = l.slice(d, at[d], at[d] + sl.shape[d], 1);
        }
        if sl.numel() > 0 {
            copy_into(&out.with_layout(l).view(), &sv)?;
        }
        return Ok(out);
    }
    let out = Tensor::uninit(shape, dt);
    let w = shape[nd - 1];
    let rows = numel / w;
    let (a, n) = (at[nd - 1], sl.shape[nd - 1]);
    let any = sl.numel() > 0;
    crate::dispatch!(dt, T => {
        let fill = T::from_scalar(value);
        let (sp, op) = (SendPtr(sv.ptr::<T>()), SendPtr(out.view().ptr::<T>()));
        let chunks = parallel::chunks_for(numel, 4 * parallel::GRAIN).min(rows);
        // Whether index i of output dim d lies over the source (not in the padding).
        let inside = |d: usize, i: usize| i >= at[d] && i < at[d] + sl.shape[d];
        parallel::for_chunks(chunks, |c| simd::wide(#[inline(always)] || {
            let (r0, r1) = (c * rows / chunks, (c + 1) * rows / chunks);
            let k = nd - 2;
            let mut r = r0;
            // Rows of a run are filled a block at a time, and the source rows copied into the
            // block while it is in L1: two passes over L1 cost less than a branchy fill | copy |
            // fill per row (16×64×32×32 padded by one: 1.2× faster, one pass 1.4× slower).
            let block = (2048 / w).max(1);
            row_runs(&shape[..nd - 1], r0, r1, #[inline(always)] |idx, cnt| {
                // The source row's offset (meaningful where every index is inside).
                let off = (0..=k).map(|d| (idx[d] as isize - at[d] as isize) * sl.strides[d]).sum::<isize>();
                let outer = any && (0..k).all(|d| inside(d, idx[d]));
                for i0 in (0..cnt).step_by(block) {
                    let i1 = (i0 + block).min(cnt);
                    // SAFETY: rows r + i0 .. r + i1 of the fresh output hold (i1 - i0)·w elements.
                    let dst = unsafe { std::slice::from_raw_parts_mut(op.at(((r + i0) * w) as isize), (i1 - i0) * w) };
                    let row_in = |i: usize| outer && inside(k, idx[k] + i);
                    if w > 2048 && row_in(i0) {
                        // A block is one long row: only its margins, not the row twice.
                        dst[..a].fill(fill);
                        dst[a + n..].fill(fill);
                    } else {
                        dst.fill(fill);
                    }
                    for i in (i0..i1).filter(|&i| row_in(i)) {
                        let o = off + i as isize * sl.strides[k];
                        // SAFETY: every leading index is inside, so the source row at `o` (its
                        // last dim has stride 1) holds n elements.
                        copy_run(&mut dst[(i - i0) * w + a..][..n], unsafe { std::slice::from_raw_parts(sp.at(o), n) });
                    }
                }
                r += cnt;
            });
        }));
    });
    Ok(out)
}

/// `as_strided(size, stride, storage_offset)`: a view of `t`'s storage with an explicit layout
/// (the offset defaults to `t`'s own), bounds-checked against the storage.
pub fn as_strided(t: &Tensor, size: &[i64], stride: &[i64], offset: Option<i64>) -> Result<Tensor> {
    if size.len() != stride.len() {
        return Err(Error::Runtime(format!("mismatch in length of strides and shape")));
    }
    if let Some(&s) = size.iter().find(|&&s| s < 0) {
        return Err(Error::Runtime(format!("as_strided: Negative size {s} is not supported")));
    }
    if stride.iter().any(|&s| s < 0) {
        return Err(Error::Runtime(format!("as_strided: Negative strides are not supported at the moment, got strides: {stride:?}")));
    }
    let offset = offset.unwrap_or(t.layout().offset as i64);
    if offset < 0 {
        return Err(Error::Runtime(format!("Tensor: invalid storage offset {offset}")));
    }
    let shape: Dims = size.iter().map(|&s| s as usize).collect();
    let numel: usize = shape.iter().product();
    let itemsize = t.dtype().size();
    let capacity = t.storage().nbytes() / itemsize.max(1);
    let needed = if numel == 0 { 0 } else { offset as usize + size.iter().zip(stride).map(|(&s, &st)| (s as usize - 1) * st as usize).sum::<usize>() + 1 };
    if needed > capacity {
        return Err(Error::Runtime(format!(
            "setStorage: sizes {}, strides {:?}, storage offset {offset}, and itemsize {itemsize} requiring a storage size of {} are out of bounds for storage of size {}",
            fmt_shape(&shape),
            stride,
            needed * itemsize,
            capacity * itemsize
        )));
    }
    let layout = Layout { shape, strides: stride.iter().map(|&s| s as isize).collect(), offset: offset as usize };
    Ok(t.with_layout(layout))
}
