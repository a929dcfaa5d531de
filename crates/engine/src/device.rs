//! Where a tensor's storage lives.

use std::fmt;

use crate::error::{Error, Result};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Device {
    Cpu,
    Cuda(usize),
}

impl Device {
    /// Parses PyTorch's device strings: "cpu", "cuda", "cuda:1".
    pub fn parse(s: &str) -> Result<Device> {
        let (kind, index) = match s.split_once(':') {
            Some((k, i)) => {
                let idx = i.parse::<usize>().map_err(|_| Error::Device(format!("Invalid device string: '{s}'")))?;
                (k, Some(idx))
            }
            None => (s, None),
        };
        match kind {
            "cpu" if index.is_none() || index == Some(0) => Ok(Device::Cpu),
            "cuda" => Ok(Device::Cuda(index.unwrap_or(0))),
            _ => Err(Error::Device(format!(
                "Expected one of cpu, cuda device type at start of device string: {s}"
            ))),
        }
    }
    pub fn kind(self) -> &'static str {
        match self {
            Device::Cpu => "cpu",
            Device::Cuda(_) => "cuda",
        }
    }
    /// Fails unless a backend for this device is present in this build.
    pub fn check_available(self) -> Result<()> {
        match self {
            Device::Cpu => Ok(()),
            Device::Cuda(_) => Err(Error::Device(
                "rustgrad was built without a CUDA backend, or no CUDA device is available".into(),
            )),
        }
    }
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Device::Cpu => f.write_str("cpu"),
            Device::Cuda(i) => write!(f, "cuda:{i}"),
        }
    }
}
