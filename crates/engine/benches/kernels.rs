//! Engine kernel benchmarks (criterion), with throughput in GFLOP/s (compute-bound kernels) or
//! bytes/s (memory-bound ones): `cargo bench -p engine` (add `-- gemm` etc. to filter).
//! Side-by-side ratios against PyTorch and NumPy come from `benches/compare.py` instead.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use engine::kernels::gemm::{gemm, Mat};
use engine::ops::conv::Window2d;
use engine::ops::elementwise::{binary, unary, BinaryOp, UnaryOp};
use engine::{DType, Tensor};

fn filled(shape: &[usize]) -> Tensor {
    let n: usize = shape.iter().product();
    let data: Vec<f32> = (0..n).map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0).collect();
    Tensor::from_vec(data, shape).expect("valid shape")
}

fn gemm_bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("sgemm");
    for &(m, n, k) in &[(64, 64, 64), (128, 128, 128), (256, 256, 256), (512, 512, 512), (1024, 1024, 1024), (6, 784, 75), (16, 100, 150), (64, 120, 400)] {
        let a: Vec<f32> = (0..m * k).map(|i| (i % 17) as f32 - 8.0).collect();
        let b: Vec<f32> = (0..k * n).map(|i| (i % 13) as f32 - 6.0).collect();
        let mut out = vec![0f32; m * n];
        g.throughput(Throughput::Elements((2 * m * n * k) as u64)); // elements = flops
        g.bench_function(BenchmarkId::from_parameter(format!("{m}x{n}x{k}")), |bench| {
            bench.iter(|| gemm(m, n, k, Mat { ptr: a.as_ptr(), rs: k as isize, cs: 1 }, Mat { ptr: b.as_ptr(), rs: n as isize, cs: 1 }, out.as_mut_ptr()))
        });
    }
    g.finish();
}

fn conv_bench(c: &mut Criterion) {
    use engine::ops::convolution::{conv2d, conv2d_input_grad, conv2d_weight_grad};
    let mut g = c.benchmark_group("conv2d");
    g.sample_size(20);
    let cases = [("lenet_conv1", [64, 3, 32, 32], [6, 3, 5, 5], 0), ("lenet_conv2", [64, 6, 14, 14], [16, 6, 5, 5], 0), ("3x3_64to64", [16, 64, 32, 32], [64, 64, 3, 3], 1)];
    for (name, xs, ws, pad) in cases {
        let (x, w) = (filled(&xs), filled(&ws));
        let win = Window2d { kernel: [ws[2], ws[3]], dilation: [1, 1], padding: [pad, pad], stride: [1, 1] };
        let (oh, ow) = (win.out_len(0, xs[2]).unwrap_or(0), win.out_len(1, xs[3]).unwrap_or(0));
        let flops = 2 * xs[0] * ws[0] * ws[1] * ws[2] * ws[3] * oh * ow;
        let gy = filled(&[xs[0], ws[0], oh, ow]);
        g.throughput(Throughput::Elements(flops as u64));
        g.bench_function(BenchmarkId::new("forward", name), |b| b.iter(|| conv2d(&x, &w, None, &win, 1)));
        g.bench_function(BenchmarkId::new("input_grad", name), |b| b.iter(|| conv2d_input_grad(&gy, &w, &xs, &win, 1)));
        g.bench_function(BenchmarkId::new("weight_grad", name), |b| b.iter(|| conv2d_weight_grad(&x, &gy, &ws, &win, 1)));
    }
    g.finish();
}

fn elementwise_bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("elementwise");
    for n in [1 << 20, 1 << 24] {
        let (a, b) = (filled(&[n]), filled(&[n]));
        g.throughput(Throughput::Bytes((12 * n) as u64));
        g.bench_function(BenchmarkId::new("add", n), |bench| bench.iter(|| binary(BinaryOp::Add, (&a).into(), (&b).into())));
        g.throughput(Throughput::Bytes((8 * n) as u64));
        g.bench_function(BenchmarkId::new("relu", n), |bench| bench.iter(|| unary(UnaryOp::Relu, &a)));
        g.bench_function(BenchmarkId::new("exp", n), |bench| bench.iter(|| unary(UnaryOp::Exp, &a)));
    }
    g.finish();
}

fn reduction_bench(c: &mut Criterion) {
    use engine::ops::reduce::sum;
    use engine::ops::softmax::softmax;
    let mut g = c.benchmark_group("reduce");
    let big = filled(&[1 << 24]);
    g.throughput(Throughput::Bytes(4 << 24));
    g.bench_function("sum_16M", |b| b.iter(|| sum(&big, None, false, None)));
    let rows = filled(&[4096, 1000]);
    g.throughput(Throughput::Bytes(8 * 4096 * 1000));
    g.bench_function("softmax_4096x1000", |b| b.iter(|| softmax(&rows, 1, false)));
    g.bench_function("sum_dim1_4096x1000", |b| b.iter(|| sum(&rows, Some(&[1]), false, Some(DType::F32))));
    g.finish();
}

criterion_group!(benches, gemm_bench, conv_bench, elementwise_bench, reduction_bench);
criterion_main!(benches);
