//! `--sample N` and `--within-cap spread`: a few jobs that stand for the plan, and an order that
//! keeps a partial run even over models, templates and inputs.

use std::collections::{HashMap, HashSet};

use super::yaml;
use crate::plan::{Plan, sample, spread_order};

/// Three products through four templates, two PixVerse prompts, one text-to-video prompt.
const CAMPAIGN: &str = "jobs:
  - model: magic/image-to-video
    inputs: [assets/shoe.jpg, assets/bag.png, assets/presenter.jpg]
    templates: [Tokyo Billboard, Thailand Street, Phone App, Rotating Cards]
  - model: pixverse/v5/image-to-video
    input: assets/bag.png
    prompts: [\"A presenter smiles\", \"The bag turns\"]
  - model: magic/text-to-video
    prompt: SALE -30%
";

fn all(p: &Plan) -> Vec<usize> {
    (0..p.jobs.len()).collect()
}

fn kinds(p: &Plan, chosen: &[usize]) -> HashSet<(String, Option<String>)> {
    chosen
        .iter()
        .map(|&i| (p.jobs[i].model.clone(), p.jobs[i].template.clone()))
        .collect()
}

#[test]
fn a_sample_covers_every_model_and_template_with_inputs_varied() {
    let p = yaml(CAMPAIGN).unwrap();
    assert_eq!(p.jobs.len(), 15);
    // 4 templates of one model, PixVerse, text-to-video: 6 kinds, so 6 jobs cover them all.
    let chosen = sample(&p.jobs, &all(&p), 6);
    assert_eq!(chosen.len(), 6);
    assert_eq!(kinds(&p, &chosen).len(), 6, "every kind once: {chosen:?}");
    assert!(chosen.windows(2).all(|w| w[0] < w[1]), "in plan order");
    // The four magic jobs use the three products, none three times.
    let mut uses: HashMap<&str, usize> = HashMap::new();
    for &i in &chosen {
        if p.jobs[i].model == "magic/image-to-video" {
            *uses.entry(&p.jobs[i].input_label).or_default() += 1;
        }
    }
    assert_eq!(uses.len(), 3, "{uses:?}");
    assert!(uses.values().all(|n| *n <= 2), "{uses:?}");
}

#[test]
fn a_sample_smaller_than_the_models_takes_one_job_of_each_model_first() {
    let p = yaml(CAMPAIGN).unwrap();
    let chosen = sample(&p.jobs, &all(&p), 3);
    let models: HashSet<&str> = chosen.iter().map(|&i| p.jobs[i].model.as_str()).collect();
    assert_eq!(models.len(), 3, "{chosen:?}");
    // The first three rows would have been one product through one model.
    assert_ne!(chosen, [0, 1, 2]);
}

#[test]
fn the_same_plan_gives_the_same_sample() {
    let (a, b) = (yaml(CAMPAIGN).unwrap(), yaml(CAMPAIGN).unwrap());
    for n in 1..=15 {
        let keys = |p: &Plan| -> Vec<String> {
            sample(&p.jobs, &all(p), n)
                .into_iter()
                .map(|i| p.jobs[i].key.0.clone())
                .collect()
        };
        assert_eq!(keys(&a), keys(&b), "n = {n}");
    }
    assert_eq!(sample(&a.jobs, &all(&a), 99).len(), 15);
}

#[test]
fn every_prefix_of_the_spread_order_is_an_even_grid() {
    let p = yaml(
        "jobs:\n  - model: magic/image-to-video\n    inputs: [assets/shoe.jpg, assets/bag.png, assets/presenter.jpg]\n    templates: [Tokyo Billboard, Thailand Street, Phone App, Rotating Cards]\n",
    )
    .unwrap();
    let order = spread_order(&p.jobs, &all(&p));
    let mut sorted = order.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, all(&p), "a permutation of the jobs");
    for k in 1..=order.len() {
        let mut per_template: HashMap<&str, usize> = HashMap::new();
        let mut per_input: HashMap<&str, usize> = HashMap::new();
        for &i in &order[..k] {
            *per_template.entry(p.jobs[i].template.as_deref().unwrap()).or_default() += 1;
            *per_input.entry(&p.jobs[i].input_label).or_default() += 1;
        }
        let spread = |m: &HashMap<&str, usize>, of: usize| {
            let counts: Vec<usize> = (0..of).map(|j| m.values().nth(j).copied().unwrap_or(0)).collect();
            counts.iter().max().unwrap() - counts.iter().min().unwrap()
        };
        assert!(spread(&per_template, 4) <= 1, "{k}: {per_template:?}");
        assert!(spread(&per_input, 3) <= 1, "{k}: {per_input:?}");
    }
    // Only the jobs asked about are ordered.
    assert_eq!(spread_order(&p.jobs, &[7, 2, 5]).len(), 3);
}
