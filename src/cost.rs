//! What generations cost, before and during a run: prices known from the vendor's pages, charges
//! seen in earlier runs into the same folder, and the ledger that keeps `--max-credits`.
//!
//! Money rule: a job is counted against the cap from the moment its submit is recorded (before
//! the POST) at its expected price, and at its real charge once the service reports it. Submits
//! whose outcome is unknown stay counted. So paid submits never pass the cap, counting those in
//! flight, across every run into the same folder.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::plan::Job;
use crate::pricing::{PriceList, Quote};
use crate::state::{JobRecord, Phase};

/// Charges the vendor's pages show: 1,050,000 credits for every `magic/*` generation. PixVerse's
/// depend on its options (420,000 and 2,000,000 for the same documented request), so it has no
/// fixed price here.
pub fn catalog_price(model: &str) -> Option<f64> {
    model.starts_with("magic/").then_some(1_050_000.0)
}

/// The largest charge the vendor's pages show for one generation: what a model of unknown price
/// is counted at until a real charge is seen.
pub const HIGHEST_DOCUMENTED: f64 = 2_000_000.0;

/// Expected prices, per job.
#[derive(Debug, Clone, Default)]
pub struct Prices {
    /// The highest charge seen per model in this folder's earlier generations.
    observed: HashMap<String, f64>,
    /// The vendor's price list, when it could be read (now, or a kept copy).
    list: Option<Arc<PriceList>>,
}

/// An expected charge, and what it is based on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    pub credits: f64,
    pub basis: Basis,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Basis {
    /// Charged this much before, into the same folder.
    Observed,
    /// The vendor's documented price.
    Catalog,
    /// No price known: the highest charge seen anywhere, so a cap is never passed.
    Highest,
    /// The vendor's price list, for this job's own parameters.
    Listed,
    /// The price list says the model's price varies: counted at the highest charge seen.
    Variable,
}

impl Basis {
    pub fn as_str(self) -> &'static str {
        match self {
            Basis::Observed => "charged before",
            Basis::Catalog => "documented price",
            Basis::Highest => "no fixed price: counted at the highest charge seen",
            Basis::Listed => "price list",
            Basis::Variable => "variable price: counted at the highest charge seen",
        }
    }
}

impl Prices {
    pub fn new(observed: HashMap<String, f64>) -> Prices {
        Prices { observed, list: None }
    }

    /// With the vendor's price list: jobs it prices are quoted exactly.
    pub fn with_list(self, list: Option<Arc<PriceList>>) -> Prices {
        Prices { list, ..self }
    }

    /// What `job` is expected to cost: the price list's quote for its own parameters (its
    /// duration, its resolution, the model's defaults for those it leaves out) when the list
    /// prices it; else as [`Prices::estimate`] says for its model. A variable price is counted
    /// at the highest charge seen, so `--max-credits` is never passed on a guess.
    pub fn estimate_job(&self, job: &Job) -> Estimate {
        let quote = self.list.as_ref().map_or(Quote::Unlisted, |list| {
            list.quote(&job.model, crate::catalog::model(&job.model), job.params())
        });
        match quote {
            Quote::Exact(credits) => Estimate {
                credits,
                basis: Basis::Listed,
            },
            Quote::Variable => Estimate {
                credits: self.highest(),
                basis: Basis::Variable,
            },
            Quote::Unlisted => self.estimate(&job.model),
        }
    }

    /// The most one generation is expected to cost anywhere.
    pub fn highest(&self) -> f64 {
        self.observed.values().copied().fold(HIGHEST_DOCUMENTED, f64::max)
    }

    /// What a generation of `model` is expected to cost: the higher of its documented price and
    /// its charges seen before (a cap must not be passed because a price went up); for a model
    /// with no documented price, the highest charge seen for any model.
    pub fn estimate(&self, model: &str) -> Estimate {
        // By the price list: the most a job of the model can cost (a record's parameters are not
        // kept, and the cap must not count it below what its submit reserved).
        let listed = self
            .list
            .as_ref()
            .map_or(Quote::Unlisted, |l| l.most(model, crate::catalog::model(model)));
        let seen = self.observed.get(model).copied().unwrap_or(0.0);
        match listed {
            Quote::Exact(credits) => {
                return Estimate {
                    credits: credits.max(seen),
                    basis: Basis::Listed,
                };
            }
            Quote::Variable => {
                return Estimate {
                    credits: self.highest(),
                    basis: Basis::Variable,
                };
            }
            Quote::Unlisted => {}
        }
        match (self.observed.get(model).copied(), catalog_price(model)) {
            (Some(seen), Some(listed)) if seen > listed => Estimate {
                credits: seen,
                basis: Basis::Observed,
            },
            (_, Some(listed)) => Estimate {
                credits: listed,
                basis: Basis::Catalog,
            },
            // Not listed, and its charge varies with options (the vendor's pages show 420,000 and
            // 2,000,000 for one request): what this folder was charged is no bound, the highest
            // charge seen anywhere is.
            (_, None) => Estimate {
                credits: self.highest(),
                basis: Basis::Highest,
            },
        }
    }

