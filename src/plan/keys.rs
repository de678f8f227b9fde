//! The key of each row of the results (`custom_id`, as OpenAI's Batch API names it): what a
//! script or a sheet joins the results back on, the same from run to run.
//!
//! - The manifest's `key:` (or `--key`) names `label` or a column of the user's (`#SKU`): every
//!   entry must fill it, and no two entries may share a value (said at their lines).
//! - Without one, the label keys the rows of an entry that has one, while no other entry's rows
//!   share it; the others are keyed by their job id.
//! - An entry that makes several jobs (several inputs, prompts or templates) keys each by the
//!   value followed by what tells them apart there: `S-1042 / Dubai Museum`.
//!
//! A job's id would be stable too, but it is a hash: nobody can find their row by it.

use std::collections::HashMap;

use super::Job;
use crate::catalog;
use crate::manifest::{Diagnostic, Entry, Manifest, Pos, fold_header};

/// What the rows are keyed by.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Source {
    Label,
    /// A column of the user's, named as the manifest names it.
    Column(String),
}

/// Gives every job its [`Job::custom_id`]; returns the problems of an explicit key (a name that
/// is no column, rows without a value, values shared). `jobs` are in the planner's order: the
/// jobs of one entry together.
pub(super) fn assign(manifest: &Manifest, jobs: &mut [Job]) -> Vec<Diagnostic> {
    let mut problems = Vec::new();
    let source = source(manifest, &mut problems);
    if let Some(source) = &source {
        problems.extend(check_entries(manifest, source));
    }
    let explicit = source.is_some();
    let source = source.unwrap_or(Source::Label);
    // Each job's key before collisions are looked at.
    let mut wanted: Vec<Option<String>> = Vec::with_capacity(jobs.len());
    for group in jobs.chunk_by(|a, b| a.at == b.at) {
        let base = match &source {
            Source::Label => group[0].user_label.clone(),
            Source::Column(name) => group[0].own.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone()),
        };
        let differs = |part: fn(&Job) -> Option<&str>| group.iter().any(|j| part(j) != part(&group[0]));
        let (inputs, prompts, templates) = (
            differs(|j| Some(&j.input_label)),
            differs(Job::prompt),
            differs(|j| j.template.as_deref()),
        );
        for job in group {
            wanted.push(base.as_ref().map(|base| {
                let mut key = base.clone();
                let mut add = |part: &str| {
                    key.push_str(" / ");
                    key.push_str(part);
                };
                if inputs {
                    add(&job.input_label);
                }
                // Text-to-video: the prompt is the input, already there.
                if prompts && job.prompt() != Some(job.input_label.as_str()) {
                    add(job.prompt().unwrap_or(""));
                }
                if templates {
                    add(job.template.as_deref().unwrap_or(""));
                }
                key
            }));
        }
    }
    // A key more than one job would have (the same job twice in the manifest is one job).
    let mut holders: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, key) in wanted.iter().enumerate() {
        if let Some(key) = key {
            holders.entry(key).or_default().push(i);
        }
    }
    let shared: Vec<&Vec<usize>> = holders
        .values()
        .filter(|held| held.iter().any(|&i| jobs[i].key != jobs[held[0]].key))
        .collect();
    let mut fall_back = vec![false; jobs.len()];
    for held in shared {
        // Values told apart by the entries were checked above: what remains is two values that
        // read alike once their parts are added (`a / b` + `c`, `a` + `b / c`).
        if explicit && problems.is_empty() {
            let (first, second) = (&jobs[held[0]], &jobs[held[1]]);
            let mut d = manifest.diagnostic(
                Some(second.at),
                format!(
                    "this row's key `{}` is also the key of line {}",
                    wanted[held[1]].as_deref().unwrap_or_default(),
                    first.at.line
                ),
            );
            d.help = Some(
                "keys made of the value and what tells an entry's jobs apart must differ: change one value".into(),
            );
            problems.push(d);
        }
        for &i in held {
            fall_back[i] = true;
        }
    }
    for ((job, key), fall_back) in jobs.iter_mut().zip(wanted).zip(fall_back) {
        job.custom_id = match key {
            Some(key) if !fall_back => key,
            _ => job.key.short().to_string(),
        };
    }
    problems
}

