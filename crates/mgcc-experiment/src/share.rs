//! A labelled share as researchers write it: `1/8`, `1/4`, `0.3`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A share of the train list that keeps its masks, with the spelling it was given.
#[derive(Debug, Clone, PartialEq)]
pub struct Share {
    /// As given (`1/8`), used in tables and run names.
    pub label: String,
    /// Its value in (0, 1].
    pub value: f64,
}

impl Share {
    /// The label with `/` replaced so it can be part of a folder name (`1-8`).
    pub fn slug(&self) -> String {
        self.label.replace('/', "-")
    }
}

impl FromStr for Share {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let bad = || format!("labelled share '{s}' is not a fraction like 1/8 or 0.25 in (0, 1]");
        let value = match s.split_once('/') {
            Some((n, d)) => {
                let n: f64 = n.trim().parse().map_err(|_| bad())?;
                let d: f64 = d.trim().parse().map_err(|_| bad())?;
                n / d
            }
            None => s.parse().map_err(|_| bad())?,
        };
        if !(value > 0.0 && value <= 1.0) {
            return Err(bad());
        }
        Ok(Share {
            label: s.to_string(),
            value,
        })
    }
}

impl fmt::Display for Share {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.label)
    }
}

impl Serialize for Share {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.label)
    }
}

impl<'de> Deserialize<'de> for Share {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Parse a comma-separated list (`1/8,1/4,1/2`).
pub fn parse_list<T: FromStr<Err = String>>(s: &str) -> Result<Vec<T>, String> {
    s.split(',')
        .filter(|p| !p.trim().is_empty())
        .map(|p| p.trim().parse())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fractions_and_decimals_parse_and_bad_ones_are_named() {
        let s: Share = "1/8".parse().unwrap();
        assert_eq!((s.value, s.slug().as_str()), (0.125, "1-8"));
        assert_eq!("0.25".parse::<Share>().unwrap().value, 0.25);
        for bad in ["0", "3/2", "x", "1/0", "-0.1"] {
            let err = bad.parse::<Share>().unwrap_err();
            assert!(err.contains(bad), "{err}");
        }
        let list: Vec<Share> = parse_list("1/8, 1/4,1/2").unwrap();
        assert_eq!(list.len(), 3);
    }
}