    /// Credits committed by what a folder's state records: charges reported, plus the expected
    /// price of each generation whose charge is not known yet and of each submit whose outcome is
    /// unknown (it may have created a paid generation), the ones `--resubmit-unknown` sent again
    /// included.
    pub fn committed<'r>(&self, records: impl IntoIterator<Item = &'r JobRecord>) -> f64 {
        records
            .into_iter()
            .map(|r| {
                let unpriced = r.uncharged + u32::from(r.phase == Phase::Submitting) + r.unknown_submits;
                r.credits.unwrap_or(0.0) + unpriced as f64 * self.estimate(&r.model).credits
            })
            .sum()
    }
}

/// What one generation counts for against the cap.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Charge {
    /// Counted at its expected price; the service has not said.
    Expected(f64),
    /// The service reported this charge.
    Reported(f64),
    /// Counted already, from the state a resumed run started with: a later report of the same
    /// charge changes nothing.
    Counted,
}

impl Charge {
    pub fn amount(self) -> f64 {
        match self {
            Charge::Expected(c) | Charge::Reported(c) => c,
            Charge::Counted => 0.0,
        }
    }
}

/// Credits committed in a folder (every run), and the cap they must stay under. Clones share
/// one book: a [`Reservation`] gives its credits back to it when dropped.
#[derive(Debug, Clone)]
pub struct Ledger {
    pub cap: Option<f64>,
    book: Arc<Mutex<Book>>,
}

#[derive(Debug, Default)]
struct Book {
    /// Reported charges plus expected prices of generations not priced yet, and reservations.
    committed: f64,
    /// Charges the service reported during this run.
    reported_now: f64,
}

/// Credits held for a submit from the moment it is chosen until the service answers: dropped
/// (the submit was refused, withdrawn, or never sent), they go back to the ledger by
/// themselves; [`Reservation::keep`] turns them into the charge of a generation that may exist.
/// No path can forget to give them back, nor give them back twice.
#[derive(Debug)]
pub struct Reservation {
    book: Arc<Mutex<Book>>,
    credits: f64,
}

impl Reservation {
    pub fn credits(&self) -> f64 {
        self.credits
    }

    /// A generation was (or may have been) created: what was reserved stays counted, as its
    /// expected charge until the service reports one.
    pub fn keep(mut self) -> Charge {
        Charge::Expected(std::mem::take(&mut self.credits))
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if self.credits != 0.0 {
            lock(&self.book).committed -= self.credits;
        }
    }
}

fn lock(book: &Mutex<Book>) -> std::sync::MutexGuard<'_, Book> {
    // The book holds two numbers, each written in one statement: never half-updated.
    book.lock().unwrap_or_else(|e| e.into_inner())
}

impl Ledger {
    pub fn new(cap: Option<f64>, committed: f64) -> Ledger {
        Ledger {
            cap,
            book: Arc::new(Mutex::new(Book {
                committed,
                reported_now: 0.0,
            })),
        }
    }

    /// Credits committed in the folder, reservations included.
    pub fn committed(&self) -> f64 {
        lock(&self.book).committed
    }

    /// Charges the service reported during this run.
    pub fn reported_now(&self) -> f64 {
        lock(&self.book).reported_now
    }

    /// Whether a generation expected to cost `credits` may be submitted under the cap.
    pub fn allows(&self, credits: f64) -> bool {
        self.cap.is_none_or(|cap| self.committed() + credits <= cap + 1e-6)
    }

    /// Holds `credits` for a submit about to go out.
    pub fn reserve(&self, credits: f64) -> Reservation {
        lock(&self.book).committed += credits;
        Reservation {
            book: self.book.clone(),
            credits,
        }
    }