/// The source the manifest's `key:` or `--key` names; `None` without one, or (said in
/// `problems`) when it names no column.
fn source(manifest: &Manifest, problems: &mut Vec<Diagnostic>) -> Option<Source> {
    let choice = manifest.key.as_ref()?;
    let name = choice.name.trim();
    let folded = fold_header(name);
    if folded == "label" {
        return Some(Source::Label);
    }
    if let Some(column) = manifest.own_columns.iter().find(|c| fold_header(c) == folded) {
        return Some(Source::Column(column.clone()));
    }
    let setting = if choice.at.is_some() { "`key`" } else { "`--key`" };
    // `sku` for `#sku`: the column it most likely means.
    let bare = |c: &String| fold_header(c.trim_start_matches('#').trim());
    let near = manifest
        .own_columns
        .iter()
        .find(|c| bare(c) == folded.trim_start_matches('#').trim())
        .or_else(|| {
            let names: Vec<String> = manifest.own_columns.iter().map(|c| fold_header(c)).collect();
            let near = catalog::closest(&folded, names.iter().map(String::as_str))?;
            manifest.own_columns.iter().find(|c| fold_header(c) == near)
        });
    let yours = match manifest.own_columns.as_slice() {
        [] => "a key is `label`, or a column of yours: one whose name starts with `#` (`#sku`)".to_string(),
        columns => {
            let names: Vec<&str> = columns.iter().map(String::as_str).collect();
            format!(
                "a key is `label` or a column of yours: {}",
                catalog::quoted_list(&names)
            )
        }
    };
    let mut d = manifest.diagnostic(
        choice.at,
        format!("{setting} names `{name}`, which is neither `label` nor a column of yours (`#…`)"),
    );
    d.help = Some(match near {
        Some(c) => format!("did you mean `{c}`? {yours}"),
        None => yours,
    });
    problems.push(d);
    None
}

/// The value `source` gives an entry, with where it is written.
fn value<'e>(entry: &'e Entry, source: &Source) -> Option<(&'e str, Pos)> {
    match source {
        Source::Label => entry.label.as_ref().map(|l| (l.value.as_str(), l.at)),
        Source::Column(name) => entry
            .own
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| (v.value.as_str(), v.at)),
    }
}

