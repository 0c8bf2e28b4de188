//! Value parsers of the command-line options: every option that sizes work or memory is read
//! through one of these, so that a value out of range is a usage error (exit status 2) naming
//! the option before any work starts. `docs/limits.md` lists the bounds.

use crate::search::rewrite;

/// Most worker threads a command accepts (`--threads`, `-j`).
pub(crate) const MAX_THREADS: usize = 256;

/// Deepest nesting, in mutations per example, of the mutation options (`--max-k`, `--mutations`,
/// `--n-dist`).
pub(crate) const MAX_MUTATIONS: usize = 16;

/// Parses an integer in `low..=high`, with a readable message.
pub(crate) fn bounded(text: &str, low: usize, high: usize) -> Result<usize, String> {
    let value: usize = text
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a whole number of at least 0"))?;
    if (low..=high).contains(&value) {
        Ok(value)
    } else if high == usize::MAX {
        Err(format!(
            "{value} is out of range: it must be at least {low}"
        ))
    } else {
        Err(format!(
            "{value} is out of range: it must be between {low} and {high}"
        ))
    }
}

/// Worker threads: 1 to [`MAX_THREADS`].
pub(crate) fn thread_count(text: &str) -> Result<usize, String> {
    bounded(text, 1, MAX_THREADS)
}

/// A count of at least 1.
pub(crate) fn positive_count(text: &str) -> Result<usize, String> {
    bounded(text, 1, usize::MAX)
}

/// A number of steps of at least 1.
pub(crate) fn positive_steps(text: &str) -> Result<u64, String> {
    positive_count(text).map(|n| n as u64)
}

/// Mutations per example: 1 to [`MAX_MUTATIONS`].
pub(crate) fn mutation_count(text: &str) -> Result<usize, String> {
    bounded(text, 1, MAX_MUTATIONS)
}

/// The step limit of the traces given to the debugger: 1 to 10,000.
pub(crate) fn trace_step_limit(text: &str) -> Result<u32, String> {
    bounded(text, 1, 10_000).map(|n| n as u32)
}

/// The rewrite stage's radius: 1 to [`rewrite::MAX_RADIUS`].
pub(crate) fn rewrite_radius(text: &str) -> Result<usize, String> {
    bounded(text, 1, rewrite::MAX_RADIUS)
}

/// The simplification's radius: 0 (off) to [`rewrite::MAX_RADIUS`].
pub(crate) fn simplify_radius(text: &str) -> Result<usize, String> {
    bounded(text, 0, rewrite::MAX_RADIUS)
}

/// Programs the rewrite stage may execute: 1 to [`rewrite::MAX_BUDGET`].
pub(crate) fn rewrite_budget(text: &str) -> Result<usize, String> {
    bounded(text, 1, rewrite::MAX_BUDGET)
}

/// A beam width or a network batch of inference: 1 to 1,024.
pub(crate) fn width(text: &str) -> Result<usize, String> {
    bounded(text, 1, 1024)
}

/// A length in tokens or edit ops: 1 to 1,000.
pub(crate) fn length_limit(text: &str) -> Result<usize, String> {
    bounded(text, 1, 1000)
}

/// A positive finite number.
pub(crate) fn positive_number(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(value) if value.is_finite() && value > 0.0 => Ok(value),
        Ok(value) => Err(format!("{value} is not a positive finite number")),
        Err(_) => Err(format!("`{text}` is not a number")),
    }
}

/// A finite number of at least 0.
pub(crate) fn non_negative_number(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(value) if value.is_finite() && value >= 0.0 => Ok(value),
        Ok(value) => Err(format!("{value} is not a finite number of at least 0")),
        Err(_) => Err(format!("`{text}` is not a number")),
    }
}

/// Relative weights of 1, 2, … mutations per example: finite, at least 0, one of them positive,
/// at most [`MAX_MUTATIONS`] of them.
pub(crate) fn mutation_weights(text: &str) -> Result<Vec<f64>, String> {
    let weights: Vec<f64> = text
        .split(',')
        .map(|w| w.trim().parse::<f64>())
        .collect::<Result<_, _>>()
        .map_err(|_| format!("`{text}` is not a list of weights"))?;
    if weights.iter().any(|&w| !w.is_finite() || w < 0.0) || weights.iter().all(|&w| w <= 0.0) {
        return Err(format!(
            "`{text}`: weights must be finite and at least 0, one of them positive"
        ));
    }
    if weights.len() > MAX_MUTATIONS {
        return Err(format!(
            "`{text}`: at most {MAX_MUTATIONS} weights (mutations per example)"
        ));
    }
    Ok(weights)
}

/// Debugger calls: 0 to 100,000.
pub(crate) fn call_budget(text: &str) -> Result<usize, String> {
    bounded(text, 0, 100_000)
}

/// A shard `i/n` (`0 ≤ i < n`).
pub(crate) fn shard(text: &str) -> Result<(usize, usize), String> {
    let (i, n) = text
        .split_once('/')
        .ok_or_else(|| format!("`{text}` is not of the form i/n"))?;
    let i: usize = i
        .trim()
        .parse()
        .map_err(|_| format!("bad shard index `{i}`"))?;
    let n: usize = n
        .trim()
        .parse()
        .map_err(|_| format!("bad shard count `{n}`"))?;
    if n == 0 || i >= n {
        return Err(format!("shard {i}/{n}: need 0 ≤ i < n"));
    }
    Ok((i, n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_out_of_range_are_refused_with_their_bounds() {
        assert_eq!(bounded("7", 1, 10), Ok(7));
        assert!(bounded("0", 1, 10)
            .unwrap_err()
            .contains("between 1 and 10"));
        assert!(positive_count("0").unwrap_err().contains("at least 1"));
        assert!(bounded("-1", 0, 10).unwrap_err().contains("whole number"));
        assert!(thread_count("100000").is_err());
        assert_eq!(positive_number("0.5"), Ok(0.5));
        for bad in ["0", "-1", "nan", "inf", "x"] {
            assert!(positive_number(bad).is_err(), "{bad}");
        }
        assert_eq!(non_negative_number("0"), Ok(0.0));
        assert!(non_negative_number("-5").is_err());
        assert_eq!(mutation_weights("1, 2,0"), Ok(vec![1.0, 2.0, 0.0]));
        for bad in ["", "0,0", "1,-1", "1,nan", "a", &"1,".repeat(17)] {
            assert!(mutation_weights(bad).is_err(), "{bad}");
        }
        assert_eq!(shard("1/4"), Ok((1, 4)));
        for bad in ["4/4", "0/0", "1", "a/2", "-1/2"] {
            assert!(shard(bad).is_err(), "{bad}");
        }
    }
}
