"""Link stage: bytes over a serial URL, frames, and the device protocol."""
