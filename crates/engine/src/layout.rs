//! Shape, strides and offset: every view is arithmetic on a `Layout`, never a copy.
//! Sizes are `usize`, strides `isize` (element units), all 64-bit.

use smallvec::SmallVec;

use crate::error::{index_err, shape_err, value_err, Result};

pub type Dims = SmallVec<[usize; 6]>;
pub type Strides = SmallVec<[isize; 6]>;

#[derive(Debug, PartialEq, Eq)]
pub struct Layout {
    pub shape: Dims,
    pub strides: Strides,
    pub offset: usize,
}

// By slice copies: the derived clone goes element by element through `extend`, and every op
// clones a few layouts (a sixth of a tiny op's time).
impl Clone for Layout {
    fn clone(&self) -> Layout {
        Layout { shape: Dims::from_slice(&self.shape), strides: Strides::from_slice(&self.strides), offset: self.offset }
    }
}

/// Row-major strides for `shape`.
pub fn contiguous_strides(shape: &[usize]) -> Strides {
    let mut strides: Strides = smallvec::smallvec![0; shape.len()];
    let mut acc = 1isize;
    for i in (0..shape.len()).rev() {
        strides[i] = acc;
        acc *= shape[i].max(1) as isize;
    }
    strides
}

/// The strides PyTorch's `preserve_format` gives a fresh tensor like one laid out as `l`
/// (`clone()`, `empty_like`): `l`'s own when it is non-overlapping and dense, else dense in its
/// memory order. `None` when that is row-major.
pub fn preserved_strides(l: &Layout) -> Option<Strides> {
    if l.is_dense() {
        (!l.is_contiguous()).then(|| l.strides.clone())
    } else {
        result_strides(&l.shape, &[&l.strides])
    }
}

/// Channels-last's nesting of the dims (outermost first) for a 4-d (N, C, H, W) or 5-d
/// (N, C, D, H, W) shape: the channels innermost.
pub fn channels_last_order(ndim: usize) -> Dims {
    let mut order: Dims = (0..ndim).filter(|&d| d != 1).collect();
    order.push(1);
    order
}

/// Dense strides for `shape` with its dims nested in `order` (outermost first).
pub fn strides_in_order(shape: &[usize], order: &[usize]) -> Strides {
    let mut strides: Strides = shape.iter().map(|_| 0).collect();
    let mut step = 1isize;
    for &d in order.iter().rev() {
        strides[d] = step;
        step *= shape[d].max(1) as isize;
    }
    strides
}

/// Strides for a fresh elementwise result over operands whose strides (broadcast to `shape`,
/// in operand order) are `inputs`, as PyTorch's TensorIterator lays it out: dense, with the dims
/// in the operands' memory order. The first operand that orders two dims decides (a broadcast
/// dim has no say; equal strides put the smaller dim inside), by insertion sort from row-major.
/// `None` when that is row-major: `exp(x.t())` has `x.t()`'s strides, `a.t() + b` too.
pub fn result_strides(shape: &[usize], inputs: &[&[isize]]) -> Option<Strides> {
    let nd = shape.len();
    if nd < 2 {
        return None;
    }
    // > 0: `d0` (now the faster of the two) belongs outside `d1`; < 0: inside; 0: no operand says.
    let should_swap = |d0: usize, d1: usize| -> i32 {
        for st in inputs {
            let (s0, s1) = (st[d0].unsigned_abs(), st[d1].unsigned_abs());
            if s0 == 0 || s1 == 0 {
                continue;
            }
            if s0 != s1 {
                return if s0 < s1 { -1 } else { 1 };
            }
            if shape[d0] > shape[d1] {
                return 1;
            }
        }
        0
    };
    // Fastest dim first.
    let mut perm: smallvec::SmallVec<[usize; 8]> = (0..nd).rev().collect();
    for i in 1..nd {
        let mut d1 = i;
        for d0 in (0..i).rev() {
            match should_swap(perm[d0], perm[d1]) {
                c if c > 0 => {
                    perm.swap(d0, d1);
                    d1 = d0;
                }
                c if c < 0 => break,
                _ => {}
            }
        }
    }
    if perm.iter().enumerate().all(|(i, &d)| d == nd - 1 - i) {
        return None;
    }
    let mut strides: Strides = smallvec::smallvec![0; nd];
    let mut acc = 1isize;
    for &d in &perm {
        strides[d] = acc;
        acc *= shape[d].max(1) as isize;
    }
    Some(strides)
}

