//! `matmul` in all of PyTorch's forms (dot, mv, mm, batched with broadcast batch dims).

use crate::dispatch;
use crate::dtype::DType;
use crate::error::{shape_err, Error, Result};
use crate::kernels::gemm::{gemm_into, Mat};
use crate::kernels::strided::SendPtr;
use crate::parallel;
use crate::layout::{broadcast_shapes, Dims, Layout};
use crate::ops::shape::{squeeze_dim, unsqueeze};
use crate::tensor::Tensor;

fn check_dtypes(a: &Tensor, b: &Tensor) -> Result<DType> {
    let (da, db) = (a.dtype(), b.dtype());
    if da != db {
        return Err(Error::Runtime(format!(
            "expected m1 and m2 to have the same dtype, but got: {} != {}",
            da.name().replace("float32", "float").replace("float64", "double").replace("int64", "long"),
            db.name().replace("float32", "float").replace("float64", "double").replace("int64", "long")
        )));
    }
    if da == DType::Bool {
        return Err(Error::DTypeUnsupported { op: "addmm_impl_cpu_", dtype: da });
    }
    Ok(da)
}

/// `mm` on 2-D operands.
pub fn mm(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let (sa, sb) = (a.shape(), b.shape());
    if sa.len() != 2 {
        return shape_err(format!("self must be a matrix"));
    }
    if sb.len() != 2 {
        return shape_err(format!("mat2 must be a matrix"));
    }
    if sa[1] != sb[0] {
        return shape_err(format!(
            "mat1 and mat2 shapes cannot be multiplied ({}x{} and {}x{})",
            sa[0], sa[1], sb[0], sb[1]
        ));
    }
    let dt = check_dtypes(a, b)?;
    batched(a, b, dt, &[], sa[0], sa[1], sb[1])
}

/// Runs gemm for every batch index of (broadcast) `batch` dims. Operands are [*batch, m, k] and
/// [*batch, k, n] views (batch dims may have stride 0).
fn batched(a: &Tensor, b: &Tensor, dt: DType, batch: &[usize], m: usize, k: usize, n: usize) -> Result<Tensor> {
    let mut out_shape: Dims = batch.into();
    out_shape.extend([m, n]);
    let out = Tensor::uninit(&out_shape, dt);
    let (va, vb, vo) = (a.view(), b.view(), out.view());
    let nb: usize = batch.iter().product();
    let (la, lb) = (&va.layout, &vb.layout);
    let bd = batch.len();
    let (pa, pb, po) = (SendPtr(va.ptr::<u8>()), SendPtr(vb.ptr::<u8>()), SendPtr(vo.ptr::<u8>()));
    dispatch!(dt, T => {
        // `threads` false when the products run side by side: each stays on its thread.
        let one = |bi: usize, threads: bool| {
            let (mut oa, mut ob, mut rem) = (0isize, 0isize, bi);
            for d in (0..bd).rev() {
                let i = (rem % batch[d]) as isize;
                rem /= batch[d];
                oa += i * la.strides[d];
                ob += i * lb.strides[d];
            }
            // SAFETY: offsets address batch `bi` inside each operand; output slice is batch `bi`.
            unsafe {
                let a = Mat { ptr: (pa.at(0) as *const T).offset(oa), rs: la.strides[bd], cs: la.strides[bd + 1] };
                let b = Mat { ptr: (pb.at(0) as *const T).offset(ob), rs: lb.strides[bd], cs: lb.strides[bd + 1] };
                gemm_into::<T>(m, n, k, a, b, (po.at(0) as *mut T).add(bi * m * n), false, threads);
            }
        };
        // Many small products run side by side, one chunk each so that a thread that finishes
        // early takes the others' (bmm 64×128³ on 2 threads: 132 → 150 GFLOP/s against each
        // product split in two); a large one, or a batch too short to share out evenly,
        // splits its own work across threads.
        let work = m * n * k;
        let side_by_side = work < crate::kernels::sgemm::PARALLEL_MIN_WORK || nb >= 4 * parallel::num_threads() && work < 1 << 24;
        if nb > 1 && side_by_side && nb * work >= crate::kernels::sgemm::PARALLEL_MIN_WORK / 4 {
            parallel::for_chunks(nb, |bi| one(bi, false));
        } else {
            (0..nb).for_each(|bi| one(bi, true));
        }
    });
    Ok(out)
}

/// `torch.matmul` semantics for every combination of 1-D, 2-D and batched operands.
pub fn matmul(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let (sa, sb) = (a.shape(), b.shape());
    let (na, nb) = (sa.len(), sb.len());
    if na == 0 || nb == 0 {
        return shape_err(format!(
            "both arguments to matmul need to be at least 1D, but they are {na}D and {nb}D"
        ));
    }
    let dt = check_dtypes(a, b)?;
    if na == 1 && nb == 1 {
        if sa[0] != sb[0] {
            return shape_err(format!(
                "inconsistent tensor size, expected tensor [{}] and src [{}] to have the same number of elements, but got {} and {} elements respectively",
                sa[0], sb[0], sa[0], sb[0]
            ));
        }
        let r = mm(&unsqueeze(a, 0)?, &unsqueeze(b, 1)?)?;
        return crate::ops::shape::reshape(&r, &[]);
    }
    // Promote 1-D operands to matrices, remember to drop the added dim afterwards.
    let a2 = if na == 1 { unsqueeze(a, 0)? } else { a.clone() };
    let b2 = if nb == 1 { unsqueeze(b, 1)? } else { b.clone() };
    let (sa2, sb2) = (a2.shape(), b2.shape());
    let (m, k) = (sa2[sa2.len() - 2], sa2[sa2.len() - 1]);
    let (k2, n) = (sb2[sb2.len() - 2], sb2[sb2.len() - 1]);
    if k != k2 {
        if na <= 2 && nb <= 2 {
            return shape_err(format!(
                "mat1 and mat2 shapes cannot be multiplied ({m}x{k} and {k2}x{n})"
            ));
        }
        return shape_err(format!(
            "Expected size for first two dimensions of batch2 tensor to be: [{}, {k}] but got: [{}, {k2}].",
            sb2[..sb2.len() - 2].iter().product::<usize>().max(1),
            sb2[..sb2.len() - 2].iter().product::<usize>().max(1)
        ));
    }
    let batch = broadcast_shapes(&sa2[..sa2.len() - 2], &sb2[..sb2.len() - 2])?;
    let expand = |t: &Tensor, rows: usize, cols: usize| -> Result<Tensor> {
        let mut s: Dims = batch.clone();
        s.extend([rows, cols]);
        let l: Layout = t.layout().broadcast_to(&s)?;
        Ok(t.with_layout(l))
    };
    let (ea, eb) = (expand(&a2, m, k)?, expand(&b2, k, n)?);
    let mut out = batched(&ea, &eb, dt, &batch, m, k, n)?;
    let nd = out.ndim() as i64;
    if nb == 1 {
        out = squeeze_dim(&out, nd - 1)?;
    }
    if na == 1 {
        out = squeeze_dim(&out, out.ndim() as i64 - 2)?;
    }
    Ok(out)
}
