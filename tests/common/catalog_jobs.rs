//! Jobs for any model of the catalog, as a manifest writes them: the least a model needs (its
//! required input, prompt and parameters), with small media files of each kind beside it.

use std::path::Path;

use vidbatch::catalog::{MediaKind, ModelSpec, ParamKind};

/// Small files of each kind, beside the manifest.
pub fn media_files(dir: &Path) {
    let assets = Path::new(env!("CARGO_MANIFEST_DIR")).join("manifests/assets");
    std::fs::copy(assets.join("bag.png"), dir.join("img.png")).unwrap();
    std::fs::copy(assets.join("teaser.mp4"), dir.join("clip.mp4")).unwrap();
    // A WAV header and a little silence: audio by its content.
    let mut wav = b"RIFF\x2c\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00\x01\x00\x40\x1f\x00\x00\x80\x3e\x00\x00\x02\x00\x10\x00data\x08\x00\x00\x00".to_vec();
    wav.extend([0u8; 8]);
    std::fs::write(dir.join("voice.wav"), wav).unwrap();
}

pub fn file_for(kind: MediaKind) -> &'static str {
    match kind {
        MediaKind::Video => "clip.mp4",
        MediaKind::Audio => "voice.wav",
        MediaKind::Image | MediaKind::ImageOrVideo => "img.png",
    }
}

/// A value a parameter takes, as YAML.
pub fn valid(kind: ParamKind) -> String {
    match kind {
        ParamKind::Choice(options) => format!("{:?}", options[0]),
        ParamKind::IntChoice(options) => options[0].to_string(),
        ParamKind::IntRange(lo, _) if lo > i64::MIN => lo.to_string(),
        ParamKind::IntRange(..) => "1".into(),
        ParamKind::Number { min, .. } => min.unwrap_or(1.0).to_string(),
        ParamKind::Bool => "true".into(),
        // The docs say these take URLs only: a URL, so that the job plans with no warning.
        ParamKind::Media {
            data_uri: Some(false),
            list,
            ..
        } => match list {
            true => "[https://example.com/a.png]".into(),
            false => "https://example.com/a.png".into(),
        },
        ParamKind::Media {
            kind,
            list: true,
            items: (least, _),
            ..
        } => format!("[{}]", vec![file_for(kind); least.unwrap_or(1).max(1)].join(", ")),
        ParamKind::Media { kind, .. } => file_for(kind).into(),
        ParamKind::List { .. } => "[]".into(),
        // Its required fields; a media field inside a mapping takes a URL.
        ParamKind::Object { fields } => {
            let each: Vec<String> = fields
                .iter()
                .filter(|f| f.required)
                .map(|f| match f.kind {
                    ParamKind::Media { .. } => format!("{}: https://example.com/a.mp4", f.name),
                    kind => format!("{}: {}", f.name, valid(kind)),
                })
                .collect();
            format!("{{{}}}", each.join(", "))
        }
        ParamKind::Text { .. } | ParamKind::Any => "\"text\"".into(),
    }
}

/// The minimal job's lines (the `params:` block last, so that one more can be added under it).
pub fn minimal_job(m: &ModelSpec) -> String {
    let mut job = format!("jobs:\n  - model: {}\n", m.id);
    if let Some(kind) = m.input.kind().filter(|_| m.input_required) {
        job.push_str(&format!("    input: {}\n", file_for(kind)));
    }
    if m.prompt.is_some_and(|p| p.required) {
        job.push_str("    prompt: \"A slow pan over a shoe\"\n");
    }
    job.push_str("    params:\n");
    for p in m.params.iter().filter(|p| p.required) {
        job.push_str(&format!("      {}: {}\n", p.name, valid(p.kind)));
    }
    job
}
