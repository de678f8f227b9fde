//! The vendor's request schemas for every catalogued model, reduced to their facts
//! (`catalog/vendor/specs/`), embedded in the binary and compiled on first use.
//!
//! The files are listed by hand rather than found by a build script: a build script would
//! rebuild the crate's dependency graph for a listing that changes a few times a year, and
//! `specs_are_all_listed` fails when a file is added or the list names one too many (a removed
//! file already fails `include_str!`).

use std::collections::HashMap;
use std::sync::{LazyLock, OnceLock};

use serde_json::{Value, json};

macro_rules! specs {
    ($($name:literal),* $(,)?) => {
        &[$(($name, include_str!(concat!("../../catalog/vendor/specs/", $name)))),*]
    };
}

/// (file name, text) of every POST spec (the shared GET spec is not needed to answer polls).
pub const SPEC_FILES: &[(&str, &str)] = specs![
    "Veo2-Image-to-Video.json",
    "act_two.json",
    "avatar-pro.json",
    "avatar-standard.json",
    "dreamina-seedance-2-5.json",
    "fabric-1.0-fast.json",
    "fabric-1.0.json",
    "flux-3-video-draft-i2v.json",
    "flux-3-video-draft-t2v.json",
    "flux-3-video-draft-v2v.json",
    "flux-3-video-i2v.json",
    "flux-3-video-t2v.json",
    "flux-3-video-v2v.json",
    "gemini-omni-flash-preview.json",
    "gen3a_turbo.json",
    "gen4_aleph.json",
    "gen4_turbo.json",
    "grok-imagine-video-1.5-preview.json",
    "grok-imagine-video.json",
    "h3.json",
    "hailuo-02.json",
    "hailuo-2.3-fast.json",
    "hailuo-2.3.json",
    "happyhorse-1-0.json",
    "happyhorse-1-1.json",
    "hunyuan-video-foley.json",
    "image-to-video.json",
    "kandinsky5-distill-t2v.json",
    "kandinsky5-t2v.json",
    "klingai-video-v3-motion-control-schema.json",
    "krea-wan-14b-text-to-video.json",
    "krea-wan-14b-video-to-video.json",
    "lip-sync.json",
    "ltxv-2-fast.json",
    "ltxv-2.json",
    "omnihuman-v.1.5.json",
    "omnihuman.json",
    "ray-1-6.json",
    "ray-2.json",
    "ray-3.2.json",
    "ray-flash-2.json",
    "seedance-1-0-pro-fast.json",
    "seedance-1-5-pro.json",
    "seedance-1.0-lite-image-to-video.json",
    "seedance-1.0-lite-text-to-video.json",
    "seedance-1.0-pro-image-to-video.json",
    "seedance-1.0-pro-text-to-video.json",
    "seedance-2-0-fast.json",
    "seedance-2-0-mini.json",
    "seedance-2-0.json",
    "seedance-2.5.json",
    "sora-2-i2v.json",
    "sora-2-pro-i2v.json",
    "sora-2-pro-t2v.json",
    "sora-2-t2v.json",
    "switchx-video-to-video.json",
    "text-to-video.json",
    "v1-pro-image-to-video.json",
    "v1-pro-text-to-video.json",
    "v1-standard-image-to-video.json",
    "v1-standard-text-to-video.json",
    "v1.5-pro-image-to-video.json",
    "v1.5-pro-text-to-video.json",
    "v1.5-standard-image-to-video.json",
    "v1.6-pro-effects.json",
    "v1.6-pro-image-to-video.json",
    "v1.6-pro-text-to-video.json",
    "v1.6-standard-effects.json",
    "v1.6-standard-multi-image-to-video.json",
    "v1.6-standard-text-to-video.json",
    "v1.6-standart-image-to-video.json",
    "v2-master-image-to-video.json",
    "v2-master-text-to-video.json",
    "v2.1-master-image-to-video.json",
    "v2.1-master-text-to-video.json",
    "v2.1-pro-image-to-video.json",
    "v2.1-standard-image-to-video.json",
    "v2.5-turbo-pro-image-to-video.json",
    "v2.5-turbo-pro-text-to-video.json",
    "v3-omni-1080p-image-to-video.json",
    "v3-omni-1080p-text-to-video.json",
    "v3-omni-720p-image-to-video.json",
    "v3-omni-720p-text-to-video.json",
    "v3-standard-turbo-image-to-video.json",
    "v3-standard-turbo-text-to-video.json",
    "v3-turbo-pro-image-to-video.json",
    "v3-turbo-pro-text-to-video.json",
    "v5-image-to-video.json",
    "v5-text-to-video.json",
    "v5-transition.json",
    "v5.5-image-to-video.json",
    "v5.5-text-to-video.json",
    "veo-3-1-lite-generate-preview.json",
    "veo-3.0-fast.json",
    "veo-3.0-i2v-fast.json",
    "veo-3.0-i2v.json",
    "veo-3.1-first-last-image-to-video-fast.json",
    "veo-3.1-first-last-image-to-video.json",
    "veo-3.1-i2v-fast.json",
    "veo-3.1-i2v.json",
    "veo-3.1-lite-generate-001.json",
    "veo-3.1-reference-to-video.json",
    "veo-3.1-t2v-fast.json",
    "veo-3.1-t2v.json",
    "veo2.json",
    "veo3-1-extend-video.json",
    "veo3-1-fast-extend-video.json",
    "veo3.json",
    "video-01-live2d.json",
    "video-01.json",
    "video-o1-image-to-video.json",
    "video-o1-reference-to-video.json",
    "video-o1-video-to-video-edit.json",
    "video-o1-video-to-video-reference.json",
    "video-to-video.json",
    "video-v2-6-pro-image-to-video.json",
    "video-v2-6-pro-motion-control.json",
    "video-v2-6-pro-text-to-video.json",
    "video-v3-pro-image-to-video.json",
    "video-v3-pro-text-to-video.json",
    "video-v3-standard-image-to-video.json",
    "video-v3-standard-text-to-video.json",
    "wan-2-6-image-to-video-flash.json",
    "wan2.1-t2v-plus.json",
    "wan2.1-t2v-turbo.json",
    "wan2.2-14b-animate-move.json",
    "wan2.2-14b-animate-replace.json",
    "wan2.2-i2v-plus.json",
    "wan2.2-t2v-plus.json",
    "wan2.2-vace-fun-a14b-depth.json",
    "wan2.2-vace-fun-a14b-inpainting.json",
    "wan2.2-vace-fun-a14b-outpainting.json",
    "wan2.2-vace-fun-a14b-pose.json",
    "wan2.2-vace-fun-a14b-reframe.json",
    "wan2.5-i2v-preview.json",
    "wan2.5-t2v-preview.json",
    "wan2.6-i2v.json",
    "wan2.6-r2v.json",
    "wan2.6-t2v.json",
    "wan2.7-i2v.json",
    "wan2.7-r2v.json",
    "wan2.7-t2v.json",
];

