//! Parsers of flag values.

use std::time::Duration;

use crate::error::Invalid;

/// Parses a number of seconds (fractions allowed) into a duration.
pub fn seconds(text: &str) -> Result<Duration, Invalid> {
    let value: f64 = text
        .parse()
        .map_err(|_| Invalid(format!("'{text}' is not a number of seconds")))?;
    Duration::try_from_secs_f64(value)
        .map_err(|_| Invalid(format!("'{text}' is not a valid number of seconds")))
}
