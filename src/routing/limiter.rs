//! Per-provider request budgets: one token bucket per configured provider (DESIGN.md §5).
//!
//! Owns: how many requests a provider may receive and when the next one may go. A bucket holds
//! `per_window` tokens and refills continuously (one token every `window / per_window`). Above
//! 90 % use the bucket stops bursting: each further request waits for its own share of the refill
//! (one every `window / per_window`), so the last tokens are spread over time instead of spent at
//! once. Vendor rate-limit hints only ever tighten the local view.
//!
//! The bucket is exact integer arithmetic on instants (the GCRA formulation of a token bucket): the
//! state is the *theoretical arrival time* at which every token handed out so far will have been
//! refilled. A request reserves its slot under a short `std::sync::Mutex` critical section (no
//! `.await` inside), then sleeps with no lock held. Slots are handed out in reservation order, so
//! waiters are served first come, first served.
//!
//! Must never: hold a lock across `.await`, hand out more than `per_window + elapsed / interval`
//! slots over any span of time, or loosen the budget beyond the configured rate because a vendor
//! said so.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::providers::RateLimitHint;

/// Above this share of the budget used (in tenths), requests are paced rather than burst.
const PACING_THRESHOLD_TENTHS: u128 = 9;

/// The longest hold a vendor hint can impose (a daily quota's reset fits; an absurd value cannot
/// overflow an instant).
const FAR_FUTURE: Duration = Duration::from_secs(365 * 24 * 3600);

/// A request budget: `per_window` requests per `window`. Both are at least 1 (a zero rate would
/// block a provider forever, which no setting should be able to do).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    per_window: u32,
    window: Duration,
}

impl Rate {
    /// `per_window` requests per `window`; 0 is raised to 1 and a zero window to 1 ms.
    pub fn new(per_window: u32, window: Duration) -> Self {
        Rate {
            per_window: per_window.max(1),
            window: window.max(Duration::from_millis(1)),
        }
    }

    /// `per_minute` requests per minute (the unit of the `rateLimits` setting).
    pub fn per_minute(per_minute: u32) -> Self {
        Rate::new(per_minute, Duration::from_secs(60))
    }

    pub fn per_window(self) -> u32 {
        self.per_window
    }

    pub fn window(self) -> Duration {
        self.window
    }

    /// Time to refill one token. Rounded down, so over a window the bucket may be a few
    /// nanoseconds generous — never a whole request.
    fn interval(self) -> Duration {
        (self.window / self.per_window).max(Duration::from_nanos(1))
    }

    /// The same window with a smaller budget.
    fn tightened_to(self, per_window: u32) -> Rate {
        Rate::new(self.per_window.min(per_window), self.window)
    }
}

/// Why a request did not get a slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AcquireError {
    #[error("cancelled while waiting for a rate-limit slot")]
    Cancelled,
    /// The next slot is further away than the caller can wait; nothing was reserved.
    #[error("the next rate-limit slot is {} ms away", wait.as_millis())]
    TooLong { wait: Duration },
}

/// A point-in-time view of a bucket, for status reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BucketSnapshot {
    /// The configured budget per window (before vendor tightening).
    pub per_window: u32,
    /// Requests that could go right now without waiting.
    pub remaining: u32,
    /// The vendor asked us to hold off (429 `Retry-After` or an exhausted window) until later.
    pub held: bool,
}

#[derive(Debug, Clone, Copy)]
struct BucketState {
    /// The configured rate.
    rate: Rate,
    /// The vendor's own limit when it told us one lower than ours.
    vendor_limit: Option<u32>,
    /// When all tokens handed out so far will have been refilled (GCRA's theoretical arrival time).
    tat: Instant,
    /// The slot of the most recent reservation; later reservations never go before it (FIFO).
    last_grant: Option<Instant>,
    /// No slot before this instant (the vendor asked us to wait).
    hold_until: Option<Instant>,
    /// Identifies the state after each mutation, so that a cancelled reservation can be rolled
    /// back exactly when nothing happened after it.
    version: u64,
}

impl BucketState {
    fn effective_rate(&self) -> Rate {
        match self.vendor_limit {
            Some(limit) => self.rate.tightened_to(limit),
            None => self.rate,
        }
    }
}

/// The state before a reservation, kept so that a cancelled waiter can give its slot back.
#[derive(Debug, Clone, Copy)]
struct Undo {
    before: BucketState,
    /// The version the reservation produced; the undo applies only if it is still current.
    after_version: u64,
}

