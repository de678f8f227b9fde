//! The YAML reader's tests: entries that remember their lines, defaults merged, unknown fields
//! and syntax errors located, and the aliases and nesting that would exhaust memory refused.

use super::*;

fn yaml(text: &str) -> Result<Manifest, Diagnostics> {
    let mut m = Manifest::new("m.yaml".as_ref(), text.into());
    parse_yaml(text, &mut m)?;
    if m.problems.is_empty() {
        Ok(m)
    } else {
        Err(Diagnostics(m.problems))
    }
}

#[test]
fn yaml_entries_remember_their_lines() {
    let m = yaml(
        "name: spring\njobs:\n  - model: magic/image-to-video\n    inputs: [a.jpg, b.png]\n    template: Tokyo Billboard\n  - model: pixverse/v5/image-to-video\n    input: p.jpg\n    prompt: hi\n    params: {duration: 5, resolution: 720p, seed: '7'}\n",
    )
    .unwrap();
    assert_eq!(m.name, "spring");
    assert_eq!(m.entries.len(), 2);
    assert_eq!(m.entries[0].at.line, 3);
    assert_eq!(m.entries[0].inputs[1].value, "b.png");
    assert_eq!(m.entries[0].inputs[1].at.line, 4);
    assert_eq!(m.entries[1].templates.len(), 0);
    let params: Vec<_> = m.entries[1]
        .params
        .iter()
        .map(|(k, v)| (k.value.as_str(), v.value.clone()))
        .collect();
    assert_eq!(
        params,
        vec![
            ("duration", 5.into()),
            ("resolution", "720p".into()),
            ("seed", "7".into())
        ]
    );
    assert_eq!(m.entries[1].params[0].0.at.line, 9);
}

#[test]
fn yaml_fields_of_the_users_own_and_the_key_are_read() {
    let m = yaml(
        "key: \"#sku\"\ndefaults:\n  \"#notes\": shared\njobs:\n  - model: m\n    prompt: a\n    \"#SKU\": 1042\n  - model: m\n    prompt: b\n    \"#sku\": S-2\n    \"#notes\": own\n",
    )
    .unwrap();
    assert_eq!(
        m.key.as_ref().map(|k| (k.name.as_str(), k.at.map(|a| a.line))),
        Some(("#sku", Some(1)))
    );
    assert_eq!(
        m.own_columns,
        ["#notes", "#SKU"],
        "in the order first written, as first written"
    );
    let own = |i: usize| -> Vec<(String, String)> {
        m.entries[i]
            .own
            .iter()
            .map(|(n, v)| (n.clone(), v.value.clone()))
            .collect()
    };
    assert_eq!(
        own(0),
        [("#notes".into(), "shared".into()), ("#SKU".into(), "1042".into())]
    );
    assert_eq!(own(1), [("#SKU".into(), "S-2".into()), ("#notes".into(), "own".into())]);
    let err = yaml("jobs:\n  - model: m\n    \"#sku\": [a, b]\n").unwrap_err();
    assert!(err.0[0].help.as_deref().unwrap().contains("\"#sku\": S-1042"), "{err}");
}

#[test]
fn defaults_apply_and_params_merge() {
    let m = yaml(
        "defaults:\n  model: pixverse/v5/image-to-video\n  params: {duration: 8, resolution: 540p}\njobs:\n  - input: a.jpg\n    prompt: x\n    params: {duration: 5}\n",
    )
    .unwrap();
    let e = &m.entries[0];
    assert_eq!(e.model.as_ref().unwrap().value, "pixverse/v5/image-to-video");
    let mut params: Vec<_> = e
        .params
        .iter()
        .map(|(k, v)| (k.value.clone(), v.value.clone()))
        .collect();
    params.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        params,
        vec![("duration".into(), 5.into()), ("resolution".into(), "540p".into())]
    );
}

#[test]
fn unknown_fields_are_located_with_a_suggestion() {
    let err = yaml("jobs:\n  - model: magic/image-to-video\n    input: a.jpg\n    tempates: [Tokyo Billboard]\n")
        .unwrap_err();
    let d = &err.0[0];
    assert_eq!(d.line(), Some(4));
    assert!(d.message.contains("`tempates`"), "{d}");
    assert!(d.help.as_deref().unwrap().contains("`templates`"), "{d}");
}

#[test]
fn syntax_errors_name_the_line() {
    let err = yaml("jobs:\n  - model: x\n    inputs: [a.jpg\n").unwrap_err();
    assert!(err.0[0].line().is_some());
    assert!(err.0[0].message.starts_with("invalid YAML"), "{err}");
}

#[test]
fn singular_and_plural_together_are_refused() {
    let err = yaml("jobs:\n  - model: m\n    input: a\n    inputs: [b]\n").unwrap_err();
    assert_eq!(err.0[0].line(), Some(4));
}

#[test]
fn anchors_and_aliases_are_followed() {
    let m = yaml("x: &imgs [a.jpg, b.jpg]\njobs:\n  - model: m\n    inputs: *imgs\n");
    // `x` is not a manifest field, but the alias itself must resolve.
    assert!(m.unwrap_err().0.iter().all(|d| !d.message.contains("alias")));
}

#[test]
fn an_alias_bomb_is_refused_quickly_and_small() {
    let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x]\n");
    for level in 1..=9 {
        let prev = level - 1;
        text.push_str(&format!(
            "a{level}: &a{level} [{}]\n",
            vec![format!("*a{prev}"); 9].join(",")
        ));
    }
    text.push_str("jobs:\n  - model: magic/text-to-video\n    prompts: *a9\n");
    let err = yaml(&text).unwrap_err();
    assert!(err.0[0].message.contains("aliases"), "{err}");
    // An anchor reused a few times is fine.
    let ok = yaml("x: &p [a, b]\njobs:\n  - model: m\n    prompts: *p\n  - model: m\n    prompts: *p\n");
    assert!(ok.unwrap_err().0.iter().all(|d| !d.message.contains("aliases")));
}

#[test]
fn deep_nesting_is_refused() {
    let text = format!("jobs: {}{}\n", "[".repeat(70), "]".repeat(70));
    let err = yaml(&text).unwrap_err();
    assert!(err.0[0].message.contains("deeper than 64"), "{err}");
    // Deeper still, the YAML reader's own limit answers first.
    let text = format!("jobs: {}{}\n", "[".repeat(100_000), "]".repeat(100_000));
    assert!(yaml(&text).is_err());
}
