//! Who gets the next API request, and how many generations may be in flight: pure decisions,
//! tested without a clock or a server. The coordinator owns the one rate limiter's turns and asks
//! here what to spend each on.

/// What one turn of the rate limiter is spent on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    Submit,
    Poll,
    /// Nothing wants a request now: the turn goes unused (a request not made).
    Keep,
}

/// Chooses what the next request is for. `slots_free`: a new generation may start now.
/// `retry_ready`: a submit that already holds a slot is ready to be sent again. `poll_due`: a
/// poll's time has come (polls are timed to when a generation has probably finished).
///
/// When every slot is full, a poll goes first: it is what frees a slot. When slots are free, a
/// submit goes first: a poll can wait the moment a request takes, an idle slot is lost time.
pub fn choose(slots_free: bool, retry_ready: bool, poll_due: bool) -> Next {
    if slots_free {
        Next::Submit
    } else if poll_due {
        Next::Poll
    } else if retry_ready {
        Next::Submit
    } else {
        Next::Keep
    }
}

/// The most generations in flight at once: `--concurrency`, lowered when the service says the
/// account has too many active generations, raised again slowly while it does not (additive
/// increase, multiplicative decrease).
#[derive(Debug, Clone)]
pub struct Ceiling {
    /// `--concurrency`: never more.
    max: usize,
    limit: f64,
    /// Refusals seen: the limit found is reported when there were any.
    refusals: u32,
}

impl Ceiling {
    pub fn new(max: usize) -> Ceiling {
        Ceiling {
            max: max.max(1),
            limit: max.max(1) as f64,
            refusals: 0,
        }
    }

    pub fn limit(&self) -> usize {
        (self.limit.floor() as usize).clamp(1, self.max)
    }

    /// The service refused a submit for too many active generations while `in_flight` were
    /// (by our count, which includes some already finished but not yet seen so): the account's
    /// limit is a little under that.
    pub fn refused(&mut self, in_flight: usize) {
        self.refusals += 1;
        let below = in_flight.saturating_sub(1).min(self.limit()) as f64 * 0.9;
        self.limit = below.max(1.0);
    }

    /// A generation finished: after a refusal, the limit creeps back up by one for every
    /// `limit` generations that finish without another.
    pub fn finished(&mut self) {
        if self.refusals > 0 {
            self.limit = (self.limit + 1.0 / self.limit).min(self.max as f64);
        }
    }

    /// The limit found, when the service ever refused.
    pub fn found(&self) -> Option<usize> {
        (self.refusals > 0).then(|| self.limit())
    }

    pub fn refusals(&self) -> u32 {
        self.refusals
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_slots_poll_first_free_slots_submit_first() {
        // All slots taken: only a poll can free one.
        assert_eq!(choose(false, false, true), Next::Poll);
        // A submit holding its slot (a retry) still waits behind a due poll when slots are full.
        assert_eq!(choose(false, true, true), Next::Poll);
        assert_eq!(choose(false, true, false), Next::Submit);
        // A free slot: submit first.
        assert_eq!(choose(true, false, true), Next::Submit);
        assert_eq!(choose(true, true, false), Next::Submit);
        assert_eq!(choose(false, false, false), Next::Keep);
    }

    #[test]
    fn refusals_lower_the_ceiling_and_completions_raise_it_back_slowly() {
        let mut c = Ceiling::new(100);
        assert_eq!(c.limit(), 100);
        assert_eq!(c.found(), None);
        c.finished();
        assert_eq!(c.limit(), 100, "no refusal, nothing to recover");
        // The account allows 40: refused with 41 in flight.
        c.refused(41);
        assert_eq!(c.limit(), 36);
        for _ in 0..36 {
            c.finished();
        }
        assert_eq!(c.limit(), 36, "a little under one more after `limit` completions");
        for _ in 0..2 {
            c.finished();
        }
        assert_eq!(c.limit(), 37);
        // Refused again at 41: down again, never below one.
        c.refused(41);
        assert_eq!(c.limit(), 33);
        c.refused(1);
        assert_eq!(c.limit(), 1);
        assert_eq!(c.found(), Some(1));
        assert_eq!(c.refusals(), 3);
        // Never above --concurrency.
        let mut c = Ceiling::new(2);
        c.refused(3);
        for _ in 0..100 {
            c.finished();
        }
        assert_eq!(c.limit(), 2);
    }
}
