//! `t[...]` and `t[...] = v` with PyTorch/NumPy semantics. Basic items (ints, slices, None,
//! Ellipsis) become a view; index tensors and masks then gather or scatter through per-index
//! offsets. Advanced dims that are adjacent stay in place; separated ones move to the front.

use crate::dispatch;
use crate::dtype::DType;
use crate::error::{index_err, Error, Result};
use crate::kernels::map::{map1, Arg};
use crate::kernels::num::Num;
use crate::kernels::strided::{coalesce, walk, SendPtr};
use crate::layout::{broadcast_shapes, fmt_shape, Dims, Layout};
use crate::ops::cast::{copy_into, to_dtype};
use crate::autograd::functions as f;
use crate::ops::shape;
use crate::tensor::{Tensor, View};

#[derive(Clone)]
pub enum IndexItem {
    Int(i64),
    Slice { start: Option<i64>, stop: Option<i64>, step: i64 },
    NewAxis,
    Ellipsis,
    /// Python `True`/`False`: a new dim of size 1 or 0.
    Bool(bool),
    Tensor(Tensor),
}

/// The basic-indexing view plus the advanced indices (dim in the view, long index tensor).
struct Plan {
    view: Tensor,
    advanced: Vec<(usize, Tensor)>,
}

fn consumed(item: &IndexItem) -> usize {
    match item {
        IndexItem::Int(_) | IndexItem::Slice { .. } => 1,
        IndexItem::Tensor(t) if t.dtype() == DType::Bool || t.dtype() == DType::U8 => t.ndim(),
        IndexItem::Tensor(_) => 1,
        _ => 0,
    }
}

fn plan(t: &Tensor, items: &[IndexItem]) -> Result<Plan> {
    let nd = t.ndim();
    let used: usize = items.iter().map(consumed).sum();
    if used > nd {
        return index_err(format!("too many indices for tensor of dimension {nd}"));
    }
    let mut v = t.clone();
    let mut dim = 0usize;
    let mut advanced = Vec::new();
    let mut seen_ellipsis = false;
    for item in items {
        match item {
            IndexItem::Int(i) => v = f::select(&v, dim as i64, *i)?,
            IndexItem::Slice { start, stop, step } => {
                v = f::slice(&v, dim, *start, *stop, *step)?;
                dim += 1;
            }
            IndexItem::NewAxis => {
                v = f::unsqueeze(&v, dim as i64)?;
                dim += 1;
            }
            IndexItem::Bool(b) => {
                v = f::unsqueeze(&v, dim as i64)?;
                if !*b {
                    v = f::slice(&v, dim, Some(0), Some(0), 1)?;
                }
                dim += 1;
            }
            IndexItem::Ellipsis => {
                if seen_ellipsis {
                    return index_err("an index can only have a single ellipsis ('...')");
                }
                seen_ellipsis = true;
                dim += nd - used;
            }
            IndexItem::Tensor(ix) => match ix.dtype() {
                DType::Bool | DType::U8 => {
                    let vs = v.shape();
                    let ms = ix.shape();
                    for (k, &m) in ms.iter().enumerate() {
                        if vs[dim + k] != m {
                            return index_err(format!(
                                "The shape of the mask {} at index {k} does not match the shape of the indexed tensor {} at index {}",
                                fmt_shape(&ms),
                                fmt_shape(&vs),
                                dim + k
                            ));
                        }
                    }
                    for (k, coords) in nonzero_columns(ix).into_iter().enumerate() {
                        advanced.push((dim + k, coords));
                    }
                    dim += ms.len();
                }
                DType::I64 | DType::I32 => {
                    advanced.push((dim, ix.clone()));
                    dim += 1;
                }
                _ => return index_err("tensors used as indices must be long, int, byte or bool tensors"),
            },
        }
    }
    Ok(Plan { view: v, advanced })
}

/// Coordinates of the true elements of a mask, one long tensor per mask dim.
fn nonzero_columns(mask: &Tensor) -> Vec<Tensor> {
    let m = to_dtype(mask, DType::Bool).contiguous();
    let shape = m.shape();
    let v = m.view();
    // SAFETY: contiguous bool tensor with numel elements.
    let flags = unsafe { std::slice::from_raw_parts(v.ptr::<bool>(), v.numel()) };
    let mut cols: Vec<Vec<i64>> = vec![Vec::new(); shape.len()];
    for (lin, _) in flags.iter().enumerate().filter(|(_, &f)| f) {
        let mut r = lin;
        for d in (0..shape.len()).rev() {
            cols[d].push((r % shape[d]) as i64);
            r /= shape[d];
        }
    }
    cols.into_iter()
        .map(|c| {
            let n = c.len();
            Tensor::from_vec(c, &[n]).unwrap_or_else(|_| Tensor::zeros(&[0], DType::I64))
        })
        .collect()
}