pub fn numel(shape: &[usize]) -> usize {
    shape.iter().product()
}

/// Formats a shape the way PyTorch's messages do: `[2, 3]`.
pub fn fmt_shape(shape: &[usize]) -> String {
    let parts: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    format!("[{}]", parts.join(", "))
}

/// Turns a possibly negative dim into an index, with PyTorch's IndexError message.
pub fn wrap_dim(dim: i64, ndim: usize) -> Result<usize> {
    let n = ndim.max(1) as i64;
    if dim < -n || dim >= n {
        return index_err(format!(
            "Dimension out of range (expected to be in range of [{}, {}], but got {dim})",
            -n,
            n - 1
        ));
    }
    Ok(if dim < 0 { (dim + n) as usize } else { dim as usize })
}

/// Resolves a single -1 in a requested shape against `numel`.
pub fn infer_size(req: &[i64], numel: usize) -> Result<Dims> {
    let mut infer = None;
    let mut known = 1usize;
    for (i, &d) in req.iter().enumerate() {
        if d == -1 {
            if infer.is_some() {
                return shape_err("only one dimension can be inferred");
            }
            infer = Some(i);
        } else if d < 0 {
            return shape_err(format!("invalid shape dimension {d}"));
        } else {
            known *= d as usize;
        }
    }
    let bad = || {
        let parts: Vec<String> = req.iter().map(|d| d.to_string()).collect();
        shape_err(format!("shape '[{}]' is invalid for input of size {numel}", parts.join(", ")))
    };
    let mut out: Dims = req.iter().map(|&d| d.max(0) as usize).collect();
    match infer {
        Some(i) => {
            if known == 0 || numel % known != 0 {
                return bad();
            }
            out[i] = numel / known;
        }
        None if known != numel => return bad(),
        None => {}
    }
    Ok(out)
}

/// The broadcast of two shapes, aligned at the right.
pub fn broadcast_shapes(a: &[usize], b: &[usize]) -> Result<Dims> {
    if a == b {
        return Ok(Dims::from_slice(a));
    }
    let n = a.len().max(b.len());
    let mut out: Dims = smallvec::smallvec![0; n];
    for i in 0..n {
        let da = if i + a.len() >= n { a[i + a.len() - n] } else { 1 };
        let db = if i + b.len() >= n { b[i + b.len() - n] } else { 1 };
        out[i] = if da == db || db == 1 {
            da
        } else if da == 1 {
            db
        } else {
            return shape_err(format!(
                "The size of tensor a ({da}) must match the size of tensor b ({db}) at non-singleton dimension {i}"
            ));
        };
    }
    Ok(out)
}

