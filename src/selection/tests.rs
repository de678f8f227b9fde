use std::collections::HashMap;
use std::path::Path;

use super::*;
use crate::plan::JobKey;

/// A plan read from `text`, beside the demo's assets; magic jobs are priced 1,050,000 each.
fn plan_of(text: &str) -> (tempfile::TempDir, Plan) {
    let dir = tempfile::tempdir().unwrap();
    let assets = Path::new(env!("CARGO_MANIFEST_DIR")).join("manifests/assets");
    for name in ["shoe.jpg", "bag.png", "presenter.jpg"] {
        std::fs::copy(assets.join(name), dir.path().join(name)).unwrap();
    }
    let path = dir.path().join("m.yaml");
    std::fs::write(&path, text).unwrap();
    let plan = crate::manifest::load(&path)
        .and_then(|m| crate::plan::plan(&m))
        .unwrap();
    (dir, plan)
}

/// Three products × four templates: twelve jobs, product by product.
fn grid() -> (tempfile::TempDir, Plan) {
    plan_of(
        "jobs:\n  - model: magic/image-to-video\n    inputs: [shoe.jpg, bag.png, presenter.jpg]\n    templates: [Tokyo Billboard, Thailand Street, Phone App, Rotating Cards]\n",
    )
}

fn record(key: &JobKey, phase: Phase) -> JobRecord {
    JobRecord::blank(key.clone(), phase)
}

const PRICE: f64 = 1_050_000.0;

#[test]
fn each_record_is_placed_as_the_run_places_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("done.mp4"), b"12345").unwrap();
    let key = JobKey("k".into());
    let with = |phase, id: Option<&str>, failure, attempts| JobRecord {
        generation_id: id.map(String::from),
        failure,
        attempts,
        file: "done.mp4".into(),
        bytes: Some(5),
        ..record(&key, phase)
    };
    let plain = Options::default();
    let retrying = Options {
        paid_retries: 1,
        resubmit_unknown: true,
        ..Options::default()
    };
    let gone = JobRecord {
        file: "gone.mp4".into(),
        ..with(Phase::Completed, Some("g"), None, 1)
    };
    for (record, options, expected) in [
        (None, &plain, Fate::New),
        (Some(with(Phase::Queued, None, None, 0)), &plain, Fate::New),
        (Some(with(Phase::Submitting, None, None, 0)), &plain, Fate::Unknown),
        (Some(with(Phase::Submitting, None, None, 0)), &retrying, Fate::Resubmit),
        (Some(with(Phase::Generating, Some("g"), None, 1)), &plain, Fate::Running),
        (Some(with(Phase::Downloading, Some("g"), None, 1)), &plain, Fate::Fetch),
        (Some(with(Phase::Completed, Some("g"), None, 1)), &plain, Fate::Done),
        (Some(gone.clone()), &plain, Fate::Fetch),
        (
            Some(JobRecord {
                generation_id: None,
                ..gone
            }),
            &plain,
            Fate::New,
        ),
        (
            Some(with(Phase::Failed, Some("g"), Some(Failure::Generation), 1)),
            &plain,
            Fate::Failed,
        ),
        (
            Some(with(Phase::Failed, Some("g"), Some(Failure::Generation), 1)),
            &retrying,
            Fate::Retry,
        ),
        (
            Some(with(Phase::Failed, Some("g"), Some(Failure::Generation), 2)),
            &retrying,
            Fate::Failed,
        ),
        (
            Some(with(Phase::Failed, None, Some(Failure::Rejected), 0)),
            &plain,
            Fate::New,
        ),
        (
            Some(with(Phase::Failed, Some("g"), Some(Failure::Download), 1)),
            &plain,
            Fate::Fetch,
        ),
        (
            Some(with(Phase::Failed, Some("g"), Some(Failure::Unfinished), 1)),
            &plain,
            Fate::Running,
        ),
    ] {
        assert_eq!(fate(dir.path(), record.as_ref(), options), expected, "{record:?}");
    }
}

#[test]
fn under_the_cap_everything_goes_and_over_it_the_run_refuses() {
    let (_dir, plan) = grid();
    let out = tempfile::tempdir().unwrap();
    let prices = Prices::default();
    let options = |cap: f64| Options {
        max_credits: Some(cap),
        ..Options::default()
    };
    let fits = sending(out.path(), &plan.jobs, &HashMap::new(), &prices, &options(12.0 * PRICE));
    assert!(fits.left.is_empty() && fits.check().is_ok());
    assert_eq!(fits.estimate(), 12.0 * PRICE);

    let over = sending(out.path(), &plan.jobs, &HashMap::new(), &prices, &options(5.0 * PRICE));
    assert_eq!(over.left.len(), 7);
    let refused = over.check().unwrap_err();
    assert_eq!(
        refused.to_string(),
        "the 12 jobs to submit are expected to cost 12,600,000 credits: that passes --max-credits 5,250,000 by \
         7,350,000; nothing was sent"
    );
    assert_eq!(refused.needed(), 12_600_000);
    assert!(
        refused.help().contains("`--max-credits 12600000`"),
        "{}",
        refused.help()
    );
    assert!(refused.help().contains("--within-cap spread"));
}