/// Every entry has a value for an explicit key, and no two share one.
fn check_entries(manifest: &Manifest, source: &Source) -> Vec<Diagnostic> {
    let name = match source {
        Source::Label => "label",
        Source::Column(name) => name,
    };
    let setting = match manifest.key.as_ref().and_then(|k| k.at) {
        Some(_) => "the manifest's `key`",
        None => "`--key`",
    };
    // A table's entries are its rows.
    let job = match manifest.entries.first() {
        Some(e) if e.params_are_text => "row",
        _ => "job",
    };
    let mut problems = Vec::new();
    let mut missing: Vec<&Entry> = Vec::new();
    // Each value with the lines that give it, in the order first given.
    let mut lines: HashMap<&str, Vec<usize>> = HashMap::new();
    let mut order: Vec<(&str, Pos)> = Vec::new();
    for entry in &manifest.entries {
        match value(entry, source) {
            None => missing.push(entry),
            Some((value, at)) => {
                let given = lines.entry(value).or_default();
                if given.len() == 1 {
                    order.push((value, at));
                }
                given.push(entry.at.line);
            }
        }
    }
    if let Some(first) = missing.first() {
        let lines: Vec<usize> = missing.iter().map(|e| e.at.line).collect();
        let what = match lines.len() {
            1 => format!("this {job} has no `{name}`"),
            n => format!("{n} {job}s have no `{name}` ({})", manifest.rows(&lines)),
        };
        let mut d = manifest.diagnostic(Some(first.at), format!("{what}: {setting} keys the results by it"));
        d.help = Some(format!(
            "give every {job} its own `{name}` (the results' `custom_id`), or choose another key"
        ));
        problems.push(d);
    }
    // The first value given twice is shown at its second place; the others are counted.
    if let Some(&(value, at)) = order.first() {
        let more = match order.len() {
            1 => String::new(),
            n => format!("; {} more values are shared too", n - 1),
        };
        let mut d = manifest.diagnostic(
            Some(at),
            format!(
                "`{name}` is `{value}` on {}: {setting} keys the results by it, so it must tell the rows apart{more}",
                manifest.rows(&lines[value])
            ),
        );
        d.help = Some(format!("give each {job} its own `{name}`, or choose another key"));
        problems.push(d);
    }
    problems
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::manifest;
    use crate::plan::{Plan, plan};

    /// `text` as `name` in a folder holding `shoe.jpg` and a copy of it, `shoe-copy.jpg`.
    fn load(name: &str, text: &str, key: Option<&str>) -> Result<Plan, String> {
        let dir = tempfile::tempdir().unwrap();
        let shoe = Path::new(env!("CARGO_MANIFEST_DIR")).join("manifests/assets/shoe.jpg");
        for copy in ["shoe.jpg", "shoe-copy.jpg"] {
            std::fs::copy(&shoe, dir.path().join(copy)).unwrap();
        }
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        let mut m = manifest::load(&path).map_err(|e| e.to_string())?;
        if let Some(key) = key {
            m.key = Some(manifest::KeyChoice {
                name: key.into(),
                at: None,
            });
        }
        plan(&m).map_err(|e| e.to_string())
    }

    fn keys(plan: &Plan) -> Vec<String> {
        plan.jobs
            .iter()
            .flat_map(|j| std::iter::once(j.custom_id.clone()).chain(j.aliases.iter().map(|a| a.custom_id.clone())))
            .collect()
    }

    const I2V: &str = "magic/image-to-video";

    #[test]
    fn labels_key_their_rows_with_what_tells_an_entrys_jobs_apart() {
        let plan = load(
            "m.yaml",
            &format!(
                "jobs:\n  - model: {I2V}\n    input: shoe.jpg\n    templates: [Dubai Museum, Phone Social]\n    label: hero\n\
                 \x20 - model: pixverse/v5/image-to-video\n    input: shoe.jpg\n    prompts: [a, b]\n    label: talk\n\
                 \x20 - model: magic/text-to-video\n    prompts: [SALE, NEW]\n    label: banner\n"
            ),
            None,
        )
        .unwrap();
        assert_eq!(
            keys(&plan),
            [
                "hero / Dubai Museum",
                "hero / Phone Social",
                "talk / a",
                "talk / b",
                "banner / SALE",
                "banner / NEW"
            ]
        );
    }

    #[test]
    fn without_a_key_a_shared_label_or_none_falls_back_to_the_job_id() {
        let plan = load(
            "m.csv",
            &format!(
                "model,input,template,label\n{I2V},shoe.jpg,Dubai Museum,same\n{I2V},shoe.jpg,Phone Social,same\n\
                 {I2V},shoe.jpg,Art Gallery,\n{I2V},shoe.jpg,Thailand Street,own\n"
            ),
            None,
        )
        .unwrap();
        let ids: Vec<&str> = plan.jobs.iter().map(|j| j.key.short()).collect();
        assert_eq!(keys(&plan), [ids[0], ids[1], ids[2], "own"]);
    }

    #[test]
    fn an_alias_is_keyed_apart_from_its_job() {
        let plan = load(
            "m.yaml",
            &format!("jobs:\n  - model: {I2V}\n    inputs: [shoe.jpg, shoe-copy.jpg]\n    template: Thailand Street\n"),
            None,
        )
        .unwrap();
        let id = plan.jobs[0].key.short().to_string();
        assert_eq!(keys(&plan), [id.clone(), format!("{id} / shoe-copy.jpg")]);
        let labelled = load(
            "m.yaml",
            &format!("jobs:\n  - model: {I2V}\n    inputs: [shoe.jpg, shoe-copy.jpg]\n    template: Thailand Street\n    label: x\n"),
            None,
        )
        .unwrap();
        assert_eq!(keys(&labelled), ["x / shoe.jpg", "x / shoe-copy.jpg"]);
    }

    #[test]
    fn a_named_column_keys_every_row_and_must_tell_them_apart() {
        let sheet = format!(
            "#SKU;model;input;template\nS-1;{I2V};shoe.jpg;Thailand Street|Phone Social\nS-2;{I2V};shoe.jpg;Dubai Museum\n"
        );
        let plan = load("m.csv", &sheet, Some("#sku")).unwrap();
        assert_eq!(keys(&plan), ["S-1 / Thailand Street", "S-1 / Phone Social", "S-2"]);
        assert_eq!(plan.columns, ["#SKU"]);

        let yaml = format!(
            "key: \"#sku\"\ndefaults:\n  model: {I2V}\n  input: shoe.jpg\njobs:\n  - template: Thailand Street\n    \"#sku\": S-1\n    \"#notes\": n\n\
             \x20 - template: Phone Social\n    \"#SKU\": S-2\n"
        );
        let plan = load("m.yaml", &yaml, None).unwrap();
        assert_eq!(keys(&plan), ["S-1", "S-2"]);
        assert_eq!(plan.columns, ["#sku", "#notes"], "named as first written");
        assert_eq!(&*plan.jobs[1].own, [("#sku".to_string(), "S-2".to_string())]);

        for (manifest, key, said) in [
            (
                format!(
                    "#SKU;model;input;template\nS-1;{I2V};shoe.jpg;Thailand Street\nS-1;{I2V};shoe.jpg;Phone Social\n"
                ),
                "#SKU",
                "m.csv:3:1: `#SKU` is `S-1` on lines 2 and 3: `--key` keys the results by it",
            ),
            (
                format!(
                    "#SKU;model;input;template\nS-1;{I2V};shoe.jpg;Thailand Street\n;{I2V};shoe.jpg;Phone Social\n"
                ),
                "#SKU",
                "m.csv:3:1: this row has no `#SKU`: `--key` keys the results by it",
            ),
            (
                format!("#SKU;model;input;template\nS-1;{I2V};shoe.jpg;Thailand Street\n"),
                "sku",
                "m.csv: `--key` names `sku`, which is neither `label` nor a column of yours (`#…`)\n  help: did you \
                 mean `#SKU`?",
            ),
        ] {
            let err = load("m.csv", &manifest, Some(key)).unwrap_err();
            assert!(err.contains(said), "{err}");
        }
        let err = load(
            "m.yaml",
            &format!("key: label\njobs:\n  - model: {I2V}\n    input: shoe.jpg\n    template: Thailand Street\n    label: a\n  - model: {I2V}\n    input: shoe.jpg\n    template: Phone Social\n    label: a\n"),
            None,
        )
        .unwrap_err();
        assert!(
            err.contains("m.yaml:10:12: `label` is `a` on lines 3 and 7: the manifest's `key` keys the results by it"),
            "{err}"
        );
    }
}