impl Layout {
    pub fn contiguous(shape: &[usize]) -> Layout {
        Layout { shape: Dims::from_slice(shape), strides: contiguous_strides(shape), offset: 0 }
    }
    pub fn ndim(&self) -> usize {
        self.shape.len()
    }
    pub fn numel(&self) -> usize {
        numel(&self.shape)
    }
    /// Contiguous in PyTorch's sense: size-1 dims may have any stride.
    pub fn is_contiguous(&self) -> bool {
        self.dense_from_inside((0..self.ndim()).rev())
    }
    /// Dense with its dims nested in `order` (outermost first), size-1 dims taking any stride,
    /// as PyTorch checks a memory format: row-major is `is_contiguous`, channels-last
    /// `channels_last_order`.
    pub fn is_dense_in(&self, order: &[usize]) -> bool {
        self.dense_from_inside(order.iter().rev().copied())
    }
    /// Whether the dims, innermost first, step by the sizes of the ones inside them.
    #[inline]
    fn dense_from_inside(&self, dims: impl Iterator<Item = usize>) -> bool {
        let mut expected = 1isize;
        for i in dims {
            let d = self.shape[i];
            if d == 0 {
                return true;
            }
            if d != 1 {
                if self.strides[i] != expected {
                    return false;
                }
                expected *= d as isize;
            }
        }
        true
    }
    /// Largest element offset touched + 1 (0 for empty): how much storage the view needs.
    pub fn storage_extent(&self) -> usize {
        if self.numel() == 0 {
            return 0;
        }
        let far: isize = self.shape.iter().zip(&self.strides).map(|(&d, &s)| (d as isize - 1) * s).sum();
        (self.offset as isize + far + 1) as usize
    }
    /// Non-overlapping and dense (PyTorch's term): the elements fill `numel` consecutive slots in
    /// some order of the dims.
    pub fn is_dense(&self) -> bool {
        let mut dims: Vec<(usize, isize)> = self.shape.iter().zip(&self.strides).filter(|(&d, _)| d != 1).map(|(&d, &s)| (d, s)).collect();
        dims.sort_by_key(|&(_, s)| s);
        let mut expected = 1isize;
        for (d, s) in dims {
            if s != expected {
                return false;
            }
            expected *= d as isize;
        }
        true
    }
    /// True when two elements share a memory location (an expanded view): writes through it are ambiguous.
    pub fn has_internal_overlap(&self) -> bool {
        self.shape.iter().zip(&self.strides).any(|(&d, &s)| d > 1 && s == 0)
    }

