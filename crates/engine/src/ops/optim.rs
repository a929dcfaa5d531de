//! Fused optimizer updates: one call updates every parameter of a group in place, element by
//! element in a single pass over parameter, gradient and state (PyTorch's single-tensor
//! formulas, same operation order). Tensors that are not dense float of one dtype are left to
//! the caller's composite path (`fusable`).

use std::ops::{Add, Div, Mul, Neg, Sub};

use crate::dtype::DType;
use crate::error::{runtime_err, Result};
use crate::kernels::num::{Float, Num};
use crate::kernels::strided::SendPtr;
use crate::parallel;
use crate::tensor::Tensor;

/// An algorithm and its hyper-parameters (per group).
#[derive(Clone, Copy, Debug)]
pub enum Algo {
    Sgd { lr: f64, momentum: f64, dampening: f64, weight_decay: f64, nesterov: bool, maximize: bool },
    Adam { lr: f64, beta1: f64, beta2: f64, eps: f64, weight_decay: f64, amsgrad: bool, maximize: bool, decoupled: bool },
    RmsProp { lr: f64, alpha: f64, eps: f64, weight_decay: f64, momentum: f64, centered: bool, maximize: bool },
    Adagrad { lr: f64, lr_decay: f64, eps: f64, weight_decay: f64, maximize: bool },
}

/// Whether every tensor is dense (contiguous), float, and of the parameters' dtype and shape,
/// and no step is being recorded (a differentiable step must run as recorded ops).
pub fn fusable(params: &[Tensor], others: &[&[Tensor]]) -> bool {
    let Some(first) = params.first() else { return true };
    if crate::autograd::is_grad_enabled() && (params.iter().chain(others.iter().flat_map(|l| l.iter())).any(|t| t.requires_grad())) {
        return false;
    }
    let dt = first.dtype();
    if !matches!(dt, DType::F32 | DType::F64) {
        return false;
    }
    others.iter().all(|list| list.len() == params.len())
        && params.iter().enumerate().all(|(i, p)| {
            p.dtype() == dt
                && p.is_contiguous()
                && others.iter().all(|list| list[i].dtype() == dt && list[i].is_contiguous() && list[i].shape() == p.shape())
        })
}

/// The float arithmetic the update formulas are written in.
trait Real: Float + PartialOrd + Add<Output = Self> + Sub<Output = Self> + Mul<Output = Self> + Div<Output = Self> + Neg<Output = Self> {}
impl<T: Float + PartialOrd + Add<Output = T> + Sub<Output = T> + Mul<Output = T> + Div<Output = T> + Neg<Output = T>> Real for T {}

/// `lerp(a, b, w)` as PyTorch's CPU kernel rounds it (anchored at `b` for large weights).
#[inline(always)]
fn lerp<T: Real>(a: T, b: T, w: T) -> T {
    if Into::<f64>::into(w).abs() < 0.5 {
        a + w * (b - a)
    } else {
        b - (b - a) * (T::one() - w)
    }
}

/// The gradient an update uses: negated to maximize, plus L2 weight decay `l2 · x`.
#[inline(always)]
fn grad_in<T: Real>(g: T, x: T, maximize: bool, l2: Option<T>) -> T {
    let d = if maximize { -g } else { g };
    match l2 {
        Some(wd) => d + wd * x,
        None => d,
    }
}

/// Runs `f(j)` for every element index, split across threads for large tensors.
fn elements(n: usize, f: impl Fn(usize) + Sync + Send) {
    ranges(n, |lo, hi| (lo..hi).for_each(&f));
}

/// Runs `f(lo, hi)` over index ranges covering `0..n`, split across threads for large tensors.
fn ranges(n: usize, f: impl Fn(usize, usize) + Sync + Send) {
    let chunks = parallel::chunks_for(n, parallel::GRAIN);
    parallel::for_chunks(chunks, |c| f(c * n / chunks, (c + 1) * n / chunks));
}

fn ptr<T>(t: &Tensor) -> SendPtr<T> {
    SendPtr(t.view().ptr::<T>())
}

