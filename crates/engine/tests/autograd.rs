//! The tape from Rust, without Python: gradients of small graphs against hand-derived values,
//! broadcasting, grad mode, freed graphs, in-place version checks and second derivatives.

use engine::autograd::functions as f;
use engine::autograd::{self, no_grad, record};
use engine::ops::elementwise::{BinaryOp, UnaryOp};
use engine::Tensor;

fn leaf(v: &[f64], shape: &[usize]) -> Tensor {
    let t = Tensor::from_vec(v.to_vec(), shape).unwrap();
    record::set_requires_grad(&t, true).unwrap();
    t
}

fn grad_of(t: &Tensor) -> Vec<f64> {
    t.meta().grad.clone().expect("grad was populated").to_vec::<f64>()
}

fn close(a: &[f64], b: &[f64]) {
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(b) {
        assert!((x - y).abs() < 1e-12, "{a:?} != {b:?}");
    }
}

#[test]
fn product_rule_and_broadcast_sum() {
    let a = leaf(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]);
    let b = leaf(&[10.0, 20.0, 30.0], &[3]);
    let y = f::sum(&f::mul(&a, &b).unwrap(), None, false, None).unwrap();
    assert_eq!(y.grad_fn().unwrap().name, "SumBackward0");
    autograd::backward(&[y], &[], None, false, None).unwrap();
    close(&grad_of(&a), &[10.0, 20.0, 30.0, 10.0, 20.0, 30.0]);
    close(&grad_of(&b), &[5.0, 7.0, 9.0]); // summed over the broadcast dim
}

#[test]
fn no_grad_records_nothing() {
    let a = leaf(&[1.0], &[1]);
    let y = no_grad(|| f::unary(UnaryOp::Exp, &a).unwrap());
    assert!(y.grad_fn().is_none() && !y.requires_grad());
}

#[test]
fn second_backward_through_saved_tensors_fails() {
    let a = leaf(&[0.5, 1.5], &[2]);
    let y = f::sum(&f::unary(UnaryOp::Exp, &a).unwrap(), None, false, None).unwrap();
    autograd::backward(&[y.clone()], &[], None, false, None).unwrap();
    let err = autograd::backward(&[y], &[], None, false, None).unwrap_err();
    assert!(err.to_string().contains("backward through the graph a second time"));
}

#[test]
fn inplace_change_of_saved_input_is_detected() {
    let x = leaf(&[1.0, 2.0], &[2]);
    let a = f::mul_n(&x, 2.0).unwrap();
    let b = f::sum(&f::mul(&a, &a).unwrap(), None, false, None).unwrap();
    record::inplace(&a, &[], |t| f::mul_n(t, 2.0)).unwrap();
    let err = autograd::backward(&[b], &[], None, false, None).unwrap_err();
    assert!(err.to_string().contains("modified by an inplace operation"));
}

#[test]
fn second_derivative_of_cube() {
    let x = leaf(&[2.0], &[1]);
    let y = f::binary(BinaryOp::Pow, (&x).into(), f::num(3.0)).unwrap();
    let g = autograd::grad(&[y], &[None], &[x.clone()], None, true, false).unwrap();
    let g = g[0].clone().unwrap();
    close(&g.to_vec::<f64>(), &[12.0]); // 3x^2
    let gg = autograd::grad(&[g], &[None], &[x], None, false, false).unwrap();
    close(&gg[0].clone().unwrap().to_vec::<f64>(), &[12.0]); // 6x
}

#[test]
fn long_chains_drop_without_recursion() {
    let x = leaf(&[1.0], &[1]);
    let mut y = x.clone();
    for _ in 0..200_000 {
        y = f::add_n(&y, 1.0).unwrap();
    }
    drop(y); // a recursive Drop would overflow the test thread's stack
}