    /// `expand`/broadcast to `target`; -1 keeps a dim. Errors read like PyTorch's.
    pub fn expand(&self, target: &[i64]) -> Result<Layout> {
        let n = target.len();
        if n < self.ndim() {
            return shape_err(format!(
                "expand({}{{{}}}, size=[{}]): the number of sizes provided ({n}) must be greater or equal to the number of dimensions in the tensor ({})",
                "Tensor",
                fmt_shape(&self.shape).trim_matches(|c| c == '[' || c == ']'),
                target.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", "),
                self.ndim()
            ));
        }
        let lead = n - self.ndim();
        let mut shape: Dims = smallvec::smallvec![0; n];
        let mut strides: Strides = smallvec::smallvec![0; n];
        for i in 0..n {
            let t = target[i];
            if i < lead {
                if t < 0 {
                    return shape_err(format!(
                        "The expanded size of the tensor ({t}) isn't allowed in a leading, non-existing dimension {i}"
                    ));
                }
                shape[i] = t as usize;
                strides[i] = 0;
            } else {
                let (d, s) = (self.shape[i - lead], self.strides[i - lead]);
                if t == -1 || t as usize == d {
                    shape[i] = d;
                    strides[i] = s;
                } else if d == 1 && t >= 0 {
                    shape[i] = t as usize;
                    strides[i] = 0;
                } else {
                    return shape_err(format!(
                        "The expanded size of the tensor ({t}) must match the existing size ({d}) at non-singleton dimension {i}.  Target sizes: {}.  Tensor sizes: {}",
                        fmt_i64(target),
                        fmt_shape(&self.shape)
                    ));
                }
            }
        }
        Ok(Layout { shape, strides, offset: self.offset })
    }
    /// The strides of `broadcast_to(shape)`, borrowed when the shape is already `shape`.
    pub fn broadcast_strides(&self, shape: &[usize]) -> Result<std::borrow::Cow<'_, Strides>> {
        use std::borrow::Cow;
        if self.shape[..] == *shape {
            return Ok(Cow::Borrowed(&self.strides));
        }
        let (n, lead) = (shape.len(), shape.len().wrapping_sub(self.ndim()));
        if n < self.ndim() {
            return Ok(Cow::Owned(self.broadcast_to(shape)?.strides)); // the error
        }
        let mut strides: Strides = smallvec::smallvec![0; n];
        for i in lead..n {
            let d = self.shape[i - lead];
            if d == shape[i] {
                strides[i] = self.strides[i - lead];
            } else if d != 1 {
                return Ok(Cow::Owned(self.broadcast_to(shape)?.strides)); // the error
            }
        }
        Ok(Cow::Owned(strides))
    }
    pub fn broadcast_to(&self, shape: &[usize]) -> Result<Layout> {
        if self.shape[..] == *shape {
            return Ok(self.clone());
        }
        let t: Vec<i64> = shape.iter().map(|&d| d as i64).collect();
        self.expand(&t)
    }

    pub fn permute(&self, dims: &[usize]) -> Result<Layout> {
        let n = self.ndim();
        if dims.len() != n {
            return shape_err(format!(
                "permute(sparse_coo): number of dimensions in the tensor input does not match the length of the desired ordering of dimensions i.e. input.dim() = {n} is not equal to len(dims) = {}",
                dims.len()
            ));
        }
        let mut seen = vec![false; n];
        for &d in dims {
            if d >= n || seen[d] {
                return shape_err("permute(): duplicate dims are not allowed.");
            }
            seen[d] = true;
        }
        Ok(Layout {
            shape: dims.iter().map(|&d| self.shape[d]).collect(),
            strides: dims.iter().map(|&d| self.strides[d]).collect(),
            offset: self.offset,
        })
    }
    pub fn transpose(&self, a: usize, b: usize) -> Layout {
        let mut l = self.clone();
        l.shape.swap(a, b);
        l.strides.swap(a, b);
        l
    }
    /// Drops `dim` by fixing it at `index` (already wrapped and checked).
    pub fn select(&self, dim: usize, index: usize) -> Layout {
        let mut l = self.clone();
        l.offset = (l.offset as isize + index as isize * l.strides[dim]) as usize;
        l.shape.remove(dim);
        l.strides.remove(dim);
        l
    }
    /// `start..end` with positive `step` along `dim`, bounds already clamped.
    pub fn slice(&self, dim: usize, start: usize, end: usize, step: usize) -> Layout {
        let mut l = self.clone();
        let len = if end > start { (end - start).div_ceil(step) } else { 0 };
        if len > 0 {
            l.offset = (l.offset as isize + start as isize * l.strides[dim]) as usize;
        }
        l.shape[dim] = len;
        l.strides[dim] *= step as isize;
        l
    }
    pub fn unsqueeze(&self, dim: usize) -> Layout {
        let mut l = self.clone();
        let s = if dim < l.ndim() { l.strides[dim] * l.shape[dim] as isize } else { 1 };
        l.shape.insert(dim, 1);
        l.strides.insert(dim, s);
        l
    }
    /// Removes the given size-1 dims (others are kept silently, as in PyTorch).
    pub fn squeeze(&self, dims: &[usize]) -> Layout {
        let mut l = Layout { shape: Dims::new(), strides: Strides::new(), offset: self.offset };
        for i in 0..self.ndim() {
            if !(dims.contains(&i) && self.shape[i] == 1) {
                l.shape.push(self.shape[i]);
                l.strides.push(self.strides[i]);
            }
        }
        l
    }

    /// Strides for viewing this layout as `shape` without copying, if possible
    /// (PyTorch's rule: each run of merged old dims must map onto whole new dims).
    pub fn view(&self, shape: &[usize]) -> Option<Layout> {
        // Strides are arbitrary for empty tensors and trivial for scalars.
        if self.numel() == 0 || shape.is_empty() || self.ndim() == 0 {
            return Some(Layout { shape: shape.into(), strides: contiguous_strides(shape), offset: self.offset });
        }
        let mut new_strides: Strides = smallvec::smallvec![0; shape.len()];
        let mut view_d = shape.len() as isize - 1;
        let mut chunk_base_stride = *self.strides.last()?;
        let mut tensor_numel = 1usize;
        let mut view_numel = 1usize;
        for td in (0..self.ndim()).rev() {
            tensor_numel *= self.shape[td];
            let at_boundary = td == 0
                || (self.shape[td - 1] != 1 && self.strides[td - 1] != (tensor_numel as isize) * chunk_base_stride);
            if at_boundary {
                while view_d >= 0 && (view_numel < tensor_numel || shape[view_d as usize] == 1) {
                    new_strides[view_d as usize] = view_numel as isize * chunk_base_stride;
                    view_numel *= shape[view_d as usize];
                    view_d -= 1;
                }
                if view_numel != tensor_numel {
                    return None;
                }
                if td > 0 {
                    chunk_base_stride = self.strides[td - 1];
                    tensor_numel = 1;
                    view_numel = 1;
                }
            }
        }
        if view_d != -1 {
            return None;
        }
        Some(Layout { shape: shape.into(), strides: new_strides, offset: self.offset })
    }
}