/// Applies `algo` to each parameter. `states[k][i]` is state tensor `k` of parameter `i`
/// (SGD: momentum buffers; Adam: exp_avg, exp_avg_sq[, max_exp_avg_sq]; RMSprop: square_avg,
/// grad_avg, momentum_buffer as the options need; Adagrad: sum). `steps[i]` is the step count
/// after this update. SGD's first momentum step initialises the buffer from the gradient
/// (`fresh[i]`).
pub fn step(algo: &Algo, params: &[Tensor], grads: &[Tensor], states: &[Vec<Tensor>], steps: &[f64], fresh: &[bool]) -> Result<()> {
    if grads.len() != params.len() || states.iter().any(|s| s.len() != params.len()) {
        return runtime_err("optimizer step: parameter, gradient and state lists differ in length");
    }
    let dt = match params.first() {
        Some(p) => p.dtype(),
        None => return Ok(()),
    };
    for (i, p) in params.iter().enumerate() {
        let st: Vec<&Tensor> = states.iter().map(|s| &s[i]).collect();
        let count = steps.get(i).copied().unwrap_or(1.0);
        let new = fresh.get(i).copied().unwrap_or(false);
        crate::ops::conv::float_only!(dt, "optimizer step", T => {
            update::<T>(algo, p, &grads[i], &st, count, new);
            Ok(())
        })?;
        p.bump_version();
        st.iter().for_each(|s| s.bump_version());
    }
    Ok(())
}