    /// The service reported what a generation costs: it replaces what was counted.
    pub fn reported(&self, charge: &mut Charge, credits: f64) {
        let before = match *charge {
            Charge::Counted => return,
            Charge::Reported(c) => c,
            Charge::Expected(_) => 0.0,
        };
        let mut book = lock(&self.book);
        book.committed += credits - charge.amount();
        book.reported_now += credits - before;
        *charge = Charge::Reported(credits);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimates_prefer_the_higher_of_listed_and_seen_and_fall_back_to_the_highest() {
        let prices = Prices::new(HashMap::from([
            ("magic/image-to-video".to_string(), 1_200_000.0),
            ("pixverse/v5/image-to-video".to_string(), 1_260_000.0),
        ]));
        assert_eq!(prices.estimate("magic/image-to-video").credits, 1_200_000.0);
        assert_eq!(prices.estimate("magic/text-to-video").credits, 1_050_000.0);
        assert_eq!(prices.estimate("magic/text-to-video").basis, Basis::Catalog);
        // Charged 1,260,000 once is no bound on the next charge: the highest seen anywhere is.
        assert_eq!(
            prices.estimate("pixverse/v5/image-to-video").credits,
            HIGHEST_DOCUMENTED
        );
        let seen_more = Prices::new(HashMap::from([("pixverse/v5/image-to-video".to_string(), 2_500_000.0)]));
        assert_eq!(seen_more.estimate("pixverse/v5/image-to-video").credits, 2_500_000.0);
        assert_eq!(seen_more.estimate("kling/v9").credits, 2_500_000.0);
        let fresh = Prices::default();
        assert_eq!(fresh.estimate("pixverse/v5/image-to-video").credits, HIGHEST_DOCUMENTED);
        assert_eq!(fresh.estimate("pixverse/v5/image-to-video").basis, Basis::Highest);
    }

    #[test]
    fn the_ledger_counts_a_submit_from_its_record_and_settles_on_the_reported_charge() {
        let ledger = Ledger::new(Some(3_000_000.0), 0.0);
        assert!(ledger.allows(2_000_000.0));
        let mut a = ledger.reserve(2_000_000.0).keep();
        // In flight at its expected price: a second one would pass the cap.
        assert!(!ledger.allows(2_000_000.0));
        ledger.reported(&mut a, 1_260_000.0);
        assert_eq!(ledger.committed(), 1_260_000.0);
        assert_eq!(ledger.reported_now(), 1_260_000.0);
        assert!(ledger.allows(1_260_000.0));
        let b = ledger.reserve(1_260_000.0);
        assert_eq!(ledger.committed(), 2_520_000.0);
        // Refused without creating anything: dropped, and so freed.
        drop(b);
        assert_eq!(ledger.committed(), 1_260_000.0);
        // A report repeated at completion changes nothing.
        ledger.reported(&mut a, 1_260_000.0);
        assert_eq!(ledger.committed(), 1_260_000.0);
        assert_eq!(ledger.reported_now(), 1_260_000.0);
    }

    #[test]
    fn a_reservation_kept_stays_counted_and_one_dropped_gives_back_exactly_once() {
        let ledger = Ledger::new(Some(2_000_000.0), 500_000.0);
        let kept = ledger.reserve(1_000_000.0);
        let dropped = ledger.reserve(500_000.0);
        assert!(!ledger.allows(1.0));
        assert_eq!(kept.keep(), Charge::Expected(1_000_000.0));
        drop(dropped);
        assert_eq!(ledger.committed(), 1_500_000.0);
        // A clone shares the book: what one reserves, the other sees.
        let other = ledger.clone();
        let held = other.reserve(500_000.0);
        assert!(!ledger.allows(1.0));
        drop(held);
        assert!(ledger.allows(500_000.0));
    }

    #[test]
    fn unknown_submits_sent_again_keep_counting() {
        use crate::plan::JobKey;
        let record = |phase, unknown_submits| JobRecord {
            unknown_submits,
            ..JobRecord::blank(JobKey("k".into()), phase)
        };
        let prices = Prices::default();
        // Unknown now; sent again and unknown again (one earlier unknown); queued again after one.
        let records = [
            record(Phase::Submitting, 0),
            record(Phase::Submitting, 1),
            record(Phase::Queued, 1),
        ];
        assert_eq!(prices.committed(&records), 4.0 * 1_050_000.0);
    }
}