#[test]
fn jobs_already_paid_count_as_committed_and_are_not_estimated_again() {
    let (_dir, plan) = grid();
    let out = tempfile::tempdir().unwrap();
    // Four charged, two generating (not charged yet): six committed, six left to send.
    let mut records = HashMap::new();
    for (i, job) in plan.jobs[..4].iter().enumerate() {
        let mut r = record(&job.key, Phase::Completed);
        r.credits = Some(PRICE);
        r.file = format!("{i}.mp4");
        r.bytes = Some(3);
        std::fs::write(out.path().join(&r.file), b"mp4").unwrap();
        records.insert(job.key.clone(), r);
    }
    for job in &plan.jobs[4..6] {
        let mut r = record(&job.key, Phase::Generating);
        r.generation_id = Some("g".into());
        r.uncharged = 1;
        records.insert(job.key.clone(), r);
    }
    let options = Options {
        max_credits: Some(9.0 * PRICE),
        within_cap: Some(WithinCap::Order),
        ..Options::default()
    };
    let s = sending(out.path(), &plan.jobs, &records, &Prices::default(), &options);
    assert_eq!(s.committed, 6.0 * PRICE);
    assert_eq!(s.order, (6..12).collect::<Vec<_>>());
    assert_eq!(s.estimate(), 6.0 * PRICE);
    // Room for three more: in plan order, the last three are left.
    assert_eq!(s.left, [9, 10, 11]);
    assert!(s.check().is_ok(), "--within-cap decides");
    assert_eq!(
        s.within_cap_line().unwrap(),
        "--within-cap order: 3 of the 6 jobs to submit fit under --max-credits 9,450,000 (6,300,000 already \
         committed in the folder); 3 jobs not sent: they would pass --max-credits 9,450,000 (est. 3,150,000 more)"
    );
    assert_eq!(s.run_order(), None, "plan order is the run's order");
}

#[test]
fn spread_sends_an_even_part_of_the_grid() {
    let (_dir, plan) = grid();
    let out = tempfile::tempdir().unwrap();
    let options = Options {
        max_credits: Some(6.0 * PRICE),
        within_cap: Some(WithinCap::Spread),
        ..Options::default()
    };
    let s = sending(out.path(), &plan.jobs, &HashMap::new(), &Prices::default(), &options);
    let sent: Vec<usize> = (0..12).filter(|i| !s.is_left(*i)).collect();
    assert_eq!(sent.len(), 6);
    let mut per_template: HashMap<&str, usize> = HashMap::new();
    let mut per_input: HashMap<&str, usize> = HashMap::new();
    for &i in &sent {
        *per_template
            .entry(plan.jobs[i].template.as_deref().unwrap())
            .or_default() += 1;
        *per_input.entry(&plan.jobs[i].input_label).or_default() += 1;
    }
    let mut templates: Vec<usize> = per_template.values().copied().collect();
    templates.sort_unstable();
    assert_eq!(templates, [1, 1, 2, 2], "{per_template:?}");
    assert_eq!(
        per_input.values().copied().collect::<Vec<_>>(),
        [2, 2, 2],
        "{per_input:?}"
    );
    // In plan order the first products would have gone, through every template.
    let in_order = sending(
        out.path(),
        &plan.jobs,
        &HashMap::new(),
        &Prices::default(),
        &Options {
            within_cap: Some(WithinCap::Order),
            ..options.clone()
        },
    );
    assert_eq!(in_order.left, (6..12).collect::<Vec<_>>());
    // The run takes the jobs in the spread order, and puts them back after.
    let order = s.run_order().unwrap();
    let mut keys: Vec<JobKey> = plan.jobs.iter().map(|j| j.key.clone()).collect();
    let before = keys.clone();
    reorder(&mut keys, &order);
    assert_eq!(keys[0], before[order[0]]);
    restore(&mut keys, &order);
    assert_eq!(keys, before);
}

#[test]
fn narrowing_says_what_it_left_out_and_why() {
    let (_dir, mut plan) = grid();
    let left = narrow(
        &mut plan,
        &Options {
            sample: Some(3),
            ..Options::default()
        },
    );
    assert_eq!(plan.jobs.len(), 3);
    let templates: std::collections::HashSet<_> = plan.jobs.iter().map(|j| j.template.clone()).collect();
    assert_eq!(templates.len(), 3, "three templates, not one");
    assert_eq!(left.sentence().unwrap(), "9 jobs of the plan not run (--sample 3)");

    let (_dir, mut plan) = grid();
    let shard = Shard::parse("1/2").unwrap();
    let left = narrow(
        &mut plan,
        &Options {
            shard: Some(shard),
            limit: Some(2),
            ..Options::default()
        },
    );
    assert_eq!(plan.jobs.len(), 2);
    assert_eq!(
        left.sentence().unwrap(),
        "10 jobs of the plan not run (shard 1/2, --limit 2)"
    );
    // A limit or sample the plan does not reach leaves nothing out, and says nothing.
    let (_dir, mut plan) = grid();
    let left = narrow(
        &mut plan,
        &Options {
            sample: Some(50),
            ..Options::default()
        },
    );
    assert_eq!((plan.jobs.len(), left.sentence()), (12, None));
}

#[test]
fn the_jobs_the_cap_left_are_read_back_with_the_cap_that_sends_them() {
    let (_dir, plan) = grid();
    let mut records = HashMap::new();
    for (i, job) in plan.jobs.iter().enumerate() {
        let mut r = record(&job.key, if i < 8 { Phase::Completed } else { Phase::Queued });
        if i < 8 {
            r.credits = Some(PRICE);
        } else if i < 11 {
            r.error = Some("budget reached: submitting it (1,050,000 credits, documented price) would pass".into());
        }
        records.insert(job.key.clone(), r);
    }
    let left = cap_left(&plan.jobs, &records, &Prices::default(), Some(8.5 * PRICE)).unwrap();
    assert_eq!((left.jobs, left.estimate, left.needed), (3, 3.0 * PRICE, 11.0 * PRICE));
    assert_eq!(
        left.line(),
        "3 jobs not sent: they would pass --max-credits 8,925,000 (est. 3,150,000 more)"
    );
    assert_eq!(cap_left(&plan.jobs, &records, &Prices::default(), None), None);
}