pub fn fmt_i64(v: &[i64]) -> String {
    format!("[{}]", v.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", "))
}

/// Clamps Python-style slice bounds on a dim of `len` (step > 0 checked by the caller).
pub fn clamp_slice(len: usize, start: Option<i64>, stop: Option<i64>) -> (usize, usize) {
    let n = len as i64;
    let norm = |v: i64| if v < 0 { (v + n).max(0) } else { v.min(n) };
    let s = start.map_or(0, norm);
    let e = stop.map_or(n, norm);
    (s as usize, e.max(s) as usize)
}

pub fn check_step(step: i64) -> Result<usize> {
    if step <= 0 {
        return value_err("step must be greater than zero");
    }
    Ok(step as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcast_strides_match_broadcast_to() {
        let l = Layout { shape: smallvec::smallvec![3, 1, 4], strides: smallvec::smallvec![8, 5, 2], offset: 1 };
        for shape in [&[3, 1, 4][..], &[3, 5, 4], &[2, 3, 7, 4], &[6, 3, 1, 4]] {
            assert_eq!(&l.broadcast_strides(shape).unwrap()[..], &l.broadcast_to(shape).unwrap().strides[..], "{shape:?}");
        }
        let scalar = Layout::contiguous(&[]);
        assert_eq!(&scalar.broadcast_strides(&[2, 3]).unwrap()[..], &[0, 0]);
        assert!(l.broadcast_strides(&[3, 1, 5]).is_err());
        assert!(l.broadcast_strides(&[1, 4]).is_err());
    }

    #[test]
    fn strides_and_contiguity() {
        let l = Layout::contiguous(&[2, 3, 4]);
        assert_eq!(&l.strides[..], &[12, 4, 1]);
        assert!(l.is_contiguous());
        assert!(!l.transpose(0, 2).is_contiguous());
        assert!(Layout::contiguous(&[0, 3]).is_contiguous());
    }

    #[test]
    fn broadcast_rules() {
        assert_eq!(&broadcast_shapes(&[3, 1], &[4]).unwrap()[..], &[3, 4]);
        assert_eq!(&broadcast_shapes(&[2, 1, 5], &[3, 1]).unwrap()[..], &[2, 3, 5]);
        assert!(broadcast_shapes(&[3], &[4]).is_err());
        let e = Layout::contiguous(&[3, 1]).broadcast_to(&[2, 3, 4]).unwrap();
        assert_eq!(&e.strides[..], &[0, 1, 0]);
    }

    #[test]
    fn views_of_noncontiguous() {
        let l = Layout::contiguous(&[4, 6]);
        // Splitting a dim of a transposed tensor is a view; merging transposed dims is not.
        let t = l.transpose(0, 1);
        assert!(t.view(&[2, 3, 4]).is_some());
        assert!(t.view(&[24]).is_none());
        let v = l.view(&[2, 2, 6]).unwrap();
        assert_eq!(&v.strides[..], &[12, 6, 1]);
        assert_eq!(&infer_size(&[-1, 3], 12).unwrap()[..], &[4, 3]);
        assert!(infer_size(&[-1, 5], 12).is_err());
        assert!(infer_size(&[-1, -1], 12).is_err());
    }

    #[test]
    fn slicing_and_select() {
        let l = Layout::contiguous(&[10]);
        let s = l.slice(0, 1, 8, 3);
        assert_eq!((s.shape[0], s.strides[0], s.offset), (3, 3, 1));
        assert_eq!(clamp_slice(5, Some(-2), None), (3, 5));
        assert_eq!(clamp_slice(5, Some(4), Some(2)), (4, 4));
        let m = Layout::contiguous(&[3, 4]).select(0, 2);
        assert_eq!((m.offset, m.shape.len()), (8, 1));
        assert_eq!(wrap_dim(-1, 3).unwrap(), 2);
        assert!(wrap_dim(3, 3).is_err());
        assert_eq!(wrap_dim(0, 0).unwrap(), 0);
    }
}