/// `torch.nonzero`: an [n, ndim] long tensor of coordinates.
pub fn nonzero(t: &Tensor) -> Result<Tensor> {
    let cols = nonzero_columns(t);
    if cols.is_empty() {
        let n = if t.item().map(|s| !s.is_zero()).unwrap_or(false) { 1 } else { 0 };
        return Ok(Tensor::zeros(&[n, 0], DType::I64));
    }
    shape::stack(&cols, 1)
}

/// Storage offsets (relative to the view) of every advanced-index position, the broadcast
/// index shape, and the layout of the remaining (non-advanced) dims.
struct Gather {
    offsets: Vec<isize>,
    index_shape: Dims,
    rest: Layout,
    /// Where the index dims land in the result: 0 when moved to the front.
    insert_at: usize,
}

fn gather_plan(p: &Plan) -> Result<Gather> {
    let vl = p.view.layout();
    let dims: Vec<usize> = p.advanced.iter().map(|(d, _)| *d).collect();
    let mut index_shape = Dims::new();
    for (_, ix) in &p.advanced {
        index_shape = broadcast_shapes(&index_shape, &ix.shape()).map_err(|_| {
            Error::Index(format!(
                "shape mismatch: indexing tensors could not be broadcast together with shapes {}",
                p.advanced.iter().map(|(_, i)| fmt_shape(&i.shape())).collect::<Vec<_>>().join(", ")
            ))
        })?;
    }
    let n: usize = index_shape.iter().product();
    let mut offsets = vec![0isize; n];
    for (d, ix) in &p.advanced {
        let size = vl.shape[*d] as i64;
        let stride = vl.strides[*d];
        let idx = to_dtype(ix, DType::I64);
        let l = idx.layout().broadcast_to(&index_shape)?;
        let vals = idx.with_layout(l).to_vec::<i64>();
        for (o, &i) in offsets.iter_mut().zip(&vals) {
            if i < -size || i >= size {
                return index_err(format!("index {i} is out of bounds for dimension {d} with size {size}"));
            }
            *o += (if i < 0 { i + size } else { i }) as isize * stride;
        }
    }
    let adjacent = dims.windows(2).all(|w| w[1] == w[0] + 1);
    let rest_dims: Vec<usize> = (0..vl.ndim()).filter(|d| !dims.contains(d)).collect();
    let rest = Layout {
        shape: rest_dims.iter().map(|&d| vl.shape[d]).collect(),
        strides: rest_dims.iter().map(|&d| vl.strides[d]).collect(),
        offset: vl.offset,
    };
    let insert_at = if adjacent { dims[0] } else { 0 };
    Ok(Gather { offsets, index_shape, rest, insert_at })
}

/// Permutation taking [index dims, rest dims] to the result order (index dims at `insert_at`).
fn result_perm(nb: usize, nrest: usize, insert_at: usize) -> Vec<i64> {
    let rest: Vec<i64> = (nb..nb + nrest).map(|d| d as i64).collect();
    let mut perm: Vec<i64> = rest[..insert_at].to_vec();
    perm.extend((0..nb).map(|d| d as i64));
    perm.extend_from_slice(&rest[insert_at..]);
    perm
}

/// Copies (or, with `add`, adds) `src` viewed through `(layout shape/strides, extra offset)`
/// into `dst` element by element.
fn copy_block(dst: &View, dst_off: isize, dst_layout: &Layout, src: &View, src_off: isize, src_layout: &Layout, add: bool) {
    let shape = &dst_layout.shape;
    dispatch!(dst.dtype, T => {
        // SAFETY: offsets come from bounds-checked indices into each view's own storage.
        let (pd, ps) = unsafe { (dst.ptr::<T>().offset(dst_off), src.ptr::<T>().offset(src_off)) };
        if add {
            let (pd, ps) = (SendPtr(pd), SendPtr(ps));
            // Serial: an index may repeat inside one block's broadcast, and adds must not race.
            let (sh, st) = coalesce(shape, [&dst_layout.strides[..], &src_layout.strides[..]]);
            let n: usize = shape.iter().product();
            walk(&sh, &st, 0, n, &mut |o: [isize; 2], len: usize, s: [isize; 2]| {
                for i in 0..len as isize {
                    // SAFETY: as above; offsets stay inside the written view.
                    unsafe {
                        let d = pd.at(o[0] + i * s[0]);
                        *d = Num::add(*d, *ps.at(o[1] + i * s[1]));
                    }
                }
            });
        } else {
            map1::<T, T>(shape, Arg::new(pd, &dst_layout.strides), Arg::new(ps, &src_layout.strides), |x| x);
        }
    });
}

