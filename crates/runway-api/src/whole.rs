//! Whole numbers as JSON Schema's `integer` has them: `3` and `3.0` alike. serde reads `3.0`
//! only into a float, so a client whose JSON library writes integral numbers with a fraction
//! (as JavaScript may after arithmetic) would be refused for a value the document allows.

use serde::{Deserialize, Deserializer};

/// An optional whole number in the range of `T`: any JSON number without a fractional part.
pub fn optional<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<i64>,
{
    let Some(number) = Option::<serde_json::Number>::deserialize(deserializer)? else {
        return Ok(None);
    };
    let whole = number.as_i64().or_else(|| {
        number
            .as_f64()
            .filter(|value| value.fract() == 0.0 && value.abs() < 9.0e15)
            .map(|value| value as i64)
    });
    let invalid = || {
        serde::de::Error::custom(format!(
            "`{number}` is not a whole number in range; give an integer"
        ))
    };
    let whole = whole.ok_or_else(invalid)?;
    T::try_from(whole).map(Some).map_err(|_| invalid())
}

#[cfg(test)]
mod tests {
    #[derive(serde::Deserialize, Debug)]
    struct Priority {
        #[serde(default, deserialize_with = "super::optional")]
        value: Option<i32>,
    }

    fn read(json: &str) -> Result<Option<i32>, String> {
        serde_json::from_str::<Priority>(json)
            .map(|priority| priority.value)
            .map_err(|error| error.to_string())
    }

    #[test]
    fn an_integer_may_be_written_with_a_zero_fraction() {
        assert_eq!(read(r#"{"value": 28}"#), Ok(Some(28)));
        assert_eq!(read(r#"{"value": -28.0}"#), Ok(Some(-28)));
        assert_eq!(read(r#"{"value": null}"#), Ok(None));
        assert_eq!(read("{}"), Ok(None));
        for bad in [
            r#"{"value": 2.5}"#,
            r#"{"value": 3000000000}"#,
            r#"{"value": "3"}"#,
            r#"{"value": 1e300}"#,
        ] {
            assert!(read(bad).is_err(), "{bad}");
        }
        assert!(
            read(r#"{"value": 2.5}"#)
                .unwrap_err()
                .contains("whole number")
        );
    }
}
