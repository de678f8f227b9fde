//! The videos the simulator serves: a real, playable MP4 (2 s, 320×180, H.264 and AAC) with a
//! trailing `free` box naming the generation, so every video is distinct and still plays.

const SAMPLE: &[u8] = include_bytes!("sample.mp4");

/// The bytes of the video of `generation_id`.
pub fn video(generation_id: &str) -> Vec<u8> {
    let payload = format!("vidbatch simulator generation {generation_id}");
    let size = 8 + payload.len();
    let mut out = Vec::with_capacity(SAMPLE.len() + size);
    out.extend_from_slice(SAMPLE);
    out.extend_from_slice(&(size as u32).to_be_bytes());
    out.extend_from_slice(b"free");
    out.extend_from_slice(payload.as_bytes());
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn videos_are_mp4_and_differ_per_generation() {
        let a = super::video("a");
        let b = super::video("b");
        assert_eq!(&a[4..8], b"ftyp");
        assert_ne!(a, b);
        // The appended box is well formed: its size covers the rest of the file.
        let tail = &a[super::SAMPLE.len()..];
        assert_eq!(u32::from_be_bytes(tail[..4].try_into().unwrap()) as usize, tail.len());
    }
}
