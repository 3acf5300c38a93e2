//! ONNX -> NNEF (tar) with tract's ONNX-ML extension, then both run on the same rows.
use std::io::Cursor;
use tract_onnx::prelude::*;
use tract_onnx_opl::WithOnnx;

fn main() -> TractResult<()> {
    let args: Vec<String> = std::env::args().collect();
    let (onnx_path, out, width): (&str, &str, usize) = (&args[1], &args[2], args[3].parse()?);
    let model = tract_onnx::onnx().model_for_path(onnx_path)?.into_typed()?.into_decluttered()?;
    let nnef = tract_nnef::nnef().with_onnx();
    let mut tar = Vec::new();
    nnef.write_to_tar(&model, &mut tar)?;
    std::fs::write(out, &tar)?;
    let back = nnef.model_for_read(&mut Cursor::new(&tar))?.into_optimized()?.into_runnable()?;
    let plan = model.into_optimized()?.into_runnable()?;
    let mut worst = 0f32;
    for r in 0..200 {
        let row: Vec<f32> = (0..width).map(|j| (((r * 31 + j * 17) % 97) as f32 / 97.0 - 0.5) * 4.0).collect();
        let x = tract_ndarray::Array2::from_shape_vec((1, width), row)?.into_tensor();
        let a = plan.run(tvec!(x.clone().into()))?;
        let b = back.run(tvec!(x.into()))?;
        for (ta, tb) in a.iter().zip(b.iter()) {
            let (ta, tb) = (ta.cast_to::<f32>()?, tb.cast_to::<f32>()?);
            for (u, v) in ta.to_plain_array_view::<f32>()?.iter().zip(tb.to_plain_array_view::<f32>()?.iter()) {
                worst = worst.max((u - v).abs());
            }
        }
    }
    println!("nnef tar {} bytes, onnx {} bytes, 200 rows, max |onnx - nnef| = {worst}", tar.len(), std::fs::metadata(onnx_path)?.len());
    Ok(())
}
