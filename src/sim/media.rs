//! The videos the simulator serves: a real, playable MP4 (2 s, 320×180, H.264 and AAC) with a
//! trailing `free` box naming the generation, so every video is distinct and still plays.
//!
//! A video can be padded to any size ([`SimConfig::video_size`](super::SimConfig)): the `free`
//! box then also holds that many zeros, produced in chunks as the file is sent, so a gigabyte is
//! served without a gigabyte in memory.

use axum::body::Bytes;

const SAMPLE: &[u8] = include_bytes!("sample.mp4");

/// The zeros that padding is sent in (a `static` of zeros takes no room in the binary).
static ZEROS: [u8; 256 * 1024] = [0; 256 * 1024];

/// The bytes of the video of `generation_id`.
pub fn video(generation_id: &str) -> Vec<u8> {
    let head = Video::new(generation_id, None).head;
    debug_assert_eq!(head.len() as u64, Video::new(generation_id, None).len);
    head
}

/// The bytes of the video of `generation_id` padded to `size` (as served with
/// [`SimConfig::video_size`](super::SimConfig)), whole in memory: for tests of small sizes.
pub fn padded_video(generation_id: &str, size: u64) -> Vec<u8> {
    let v = Video::new(generation_id, Some(size));
    let mut out = Vec::with_capacity(v.len as usize);
    while (out.len() as u64) < v.len {
        out.extend_from_slice(&v.chunk(out.len() as u64, 1 << 20));
    }
    out
}

/// The video of one generation, at its natural size or padded to a size.
pub(super) struct Video {
    /// The sample and the `free` box's header and text: everything but the padding.
    head: Vec<u8>,
    /// The whole length, padding included.
    pub len: u64,
}

impl Video {
    /// `size`: the length to pad to; ignored when shorter than the video itself.
    pub fn new(generation_id: &str, size: Option<u64>) -> Video {
        let payload = format!("vidbatch simulator generation {generation_id}");
        let natural = (SAMPLE.len() + 8 + payload.len()) as u64;
        // A box over 4 GiB says so with size 1 and a 64-bit size after its type.
        let len = size.unwrap_or(natural).max(natural);
        let large = len - SAMPLE.len() as u64 + 8 > u64::from(u32::MAX);
        let len = if large { len.max(natural + 8) } else { len };
        let box_len = len - SAMPLE.len() as u64;
        let mut head = Vec::with_capacity(SAMPLE.len() + 16 + payload.len());
        head.extend_from_slice(SAMPLE);
        if large {
            head.extend_from_slice(&1u32.to_be_bytes());
            head.extend_from_slice(b"free");
            head.extend_from_slice(&box_len.to_be_bytes());
        } else {
            head.extend_from_slice(&(box_len as u32).to_be_bytes());
            head.extend_from_slice(b"free");
        }
        head.extend_from_slice(payload.as_bytes());
        Video { head, len }
    }

    /// The bytes from `from` on, at most `max` of them (fewer at the end of the file): a chunk
    /// of the head, or of the padding.
    pub fn chunk(&self, from: u64, max: usize) -> Bytes {
        let head = self.head.len() as u64;
        let left = self.len.saturating_sub(from).min(max as u64) as usize;
        if from < head {
            let end = (from as usize + left).min(self.head.len());
            Bytes::copy_from_slice(&self.head[from as usize..end])
        } else {
            Bytes::from_static(&ZEROS[..left.min(ZEROS.len())])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn whole(v: &Video) -> Vec<u8> {
        let mut out = Vec::new();
        while (out.len() as u64) < v.len {
            out.extend_from_slice(&v.chunk(out.len() as u64, 10_000));
        }
        out
    }

    #[test]
    fn videos_are_mp4_and_differ_per_generation() {
        let a = super::video("a");
        let b = super::video("b");
        assert_eq!(&a[4..8], b"ftyp");
        assert_ne!(a, b);
        // The appended box is well formed: its size covers the rest of the file.
        let tail = &a[super::SAMPLE.len()..];
        assert_eq!(u32::from_be_bytes(tail[..4].try_into().unwrap()) as usize, tail.len());
        // Unpadded, the chunks make the same file.
        assert_eq!(whole(&Video::new("a", None)), a);
        assert_eq!(
            whole(&Video::new("a", Some(10))),
            a,
            "a size below the natural one is ignored"
        );
    }

    #[test]
    fn padded_videos_have_the_size_asked_and_a_well_formed_box() {
        let v = Video::new("g", Some(300_000));
        assert_eq!(v.len, 300_000);
        let bytes = whole(&v);
        assert_eq!(bytes.len(), 300_000);
        assert_eq!(&bytes[..SAMPLE.len()], SAMPLE);
        let tail = &bytes[SAMPLE.len()..];
        assert_eq!(u32::from_be_bytes(tail[..4].try_into().unwrap()) as usize, tail.len());
        assert_eq!(&tail[4..8], b"free");
        // Over 4 GiB the box takes a 64-bit size (only its head is looked at here).
        let huge = Video::new("g", Some(5 << 30));
        assert_eq!(huge.len, 5 << 30);
        let head = huge.chunk(0, 1 << 20);
        let tail = &head[SAMPLE.len()..];
        assert_eq!(u32::from_be_bytes(tail[..4].try_into().unwrap()), 1);
        assert_eq!(
            u64::from_be_bytes(tail[8..16].try_into().unwrap()),
            (5 << 30) - SAMPLE.len() as u64
        );
        assert_eq!(huge.chunk((5 << 30) - 3, 10).len(), 3);
    }
}
