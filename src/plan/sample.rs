//! A few jobs that stand for the whole plan (`--sample N`), and an order that spreads a partial
//! run evenly over it (`--within-cap spread`). The first rows of a manifest are one product
//! through one model; a trial, or a run the cap cuts short, is better spent thinly over the
//! whole grid: every model first, then every template of each, the inputs and prompts varied.
//! Both depend on the plan alone, so the same manifest gives the same choice on every run.

use std::collections::{HashMap, VecDeque};

use serde_json::Value;

use super::Job;

/// How many of a kind's jobs are weighed for each pick (the first ones left, in plan order):
/// enough to vary the inputs of any campaign, and a bound on the work for kinds of thousands.
const WEIGHED: usize = 256;

/// The jobs of `among` (indices into `jobs`) in spread order. Jobs are grouped by kind (model
/// and template); the kinds are taken in turns, every model's first kind before any model's
/// second; each turn takes, of its kind's jobs left, the one whose input and prompt the turns so
/// far used least, the earliest in plan order among equals.
pub fn spread_order(jobs: &[Job], among: &[usize]) -> Vec<usize> {
    spread(jobs, among, among.len())
}

/// `n` jobs of `among` that cover every model, then every template of each, with inputs varied,
/// when `n` allows: the first `n` of [`spread_order`], given back in plan order.
pub fn sample(jobs: &[Job], among: &[usize], n: usize) -> Vec<usize> {
    let mut chosen = spread(jobs, among, n);
    chosen.sort_unstable();
    chosen
}

/// The first `n` jobs of the spread order.
fn spread(jobs: &[Job], among: &[usize], n: usize) -> Vec<usize> {
    let n = n.min(among.len());
    // Kinds in order of first appearance, each with its jobs in plan order; inputs and prompts
    // numbered, so that weighing a job is two lookups in a table.
    let mut kind_of: HashMap<(&str, Option<&str>), usize> = HashMap::new();
    let mut kinds: Vec<(&str, VecDeque<usize>)> = Vec::new();
    let mut numbers: HashMap<&str, usize> = HashMap::new();
    let mut variant_of: Vec<(usize, Option<usize>)> = vec![(0, None); jobs.len()];
    for &i in among {
        let job = &jobs[i];
        let next = kinds.len();
        let k = *kind_of
            .entry((job.model.as_str(), job.template.as_deref()))
            .or_insert(next);
        if k == next {
            kinds.push((job.model.as_str(), VecDeque::new()));
        }
        kinds[k].1.push_back(i);
        let (input, prompt) = variant(job);
        let mut number = |text| {
            let next = numbers.len();
            *numbers.entry(text).or_insert(next)
        };
        let input = number(input);
        let prompt = prompt.map(&mut number);
        variant_of[i] = (input, prompt);
    }
    let turns = turns(&kinds);
    // How often each input and each prompt was taken so far (one table: a text is one or the
    // other, or both when a prompt is also the input of another kind, and then counts for both).
    let mut used = vec![0usize; numbers.len()];
    let mut order = Vec::with_capacity(n);
    while order.len() < n {
        for &k in &turns {
            let left = &mut kinds[k].1;
            if left.is_empty() || order.len() == n {
                continue;
            }
            let wear = |i: usize| {
                let (input, prompt) = variant_of[i];
                used[input] + prompt.map_or(0, |p| used[p])
            };
            let pick = (0..left.len().min(WEIGHED))
                .min_by_key(|&at| (wear(left[at]), at))
                .expect("a kind with jobs left");
            let i = left.remove(pick).expect("picked among those left");
            let (input, prompt) = variant_of[i];
            used[input] += 1;
            if let Some(p) = prompt {
                used[p] += 1;
            }
            order.push(i);
        }
    }
    order
}

/// The order kinds take turns in: the first kind of each model, then the second of each, …
fn turns(kinds: &[(&str, VecDeque<usize>)]) -> Vec<usize> {
    let mut models: Vec<(&str, Vec<usize>)> = Vec::new();
    for (k, (model, _)) in kinds.iter().enumerate() {
        match models.iter_mut().find(|(m, _)| m == model) {
            Some((_, of_model)) => of_model.push(k),
            None => models.push((model, vec![k])),
        }
    }
    let rounds = models.iter().map(|(_, ks)| ks.len()).max().unwrap_or(0);
    (0..rounds)
        .flat_map(|round| models.iter().filter_map(move |(_, ks)| ks.get(round).copied()))
        .collect()
}

/// What varies between a kind's jobs: the input as written (the prompt, for text-to-video), and
/// the prompt when there is one besides.
fn variant(job: &Job) -> (&str, Option<&str>) {
    let prompt = job.params.get("prompt").and_then(Value::as_str);
    (job.input_label.as_str(), prompt.filter(|p| *p != job.input_label))
}
