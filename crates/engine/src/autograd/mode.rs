//! Grad mode: whether ops record onto the tape. Thread-local, as in PyTorch: `no_grad()` on one
//! thread does not affect another. Inference mode implies no grad.

use std::cell::Cell;

thread_local! {
    static GRAD_ENABLED: Cell<bool> = const { Cell::new(true) };
    static INFERENCE: Cell<bool> = const { Cell::new(false) };
}

pub fn is_grad_enabled() -> bool {
    GRAD_ENABLED.with(|g| g.get())
}

pub fn set_grad_enabled(on: bool) {
    GRAD_ENABLED.with(|g| g.set(on))
}

pub fn is_inference_mode_enabled() -> bool {
    INFERENCE.with(|g| g.get())
}

pub fn set_inference_mode(on: bool) {
    INFERENCE.with(|g| g.set(on))
}

/// Sets grad mode for a scope and restores the previous mode when dropped.
pub struct GradMode {
    prev: bool,
}

impl GradMode {
    pub fn set(on: bool) -> GradMode {
        let prev = is_grad_enabled();
        set_grad_enabled(on);
        GradMode { prev }
    }
}

impl Drop for GradMode {
    fn drop(&mut self) {
        set_grad_enabled(self.prev)
    }
}

/// Runs `f` with recording off (forward passes of composite ops record one node themselves).
pub fn no_grad<R>(f: impl FnOnce() -> R) -> R {
    let _g = GradMode::set(false);
    f()
}