/// A slot held for a request, due at `at`.
#[derive(Debug, Clone, Copy)]
struct Slot {
    at: Instant,
    undo: Undo,
}

/// The token bucket of one provider.
#[derive(Debug)]
pub struct TokenBucket {
    state: Mutex<BucketState>,
}

impl TokenBucket {
    pub fn new(rate: Rate) -> Self {
        TokenBucket {
            state: Mutex::new(BucketState {
                rate,
                vendor_limit: None,
                tat: Instant::now(),
                last_grant: None,
                hold_until: None,
                version: 0,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, BucketState> {
        // The critical sections below only do arithmetic; a poisoned lock still holds a
        // consistent state.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits for a slot, at most `max_wait`, and returns how long it waited.
    ///
    /// Returns at once with [`AcquireError::TooLong`] (reserving nothing) when the next slot is
    /// further away than `max_wait`, and with [`AcquireError::Cancelled`] as soon as `cancel`
    /// fires. A waiter that is cancelled or dropped before its slot gives the slot back when no
    /// later reservation depends on it; otherwise the later waiters keep their places.
    pub async fn acquire(
        &self,
        cancel: &CancellationToken,
        max_wait: Duration,
    ) -> Result<Duration, AcquireError> {
        if cancel.is_cancelled() {
            return Err(AcquireError::Cancelled);
        }
        self.reserve(max_wait)?.wait(cancel).await
    }

    /// Reserves the next slot without waiting for it yet, so the caller can see the delay (and
    /// tell the author) first. Fails with [`AcquireError::TooLong`], reserving nothing, when the
    /// slot is more than `max_wait` away.
    pub fn reserve(&self, max_wait: Duration) -> Result<Reservation<'_>, AcquireError> {
        let now = Instant::now();
        let slot = self.reserve_at(now, max_wait)?;
        Ok(Reservation {
            bucket: self,
            at: slot.at,
            delay: slot.at.saturating_duration_since(now),
            undo: Some(slot.undo),
        })
    }

    /// Takes a slot now if one is free without waiting.
    pub fn try_acquire(&self) -> bool {
        self.reserve_at(Instant::now(), Duration::ZERO).is_ok()
    }

    /// Reserves the next slot at or after `now`, unless it is more than `max_wait` away.
    fn reserve_at(&self, now: Instant, max_wait: Duration) -> Result<Slot, AcquireError> {
        let mut state = self.lock();
        let rate = state.effective_rate();
        let interval = rate.interval();
        // A full bucket lets `per_window` requests through at once: the burst tolerance of GCRA.
        let burst = interval * (rate.per_window - 1);

        let mut at = now;
        if let Some(hold) = state.hold_until {
            at = at.max(hold);
        }
        if let Some(last) = state.last_grant {
            at = at.max(last);
        }
        at = at.max(state.tat.checked_sub(burst).unwrap_or(at));
        if is_paced(rate, state.tat, at)
            && let Some(last) = state.last_grant
        {
            at = at.max(last + interval);
        }

        let wait = at.saturating_duration_since(now);
        if wait > max_wait {
            return Err(AcquireError::TooLong { wait });
        }
        let before = *state;
        state.tat = state.tat.max(at) + interval;
        state.last_grant = Some(at);
        state.version = next_version();
        Ok(Slot {
            at,
            undo: Undo {
                before,
                after_version: state.version,
            },
        })
    }

    fn give_back(&self, undo: Undo) {
        let mut state = self.lock();
        if state.version == undo.after_version {
            *state = undo.before;
        }
    }

    /// Tokens available right now without waiting.
    pub fn remaining(&self) -> u32 {
        remaining_at(&self.lock(), Instant::now())
    }

    pub fn snapshot(&self) -> BucketSnapshot {
        let state = self.lock();
        let now = Instant::now();
        BucketSnapshot {
            per_window: state.rate.per_window,
            remaining: remaining_at(&state, now),
            held: state.hold_until.is_some_and(|h| h > now),
        }
    }

    pub fn rate(&self) -> Rate {
        self.lock().rate
    }

    /// Changes the configured budget (the `rateLimits` setting). Tokens already handed out stay
    /// handed out.
    pub fn set_rate(&self, rate: Rate) {
        let mut state = self.lock();
        if state.rate != rate {
            state.rate = rate;
            state.version = next_version();
        }
    }

    /// Applies a vendor's rate-limit headers: fewer requests left, a smaller limit, or an
    /// exhausted window tighten the local view; nothing a vendor says loosens it beyond the
    /// configured rate.
    pub fn observe_hint(&self, hint: &RateLimitHint) {
        let now = Instant::now();
        let mut state = self.lock();
        let before = *state;
        if let Some(limit) = hint.limit {
            // Only a limit below ours matters; a later, higher one lifts an earlier tightening
            // back up to (never beyond) the configured rate.
            state.vendor_limit = (limit < state.rate.per_window).then_some(limit.max(1));
        }
        if let Some(left) = hint.remaining {
            let rate = state.effective_rate();
            if left < rate.per_window {
                // `left` tokens at `now` means all but `left` are still being refilled.
                let spent = rate.per_window - left;
                state.tat = state.tat.max(now + rate.interval() * spent);
            }
            if left == 0
                && let Some(reset) = hint.reset_after
            {
                hold(&mut state, now, reset);
            }
        }
        if state.tat != before.tat
            || state.vendor_limit != before.vendor_limit
            || state.hold_until != before.hold_until
        {
            state.version = next_version();
        }
    }

    /// The vendor answered 429: no request before `retry_after` has passed, and then only one
    /// before the bucket refills at its own pace.
    pub fn observe_rate_limited(&self, retry_after: Option<Duration>) {
        let now = Instant::now();
        let mut state = self.lock();
        let until = hold(&mut state, now, retry_after.unwrap_or(Duration::ZERO));
        let rate = state.effective_rate();
        // One token at the end of the hold: TAT = until + burst tolerance.
        let burst = rate.interval() * (rate.per_window - 1);
        state.tat = state.tat.max(until + burst);
        state.version = next_version();
    }
}

/// Sets the hold to at least `now + wait` and returns it.
fn hold(state: &mut BucketState, now: Instant, wait: Duration) -> Instant {
    let until = now + wait.min(FAR_FUTURE);
    let until = state.hold_until.map_or(until, |h| h.max(until));
    state.hold_until = Some(until);
    until
}

/// A version never used before, so that an undo can only match the state it was taken from.
fn next_version() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(1);
    COUNTER.fetch_add(1, Ordering::Relaxed)
}

/// Whether a request granted at `at` would leave less than 10 % of the budget.
fn is_paced(rate: Rate, tat: Instant, at: Instant) -> bool {
    let interval = rate.interval();
    let tat_after = tat.max(at) + interval;
    let outstanding = tat_after.saturating_duration_since(at).as_nanos();
    let capacity = interval.as_nanos() * u128::from(rate.per_window);
    outstanding * 10 > capacity * PACING_THRESHOLD_TENTHS
}

fn remaining_at(state: &BucketState, now: Instant) -> u32 {
    if state.hold_until.is_some_and(|h| h > now) {
        return 0;
    }
    let rate = state.effective_rate();
    let outstanding = state.tat.saturating_duration_since(now).as_nanos();
    let in_use = outstanding.div_ceil(rate.interval().as_nanos());
    let in_use = u32::try_from(in_use).unwrap_or(u32::MAX);
    rate.per_window.saturating_sub(in_use)
}

/// A slot held for one request. Dropping it before its time (a cancelled or superseded request)
/// gives the slot back when no later reservation depends on it.
#[derive(Debug)]
#[must_use = "a reservation is given back when dropped"]
pub struct Reservation<'a> {
    bucket: &'a TokenBucket,
    at: Instant,
    delay: Duration,
    undo: Option<Undo>,
}

impl Reservation<'_> {
    /// How long after the reservation the slot comes.
    pub fn delay(&self) -> Duration {
        self.delay
    }

    /// Sleeps until the slot (no lock held) and returns the delay, or returns at once with
    /// [`AcquireError::Cancelled`] when `cancel` fires first.
    pub async fn wait(mut self, cancel: &CancellationToken) -> Result<Duration, AcquireError> {
        if self.delay.is_zero() {
            self.undo = None;
            return Ok(self.delay);
        }
        tokio::select! {
            biased;
            _ = cancel.cancelled() => Err(AcquireError::Cancelled),
            _ = tokio::time::sleep_until(self.at) => {
                self.undo = None;
                Ok(self.delay)
            }
        }
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if let Some(undo) = self.undo.take() {
            self.bucket.give_back(undo);
        }
    }
}

/// The buckets of all configured providers, keyed by provider id.
#[derive(Debug, Default)]
pub struct Limiter {
    buckets: Mutex<HashMap<i64, Arc<TokenBucket>>>,
}

impl Limiter {
    pub fn new() -> Self {
        Limiter::default()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<i64, Arc<TokenBucket>>> {
        self.buckets.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The bucket of provider `id`, created with `rate` if new; an existing bucket keeps its state
    /// and takes the new rate.
    pub fn bucket(&self, id: i64, rate: Rate) -> Arc<TokenBucket> {
        let mut buckets = self.lock();
        let bucket = buckets
            .entry(id)
            .or_insert_with(|| Arc::new(TokenBucket::new(rate)));
        bucket.set_rate(rate);
        Arc::clone(bucket)
    }

    pub fn get(&self, id: i64) -> Option<Arc<TokenBucket>> {
        self.lock().get(&id).cloned()
    }

    /// Forgets the buckets of providers that are no longer configured.
    pub fn retain(&self, ids: &[i64]) {
        self.lock().retain(|id, _| ids.contains(id));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    /// Reserves `n` slots at `now` and returns their offsets from `now`.
    fn reserve_n(bucket: &TokenBucket, n: usize) -> Vec<Duration> {
        let now = Instant::now();
        (0..n)
            .map(|_| {
                let slot = bucket.reserve_at(now, Duration::MAX).unwrap();
                slot.at - now
            })
            .collect()
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_bucket_bursts_to_ninety_percent_then_paces_at_the_refill_rate() {
        let bucket = TokenBucket::new(Rate::per_minute(10));
        let slots = reserve_n(&bucket, 12);
        // 9 of 10 at once; the 10th and later one per refill interval (6 s).
        assert_eq!(&slots[..9], &[Duration::ZERO; 9]);
        assert_eq!(slots[9], secs(6.0));
        assert_eq!(slots[10], secs(12.0));
        assert_eq!(slots[11], secs(18.0));
    }

    #[tokio::test(start_paused = true)]
    async fn pacing_spreads_the_last_tenth_of_a_large_bucket() {
        let bucket = TokenBucket::new(Rate::per_minute(50));
        let slots = reserve_n(&bucket, 48);
        assert!(slots[..45].iter().all(|s| s.is_zero()));
        assert_eq!(slots[45], secs(1.2));
        assert_eq!(slots[46], secs(2.4));
        assert_eq!(slots[47], secs(3.6));
    }

    #[tokio::test(start_paused = true)]
    async fn slots_never_exceed_the_bucket_over_any_span() {
        // Property of a token bucket: any k consecutive slots span at least (k - N) intervals.
        for per_minute in [1u32, 2, 7, 10, 50] {
            let bucket = TokenBucket::new(Rate::per_minute(per_minute));
            let interval = Rate::per_minute(per_minute).interval();
            let slots = reserve_n(&bucket, 3 * per_minute as usize + 5);
            for i in 0..slots.len() {
                for j in i..slots.len() {
                    let count = (j - i + 1) as u32;
                    let span = slots[j] - slots[i];
                    let allowed = per_minute + (span.as_nanos() / interval.as_nanos()) as u32;
                    assert!(
                        count <= allowed,
                        "{per_minute}/min: {count} slots within {span:?}"
                    );
                }
            }
            assert!(slots.windows(2).all(|w| w[0] <= w[1]), "slots out of order");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn remaining_counts_down_and_refills() {
        let bucket = TokenBucket::new(Rate::per_minute(10));
        assert_eq!(bucket.remaining(), 10);
        reserve_n(&bucket, 4);
        assert_eq!(bucket.remaining(), 6);
        tokio::time::advance(secs(12.0)).await;
        assert_eq!(bucket.remaining(), 8);
        tokio::time::advance(secs(600.0)).await;
        assert_eq!(bucket.remaining(), 10);
    }

    #[tokio::test(start_paused = true)]
    async fn a_wait_beyond_the_allowed_time_reserves_nothing() {
        let bucket = TokenBucket::new(Rate::per_minute(1));
        let cancel = CancellationToken::new();
        assert_eq!(
            bucket.acquire(&cancel, Duration::ZERO).await,
            Ok(Duration::ZERO)
        );
        let refused = bucket.acquire(&cancel, secs(10.0)).await;
        assert_eq!(refused, Err(AcquireError::TooLong { wait: secs(60.0) }));
        // Nothing was taken: the next slot is still one minute after the first.
        let slot = bucket.reserve_at(Instant::now(), Duration::MAX).unwrap();
        assert_eq!(slot.at - Instant::now(), secs(60.0));
    }

    #[tokio::test(start_paused = true)]
    async fn a_cancelled_newest_waiter_gives_its_slot_back() {
        let bucket = Arc::new(TokenBucket::new(Rate::per_minute(1)));
        assert!(bucket.try_acquire());
        let cancel = CancellationToken::new();
        let waiter = {
            let (bucket, cancel) = (Arc::clone(&bucket), cancel.clone());
            tokio::spawn(async move { bucket.acquire(&cancel, Duration::MAX).await })
        };
        tokio::time::sleep(secs(1.0)).await;
        let cancelled_at = Instant::now();
        cancel.cancel();
        assert_eq!(waiter.await.unwrap(), Err(AcquireError::Cancelled));
        assert_eq!(Instant::now(), cancelled_at, "cancellation returns at once");
        // The slot at 60 s is free again for the next caller.
        let slot = bucket.reserve_at(Instant::now(), Duration::MAX).unwrap();
        assert_eq!(slot.at - cancelled_at, secs(59.0));
    }

    #[tokio::test(start_paused = true)]
    async fn a_cancelled_earlier_waiter_does_not_move_later_ones() {
        let bucket = TokenBucket::new(Rate::per_minute(1));
        let now = Instant::now();
        let _first = bucket.reserve_at(now, Duration::MAX).unwrap();
        let second = bucket.reserve_at(now, Duration::MAX).unwrap();
        let third = bucket.reserve_at(now, Duration::MAX).unwrap();
        bucket.give_back(second.undo);
        // The second's slot is forfeited rather than handed to a newcomer beside the third.
        let fourth = bucket.reserve_at(now, Duration::MAX).unwrap();
        assert_eq!(third.at - now, secs(120.0));
        assert_eq!(fourth.at - now, secs(180.0));
    }

    #[tokio::test(start_paused = true)]
    async fn vendor_hints_tighten_but_never_loosen() {
        // (local per minute, tokens used, hint, remaining after)
        let cases = [
            (10, 0, (Some(3), None, None), 3),
            (10, 0, (Some(50), None, None), 10),
            (10, 8, (Some(5), None, None), 2),
            (10, 0, (Some(0), None, Some(30.0)), 0),
            (10, 0, (None, Some(4), None), 4),
            (10, 0, (None, Some(500), None), 10),
        ];
        for (per_minute, used, (remaining, limit, reset), expected) in cases {
            let bucket = TokenBucket::new(Rate::per_minute(per_minute));
            reserve_n(&bucket, used);
            bucket.observe_hint(&RateLimitHint {
                remaining,
                limit,
                reset_after: reset.map(secs),
            });
            assert_eq!(
                bucket.remaining(),
                expected,
                "{per_minute}/min, {used} used, hint {remaining:?}/{limit:?}/{reset:?}"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn nothing_left_without_a_reset_time_waits_one_refill() {
        let bucket = TokenBucket::new(Rate::per_minute(10));
        bucket.observe_hint(&RateLimitHint {
            remaining: Some(0),
            limit: None,
            reset_after: None,
        });
        let now = Instant::now();
        let slot = bucket.reserve_at(now, Duration::MAX).unwrap();
        assert_eq!(slot.at - now, secs(6.0));
    }

    #[tokio::test(start_paused = true)]
    async fn an_exhausted_vendor_window_holds_requests_until_it_resets() {
        let bucket = TokenBucket::new(Rate::per_minute(60));
        bucket.observe_hint(&RateLimitHint {
            remaining: Some(0),
            limit: Some(60),
            reset_after: Some(secs(30.0)),
        });
        let slot = bucket.reserve_at(Instant::now(), Duration::MAX).unwrap();
        assert!(slot.at - Instant::now() >= secs(30.0));
        assert!(bucket.snapshot().held);
    }

    #[tokio::test(start_paused = true)]
    async fn a_vendor_429_holds_for_retry_after_then_lets_one_through() {
        let bucket = TokenBucket::new(Rate::per_minute(60));
        bucket.observe_rate_limited(Some(secs(2.0)));
        let now = Instant::now();
        let first = bucket.reserve_at(now, Duration::MAX).unwrap();
        let second = bucket.reserve_at(now, Duration::MAX).unwrap();
        assert_eq!(first.at - now, secs(2.0));
        assert_eq!(second.at - now, secs(3.0));
    }

    #[tokio::test(start_paused = true)]
    async fn a_lower_rate_setting_applies_to_the_next_reservation() {
        let limiter = Limiter::new();
        let bucket = limiter.bucket(7, Rate::per_minute(60));
        assert_eq!(bucket.remaining(), 60);
        limiter.bucket(7, Rate::per_minute(5));
        assert_eq!(bucket.remaining(), 5);
        assert_eq!(bucket.rate().per_window(), 5);
        limiter.retain(&[]);
        assert!(limiter.get(7).is_none());
    }
}
