//! The four models vidbatch started with, written by hand from the vendor's pages: long
//! lists of template names and parameters, data rather than logic, so apart from the types.

use super::{DefaultValue, InputSlot, ModelSpec, ParamKind, ParamSpec};

const MAGIC_I2V_TEMPLATES: &[&str] = &[
    "Thailand Street",
    "Times Square Billboard",
    "New York Times Square (77)",
    "Phone Social",
    "Art Gallery",
    "New York Times Square (66)",
    "Dubai Museum",
    "Digital Float",
    "Rotating Cards",
    "Desktop Reveal",
    "Egypt Pyramid",
    "Frames Drop",
    "Cappadocia Balloons",
    "Times Square Round Screen",
    "Stockholm Metro",
    "Tokyo Billboard",
    "San Francisco Skyscrapers",
    "Malaysia Shop",
    "Las Vegas LED",
    "Phone App",
    "Paris Eiffel Tower",
];

const MAGIC_V2V_TEMPLATES: &[&str] = &[
    "Thailand Street",
    "Times Square Billboard",
    "New York Times Square (78)",
    "Phone Social",
    "Art Gallery",
    "New York Times Square (67)",
    "Dubai Museum",
    "Rotating Cards",
    "Desktop Reveal",
    "Egypt Pyramid",
    "Cappadocia Balloons",
    "Times Square Round Screen",
    "Stockholm Metro",
    "Tokyo Billboard",
    "San Francisco Skyscrapers",
    "Malaysia Shop",
    "Las Vegas LED",
    "Phone App",
    "Paris Eiffel Tower",
];

const PIXVERSE_SPEAKERS: &[&str] = &[
    "Harper", "Ava", "Isabella", "Sophia", "Emily", "Chloe", "Julia", "Mason", "Jack", "Liam", "James", "Oliver",
    "Adrian", "Ethan", "Auto",
];

const PROMPT_2048: ParamSpec = ParamSpec {
    name: "prompt",
    kind: ParamKind::Text { max_chars: Some(2048) },
    default: None,
    required: true,
};

/// What the hand-written specs share besides their own fields.
const SEED: ModelSpec = ModelSpec {
    id: "",
    input: InputSlot::None,
    input_required: true,
    input_list: false,
    prompt: None,
    templates: &[],
    default_template: None,
    params: &[],
    aliases: &[],
    task: "",
    deprecated: false,
    render_seconds: None,
    generated: false,
};

/// The four models of the vendor's pages vidbatch started with, written by hand: their tolerant
/// template matching and the rules the docs' JSON does not state (PixVerse's 2,048-character
/// prompt, 1080p only for 5 s) are kept. The generated catalog supplies every other model.
pub(super) static SEEDS: &[ModelSpec] = &[
    ModelSpec {
        id: "magic/image-to-video",
        input: InputSlot::Image("image_url"),
        prompt: None,
        templates: MAGIC_I2V_TEMPLATES,
        default_template: Some("Thailand Street"),
        params: &[],
        ..SEED
    },
    ModelSpec {
        id: "magic/video-to-video",
        input: InputSlot::Video("video_url"),
        prompt: None,
        templates: MAGIC_V2V_TEMPLATES,
        default_template: Some("Thailand Street"),
        params: &[],
        ..SEED
    },
    ModelSpec {
        id: "magic/text-to-video",
        input: InputSlot::None,
        prompt: Some(ParamSpec {
            name: "prompt",
            kind: ParamKind::Text { max_chars: None },
            default: None,
            required: true,
        }),
        templates: &["Shanghai Drone Show"],
        default_template: Some("Shanghai Drone Show"),
        params: &[],
        ..SEED
    },
    ModelSpec {
        id: "pixverse/v5/image-to-video",
        input: InputSlot::Image("image_url"),
        prompt: Some(PROMPT_2048),
        templates: &[],
        default_template: None,
        params: &[
            ParamSpec {
                name: "resolution",
                kind: ParamKind::Choice(&["360p", "540p", "720p", "1080p"]),
                default: Some(DefaultValue::Str("720p")),
                required: false,
            },
            ParamSpec {
                name: "duration",
                kind: ParamKind::IntChoice(&[5, 8]),
                default: Some(DefaultValue::Int(5)),
                required: false,
            },
            ParamSpec {
                name: "negative_prompt",
                kind: ParamKind::Text { max_chars: Some(2048) },
                default: None,
                required: false,
            },
            ParamSpec {
                name: "style",
                kind: ParamKind::Choice(&["anime", "3d_animation", "clay", "comic", "cyberpunk"]),
                default: None,
                required: false,
            },
            ParamSpec {
                name: "seed",
                kind: ParamKind::IntRange(0, 2_147_483_647),
                default: None,
                required: false,
            },
            ParamSpec {
                name: "lip_sync_tts_content",
                kind: ParamKind::Text { max_chars: None },
                default: None,
                required: false,
            },
            ParamSpec {
                name: "lip_sync_tts_speaker",
                kind: ParamKind::Choice(PIXVERSE_SPEAKERS),
                default: None,
                required: false,
            },
        ],
        ..SEED
    },
];