/// One compiled validator per spec file, built when a model of it is first asked for: a
/// simulator that only ever sees magic models compiles none.
static VALIDATORS: LazyLock<HashMap<&'static str, OnceLock<jsonschema::Validator>>> =
    LazyLock::new(|| SPEC_FILES.iter().map(|(name, _)| (*name, OnceLock::new())).collect());

/// The validator of a spec file, or `None` when no such file is embedded. Panics on a spec that
/// does not compile: it is part of the binary, and `every_spec_compiles` loads them all.
pub fn validator(spec: &str) -> Option<&'static jsonschema::Validator> {
    let (name, text) = SPEC_FILES.iter().find(|(n, _)| *n == spec)?;
    Some(VALIDATORS[name].get_or_init(|| compile(name, text)))
}

fn compile(name: &str, text: &str) -> jsonschema::Validator {
    let doc: Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("spec {name}: {e}"));
    let mut schema = doc
        .get("schema")
        .cloned()
        .unwrap_or_else(|| panic!("spec {name}: no schema"));
    // The model is checked against the catalog, which knows aliases; one spec's enum even names
    // another model's id.
    if let Some(model) = schema.pointer_mut("/properties/model") {
        *model = json!({"type": "string"});
    }
    allow_null(&mut schema);
    jsonschema::options()
        .should_validate_formats(true)
        .build(&schema)
        .unwrap_or_else(|e| panic!("spec {name}: {e}"))
}

/// OpenAPI's `nullable: true` in JSON Schema terms: `null` is one more accepted type.
fn allow_null(schema: &mut Value) {
    match schema {
        Value::Object(map) => {
            if map.remove("nullable") == Some(Value::Bool(true)) {
                if let Some(Value::String(t)) = map.get("type") {
                    let t = t.clone();
                    map.insert("type".into(), json!([t, "null"]));
                }
                if let Some(Value::Array(values)) = map.get_mut("enum") {
                    values.push(Value::Null);
                }
            }
            map.values_mut().for_each(allow_null);
        }
        Value::Array(items) => items.iter_mut().for_each(allow_null),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_are_all_listed() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/catalog/vendor/specs");
        let mut on_disk: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n != "universal-video-fetch.json")
            .collect();
        on_disk.sort();
        let mut listed: Vec<&str> = SPEC_FILES.iter().map(|(n, _)| *n).collect();
        listed.sort();
        assert_eq!(listed, on_disk, "update SPEC_FILES in src/sim/specs.rs");
    }

    #[test]
    fn every_spec_compiles() {
        for (name, _) in SPEC_FILES {
            assert!(validator(name).is_some(), "{name}");
        }
        assert!(validator("nope.json").is_none());
    }

    #[test]
    fn nullable_fields_take_null() {
        let mut s = json!({"properties": {"seed": {"type": "integer", "nullable": true}}});
        allow_null(&mut s);
        assert_eq!(s["properties"]["seed"], json!({"type": ["integer", "null"]}));
    }
}
