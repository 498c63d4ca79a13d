//! Whether acceptance rates mean anything yet: a rate from a handful of uses, or a difference
//! between two A/B versions that chance explains, is marked as not yet meaningful.
//!
//! The rule: every version compared needs [`MIN_USES_PER_VERSION`] uses, and then the best two
//! versions' rates must differ by a two-proportion z-test at 95% (|z| ≥ 1.96). Partial accepts
//! enter as their share (the accepted weight), which the test treats as a count of successes: an
//! approximation that errs on the side of "not yet" no more than it errs the other way.

use crate::messages::prompt_stats as texts;

/// Uses each version needs before its rate, or a difference, is meaningful.
pub const MIN_USES_PER_VERSION: u64 = 30;

/// |z| of a two-sided test at 95%.
const Z_95: f64 = 1.96;

/// One version's counts, as the comparison reads them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    pub uses: u64,
    /// Accepted shares summed (1 per whole accept).
    pub accepted: f64,
}

impl Sample {
    fn rate(self) -> f64 {
        if self.uses == 0 {
            0.0
        } else {
            (self.accepted / self.uses as f64).clamp(0.0, 1.0)
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub meaningful: bool,
    pub note: String,
}

/// The two-proportion z statistic of `a` against `b` (0 when it is undefined).
pub fn z_score(a: Sample, b: Sample) -> f64 {
    if a.uses == 0 || b.uses == 0 {
        return 0.0;
    }
    let (na, nb) = (a.uses as f64, b.uses as f64);
    let pooled = ((a.accepted + b.accepted) / (na + nb)).clamp(0.0, 1.0);
    let se = (pooled * (1.0 - pooled) * (1.0 / na + 1.0 / nb)).sqrt();
    if se <= 0.0 || !se.is_finite() {
        return 0.0;
    }
    (a.rate() - b.rate()) / se
}

/// The verdict on the versions of one template (those in its A/B pool).
pub fn judge(versions: &[Sample]) -> Verdict {
    let too_few = || Verdict {
        meaningful: false,
        note: texts::too_few_uses(MIN_USES_PER_VERSION),
    };
    if versions.is_empty() || versions.iter().any(|v| v.uses < MIN_USES_PER_VERSION) {
        return too_few();
    }
    if versions.len() == 1 {
        return Verdict {
            meaningful: true,
            note: texts::ENOUGH_USES.to_string(),
        };
    }
    let mut by_rate: Vec<Sample> = versions.to_vec();
    by_rate.sort_by(|a, b| b.rate().total_cmp(&a.rate()));
    let significant = z_score(by_rate[0], by_rate[1]).abs() >= Z_95;
    Verdict {
        meaningful: significant,
        note: if significant {
            texts::VERSIONS_DIFFER
        } else {
            texts::NO_DIFFERENCE_YET
        }
        .to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(uses: u64, accepted: f64) -> Sample {
        Sample { uses, accepted }
    }

    #[test]
    fn differences_are_meaningful_only_with_enough_uses_and_a_real_gap() {
        let cases: &[(&[Sample], bool)] = &[
            (&[], false),
            (&[s(5, 4.0)], false),
            (&[s(30, 12.0)], true),
            // 80% vs 20% over 10 uses each: a gap, but too few uses.
            (&[s(10, 8.0), s(10, 2.0)], false),
            // 50% vs 45% over 100 each: chance explains it (z ≈ 0.71).
            (&[s(100, 50.0), s(100, 45.0)], false),
            // 60% vs 40% over 100 each: z ≈ 2.83.
            (&[s(100, 60.0), s(100, 40.0)], true),
            // The best two decide, whatever the order.
            (&[s(40, 4.0), s(100, 40.0), s(100, 60.0)], true),
            // One version still short of uses keeps the whole comparison "not yet".
            (&[s(100, 60.0), s(100, 40.0), s(29, 0.0)], false),
            // Every use accepted on both sides: no variance, no difference.
            (&[s(30, 30.0), s(30, 30.0)], false),
        ];
        for (versions, expected) in cases {
            assert_eq!(judge(versions).meaningful, *expected, "{versions:?}");
        }
    }

    #[test]
    fn the_z_score_matches_the_textbook_value() {
        let z = z_score(s(100, 60.0), s(100, 40.0));
        assert!((z - 2.8284).abs() < 1e-3, "{z}");
        assert_eq!(z_score(s(0, 0.0), s(10, 5.0)), 0.0);
    }
}