fn update<T: Real>(algo: &Algo, p: &Tensor, g: &Tensor, st: &[&Tensor], count: f64, fresh: bool) {
    let n = p.numel();
    let (pp, gp) = (ptr::<T>(p), ptr::<T>(g));
    let s: Vec<SendPtr<T>> = st.iter().map(|t| ptr::<T>(t)).collect();
    let c = |v: f64| T::from_f64(v);
    let coupled = |wd: f64| (wd != 0.0).then(|| T::from_f64(wd));
    // SAFETY (all closures): every pointer addresses a dense tensor of n elements (checked by
    // `fusable`), and each index j is visited by one thread.
    match *algo {
        Algo::Sgd { lr, momentum, dampening, weight_decay, nesterov, maximize } => {
            let (lr, m, damp, l2) = (c(lr), c(momentum), c(1.0 - dampening), coupled(weight_decay));
            let buf = s.first().copied();
            if let (Some(b), false, false, false, None) = (buf, fresh, nesterov, maximize, l2) {
                // The common case (plain momentum) as a loop over slices, which vectorises.
                ranges(n, |lo, hi| crate::kernels::simd::wide(#[inline(always)] || unsafe {
                    let len = hi - lo;
                    let x = std::slice::from_raw_parts_mut(pp.at(lo as isize), len);
                    let g = std::slice::from_raw_parts(gp.at(lo as isize) as *const T, len);
                    let b = std::slice::from_raw_parts_mut(b.at(lo as isize), len);
                    for ((x, &g), b) in x.iter_mut().zip(g).zip(b.iter_mut()) {
                        *b = *b * m + damp * g;
                        *x = *x + (-lr) * *b;
                    }
                }));
                return;
            }
            elements(n, |j| unsafe {
                let x = pp.at(j as isize);
                let mut d = grad_in(*gp.at(j as isize), *x, maximize, l2);
                if let Some(b) = buf {
                    let b = b.at(j as isize);
                    *b = if fresh { d } else { *b * m + damp * d };
                    d = if nesterov { d + m * *b } else { *b };
                }
                *x = *x + (-lr) * d;
            });
        }
        Algo::Adam { lr, beta1, beta2, eps, weight_decay, amsgrad, maximize, decoupled } => {
            let step_size = c(lr / (1.0 - beta1.powf(count)));
            let bc2 = c((1.0 - beta2.powf(count)).sqrt());
            let (w1, b2, w2, eps, shrink) = (c(1.0 - beta1), c(beta2), c(1.0 - beta2), c(eps), c(1.0 - lr * weight_decay));
            let l2 = if decoupled { None } else { coupled(weight_decay) };
            let (ma, va, vmax) = (s[0], s[1], s.get(2).copied());
            if !amsgrad && !maximize && l2.is_none() {
                // The common case as a loop over slices, which vectorises; the same formulas.
                let shrink_on = decoupled && weight_decay != 0.0;
                ranges(n, |lo, hi| crate::kernels::simd::wide(#[inline(always)] || unsafe {
                    // The constants as locals: read through the closure's captures they were
                    // reloaded every element (the stores below might alias them, as far as LLVM
                    // knew), which kept the loop scalar: 4.5 ns per element on one thread.
                    let (w1, b2, w2, eps, shrink, bc2, step_size, shrink_on) = (w1, b2, w2, eps, shrink, bc2, step_size, shrink_on);
                    let len = hi - lo;
                    let x = std::slice::from_raw_parts_mut(pp.at(lo as isize), len);
                    let g = std::slice::from_raw_parts(gp.at(lo as isize) as *const T, len);
                    let m = std::slice::from_raw_parts_mut(ma.at(lo as isize), len);
                    let v = std::slice::from_raw_parts_mut(va.at(lo as isize), len);
                    for (((x, &d), m), v) in x.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
                        if shrink_on {
                            *x = *x * shrink;
                        }
                        *m = lerp(*m, d, w1);
                        *v = *v * b2 + w2 * d * d;
                        let denom = v.sqrt() / bc2 + eps;
                        *x = *x + (-step_size) * *m / denom;
                    }
                }));
                return;
            }
            elements(n, |j| unsafe {
                let x = pp.at(j as isize);
                if decoupled && weight_decay != 0.0 {
                    *x = *x * shrink;
                }
                let d = grad_in(*gp.at(j as isize), *x, maximize, l2);
                let (m, v) = (ma.at(j as isize), va.at(j as isize));
                *m = lerp(*m, d, w1);
                *v = *v * b2 + w2 * d * d;
                let second = match vmax {
                    Some(vm) if amsgrad => {
                        let vm = vm.at(j as isize);
                        if *v > *vm || Num::is_nan(*v) {
                            *vm = *v;
                        }
                        *vm
                    }
                    _ => *v,
                };
                let denom = second.sqrt() / bc2 + eps;
                *x = *x + (-step_size) * *m / denom;
            });
        }
        Algo::RmsProp { lr, alpha, eps, weight_decay, momentum, centered, maximize } => {
            let (lr, a, w, eps, l2, mom) = (c(lr), c(alpha), c(1.0 - alpha), c(eps), coupled(weight_decay), c(momentum));
            let sq = s[0];
            let ga = if centered { s.get(1).copied() } else { None };
            let buf = if momentum > 0.0 { s.last().copied() } else { None };
            elements(n, |j| unsafe {
                let x = pp.at(j as isize);
                let d = grad_in(*gp.at(j as isize), *x, maximize, l2);
                let q = sq.at(j as isize);
                *q = *q * a + w * d * d;
                let avg = match ga {
                    Some(ga) => {
                        let ga = ga.at(j as isize);
                        *ga = lerp(*ga, d, w);
                        (*q + (-T::one()) * *ga * *ga).sqrt()
                    }
                    None => Float::sqrt(*q),
                } + eps;
                match buf {
                    Some(b) => {
                        let b = b.at(j as isize);
                        *b = *b * mom + d / avg;
                        *x = *x + (-lr) * *b;
                    }
                    None => *x = *x + (-lr) * d / avg,
                }
            });
        }
        Algo::Adagrad { lr, lr_decay, eps, weight_decay, maximize } => {
            let clr = c(lr / (1.0 + (count - 1.0) * lr_decay));
            let (eps, l2) = (c(eps), coupled(weight_decay));
            let sum = s[0];
            elements(n, |j| unsafe {
                let x = pp.at(j as isize);
                let d = grad_in(*gp.at(j as isize), *x, maximize, l2);
                let q = sum.at(j as isize);
                *q = *q + d * d;
                *x = *x + (-clr) * d / (Float::sqrt(*q) + eps);
            });
        }
    }
}