/// Splits `t[items]` into its basic part (a view of `t`, built with differentiable view ops)
/// and, if any, the advanced items re-expressed against that view's dims.
pub fn basic_view(t: &Tensor, items: &[IndexItem]) -> Result<(Tensor, Option<Vec<IndexItem>>)> {
    let p = plan(t, items)?;
    if p.advanced.is_empty() {
        return Ok((p.view, None));
    }
    let last = p.advanced.iter().map(|(d, _)| *d).max().unwrap_or(0);
    let mut rel: Vec<IndexItem> = (0..=last).map(|_| IndexItem::Slice { start: None, stop: None, step: 1 }).collect();
    for (d, ix) in p.advanced {
        rel[d] = IndexItem::Tensor(ix);
    }
    Ok((p.view, Some(rel)))
}

/// Whether indexing with `items` only makes a view (no index tensors).
pub fn is_basic(items: &[IndexItem]) -> bool {
    !items.iter().any(|i| matches!(i, IndexItem::Tensor(_)))
}

/// `t[items]` without autograd (the basic steps still record if grad mode is on).
pub fn get(t: &Tensor, items: &[IndexItem]) -> Result<Tensor> {
    let p = plan(t, items)?;
    if p.advanced.is_empty() {
        // `t[...]`/`t[:]` still return a new view object, never `t` itself.
        return Ok(p.view.with_layout(p.view.layout()));
    }
    gather_advanced(&p)
}

fn gather_advanced(p: &Plan) -> Result<Tensor> {
    let g = gather_plan(p)?;
    let mut out_shape = g.index_shape.clone();
    out_shape.extend(g.rest.shape.iter().copied());
    let out = Tensor::uninit(&out_shape, p.view.dtype());
    let (ov, sv) = (out.view(), p.view.view());
    let block = Layout::contiguous(&g.rest.shape);
    let rest_rel = Layout { offset: 0, ..g.rest.clone() };
    let block_len = block.numel() as isize;
    for (b, &off) in g.offsets.iter().enumerate() {
        copy_block(&ov, b as isize * block_len, &block, &sv, off, &rest_rel, false);
    }
    if g.insert_at == 0 {
        return Ok(out);
    }
    let perm = result_perm(g.index_shape.len(), g.rest.shape.len(), g.insert_at);
    Ok(shape::permute(&out, &perm)?.contiguous())
}

/// `t[items] = value` (value already a tensor; numbers arrive as 0-dim tensors); with
/// `accumulate`, values are added (repeated indices add up), as `index_put_(..., True)`.
pub fn set(t: &Tensor, items: &[IndexItem], value: &Tensor, accumulate: bool) -> Result<()> {
    let p = plan(t, items)?;
    if p.advanced.is_empty() {
        if accumulate {
            let dst = p.view.view();
            let val = to_dtype(value, t.dtype());
            let vl = val.layout().broadcast_to(&dst.layout.shape)?;
            let src = View { layout: Layout { offset: 0, ..vl.clone() }, ..val.view() };
            let off = vl.offset as isize;
            let dl = Layout { offset: 0, ..dst.layout.clone() };
            copy_block(&dst, 0, &dl, &src, off, &src.layout, true);
            t.bump_version();
            return Ok(());
        }
        return copy_into(&p.view.view(), &value.view());
    }
    let g = gather_plan(&p)?;
    let nb = g.index_shape.len();
    // The user sees the result shape; bring the value into [index dims, rest dims] order.
    let mut result_shape: Dims = g.rest.shape[..g.insert_at].into();
    result_shape.extend(g.index_shape.iter().copied());
    result_shape.extend(g.rest.shape[g.insert_at..].iter().copied());
    let val = to_dtype(value, t.dtype());
    let vl = val.layout().broadcast_to(&result_shape).map_err(|_| {
        Error::Shape(format!(
            "shape mismatch: value tensor of shape {} cannot be broadcast to indexing result of shape {}",
            fmt_shape(&value.shape()),
            fmt_shape(&result_shape)
        ))
    })?;
    let perm = result_perm(nb, g.rest.shape.len(), g.insert_at);
    let mut inv = vec![0usize; perm.len()];
    for (i, &p) in perm.iter().enumerate() {
        inv[p as usize] = i;
    }
    let vl = vl.permute(&inv)?;
    // Split the value layout into index part (walked per offset) and rest part.
    let vv = val.view();
    let rest_val = Layout { shape: vl.shape[nb..].into(), strides: vl.strides[nb..].into(), offset: 0 };
    let rest_dst = Layout { offset: 0, ..g.rest.clone() };
    let dv = p.view.view();
    for (b, &off) in g.offsets.iter().enumerate() {
        let mut r = b;
        let mut voff = vl.offset as isize - vv.layout.offset as isize;
        for d in (0..nb).rev() {
            voff += (r % g.index_shape[d]) as isize * vl.strides[d];
            r /= g.index_shape[d];
        }
        copy_block(&dv, off, &rest_dst, &vv, voff, &rest_val, accumulate);
    }
    t.bump_version();
    Ok(())
}
