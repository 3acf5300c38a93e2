//! The smallest edge: load a model from bytes, plan it, run one row. Built twice for
//! wasm32-unknown-unknown, with the ONNX front end or with NNEF (+ the ONNX-ML ops of
//! tract-onnx-opl), to measure what the front end costs.
use std::io::Cursor;

#[cfg(feature = "onnx")]
fn load(bytes: &[u8]) -> Option<std::sync::Arc<tract_onnx::prelude::TypedSimplePlan>> {
    use tract_onnx::prelude::*;
    let model = tract_onnx::onnx().model_for_read(&mut Cursor::new(bytes)).ok()?;
    model.into_optimized().ok()?.into_runnable().ok()
}

#[cfg(feature = "nnef")]
fn load(bytes: &[u8]) -> Option<std::sync::Arc<tract_nnef::prelude::TypedSimplePlan>> {
    use tract_nnef::prelude::*;
    use tract_onnx_opl::WithOnnx;
    let model = tract_nnef::nnef().with_onnx().model_for_read(&mut Cursor::new(bytes)).ok()?;
    model.into_optimized().ok()?.into_runnable().ok()
}

/// Loads `len` bytes at `ptr`, runs `width` features of 0.5, returns the first output value.
#[unsafe(no_mangle)]
pub extern "C" fn score(ptr: *const u8, len: usize, width: usize) -> f32 {
    // SAFETY: the host passes a buffer it owns, of `len` bytes.
    let bytes = unsafe { std::slice::from_raw_parts(ptr, len) };
    let Some(plan) = load(bytes) else { return f32::NAN };
    #[cfg(feature = "onnx")]
    use tract_onnx::prelude::*;
    #[cfg(feature = "nnef")]
    use tract_nnef::prelude::*;
    let x = tract_ndarray::Array2::<f32>::from_elem((1, width), 0.5).into_tensor();
    plan.run(tvec!(x.into()))
        .ok()
        .and_then(|o| o[0].cast_to::<f32>().ok().and_then(|t| t.to_plain_array_view::<f32>().ok().and_then(|s| s.iter().next().copied())))
        .unwrap_or(f32::NAN)
}
